//! What a node's queries and backups read: the state machine's records in
//! memory, and its database.

use std::sync::Arc;

use raftcart_domain::{Item, LogClock, Order, RequestRecord, StateRead, User};
use raftcart_types::codec;
use rocksdb::DB;
use serde::de::DeserializeOwned;

use crate::keys::CF_SM;
use crate::records::SharedRecords;

/// A cheap handle for reads; clones share the state machine's records.
#[derive(Clone)]
pub struct StateView {
    db: Arc<DB>,
    records: SharedRecords,
}

impl StateView {
    pub(crate) fn new(db: Arc<DB>, records: SharedRecords) -> Self {
        StateView { db, records }
    }

    pub(crate) fn db(&self) -> &DB {
        &self.db
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

/// The domain's reads, as the last applied batch left the records. Each
/// read takes the lock on its own: a batch applied between two reads of
/// one query only makes the second read newer.
impl StateRead for StateView {
    fn user(&self, id: &str) -> Option<User> {
        self.records.read().user(id)
    }
    fn item(&self, id: &str) -> Option<Item> {
        self.records.read().item(id)
    }
    fn order(&self, id: &str) -> Option<Order> {
        self.records.read().order(id)
    }
    fn request_record(&self, request_id: &str) -> Option<RequestRecord> {
        self.records.read().request_record(request_id)
    }
    fn clock(&self) -> LogClock {
        self.records.read().clock()
    }
}
