//! How a command changes the state. Pure and deterministic: the same state
//! and proposal give the same outcome and writes on every replica.
//!
//! Every command checks everything first and writes only once it cannot
//! fail any more, so a refusal leaves the state exactly as it was.

use std::collections::BTreeMap;

use crate::command::{Command, Proposal, MAX_BATCH};
use crate::error::{add, invalid, mul, not_found, Refusal};
use crate::model::{Item, Line, Order, Payment, User};
use crate::outcome::{Outcome, Reply};
use crate::rng::SplitMix64;
use crate::state::{RequestRecord, StateWrite};

/// How long a request id is remembered, in the state machine's clock
/// (`LogClock`). A retry arriving later than this after the first attempt
/// is treated as a new request.
pub const REQUEST_RECORD_TTL_MS: u64 = 10 * 60 * 1000;

/// Applies one proposal: answers a retried request with its first outcome,
/// otherwise executes the command and remembers the outcome.
pub fn apply_proposal<S: StateWrite + ?Sized>(state: &mut S, proposal: &Proposal) -> Outcome {
    let log_clock = state.clock().advance(proposal.at_ms);
    state.set_clock(log_clock);
    let clock = log_clock.ms;
    if matches!(proposal.command, Command::Noop) {
        // Not remembered: a retry of a no-op is another no-op.
        return execute(state, &proposal.command);
    }

    if let Some(request_record) = state.request_record(&proposal.request_id) {
        // Expiry is judged here, on lookup, against the log's clock, so every
        // replica decides alike however late it deletes old request records.
        if request_record.at_ms.saturating_add(REQUEST_RECORD_TTL_MS) >= clock {
            if request_record.intent != proposal.command.intent() {
                // Not remembered: the first request keeps its answer.
                return Err(Refusal::KeyReused(format!(
                    "request id {:?} was already used for a different request ({})",
                    proposal.request_id,
                    request_record.intent.name()
                )));
            }
            return request_record.outcome;
        }
    }
    let outcome = execute(state, &proposal.command);
    state.put_request_record(
        &proposal.request_id,
        RequestRecord {
            at_ms: clock,
            intent: proposal.command.intent(),
            outcome: outcome.clone(),
        },
    );
    outcome
}

pub fn execute<S: StateWrite + ?Sized>(state: &mut S, command: &Command) -> Outcome {
    match command {
        Command::CreateItem { item_id, price } => {
            if state.item(item_id).is_some() {
                return Err(invalid(format!("item {item_id:?} already exists")));
            }
            state.put_item(
                item_id,
                Item {
                    stock: 0,
                    price: *price,
                },
            );
            Ok(Reply::ItemCreated {
                item_id: item_id.clone(),
            })
        }
        Command::AddStock { item_id, amount } => {
            let mut item = find_item(state, item_id)?;
            item.stock = add(item.stock, *amount, "stock")?;
            state.put_item(item_id, item.clone());
            Ok(item_reply(item_id, &item))
        }
        Command::SubtractStock { item_id, amount } => {
            let mut item = find_item(state, item_id)?;
            item.stock = item.stock.checked_sub(*amount).ok_or_else(|| {
                Refusal::NoStock(format!(
                    "item {item_id:?} has {} in stock, {amount} requested",
                    item.stock
                ))
            })?;
            state.put_item(item_id, item.clone());
            Ok(item_reply(item_id, &item))
        }
        Command::BatchInitItems { n, stock, price } => {
            check_batch_size(*n)?;
            for i in 0..*n {
                state.put_item(
                    &i.to_string(),
                    Item {
                        stock: *stock,
                        price: *price,
                    },
                );
            }
            Ok(done("Batch init for stock successful"))
        }
        Command::CreateUser { user_id } => {
            if state.user(user_id).is_some() {
                return Err(invalid(format!("user {user_id:?} already exists")));
            }
            state.put_user(user_id, User { credit: 0 });
            Ok(Reply::UserCreated {
                user_id: user_id.clone(),
            })
        }
        Command::AddFunds { user_id, amount } => {
            let mut user = find_user(state, user_id)?;
            user.credit = add(user.credit, *amount, "credit")?;
            state.put_user(user_id, user);
            Ok(Reply::FundsAdded)
        }
        Command::Pay {
            user_id,
            amount,
            order_id,
        } => pay(state, user_id, *amount, order_id.as_deref()),
        Command::Cancel { user_id, order_id } => cancel(state, user_id, order_id),
        Command::BatchInitUsers { n, credit } => {
            check_batch_size(*n)?;
            for i in 0..*n {
                state.put_user(&i.to_string(), User { credit: *credit });
            }
            Ok(done("Batch init for users successful"))
        }
        Command::CreateOrder { order_id, user_id } => {
            find_user(state, user_id)?;
            if state.order(order_id).is_some() {
                return Err(invalid(format!("order {order_id:?} already exists")));
            }
            state.put_order(order_id, Order::new(user_id.clone()));
            Ok(Reply::OrderCreated {
                order_id: order_id.clone(),
            })
        }
        Command::AddItem {
            order_id,
            item_id,
            quantity,
        } => {
            let mut order = find_order(state, order_id)?;
            let item = find_item(state, item_id)?;
            refuse_if_paid(order_id, &order)?;
            if *quantity == 0 {
                return Err(invalid("quantity must be at least 1"));
            }
            let cost = mul(*quantity, item.price, "line cost")?;
            order.total_cost = add(order.total_cost, cost, "order total")?;
            order.lines.push(Line {
                item_id: item_id.clone(),
                quantity: *quantity,
                unit_price: item.price,
            });
            state.put_order(order_id, order);
            Ok(done("Item added to order"))
        }
        Command::RemoveItem { order_id, item_id } => {
            let mut order = find_order(state, order_id)?;
            refuse_if_paid(order_id, &order)?;
            let (removed, kept): (Vec<Line>, Vec<Line>) = order
                .lines
                .into_iter()
                .partition(|line| &line.item_id == item_id);
            if removed.is_empty() {
                return Err(Refusal::NotFound(format!(
                    "item {item_id:?} is not in order {order_id:?}"
                )));
            }
            // Each removed cost was added to the total before, so this
            // cannot underflow.
            let removed_cost: u64 = removed.iter().map(|l| l.quantity * l.unit_price).sum();
            order.total_cost -= removed_cost;
            order.lines = kept;
            state.put_order(order_id, order);
            Ok(done("Item removed from order"))
        }
        Command::RemoveOrder { order_id } => {
            let order = find_order(state, order_id)?;
            refuse_if_paid(order_id, &order)?;
            state.delete_order(order_id);
            Ok(done("Order removed"))
        }
        Command::Checkout { order_id } => checkout(state, order_id),
        Command::Noop => Ok(done("no-op")),
        Command::BatchInitOrders {
            n,
            n_items,
            n_users,
            item_price,
            seed,
        } => {
            check_batch_size(*n)?;
            if *n_items == 0 || *n_users == 0 {
                return Err(invalid("n_items and n_users must be at least 1"));
            }
            let total_cost = mul(2, *item_price, "order total")?;
            let mut rng = SplitMix64::new(*seed);
            for i in 0..*n {
                let user_id = rng.below(*n_users).to_string();
                let lines = (0..2)
                    .map(|_| Line {
                        item_id: rng.below(*n_items).to_string(),
                        quantity: 1,
                        unit_price: *item_price,
                    })
                    .collect();
                state.put_order(
                    &i.to_string(),
                    Order {
                        user_id,
                        lines,
                        total_cost,
                        payment: None,
                    },
                );
            }
            Ok(done("Batch init for orders successful"))
        }
    }
}

/// Takes the stock of every line and the total from the user's credit, and
/// marks the order paid: all of it, or (on any shortfall) none of it.
fn checkout<S: StateWrite + ?Sized>(state: &mut S, order_id: &str) -> Outcome {
    let mut order = find_order(state, order_id)?;
    if order.paid() {
        return Ok(Reply::CheckedOut {
            order_id: order_id.to_string(),
            already_paid: true,
        });
    }
    let mut user = find_user(state, &order.user_id)?;

    // The same item may appear on several lines: check the sum.
    let mut wanted: BTreeMap<&str, u64> = BTreeMap::new();
    for line in &order.lines {
        let sum = wanted.entry(line.item_id.as_str()).or_insert(0);
        *sum = add(*sum, line.quantity, "quantity")?;
    }
    let mut items = Vec::with_capacity(wanted.len());
    for (item_id, quantity) in &wanted {
        let mut item = find_item(state, item_id)?;
        item.stock = item.stock.checked_sub(*quantity).ok_or_else(|| {
            Refusal::NoStock(format!(
                "not enough stock for item {item_id:?}: {} left, {quantity} needed",
                item.stock
            ))
        })?;
        items.push((item_id.to_string(), item));
    }
    user.credit = user.credit.checked_sub(order.total_cost).ok_or_else(|| {
        Refusal::NoCredit(format!(
            "not enough credit: user {:?} has {}, order costs {}",
            order.user_id, user.credit, order.total_cost
        ))
    })?;

    for (item_id, item) in &items {
        state.put_item(item_id, item.clone());
    }
    state.put_user(&order.user_id, user);
    order.payment = Some(Payment {
        user_id: order.user_id.clone(),
        amount: order.total_cost,
        stock_taken: wanted
            .into_iter()
            .map(|(id, q)| (id.to_string(), q))
            .collect(),
    });
    state.put_order(order_id, order);
    Ok(Reply::CheckedOut {
        order_id: order_id.to_string(),
        already_paid: false,
    })
}

fn pay<S: StateWrite + ?Sized>(
    state: &mut S,
    user_id: &str,
    amount: u64,
    order_id: Option<&str>,
) -> Outcome {
    let mut user = find_user(state, user_id)?;
    let order = match order_id {
        Some(order_id) => {
            let order = find_order(state, order_id)?;
            if order.paid() {
                // Like checkout: paying a paid order again charges nothing.
                return Ok(Reply::User {
                    user_id: user_id.to_string(),
                    credit: user.credit,
                });
            }
            Some((order_id, order))
        }
        None => None,
    };
    user.credit = user.credit.checked_sub(amount).ok_or_else(|| {
        Refusal::NoCredit(format!(
            "not enough credit: user {user_id:?} has {}, {amount} requested",
            user.credit
        ))
    })?;
    state.put_user(user_id, user.clone());
    if let Some((order_id, mut order)) = order {
        order.payment = Some(Payment {
            user_id: user_id.to_string(),
            amount,
            stock_taken: Vec::new(),
        });
        state.put_order(order_id, order);
    }
    Ok(Reply::User {
        user_id: user_id.to_string(),
        credit: user.credit,
    })
}

/// Gives back exactly what the order's payment took, to whoever paid.
fn cancel<S: StateWrite + ?Sized>(state: &mut S, user_id: &str, order_id: &str) -> Outcome {
    find_user(state, user_id)?;
    let mut order = find_order(state, order_id)?;
    let Some(payment) = order.payment.take() else {
        return Err(invalid(format!("order {order_id:?} is not paid")));
    };
    if payment.user_id != user_id {
        return Err(invalid(format!(
            "order {order_id:?} was paid by user {:?}, not {user_id:?}",
            payment.user_id
        )));
    }
    let mut user = find_user(state, user_id)?;
    user.credit = add(user.credit, payment.amount, "credit")?;
    let mut items = Vec::with_capacity(payment.stock_taken.len());
    for (item_id, quantity) in &payment.stock_taken {
        let mut item = find_item(state, item_id)?;
        item.stock = add(item.stock, *quantity, "stock")?;
        items.push((item_id, item));
    }
    for (item_id, item) in items {
        state.put_item(item_id, item);
    }
    state.put_user(user_id, user);
    state.put_order(order_id, order);
    Ok(done("Payment cancelled"))
}

fn find_user<S: StateWrite + ?Sized>(state: &S, id: &str) -> Result<User, Refusal> {
    state.user(id).ok_or_else(|| not_found("user", id))
}

fn find_item<S: StateWrite + ?Sized>(state: &S, id: &str) -> Result<Item, Refusal> {
    state.item(id).ok_or_else(|| not_found("item", id))
}

fn find_order<S: StateWrite + ?Sized>(state: &S, id: &str) -> Result<Order, Refusal> {
    state.order(id).ok_or_else(|| not_found("order", id))
}

fn refuse_if_paid(order_id: &str, order: &Order) -> Result<(), Refusal> {
    if order.paid() {
        return Err(invalid(format!("order {order_id:?} is already paid")));
    }
    Ok(())
}

fn check_batch_size(n: u64) -> Result<(), Refusal> {
    if n > MAX_BATCH {
        return Err(invalid(format!("n must be at most {MAX_BATCH}")));
    }
    Ok(())
}

fn item_reply(item_id: &str, item: &Item) -> Reply {
    Reply::Item {
        item_id: item_id.to_string(),
        stock: item.stock,
        price: item.price,
    }
}

fn done(msg: &str) -> Reply {
    Reply::Done {
        msg: msg.to_string(),
    }
}
