//! The records the state machine holds.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub credit: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    pub stock: u64,
    pub price: u64,
}

/// One `addItem`: the unit price is frozen when the line is added, so that
/// removing the line later takes exactly its cost back off the total.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    pub item_id: String,
    pub quantity: u64,
    pub unit_price: u64,
}

/// What a payment took, so that a cancel gives back exactly that.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    pub user_id: String,
    pub amount: u64,
    /// Units taken per item (empty for a payment made with the older
    /// `/payment/pay/{user}/{order}/{amount}`, which takes no stock).
    pub stock_taken: Vec<(String, u64)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub user_id: String,
    pub lines: Vec<Line>,
    pub total_cost: u64,
    pub payment: Option<Payment>,
}

impl Order {
    pub fn new(user_id: String) -> Self {
        Order {
            user_id,
            lines: Vec::new(),
            total_cost: 0,
            payment: None,
        }
    }

    pub fn paid(&self) -> bool {
        self.payment.is_some()
    }
}
