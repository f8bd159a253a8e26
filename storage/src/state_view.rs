//! The state machine's records read straight from RocksDB.

use std::sync::Arc;

use raftcart_domain::{Item, LogClock, Order, RequestRecord, StateRead, User};
use raftcart_types::codec;
use rocksdb::DB;
use serde::de::DeserializeOwned;

use crate::keys::{self, CF_SM};

/// A cheap handle for reads; clones share the database.
#[derive(Clone)]
pub struct StateView {
    db: Arc<DB>,
}

impl StateView {
    pub fn new(db: Arc<DB>) -> Self {
        StateView { db }
    }

    pub(crate) fn db(&self) -> &DB {
        &self.db
    }

    /// A record (`None` if absent), or why it could not be read.
    pub(crate) fn try_get<T: DeserializeOwned>(
        &self,
        key: &[u8],
    ) -> std::result::Result<Option<T>, String> {
        read(&self.db, key)
    }

    /// For queries: a record that cannot be read is logged and answered as
    /// absent.
    pub(crate) fn get<T: DeserializeOwned>(&self, key: &[u8]) -> Option<T> {
        self.try_get(key).unwrap_or_else(|e| {
            tracing::error!("{e}");
            None
        })
    }
}

/// One record of the `sm` column family (`None` if absent), or why it could
/// not be read.
pub(crate) fn read<T: DeserializeOwned>(db: &DB, key: &[u8]) -> Result<Option<T>, String> {
    let cf = db.cf_handle(CF_SM).expect("sm column family exists");
    match db.get_pinned_cf(cf, key) {
        Ok(Some(bytes)) => decode(key, &bytes).map(Some),
        Ok(None) => Ok(None),
        Err(e) => Err(format!("reading the state machine: {e}")),
    }
}

/// A record's bytes, decoded; the error names its key.
pub(crate) fn decode<T: DeserializeOwned>(key: &[u8], bytes: &[u8]) -> Result<T, String> {
    codec::decode(bytes)
        .map_err(|e| format!("undecodable record {:?}: {e}", String::from_utf8_lossy(key)))
}

/// The domain's reads as keys of the `sm` column family.
impl StateRead for StateView {
    fn user(&self, id: &str) -> Option<User> {
        self.get(&keys::prefixed(keys::USER, id))
    }
    fn item(&self, id: &str) -> Option<Item> {
        self.get(&keys::prefixed(keys::ITEM, id))
    }
    fn order(&self, id: &str) -> Option<Order> {
        self.get(&keys::prefixed(keys::ORDER, id))
    }
    fn request_record(&self, request_id: &str) -> Option<RequestRecord> {
        self.get(&keys::prefixed(keys::REQUEST_RECORD, request_id))
    }
    fn clock(&self) -> LogClock {
        LogClock {
            ms: self.get(keys::CLOCK).unwrap_or(0),
            stamp_ms: self.get(keys::CLOCK_STAMP),
        }
    }
}
