//! Domain replies as the JSON bodies the course's clients expect.

use axum::response::{IntoResponse, Response};
use axum::Json;
use raftcart_domain::{Outcome, Reply};
use serde_json::{json, Value};

use super::error::ApiError;

pub fn body(reply: Reply) -> Value {
    match reply {
        Reply::ItemCreated { item_id } => json!({ "item_id": item_id }),
        Reply::Item {
            item_id,
            stock,
            price,
        } => json!({ "item_id": item_id, "stock": stock, "price": price }),
        Reply::UserCreated { user_id } => json!({ "user_id": user_id }),
        Reply::User { user_id, credit } => json!({ "user_id": user_id, "credit": credit }),
        Reply::FundsAdded => json!({ "done": true }),
        Reply::OrderCreated { order_id } => json!({ "order_id": order_id }),
        Reply::Order {
            order_id,
            user_id,
            paid,
            items,
            total_cost,
        } => json!({
            "order_id": order_id,
            "paid": paid,
            "items": items,
            "user_id": user_id,
            "total_cost": total_cost,
        }),
        Reply::CheckedOut {
            order_id,
            already_paid,
        } => json!({ "order_id": order_id, "paid": true, "already_paid": already_paid }),
        Reply::PaymentStatus { paid } => json!({ "paid": paid }),
        Reply::Done { msg } => json!({ "msg": msg }),
    }
}

pub fn reply_json(reply: Reply) -> Response {
    Json(body(reply)).into_response()
}

pub fn respond(outcome: Outcome) -> Result<Response, ApiError> {
    Ok(reply_json(outcome?))
}
