//! The state machine's records, decoded, in memory: what `apply`, the
//! queries, snapshots and backups read.
//!
//! This is the state machine. Its durable copy is the snapshot file, and
//! the log holds every entry after it: a restart loads the file and
//! applies the rest of the log again (`docs/STORAGE.md`). So applying a
//! batch writes nothing to disk; it only changes these maps.
//!
//! Request records are kept whole, with their ids in the order they were
//! stored (`expiry`), so that the sweep of expired records walks the front
//! of that order.

use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use imbl::{HashMap, Vector};

use raftcart_domain::{
    Changes, Item, LogClock, Order, RequestRecord, StateRead, User, REQUEST_RECORD_TTL_MS,
};
use raftcart_types::codec;
use raftcart_types::{LogId, StoredMembership};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::keys;
use crate::snapshot::{Capture, Pairs};

/// The records, shared by the state machine (the only writer) and the
/// queries of its node.
#[derive(Clone)]
pub(crate) struct SharedRecords(Arc<RwLock<Records>>);

impl SharedRecords {
    pub(crate) fn new(records: Records) -> Self {
        SharedRecords(Arc::new(RwLock::new(records)))
    }

    /// A panic while the lock was held cannot have left a batch half
    /// absorbed (`absorb` does not fail), so a poisoned lock is still exact.
    pub(crate) fn read(&self) -> RwLockReadGuard<'_, Records> {
        self.0.read().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn write(&self) -> RwLockWriteGuard<'_, Records> {
        self.0.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// Persistent maps (`imbl`): cloning `Records`, which a snapshot does while
/// apply waits, shares the tables instead of copying them, and later writes
/// copy only the paths they change. Ids and the records that own heap
/// memory are shared (`Arc`), so that those copies count references
/// instead of allocating records again.
#[derive(Clone, Default)]
pub(crate) struct Records {
    /// The last log id applied: the records are the state after it.
    pub(crate) applied: Option<LogId>,
    pub(crate) membership: StoredMembership,
    pub(crate) users: HashMap<Arc<str>, User>,
    pub(crate) items: HashMap<Arc<str>, Item>,
    pub(crate) orders: HashMap<Arc<str>, Arc<Order>>,
    pub(crate) clock: LogClock,
    pub(crate) request_records: HashMap<Arc<str>, Arc<RequestRecord>>,
    /// `(at_ms, id)` of every `t/` key: the request records in the order
    /// they were stored, which is also expiry order (the log clock never
    /// goes back). An id used again keeps its older entry here until it is
    /// swept; the record itself is then kept, being newer.
    expiry: Vector<(u64, Arc<str>)>,
}

impl Records {
    /// Decodes a snapshot's records. A record that cannot be decoded
    /// refuses the whole snapshot: read as absent, it would make this
    /// replica decide differently from the others.
    pub(crate) fn from_pairs(pairs: Pairs) -> Result<Records, String> {
        let mut records = Records::default();
        let mut expiry = Vec::new();
        for (key, value) in pairs {
            let (prefix, rest) = key.split_at(key.len().min(2));
            let id = || {
                std::str::from_utf8(rest)
                    .map(Arc::<str>::from)
                    .map_err(|_| {
                        format!(
                            "record key {:?} is not UTF-8",
                            String::from_utf8_lossy(&key)
                        )
                    })
            };
            match prefix {
                p if p == keys::USER => {
                    records.users.insert(id()?, decode(&key, &value)?);
                }
                p if p == keys::ITEM => {
                    records.items.insert(id()?, decode(&key, &value)?);
                }
                p if p == keys::ORDER => {
                    records
                        .orders
                        .insert(id()?, Arc::new(decode(&key, &value)?));
                }
                p if p == keys::REQUEST_RECORD => {
                    records
                        .request_records
                        .insert(id()?, Arc::new(decode(&key, &value)?));
                }
                p if p == keys::RECORD_BY_TIME => {
                    let at_ms = rest
                        .get(..8)
                        .map(|b| u64::from_be_bytes(b.try_into().expect("8 bytes")));
                    match (at_ms, std::str::from_utf8(&rest[rest.len().min(8)..])) {
                        (Some(at_ms), Ok(id)) => expiry.push((at_ms, Arc::<str>::from(id))),
                        _ => {
                            return Err(format!(
                                "request record time key {:?} is malformed",
                                String::from_utf8_lossy(&key)
                            ))
                        }
                    }
                }
                _ if key == keys::APPLIED => records.applied = Some(decode::<LogId>(&key, &value)?),
                _ if key == keys::MEMBERSHIP => records.membership = decode(&key, &value)?,
                _ if key == keys::CLOCK => records.clock.ms = decode(&key, &value)?,
                _ if key == keys::CLOCK_STAMP => {
                    records.clock.stamp_ms = Some(decode(&key, &value)?)
                }
                _ => {
                    return Err(format!(
                        "unknown state machine key {:?}",
                        String::from_utf8_lossy(&key)
                    ))
                }
            }
        }
        // The time keys sort by time, then id, whatever order they came in.
        expiry.sort();
        records.expiry = Vector::from(expiry);
        Ok(records)
    }

    /// The records as a snapshot carries them, in key order.
    pub(crate) fn capture(&self) -> Result<Capture, String> {
        let mut pairs: Pairs = Vec::with_capacity(
            self.users.len()
                + self.items.len()
                + self.orders.len()
                + self.request_records.len()
                + self.expiry.len()
                + 4,
        );
        put_all(&mut pairs, keys::USER, &self.users)?;
        put_all(&mut pairs, keys::ITEM, &self.items)?;
        put_all(&mut pairs, keys::ORDER, &self.orders)?;
        put_all(&mut pairs, keys::REQUEST_RECORD, &self.request_records)?;
        // Kept in the snapshot so that nodes of a build that sweeps by these
        // keys can still install it.
        for (at_ms, id) in &self.expiry {
            pairs.push((keys::record_by_time(*at_ms, id), Vec::new()));
        }
        if let Some(applied) = &self.applied {
            pairs.push((keys::APPLIED.to_vec(), encode(applied)?));
        }
        pairs.push((keys::MEMBERSHIP.to_vec(), encode(&self.membership)?));
        pairs.push((keys::CLOCK.to_vec(), encode(&self.clock.ms)?));
        if let Some(stamp) = &self.clock.stamp_ms {
            pairs.push((keys::CLOCK_STAMP.to_vec(), encode(stamp)?));
        }
        pairs.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        Ok(Capture {
            last_log_id: self.applied,
            last_membership: self.membership.clone(),
            pairs,
        })
    }

    /// Takes in an applied batch, and drops the request records that
    /// expired by its clock. Whether a request record counts is decided on
    /// lookup by the domain; dropping expired ones only bounds memory, so
    /// replicas that sweep at different moments would still answer alike.
    pub(crate) fn absorb(&mut self, changes: Changes) {
        let cutoff = changes
            .clock
            .map_or(0, |c| c.ms.saturating_sub(REQUEST_RECORD_TTL_MS));
        while self
            .expiry
            .front()
            .is_some_and(|(at_ms, _)| *at_ms < cutoff)
        {
            let (at_ms, id) = self.expiry.pop_front().expect("a front entry");
            if self
                .request_records
                .get(&id)
                .is_some_and(|r| r.at_ms == at_ms)
            {
                self.request_records.remove(&id);
            }
        }
        for (id, user) in changes.users {
            match self.users.get_mut(id.as_str()) {
                Some(stored) => *stored = user,
                None => {
                    self.users.insert(Arc::from(id), user);
                }
            }
        }
        for (id, item) in changes.items {
            match self.items.get_mut(id.as_str()) {
                Some(stored) => *stored = item,
                None => {
                    self.items.insert(Arc::from(id), item);
                }
            }
        }
        for (id, order) in changes.orders {
            match (order, self.orders.get_mut(id.as_str())) {
                (Some(order), Some(stored)) => *stored = Arc::new(order),
                (Some(order), None) => {
                    self.orders.insert(Arc::from(id), Arc::new(order));
                }
                (None, _) => {
                    self.orders.remove(id.as_str());
                }
            }
        }
        if let Some(clock) = changes.clock {
            self.clock = clock;
        }
        // A batch's proposals carry clock readings that never go back, but
        // the changes are keyed by id: put them back in time order.
        let mut stored: Vec<_> = changes.request_records.into_iter().collect();
        stored.sort_by_key(|(_, r)| r.at_ms);
        for (id, record) in stored {
            let id: Arc<str> = Arc::from(id);
            self.expiry.push_back((record.at_ms, id.clone()));
            self.request_records.insert(id, Arc::new(record));
        }
    }
}

/// The domain's reads over the records in memory.
impl StateRead for Records {
    fn user(&self, id: &str) -> Option<User> {
        self.users.get(id).cloned()
    }
    fn item(&self, id: &str) -> Option<Item> {
        self.items.get(id).cloned()
    }
    fn order(&self, id: &str) -> Option<Order> {
        self.orders.get(id).map(|o| (**o).clone())
    }
    fn request_record(&self, request_id: &str) -> Option<RequestRecord> {
        self.request_records.get(request_id).map(|r| (**r).clone())
    }
    fn clock(&self) -> LogClock {
        self.clock
    }
}

fn put_all<T: Serialize>(
    pairs: &mut Pairs,
    prefix: &[u8],
    records: &HashMap<Arc<str>, T>,
) -> Result<(), String> {
    for (id, record) in records {
        pairs.push((keys::prefixed(prefix, id), encode(record)?));
    }
    Ok(())
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, String> {
    codec::encode(value).map_err(|e| format!("encoding the state machine: {e}"))
}

/// A record's bytes, decoded; the error names its key.
fn decode<T: DeserializeOwned>(key: &[u8], bytes: &[u8]) -> Result<T, String> {
    codec::decode(bytes)
        .map_err(|e| format!("undecodable record {:?}: {e}", String::from_utf8_lossy(key)))
}
