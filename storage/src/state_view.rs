//! The state machine's records read straight from RocksDB.

use std::sync::Arc;

use raftcart_domain::{Item, Order, Session, StateRead, User};
use raftcart_raft::codec;
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

    pub(crate) fn get<T: DeserializeOwned>(&self, key: &[u8]) -> Option<T> {
        let cf = self.db.cf_handle(CF_SM).expect("sm column family exists");
        match self.db.get_pinned_cf(cf, key) {
            Ok(Some(bytes)) => match codec::decode(&bytes) {
                Ok(v) => Some(v),
                Err(e) => {
                    tracing::error!(key = ?String::from_utf8_lossy(key), "undecodable record: {e}");
                    None
                }
            },
            Ok(None) => None,
            Err(e) => {
                tracing::error!("reading the state machine: {e}");
                None
            }
        }
    }
}

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
    fn session(&self, request_id: &str) -> Option<Session> {
        self.get(&keys::prefixed(keys::SESSION, request_id))
    }
    fn clock_ms(&self) -> u64 {
        self.get(keys::CLOCK).unwrap_or(0)
    }
}
