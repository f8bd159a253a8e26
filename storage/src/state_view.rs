//! What a node's queries and backups read: the state machine's records in
//! memory.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use raftcart_domain::{Item, LogClock, Order, RequestRecord, StateRead, User};

use crate::records::{Records, SharedRecords};

/// A cheap handle for reads; clones share the state machine's records.
#[derive(Clone)]
pub struct StateView {
    records: SharedRecords,
    unsnapshotted_writes: Arc<AtomicU64>,
}

impl StateView {
    pub(crate) fn new(records: SharedRecords, unsnapshotted_writes: Arc<AtomicU64>) -> Self {
        StateView {
            records,
            unsnapshotted_writes,
        }
    }

    /// Writes applied since the last snapshot was taken or installed (or
    /// since the node started): what a restart would apply again.
    pub fn unsnapshotted_writes(&self) -> u64 {
        self.unsnapshotted_writes.load(Ordering::Relaxed)
    }

    /// A copy of the records as the last applied batch left them (sharing
    /// their persistent maps).
    pub(crate) fn copy(&self) -> Records {
        self.records.read().clone()
    }
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
