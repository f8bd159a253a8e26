//! Reads. They never change the state.

use serde::{Deserialize, Serialize};

use crate::error::not_found;
use crate::outcome::{Outcome, Reply};
use crate::state::StateRead;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Query {
    FindItem { item_id: String },
    FindUser { user_id: String },
    FindOrder { order_id: String },
    PaymentStatus { user_id: String, order_id: String },
}

pub fn answer<S: StateRead + ?Sized>(state: &S, query: &Query) -> Outcome {
    match query {
        Query::FindItem { item_id } => {
            let item = state
                .item(item_id)
                .ok_or_else(|| not_found("item", item_id))?;
            Ok(Reply::Item {
                item_id: item_id.clone(),
                stock: item.stock,
                price: item.price,
            })
        }
        Query::FindUser { user_id } => {
            let user = state
                .user(user_id)
                .ok_or_else(|| not_found("user", user_id))?;
            Ok(Reply::User {
                user_id: user_id.clone(),
                credit: user.credit,
            })
        }
        Query::FindOrder { order_id } => {
            let order = state
                .order(order_id)
                .ok_or_else(|| not_found("order", order_id))?;
            Ok(Reply::Order {
                order_id: order_id.clone(),
                user_id: order.user_id.clone(),
                paid: order.paid(),
                items: order
                    .lines
                    .iter()
                    .map(|l| (l.item_id.clone(), l.quantity))
                    .collect(),
                total_cost: order.total_cost,
            })
        }
        Query::PaymentStatus { user_id, order_id } => {
            state
                .user(user_id)
                .ok_or_else(|| not_found("user", user_id))?;
            let order = state
                .order(order_id)
                .ok_or_else(|| not_found("order", order_id))?;
            let paid = match &order.payment {
                Some(p) => &p.user_id == user_id,
                None => false,
            };
            Ok(Reply::PaymentStatus { paid })
        }
    }
}
