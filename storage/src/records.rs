//! The state machine's records, decoded, in memory: what `apply` and the
//! queries read.
//!
//! `apply` is the only writer of the `sm` column family, so a copy it keeps
//! itself stays exact: it is loaded once at open (and after a snapshot
//! install), and every applied batch updates it after the batch is stored.
//! RocksDB stays the durable copy, written in the same batch as before;
//! snapshots and backups read it there.
//!
//! Request records are kept whole, with their ids in the order they were
//! stored (`expiry`), so that neither a retry's lookup nor the sweep of
//! expired records reads RocksDB.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use raftcart_domain::{Changes, Item, LogClock, Order, RequestRecord, StateRead, User};
use rocksdb::{Direction, IteratorMode, DB};
use serde::de::DeserializeOwned;

use crate::keys::{self, CF_SM};
use crate::state_view::{decode, read};

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

pub(crate) struct Records {
    pub(crate) users: HashMap<String, User>,
    pub(crate) items: HashMap<String, Item>,
    pub(crate) orders: HashMap<String, Order>,
    pub(crate) clock: LogClock,
    pub(crate) request_records: HashMap<String, RequestRecord>,
    /// `(at_ms, id)` of every `t/` key: the request records in the order
    /// they were stored, which is also expiry order (the log clock never
    /// goes back). An id used again keeps its older entry here until it is
    /// swept; the record itself is then kept, being newer.
    expiry: VecDeque<(u64, String)>,
}

impl Records {
    /// Decodes every record of the `sm` column family. A record that cannot
    /// be decoded stops the open: read as absent, it would make this
    /// replica decide differently from the others.
    pub(crate) fn load(db: &DB) -> Result<Records, String> {
        let mut expiry = VecDeque::new();
        scan_raw(db, keys::RECORD_BY_TIME, |rest, _| {
            let at_ms = rest
                .get(..8)
                .map(|b| u64::from_be_bytes(b.try_into().expect("8 bytes")));
            match (at_ms, std::str::from_utf8(&rest[rest.len().min(8)..])) {
                (Some(at_ms), Ok(id)) => {
                    expiry.push_back((at_ms, id.to_string()));
                    Ok(())
                }
                _ => Err(format!(
                    "request record time key {:?} is malformed",
                    String::from_utf8_lossy(&keys::prefixed_bytes(keys::RECORD_BY_TIME, rest))
                )),
            }
        })?;
        Ok(Records {
            users: load_kind(db, keys::USER)?,
            items: load_kind(db, keys::ITEM)?,
            orders: load_kind(db, keys::ORDER)?,
            clock: LogClock {
                ms: read(db, keys::CLOCK)?.unwrap_or(0),
                stamp_ms: read(db, keys::CLOCK_STAMP)?,
            },
            request_records: load_kind(db, keys::REQUEST_RECORD)?,
            expiry,
        })
    }

    /// The request records stored before `cutoff_ms`, oldest first, as
    /// `(at_ms, id, whether this is still the id's record)`: what a sweep at
    /// that cutoff deletes. `absorb` takes them out once the deletes are
    /// stored.
    pub(crate) fn expired(&self, cutoff_ms: u64) -> impl Iterator<Item = (u64, &str, bool)> {
        self.expiry
            .iter()
            .take_while(move |(at_ms, _)| *at_ms < cutoff_ms)
            .map(|(at_ms, id)| {
                let current = self
                    .request_records
                    .get(id)
                    .is_some_and(|r| r.at_ms == *at_ms);
                (*at_ms, id.as_str(), current)
            })
    }

    /// Takes in a batch once it is stored: `swept` is how many of the
    /// oldest request records (`expired`) it deleted.
    pub(crate) fn absorb(&mut self, changes: Changes, swept: usize) {
        for (at_ms, id) in self.expiry.drain(..swept.min(self.expiry.len())) {
            if self
                .request_records
                .get(&id)
                .is_some_and(|r| r.at_ms == at_ms)
            {
                self.request_records.remove(&id);
            }
        }
        self.users.extend(changes.users);
        self.items.extend(changes.items);
        for (id, order) in changes.orders {
            match order {
                Some(order) => self.orders.insert(id, order),
                None => self.orders.remove(&id),
            };
        }
        if let Some(clock) = changes.clock {
            self.clock = clock;
        }
        // A batch's proposals carry clock readings that never go back, but
        // the changes are keyed by id: put them back in time order.
        let mut stored: Vec<_> = changes.request_records.into_iter().collect();
        stored.sort_by_key(|(_, r)| r.at_ms);
        for (id, record) in stored {
            self.expiry.push_back((record.at_ms, id.clone()));
            self.request_records.insert(id, record);
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
        self.orders.get(id).cloned()
    }
    fn request_record(&self, request_id: &str) -> Option<RequestRecord> {
        self.request_records.get(request_id).cloned()
    }
    fn clock(&self) -> LogClock {
        self.clock
    }
}

/// Calls `each` with the rest of the key and the value of every record
/// under `prefix`.
fn scan_raw(
    db: &DB,
    prefix: &[u8],
    mut each: impl FnMut(&[u8], &[u8]) -> Result<(), String>,
) -> Result<(), String> {
    let cf = db.cf_handle(CF_SM).expect("sm column family exists");
    // A one-off pass over everything: it would only evict what queries use.
    let mut opts = rocksdb::ReadOptions::default();
    opts.fill_cache(false);
    for item in db.iterator_cf_opt(cf, opts, IteratorMode::From(prefix, Direction::Forward)) {
        let (key, value) = item.map_err(|e| format!("reading the state machine: {e}"))?;
        let Some(rest) = key.strip_prefix(prefix) else {
            break;
        };
        each(rest, &value)?;
    }
    Ok(())
}

/// `scan_raw` for records keyed by an id, which is UTF-8.
fn scan(
    db: &DB,
    prefix: &[u8],
    mut each: impl FnMut(&str, &[u8]) -> Result<(), String>,
) -> Result<(), String> {
    scan_raw(db, prefix, |id, value| {
        let id = std::str::from_utf8(id).map_err(|_| {
            format!(
                "record key {:?} is not UTF-8",
                String::from_utf8_lossy(&keys::prefixed_bytes(prefix, id))
            )
        })?;
        each(id, value)
    })
}

fn load_kind<T: DeserializeOwned>(db: &DB, prefix: &[u8]) -> Result<HashMap<String, T>, String> {
    let mut map = HashMap::new();
    scan(db, prefix, |id, value| {
        map.insert(id.to_string(), decode(&keys::prefixed(prefix, id), value)?);
        Ok(())
    })?;
    Ok(map)
}
