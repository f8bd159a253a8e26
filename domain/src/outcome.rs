//! What applying a command or answering a query yields.

use serde::{Deserialize, Serialize};

use crate::error::Refusal;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    ItemCreated {
        item_id: String,
    },
    Item {
        item_id: String,
        stock: u64,
        price: u64,
    },
    UserCreated {
        user_id: String,
    },
    User {
        user_id: String,
        credit: u64,
    },
    FundsAdded,
    OrderCreated {
        order_id: String,
    },
    Order {
        order_id: String,
        user_id: String,
        paid: bool,
        items: Vec<(String, u64)>,
        total_cost: u64,
    },
    CheckedOut {
        order_id: String,
        already_paid: bool,
    },
    PaymentStatus {
        paid: bool,
    },
    Done {
        msg: String,
    },
}

pub type Outcome = Result<Reply, Refusal>;
