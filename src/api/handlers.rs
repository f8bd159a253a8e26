//! One handler per route: path -> command or query -> executor -> reply.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use raftcart_domain::{Command, Query, Refusal, Reply};

use super::error::{ApiError, WriteError};
use super::params::{Params, ReadConsistency, MAX_ID_LEN};
use super::reply::{reply_json, respond};
use super::state::AppState;

pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

pub(super) type ApiResult = Result<Response, ApiError>;

/// The request id that makes retries of this write apply once: the
/// client's `Idempotency-Key` if it sent one, otherwise a fresh one.
fn request_id(headers: &HeaderMap) -> Result<String, ApiError> {
    match headers.get(IDEMPOTENCY_KEY) {
        Some(v) => {
            let key = v
                .to_str()
                .map_err(|_| ApiError::bad_request("Idempotency-Key must be visible ASCII"))?;
            if key.is_empty() || key.len() > MAX_ID_LEN {
                return Err(ApiError::bad_request(format!(
                    "Idempotency-Key must be 1 to {MAX_ID_LEN} bytes long"
                )));
            }
            // Namespaced so that a client key can never equal a generated id.
            Ok(format!("k:{key}"))
        }
        None => Ok(format!("g:{}", uuid::Uuid::new_v4())),
    }
}

pub(super) async fn write(state: &AppState, headers: &HeaderMap, command: Command) -> ApiResult {
    Ok(reply_json(propose(state, headers, command).await?))
}

/// Runs a write through Raft.
async fn propose(
    state: &AppState,
    headers: &HeaderMap,
    command: Command,
) -> Result<Reply, WriteError> {
    let id = request_id(headers).map_err(WriteError::BadRequest)?;
    tracing::debug!(idempotency = %id, command = command.name(), "write");
    match state.executor.write(id, command).await {
        Ok(Ok(reply)) => Ok(reply),
        Ok(Err(refusal)) => Err(WriteError::Refused(refusal)),
        Err(e) => Err(WriteError::Unavailable(e)),
    }
}

async fn read(state: &AppState, consistency: ReadConsistency, query: Query) -> ApiResult {
    respond(state.executor.read(query, consistency.0).await?)
}

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

pub async fn create_item(State(s): State<AppState>, headers: HeaderMap, p: Params) -> ApiResult {
    let price = p.number(0, "price")?;
    write(
        &s,
        &headers,
        Command::CreateItem {
            item_id: new_id(),
            price,
        },
    )
    .await
}

pub async fn find_item(State(s): State<AppState>, c: ReadConsistency, p: Params) -> ApiResult {
    read(
        &s,
        c,
        Query::FindItem {
            item_id: p.id(0, "item_id")?,
        },
    )
    .await
}

pub async fn add_stock(State(s): State<AppState>, headers: HeaderMap, p: Params) -> ApiResult {
    let (item_id, amount) = (p.id(0, "item_id")?, p.number(1, "amount")?);
    write(&s, &headers, Command::AddStock { item_id, amount }).await
}

pub async fn subtract_stock(State(s): State<AppState>, headers: HeaderMap, p: Params) -> ApiResult {
    let (item_id, amount) = (p.id(0, "item_id")?, p.number(1, "amount")?);
    write(&s, &headers, Command::SubtractStock { item_id, amount }).await
}

pub async fn batch_init_items(
    State(s): State<AppState>,
    headers: HeaderMap,
    p: Params,
) -> ApiResult {
    let command = Command::BatchInitItems {
        n: p.number(0, "n")?,
        stock: p.number(1, "starting_stock")?,
        price: p.number(2, "item_price")?,
    };
    write(&s, &headers, command).await
}

pub async fn create_user(State(s): State<AppState>, headers: HeaderMap) -> ApiResult {
    write(&s, &headers, Command::CreateUser { user_id: new_id() }).await
}

pub async fn find_user(State(s): State<AppState>, c: ReadConsistency, p: Params) -> ApiResult {
    read(
        &s,
        c,
        Query::FindUser {
            user_id: p.id(0, "user_id")?,
        },
    )
    .await
}

pub async fn add_funds(State(s): State<AppState>, headers: HeaderMap, p: Params) -> ApiResult {
    let (user_id, amount) = (p.id(0, "user_id")?, p.number(1, "amount")?);
    write(&s, &headers, Command::AddFunds { user_id, amount }).await
}

pub async fn pay(State(s): State<AppState>, headers: HeaderMap, p: Params) -> ApiResult {
    let (user_id, amount) = (p.id(0, "user_id")?, p.number(1, "amount")?);
    write(
        &s,
        &headers,
        Command::Pay {
            user_id,
            amount,
            order_id: None,
        },
    )
    .await
}

pub async fn pay_for_order(State(s): State<AppState>, headers: HeaderMap, p: Params) -> ApiResult {
    let command = Command::Pay {
        user_id: p.id(0, "user_id")?,
        order_id: Some(p.id(1, "order_id")?),
        amount: p.number(2, "amount")?,
    };
    write(&s, &headers, command).await
}

pub async fn cancel(State(s): State<AppState>, headers: HeaderMap, p: Params) -> ApiResult {
    let (user_id, order_id) = (p.id(0, "user_id")?, p.id(1, "order_id")?);
    write(&s, &headers, Command::Cancel { user_id, order_id }).await
}

pub async fn payment_status(State(s): State<AppState>, c: ReadConsistency, p: Params) -> ApiResult {
    let (user_id, order_id) = (p.id(0, "user_id")?, p.id(1, "order_id")?);
    read(&s, c, Query::PaymentStatus { user_id, order_id }).await
}

pub async fn batch_init_users(
    State(s): State<AppState>,
    headers: HeaderMap,
    p: Params,
) -> ApiResult {
    let (n, credit) = (p.number(0, "n")?, p.number(1, "starting_money")?);
    write(&s, &headers, Command::BatchInitUsers { n, credit }).await
}

pub async fn create_order(State(s): State<AppState>, headers: HeaderMap, p: Params) -> ApiResult {
    let user_id = p.id(0, "user_id")?;
    write(
        &s,
        &headers,
        Command::CreateOrder {
            order_id: new_id(),
            user_id,
        },
    )
    .await
}

pub async fn find_order(State(s): State<AppState>, c: ReadConsistency, p: Params) -> ApiResult {
    read(
        &s,
        c,
        Query::FindOrder {
            order_id: p.id(0, "order_id")?,
        },
    )
    .await
}

pub async fn add_item(State(s): State<AppState>, headers: HeaderMap, p: Params) -> ApiResult {
    let command = Command::AddItem {
        order_id: p.id(0, "order_id")?,
        item_id: p.id(1, "item_id")?,
        quantity: p.number(2, "quantity")?,
    };
    write(&s, &headers, command).await
}

pub async fn add_one_item(State(s): State<AppState>, headers: HeaderMap, p: Params) -> ApiResult {
    let (order_id, item_id) = (p.id(0, "order_id")?, p.id(1, "item_id")?);
    write(
        &s,
        &headers,
        Command::AddItem {
            order_id,
            item_id,
            quantity: 1,
        },
    )
    .await
}

pub async fn remove_item(State(s): State<AppState>, headers: HeaderMap, p: Params) -> ApiResult {
    let (order_id, item_id) = (p.id(0, "order_id")?, p.id(1, "item_id")?);
    write(&s, &headers, Command::RemoveItem { order_id, item_id }).await
}

pub async fn remove_order(State(s): State<AppState>, headers: HeaderMap, p: Params) -> ApiResult {
    write(
        &s,
        &headers,
        Command::RemoveOrder {
            order_id: p.id(0, "order_id")?,
        },
    )
    .await
}

pub async fn checkout(State(s): State<AppState>, headers: HeaderMap, p: Params) -> ApiResult {
    let command = Command::Checkout {
        order_id: p.id(0, "order_id")?,
    };
    let result = propose(&s, &headers, command).await;
    s.metrics.count_checkout(checkout_outcome(&result));
    Ok(reply_json(result?))
}

/// The `outcome` label of `raftcart_checkouts_total`.
pub fn checkout_outcome(result: &Result<Reply, WriteError>) -> &'static str {
    match result {
        Ok(Reply::CheckedOut {
            already_paid: true, ..
        }) => "already_paid",
        Ok(_) => "committed",
        Err(WriteError::Refused(Refusal::NoStock(_))) => "no_stock",
        Err(WriteError::Refused(Refusal::NoCredit(_))) => "no_credit",
        Err(WriteError::Refused(_) | WriteError::BadRequest(_)) => "refused",
        Err(WriteError::Unavailable(_)) => "unavailable",
    }
}

pub async fn batch_init_orders(
    State(s): State<AppState>,
    headers: HeaderMap,
    p: Params,
) -> ApiResult {
    let command = Command::BatchInitOrders {
        n: p.number(0, "n")?,
        n_items: p.number(1, "n_items")?,
        n_users: p.number(2, "n_users")?,
        item_price: p.number(3, "item_price")?,
        // Drawn here, before proposing: apply must not draw randomness.
        seed: rand_seed(),
    };
    write(&s, &headers, command).await
}

fn rand_seed() -> u64 {
    let bytes = uuid::Uuid::new_v4().into_bytes();
    u64::from_le_bytes(bytes[..8].try_into().expect("uuid has 16 bytes"))
}
