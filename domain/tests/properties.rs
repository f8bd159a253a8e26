//! Property test: whatever commands arrive, in whatever order, stock and
//! credit never go negative (u64 underflow would panic in debug builds) and
//! money and stock are conserved: what the users and items hold plus what
//! paid orders took equals what was put in.

use proptest::prelude::*;
use raftcart_domain::*;

const ITEMS: u64 = 3;
const USERS: u64 = 3;
const ORDERS: u64 = 4;

fn id(n: u64) -> String {
    n.to_string()
}

fn command() -> impl Strategy<Value = Command> {
    let item = (0..ITEMS + 1).prop_map(id); // one id beyond: unknown
    let user = (0..USERS + 1).prop_map(id);
    let order = (0..ORDERS + 1).prop_map(id);
    let amount = prop_oneof![0..20u64, Just(u64::MAX)];
    prop_oneof![
        (item.clone(), amount.clone())
            .prop_map(|(item_id, amount)| Command::AddStock { item_id, amount }),
        (item.clone(), amount.clone())
            .prop_map(|(item_id, amount)| Command::SubtractStock { item_id, amount }),
        (user.clone(), amount.clone())
            .prop_map(|(user_id, amount)| Command::AddFunds { user_id, amount }),
        (
            user.clone(),
            amount.clone(),
            proptest::option::of(order.clone())
        )
            .prop_map(|(user_id, amount, order_id)| Command::Pay {
                user_id,
                amount,
                order_id
            }),
        (user.clone(), order.clone())
            .prop_map(|(user_id, order_id)| Command::Cancel { user_id, order_id }),
        (order.clone(), user.clone())
            .prop_map(|(order_id, user_id)| Command::CreateOrder { order_id, user_id }),
        (order.clone(), item.clone(), 0..4u64).prop_map(|(order_id, item_id, quantity)| {
            Command::AddItem {
                order_id,
                item_id,
                quantity,
            }
        }),
        (order.clone(), item)
            .prop_map(|(order_id, item_id)| Command::RemoveItem { order_id, item_id }),
        order
            .clone()
            .prop_map(|order_id| Command::RemoveOrder { order_id }),
        order
            .clone()
            .prop_map(|order_id| Command::Checkout { order_id }),
        order.prop_map(|order_id| Command::Checkout { order_id }),
    ]
}

/// Money and units the outside world put in and took out.
#[derive(Default)]
struct Ledger {
    credit_in: u128,
    credit_out_direct: u128,
    stock_in: Vec<u128>,
    stock_out_direct: Vec<u128>,
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    #[test]
    fn stock_and_credit_are_conserved(commands in proptest::collection::vec(command(), 1..80)) {
        let mut s = MemState::default();
        execute(&mut s, &Command::BatchInitItems { n: ITEMS, stock: 10, price: 2 }).unwrap();
        execute(&mut s, &Command::BatchInitUsers { n: USERS, credit: 30 }).unwrap();
        let mut ledger = Ledger {
            credit_in: (USERS * 30) as u128,
            stock_in: vec![10; ITEMS as usize],
            stock_out_direct: vec![0; ITEMS as usize],
            ..Default::default()
        };
        for (i, command) in commands.iter().enumerate() {
            let before = s.clone();
            let p = Proposal { request_id: format!("r{i}"), at_ms: i as u64, command: command.clone() };
            let outcome = apply_proposal(&mut s, &p);
            match (&outcome, command) {
                (Err(_), _) => {
                    // A refusal changes nothing but the request record and clock.
                    let mut expected = before.clone();
                    expected.request_records = s.request_records.clone();
                    expected.clock = s.clock;
                    prop_assert_eq!(&s, &expected);
                }
                (Ok(_), Command::AddStock { item_id, amount }) => ledger.stock_in[item_id.parse::<usize>().unwrap()] += *amount as u128,
                (Ok(_), Command::SubtractStock { item_id, amount }) => ledger.stock_out_direct[item_id.parse::<usize>().unwrap()] += *amount as u128,
                (Ok(_), Command::AddFunds { amount, .. }) => ledger.credit_in += *amount as u128,
                (Ok(_), Command::Pay { amount, order_id: None, .. }) => ledger.credit_out_direct += *amount as u128,
                _ => {}
            }
            // A paid order taken away with its payment would lose track of money;
            // the domain refuses that, so every payment is still on an order.
            let paid_credit: u128 = s.orders.values().filter_map(|o| o.payment.as_ref()).map(|p| p.amount as u128).sum();
            let held_credit: u128 = s.users.values().map(|u| u.credit as u128).sum();
            prop_assert_eq!(held_credit + paid_credit + ledger.credit_out_direct, ledger.credit_in);
            for item in 0..ITEMS {
                let key = item.to_string();
                let sold: u128 = s.orders.values()
                    .filter_map(|o| o.payment.as_ref())
                    .flat_map(|p| p.stock_taken.iter())
                    .filter(|(id, _)| id == &key)
                    .map(|(_, q)| *q as u128)
                    .sum();
                let held = s.items[&key].stock as u128;
                prop_assert_eq!(held + sold + ledger.stock_out_direct[item as usize], ledger.stock_in[item as usize]);
            }
            for order in s.orders.values() {
                if let Some(p) = &order.payment {
                    if !p.stock_taken.is_empty() {
                        prop_assert_eq!(p.amount, order.total_cost);
                    }
                }
            }
        }
    }

    #[test]
    fn replaying_the_same_log_gives_the_same_state(commands in proptest::collection::vec(command(), 1..60)) {
        let run = || {
            let mut s = MemState::default();
            execute(&mut s, &Command::BatchInitItems { n: ITEMS, stock: 10, price: 2 }).unwrap();
            execute(&mut s, &Command::BatchInitUsers { n: USERS, credit: 30 }).unwrap();
            let outcomes: Vec<Outcome> = commands.iter().enumerate().map(|(i, c)| {
                apply_proposal(&mut s, &Proposal { request_id: format!("r{i}"), at_ms: i as u64, command: c.clone() })
            }).collect();
            (s, outcomes)
        };
        prop_assert_eq!(run(), run());
    }
}
