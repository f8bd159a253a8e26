//! Every write of the API as one command. Anything non-deterministic (new
//! ids, random seeds, the time) is chosen before proposing and carried here.

use serde::{Deserialize, Serialize};

/// Largest `n` a batch_init accepts: one command writes `n` records in one
/// atomic batch, and this keeps that batch within memory on every replica.
pub const MAX_BATCH: u64 = 1_000_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    CreateItem {
        item_id: String,
        price: u64,
    },
    AddStock {
        item_id: String,
        amount: u64,
    },
    SubtractStock {
        item_id: String,
        amount: u64,
    },
    BatchInitItems {
        n: u64,
        stock: u64,
        price: u64,
    },
    CreateUser {
        user_id: String,
    },
    AddFunds {
        user_id: String,
        amount: u64,
    },
    /// `order_id` is set by the older `/payment/pay/{user}/{order}/{amount}`.
    Pay {
        user_id: String,
        amount: u64,
        order_id: Option<String>,
    },
    Cancel {
        user_id: String,
        order_id: String,
    },
    BatchInitUsers {
        n: u64,
        credit: u64,
    },
    CreateOrder {
        order_id: String,
        user_id: String,
    },
    AddItem {
        order_id: String,
        item_id: String,
        quantity: u64,
    },
    RemoveItem {
        order_id: String,
        item_id: String,
    },
    RemoveOrder {
        order_id: String,
    },
    Checkout {
        order_id: String,
    },
    BatchInitOrders {
        n: u64,
        n_items: u64,
        n_users: u64,
        item_price: u64,
        seed: u64,
    },
    /// Touches no record and is not remembered: what Raft, HTTP and fsync
    /// cost without the state machine (`bench/compare.sh --ceiling`).
    Noop,
}

impl Command {
    /// A short stable name, for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Command::CreateItem { .. } => "create_item",
            Command::AddStock { .. } => "add_stock",
            Command::SubtractStock { .. } => "subtract_stock",
            Command::BatchInitItems { .. } => "batch_init_items",
            Command::CreateUser { .. } => "create_user",
            Command::AddFunds { .. } => "add_funds",
            Command::Pay { .. } => "pay",
            Command::Cancel { .. } => "cancel",
            Command::BatchInitUsers { .. } => "batch_init_users",
            Command::CreateOrder { .. } => "create_order",
            Command::AddItem { .. } => "add_item",
            Command::RemoveItem { .. } => "remove_item",
            Command::RemoveOrder { .. } => "remove_order",
            Command::Checkout { .. } => "checkout",
            Command::BatchInitOrders { .. } => "batch_init_orders",
            Command::Noop => "noop",
        }
    }
}

impl Command {
    /// What the client asked for, without what the receiving node drew for
    /// it (new ids, seeds): two attempts of one request have the same
    /// intent even when they went through different nodes.
    pub fn intent(&self) -> Command {
        let mut c = self.clone();
        match &mut c {
            Command::CreateItem { item_id, .. } => item_id.clear(),
            Command::CreateUser { user_id } => user_id.clear(),
            Command::CreateOrder { order_id, .. } => order_id.clear(),
            Command::BatchInitOrders { seed, .. } => *seed = 0,
            _ => {}
        }
        c
    }
}

/// Identifies one client request across retries (the `Idempotency-Key`
/// header, or an id the receiving node draws).
pub type RequestId = String;

/// One client write, as the leader proposes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    pub request_id: RequestId,
    /// Milliseconds since the epoch, stamped by the leader that proposed the
    /// entry. The state machine only ever reads time from here.
    pub at_ms: u64,
    pub command: Command,
}

/// What one Raft log entry carries: the writes the leader had waiting at
/// the same moment, applied in order, each with its own outcome. One entry
/// for many writes means one append, one replication message and one apply
/// for all of them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposals(pub Vec<Proposal>);
