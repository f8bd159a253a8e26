//! The state machine's records, decoded, in memory: what `apply` reads.
//!
//! `apply` is the only writer of the `sm` column family, so a copy it keeps
//! itself stays exact: it is loaded once at open (and after a snapshot
//! install), and every applied batch updates it after the batch is stored.
//! RocksDB stays the durable copy, written in the same batch as before;
//! queries, snapshots and backups read it there.
//!
//! Request records are the exception. One is stored per write and kept for
//! `REQUEST_RECORD_TTL_MS`, millions of them under load, and nearly every
//! lookup is for an id never seen (a new write). So only how many stored
//! records have each id's hash is kept: a hash that is absent answers "no
//! record" without a read, and a present one (a retry, or a collision)
//! reads the record from RocksDB.

use std::collections::hash_map::{Entry, RandomState};
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::OnceLock;

use raftcart_domain::{Changes, Item, LogClock, Order, RequestRecord, StateRead, User};
use rocksdb::{Direction, IteratorMode, DB};
use serde::de::DeserializeOwned;

use crate::keys::{self, CF_SM};
use crate::state_view::{decode, read};

pub(crate) struct Records {
    pub(crate) users: HashMap<String, User>,
    pub(crate) items: HashMap<String, Item>,
    pub(crate) orders: HashMap<String, Order>,
    pub(crate) clock: LogClock,
    /// Stored request records per hash of their id. Hashed with a key drawn
    /// at start, so that ids chosen by clients cannot be made to collide.
    request_ids: HashMap<u64, u32>,
    hasher: RandomState,
}

impl Records {
    /// Decodes every record of the `sm` column family. A record that cannot
    /// be decoded stops the open: read as absent, it would make this
    /// replica decide differently from the others.
    pub(crate) fn load(db: &DB) -> Result<Records, String> {
        let mut records = Records {
            users: load_kind(db, keys::USER)?,
            items: load_kind(db, keys::ITEM)?,
            orders: load_kind(db, keys::ORDER)?,
            clock: LogClock {
                ms: read(db, keys::CLOCK)?.unwrap_or(0),
                stamp_ms: read(db, keys::CLOCK_STAMP)?,
            },
            request_ids: HashMap::new(),
            hasher: RandomState::new(),
        };
        scan(db, keys::REQUEST_RECORD, |id, _| {
            records.count(records.hash_request_id(id), 1);
            Ok(())
        })?;
        Ok(records)
    }

    /// False when no request record with this id is stored: the common case,
    /// answered without a read.
    pub(crate) fn may_hold_request_id(&self, id: &str) -> bool {
        self.request_ids.contains_key(&self.hash_request_id(id))
    }

    pub(crate) fn hash_request_id(&self, id: &str) -> u64 {
        self.hasher.hash_one(id)
    }

    /// Takes in a batch once it is stored. `new_request_ids` are the hashes
    /// of the ids whose record the batch added (`hash_request_id`), `swept`
    /// the ids whose record it deleted.
    pub(crate) fn absorb(&mut self, changes: Changes, new_request_ids: &[u64], swept: &[String]) {
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
        for id in swept {
            self.count(self.hash_request_id(id), -1);
        }
        for &hash in new_request_ids {
            self.count(hash, 1);
        }
    }

    fn count(&mut self, hash: u64, by: i32) {
        match self.request_ids.entry(hash) {
            Entry::Occupied(mut e) => {
                let n = e.get().saturating_add_signed(by);
                if n == 0 {
                    e.remove();
                } else {
                    *e.get_mut() = n;
                }
            }
            Entry::Vacant(e) => {
                if by > 0 {
                    e.insert(by.unsigned_abs());
                }
            }
        }
    }
}

/// What `apply` reads through: the records in memory, and a request
/// record from RocksDB when its id's hash is counted. A request record that
/// cannot be read must not pass for an absent one: this replica would then
/// decide differently from the others (apply a retry twice). The first
/// failure is kept; `apply` then stores nothing and returns a storage
/// error, which stops Raft on this node, and the node exits to be
/// restarted.
pub(crate) struct ApplyView<'a> {
    records: &'a Records,
    db: &'a DB,
    failure: OnceLock<String>,
}

impl<'a> ApplyView<'a> {
    pub(crate) fn new(records: &'a Records, db: &'a DB) -> Self {
        ApplyView {
            records,
            db,
            failure: OnceLock::new(),
        }
    }

    /// Why a read failed, if one did.
    pub(crate) fn failure(&self) -> Option<&str> {
        self.failure.get().map(String::as_str)
    }
}

impl StateRead for ApplyView<'_> {
    fn user(&self, id: &str) -> Option<User> {
        self.records.users.get(id).cloned()
    }
    fn item(&self, id: &str) -> Option<Item> {
        self.records.items.get(id).cloned()
    }
    fn order(&self, id: &str) -> Option<Order> {
        self.records.orders.get(id).cloned()
    }
    fn request_record(&self, request_id: &str) -> Option<RequestRecord> {
        if !self.records.may_hold_request_id(request_id) {
            return None;
        }
        let key = keys::prefixed(keys::REQUEST_RECORD, request_id);
        read(self.db, &key).unwrap_or_else(|e| {
            let _ = self.failure.set(e);
            None
        })
    }
    fn clock(&self) -> LogClock {
        self.records.clock
    }
}

/// Calls `each` with the id and value of every record under `prefix`.
fn scan(
    db: &DB,
    prefix: &[u8],
    mut each: impl FnMut(&str, &[u8]) -> Result<(), String>,
) -> Result<(), String> {
    let cf = db.cf_handle(CF_SM).expect("sm column family exists");
    // A one-off pass over everything: it would only evict what queries use.
    let mut opts = rocksdb::ReadOptions::default();
    opts.fill_cache(false);
    for item in db.iterator_cf_opt(cf, opts, IteratorMode::From(prefix, Direction::Forward)) {
        let (key, value) = item.map_err(|e| format!("reading the state machine: {e}"))?;
        let Some(id) = key.strip_prefix(prefix) else {
            break;
        };
        let id = std::str::from_utf8(id).map_err(|_| {
            format!(
                "record key {:?} is not UTF-8",
                String::from_utf8_lossy(&key)
            )
        })?;
        each(id, &value)?;
    }
    Ok(())
}

fn load_kind<T: DeserializeOwned>(db: &DB, prefix: &[u8]) -> Result<HashMap<String, T>, String> {
    let mut map = HashMap::new();
    scan(db, prefix, |id, value| {
        map.insert(id.to_string(), decode(&keys::prefixed(prefix, id), value)?);
        Ok(())
    })?;
    Ok(map)
}
