//! The state the commands work on, as traits, so that the same apply code
//! runs over RocksDB in production and over plain maps in tests.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::clock::LogClock;
use crate::command::Command;
use crate::model::{Item, Order, User};
use crate::outcome::Outcome;

/// The remembered result of one request, for answering its retries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestRecord {
    /// The state machine's clock (`LogClock::ms`) when it was stored.
    pub at_ms: u64,
    /// The request's `Command::intent`, to tell a retry from a different
    /// request that reuses its id.
    pub intent: Command,
    pub outcome: Outcome,
}

pub trait StateRead {
    fn user(&self, id: &str) -> Option<User>;
    fn item(&self, id: &str) -> Option<Item>;
    fn order(&self, id: &str) -> Option<Order>;
    fn request_record(&self, request_id: &str) -> Option<RequestRecord>;
    fn clock(&self) -> LogClock;
}

pub trait StateWrite: StateRead {
    fn put_user(&mut self, id: &str, user: User);
    fn put_item(&mut self, id: &str, item: Item);
    fn put_order(&mut self, id: &str, order: Order);
    fn delete_order(&mut self, id: &str);
    fn put_request_record(&mut self, request_id: &str, request_record: RequestRecord);
    fn set_clock(&mut self, clock: LogClock);
}

/// Writes not yet stored: `None` marks a deletion.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changes {
    pub users: BTreeMap<String, User>,
    pub items: BTreeMap<String, Item>,
    pub orders: BTreeMap<String, Option<Order>>,
    pub request_records: BTreeMap<String, RequestRecord>,
    pub clock: Option<LogClock>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
            && self.items.is_empty()
            && self.orders.is_empty()
            && self.request_records.is_empty()
            && self.clock.is_none()
    }
}

/// Pending changes layered over a read-only base: several entries applied in
/// one batch see each other's writes before the batch is stored.
pub struct Overlay<'a, S: StateRead + ?Sized> {
    base: &'a S,
    changes: Changes,
}

impl<'a, S: StateRead + ?Sized> Overlay<'a, S> {
    pub fn new(base: &'a S) -> Self {
        Overlay {
            base,
            changes: Changes::default(),
        }
    }

    pub fn into_changes(self) -> Changes {
        self.changes
    }
}

impl<S: StateRead + ?Sized> StateRead for Overlay<'_, S> {
    fn user(&self, id: &str) -> Option<User> {
        match self.changes.users.get(id) {
            Some(u) => Some(u.clone()),
            None => self.base.user(id),
        }
    }
    fn item(&self, id: &str) -> Option<Item> {
        match self.changes.items.get(id) {
            Some(i) => Some(i.clone()),
            None => self.base.item(id),
        }
    }
    fn order(&self, id: &str) -> Option<Order> {
        match self.changes.orders.get(id) {
            Some(o) => o.clone(),
            None => self.base.order(id),
        }
    }
    fn request_record(&self, request_id: &str) -> Option<RequestRecord> {
        match self.changes.request_records.get(request_id) {
            Some(s) => Some(s.clone()),
            None => self.base.request_record(request_id),
        }
    }
    fn clock(&self) -> LogClock {
        self.changes.clock.unwrap_or_else(|| self.base.clock())
    }
}

impl<S: StateRead + ?Sized> StateWrite for Overlay<'_, S> {
    fn put_user(&mut self, id: &str, user: User) {
        self.changes.users.insert(id.to_string(), user);
    }
    fn put_item(&mut self, id: &str, item: Item) {
        self.changes.items.insert(id.to_string(), item);
    }
    fn put_order(&mut self, id: &str, order: Order) {
        self.changes.orders.insert(id.to_string(), Some(order));
    }
    fn delete_order(&mut self, id: &str) {
        self.changes.orders.insert(id.to_string(), None);
    }
    fn put_request_record(&mut self, request_id: &str, request_record: RequestRecord) {
        self.changes
            .request_records
            .insert(request_id.to_string(), request_record);
    }
    fn set_clock(&mut self, clock: LogClock) {
        self.changes.clock = Some(clock);
    }
}

/// The whole state in maps: for tests and for checking invariants.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MemState {
    pub users: BTreeMap<String, User>,
    pub items: BTreeMap<String, Item>,
    pub orders: BTreeMap<String, Order>,
    pub request_records: BTreeMap<String, RequestRecord>,
    pub clock: LogClock,
}

impl StateRead for MemState {
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

impl StateWrite for MemState {
    fn put_user(&mut self, id: &str, user: User) {
        self.users.insert(id.to_string(), user);
    }
    fn put_item(&mut self, id: &str, item: Item) {
        self.items.insert(id.to_string(), item);
    }
    fn put_order(&mut self, id: &str, order: Order) {
        self.orders.insert(id.to_string(), order);
    }
    fn delete_order(&mut self, id: &str) {
        self.orders.remove(id);
    }
    fn put_request_record(&mut self, request_id: &str, request_record: RequestRecord) {
        self.request_records
            .insert(request_id.to_string(), request_record);
    }
    fn set_clock(&mut self, clock: LogClock) {
        self.clock = clock;
    }
}
