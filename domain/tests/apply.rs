//! Unit tests of the commands, one rule at a time.

use raftcart_domain::*;

fn run(state: &mut MemState, command: Command) -> Outcome {
    execute(state, &command)
}

fn ok(state: &mut MemState, command: Command) -> Reply {
    run(state, command).expect("command refused")
}

/// Items "0".."n_items-1" at price 1 with `stock`, users "0".."n-1" with `credit`.
fn setup(n_items: u64, stock: u64, n_users: u64, credit: u64) -> MemState {
    let mut s = MemState::default();
    ok(
        &mut s,
        Command::BatchInitItems {
            n: n_items,
            stock,
            price: 1,
        },
    );
    ok(&mut s, Command::BatchInitUsers { n: n_users, credit });
    s
}

fn order_with(s: &mut MemState, order_id: &str, user: &str, lines: &[(&str, u64)]) {
    ok(
        s,
        Command::CreateOrder {
            order_id: order_id.into(),
            user_id: user.into(),
        },
    );
    for (item, q) in lines {
        ok(
            s,
            Command::AddItem {
                order_id: order_id.into(),
                item_id: item.to_string(),
                quantity: *q,
            },
        );
    }
}

fn checkout(s: &mut MemState, order_id: &str) -> Outcome {
    run(
        s,
        Command::Checkout {
            order_id: order_id.into(),
        },
    )
}

#[test]
fn checkout_takes_stock_and_credit_and_marks_paid() {
    let mut s = setup(2, 10, 1, 100);
    ok(
        &mut s,
        Command::AddStock {
            item_id: "1".into(),
            amount: 0,
        },
    );
    order_with(&mut s, "o", "0", &[("0", 3), ("1", 2), ("0", 1)]);
    assert_eq!(s.orders["o"].total_cost, 6);
    assert_eq!(
        checkout(&mut s, "o"),
        Ok(Reply::CheckedOut {
            order_id: "o".into(),
            already_paid: false
        })
    );
    assert_eq!(s.items["0"].stock, 6);
    assert_eq!(s.items["1"].stock, 8);
    assert_eq!(s.users["0"].credit, 94);
    assert!(s.orders["o"].paid());
}

#[test]
fn checkout_of_paid_order_charges_nothing() {
    let mut s = setup(1, 10, 1, 100);
    order_with(&mut s, "o", "0", &[("0", 1)]);
    checkout(&mut s, "o").unwrap();
    let before = s.clone();
    assert_eq!(
        checkout(&mut s, "o"),
        Ok(Reply::CheckedOut {
            order_id: "o".into(),
            already_paid: true
        })
    );
    assert_eq!(s, before);
}

#[test]
fn checkout_short_of_stock_changes_nothing() {
    let mut s = setup(2, 1, 1, 100);
    order_with(&mut s, "o", "0", &[("0", 1), ("1", 2)]);
    let before = s.clone();
    assert!(matches!(checkout(&mut s, "o"), Err(Refusal::NoStock(_))));
    assert_eq!(s, before);
}

#[test]
fn checkout_short_of_stock_across_two_lines_of_one_item() {
    let mut s = setup(1, 3, 1, 100);
    order_with(&mut s, "o", "0", &[("0", 2), ("0", 2)]);
    let before = s.clone();
    assert!(matches!(checkout(&mut s, "o"), Err(Refusal::NoStock(_))));
    assert_eq!(s, before);
}

#[test]
fn checkout_short_of_credit_changes_nothing() {
    let mut s = setup(1, 10, 1, 2);
    order_with(&mut s, "o", "0", &[("0", 3)]);
    let before = s.clone();
    assert!(matches!(checkout(&mut s, "o"), Err(Refusal::NoCredit(_))));
    assert_eq!(s, before);
}

#[test]
fn checkout_of_unknown_order_is_not_found() {
    let mut s = setup(1, 10, 1, 2);
    assert!(matches!(
        checkout(&mut s, "nope"),
        Err(Refusal::NotFound(_))
    ));
}

#[test]
fn stock_subtract_below_zero_is_refused() {
    let mut s = setup(1, 5, 0, 0);
    assert_eq!(
        run(
            &mut s,
            Command::SubtractStock {
                item_id: "0".into(),
                amount: 5
            }
        ),
        Ok(Reply::Item {
            item_id: "0".into(),
            stock: 0,
            price: 1
        })
    );
    assert!(matches!(
        run(
            &mut s,
            Command::SubtractStock {
                item_id: "0".into(),
                amount: 1
            }
        ),
        Err(Refusal::NoStock(_))
    ));
    assert_eq!(s.items["0"].stock, 0);
}

#[test]
fn overflows_are_refused_and_change_nothing() {
    let mut s = setup(1, u64::MAX, 1, u64::MAX);
    let before = s.clone();
    assert!(matches!(
        run(
            &mut s,
            Command::AddStock {
                item_id: "0".into(),
                amount: 1
            }
        ),
        Err(Refusal::Invalid(_))
    ));
    assert!(matches!(
        run(
            &mut s,
            Command::AddFunds {
                user_id: "0".into(),
                amount: 1
            }
        ),
        Err(Refusal::Invalid(_))
    ));
    assert_eq!(s, before);
    ok(
        &mut s,
        Command::CreateItem {
            item_id: "big".into(),
            price: u64::MAX,
        },
    );
    ok(
        &mut s,
        Command::CreateOrder {
            order_id: "o".into(),
            user_id: "0".into(),
        },
    );
    assert!(matches!(
        run(
            &mut s,
            Command::AddItem {
                order_id: "o".into(),
                item_id: "big".into(),
                quantity: 2
            }
        ),
        Err(Refusal::Invalid(_))
    ));
    assert_eq!(s.orders["o"].total_cost, 0);
}

#[test]
fn unknown_ids_are_not_found() {
    let mut s = setup(1, 1, 1, 1);
    for c in [
        Command::AddStock {
            item_id: "x".into(),
            amount: 1,
        },
        Command::SubtractStock {
            item_id: "x".into(),
            amount: 1,
        },
        Command::AddFunds {
            user_id: "x".into(),
            amount: 1,
        },
        Command::Pay {
            user_id: "x".into(),
            amount: 1,
            order_id: None,
        },
        Command::CreateOrder {
            order_id: "o".into(),
            user_id: "x".into(),
        },
        Command::AddItem {
            order_id: "x".into(),
            item_id: "0".into(),
            quantity: 1,
        },
        Command::RemoveOrder {
            order_id: "x".into(),
        },
    ] {
        let before = s.clone();
        assert!(
            matches!(run(&mut s, c.clone()), Err(Refusal::NotFound(_))),
            "{c:?}"
        );
        assert_eq!(s, before);
    }
    ok(
        &mut s,
        Command::CreateOrder {
            order_id: "o".into(),
            user_id: "0".into(),
        },
    );
    assert!(matches!(
        run(
            &mut s,
            Command::AddItem {
                order_id: "o".into(),
                item_id: "x".into(),
                quantity: 1
            }
        ),
        Err(Refusal::NotFound(_))
    ));
}

#[test]
fn pay_takes_credit_or_refuses() {
    let mut s = setup(0, 0, 1, 10);
    assert_eq!(
        run(
            &mut s,
            Command::Pay {
                user_id: "0".into(),
                amount: 4,
                order_id: None
            }
        ),
        Ok(Reply::User {
            user_id: "0".into(),
            credit: 6
        })
    );
    assert!(matches!(
        run(
            &mut s,
            Command::Pay {
                user_id: "0".into(),
                amount: 7,
                order_id: None
            }
        ),
        Err(Refusal::NoCredit(_))
    ));
    assert_eq!(s.users["0"].credit, 6);
}

#[test]
fn cancel_gives_back_exactly_what_checkout_took() {
    let mut s = setup(2, 10, 1, 100);
    order_with(&mut s, "o", "0", &[("0", 3), ("1", 1)]);
    let before = s.clone();
    checkout(&mut s, "o").unwrap();
    assert_eq!(
        answer(
            &s,
            &Query::PaymentStatus {
                user_id: "0".into(),
                order_id: "o".into()
            }
        ),
        Ok(Reply::PaymentStatus { paid: true })
    );
    ok(
        &mut s,
        Command::Cancel {
            user_id: "0".into(),
            order_id: "o".into(),
        },
    );
    assert_eq!(s, before);
    assert!(matches!(
        run(
            &mut s,
            Command::Cancel {
                user_id: "0".into(),
                order_id: "o".into()
            }
        ),
        Err(Refusal::Invalid(_))
    ));
}

#[test]
fn pay_for_order_records_it_and_is_not_charged_twice() {
    let mut s = setup(1, 10, 1, 100);
    order_with(&mut s, "o", "0", &[("0", 1)]);
    let pay = Command::Pay {
        user_id: "0".into(),
        amount: 30,
        order_id: Some("o".into()),
    };
    ok(&mut s, pay.clone());
    ok(&mut s, pay);
    assert_eq!(s.users["0"].credit, 70);
    assert_eq!(s.items["0"].stock, 10);
    assert!(s.orders["o"].paid());
    ok(
        &mut s,
        Command::Cancel {
            user_id: "0".into(),
            order_id: "o".into(),
        },
    );
    assert_eq!(s.users["0"].credit, 100);
    assert!(!s.orders["o"].paid());
}

#[test]
fn remove_item_and_order() {
    let mut s = setup(2, 10, 1, 100);
    order_with(&mut s, "o", "0", &[("0", 2), ("1", 1), ("0", 1)]);
    ok(
        &mut s,
        Command::RemoveItem {
            order_id: "o".into(),
            item_id: "0".into(),
        },
    );
    let o = &s.orders["o"];
    assert_eq!(o.total_cost, 1);
    assert_eq!(o.lines.len(), 1);
    assert!(matches!(
        run(
            &mut s,
            Command::RemoveItem {
                order_id: "o".into(),
                item_id: "0".into()
            }
        ),
        Err(Refusal::NotFound(_))
    ));
    ok(
        &mut s,
        Command::RemoveOrder {
            order_id: "o".into(),
        },
    );
    assert!(!s.orders.contains_key("o"));
}

#[test]
fn paid_orders_cannot_be_edited_or_removed() {
    let mut s = setup(1, 10, 1, 100);
    order_with(&mut s, "o", "0", &[("0", 1)]);
    checkout(&mut s, "o").unwrap();
    let before = s.clone();
    for c in [
        Command::AddItem {
            order_id: "o".into(),
            item_id: "0".into(),
            quantity: 1,
        },
        Command::RemoveItem {
            order_id: "o".into(),
            item_id: "0".into(),
        },
        Command::RemoveOrder {
            order_id: "o".into(),
        },
    ] {
        assert!(matches!(run(&mut s, c), Err(Refusal::Invalid(_))));
    }
    assert_eq!(s, before);
}

#[test]
fn batch_init_orders_is_deterministic_and_in_range() {
    let c = Command::BatchInitOrders {
        n: 1000,
        n_items: 7,
        n_users: 5,
        item_price: 3,
        seed: 42,
    };
    let mut a = MemState::default();
    let mut b = MemState::default();
    ok(&mut a, c.clone());
    ok(&mut b, c);
    assert_eq!(a, b);
    assert_eq!(a.orders.len(), 1000);
    for o in a.orders.values() {
        assert!(o.user_id.parse::<u64>().unwrap() < 5);
        assert_eq!(o.lines.len(), 2);
        assert!(o
            .lines
            .iter()
            .all(|l| l.quantity == 1 && l.item_id.parse::<u64>().unwrap() < 7));
        assert_eq!(o.total_cost, 6);
    }
    let mut other = MemState::default();
    ok(
        &mut other,
        Command::BatchInitOrders {
            n: 1000,
            n_items: 7,
            n_users: 5,
            item_price: 3,
            seed: 43,
        },
    );
    assert_ne!(a, other);
}

#[test]
fn batch_limits() {
    let mut s = MemState::default();
    for c in [
        Command::BatchInitItems {
            n: MAX_BATCH + 1,
            stock: 1,
            price: 1,
        },
        Command::BatchInitUsers {
            n: MAX_BATCH + 1,
            credit: 1,
        },
        Command::BatchInitOrders {
            n: 1,
            n_items: 0,
            n_users: 1,
            item_price: 1,
            seed: 0,
        },
        Command::BatchInitOrders {
            n: 1,
            n_items: 1,
            n_users: 1,
            item_price: u64::MAX,
            seed: 0,
        },
    ] {
        assert!(matches!(run(&mut s, c), Err(Refusal::Invalid(_))));
    }
    assert_eq!(s, MemState::default());
}

#[test]
fn a_retried_proposal_applies_once_and_returns_the_first_outcome() {
    let mut s = setup(1, 10, 1, 0);
    let p = Proposal {
        request_id: "r1".into(),
        at_ms: 1000,
        command: Command::AddFunds {
            user_id: "0".into(),
            amount: 5,
        },
    };
    assert_eq!(apply_proposal(&mut s, &p), Ok(Reply::FundsAdded));
    assert_eq!(apply_proposal(&mut s, &p), Ok(Reply::FundsAdded));
    assert_eq!(s.users["0"].credit, 5);

    // A refused request stays refused on retry, even once it could succeed.
    let sub = Proposal {
        request_id: "r2".into(),
        at_ms: 1001,
        command: Command::SubtractStock {
            item_id: "0".into(),
            amount: 11,
        },
    };
    let first = apply_proposal(&mut s, &sub);
    assert!(first.is_err());
    ok(
        &mut s,
        Command::AddStock {
            item_id: "0".into(),
            amount: 1,
        },
    );
    assert_eq!(apply_proposal(&mut s, &sub), first);
    assert_eq!(s.items["0"].stock, 11);
}

#[test]
fn a_retry_through_another_node_with_other_drawn_ids_still_matches() {
    let mut s = setup(0, 0, 1, 0);
    let create = |user_id: &str| Proposal {
        request_id: "k".into(),
        at_ms: 1,
        command: Command::CreateUser {
            user_id: user_id.into(),
        },
    };
    let first = apply_proposal(&mut s, &create("u-drawn-first"));
    // The retry's node drew another id: it still gets the first answer and
    // no second user appears.
    assert_eq!(apply_proposal(&mut s, &create("u-drawn-again")), first);
    assert!(s.users.contains_key("u-drawn-first"));
    assert!(!s.users.contains_key("u-drawn-again"));
}

#[test]
fn a_request_id_reused_for_another_request_is_refused_and_forgets_nothing() {
    let mut s = setup(0, 0, 1, 0);
    let p = |amount| Proposal {
        request_id: "k".into(),
        at_ms: 1,
        command: Command::AddFunds {
            user_id: "0".into(),
            amount,
        },
    };
    assert_eq!(apply_proposal(&mut s, &p(5)), Ok(Reply::FundsAdded));
    assert!(matches!(
        apply_proposal(&mut s, &p(6)),
        Err(Refusal::KeyReused(_))
    ));
    assert_eq!(s.users["0"].credit, 5);
    // The first request's answer is still what a true retry gets.
    assert_eq!(apply_proposal(&mut s, &p(5)), Ok(Reply::FundsAdded));
    assert_eq!(s.users["0"].credit, 5);
}

#[test]
fn request_records_expire_by_the_log_clock_only() {
    let mut s = setup(1, 0, 1, 0);
    let p = |request_id: &str, at_ms| Proposal {
        request_id: request_id.into(),
        at_ms,
        command: Command::AddFunds {
            user_id: "0".into(),
            amount: 1,
        },
    };
    apply_proposal(&mut s, &p("r", 1000)).unwrap();
    // The log clock moves exactly the time to live, in steps it counts whole.
    for step in 1..=REQUEST_RECORD_TTL_MS / MAX_CLOCK_STEP_MS {
        let other = format!("other-{step}");
        apply_proposal(&mut s, &p(&other, 1000 + step * MAX_CLOCK_STEP_MS)).unwrap();
    }
    let credit = s.users["0"].credit;
    apply_proposal(&mut s, &p("r", 1000 + REQUEST_RECORD_TTL_MS)).unwrap();
    assert_eq!(
        s.users["0"].credit, credit,
        "remembered up to the time to live"
    );
    // A leader with a clock behind does not turn time back.
    apply_proposal(&mut s, &p("r", 5)).unwrap();
    assert_eq!(s.users["0"].credit, credit);
    apply_proposal(&mut s, &p("r", 6)).unwrap();
    assert_eq!(s.users["0"].credit, credit + 1, "expired one ms later");
}

/// The log clock counts the steps between one stamp and the next, each at
/// most `MAX_CLOCK_STEP_MS`, and never goes back.
#[test]
fn the_log_clock_counts_bounded_steps_between_stamps() {
    let start = LogClock::default().advance(T0);
    assert_eq!(
        start,
        LogClock {
            ms: 0,
            stamp_ms: Some(T0)
        },
        "the first stamp only starts the count"
    );
    let c = start.advance(T0 + 1000);
    assert_eq!(c.ms, 1000);
    // A clock hours ahead takes over: one bounded step.
    let c = c.advance(T0 + 2000 + HOURS_3 as u64);
    assert_eq!(c.ms, 1000 + MAX_CLOCK_STEP_MS);
    let c = c.advance(T0 + 3000 + HOURS_3 as u64);
    assert_eq!(c.ms, 2000 + MAX_CLOCK_STEP_MS);
    // Stamps slightly out of order (stamped concurrently, ordered later)
    // count no time twice.
    let c = c.advance(T0 + 2500 + HOURS_3 as u64);
    assert_eq!(c.ms, 2000 + MAX_CLOCK_STEP_MS);
    let c = c.advance(T0 + 3000 + HOURS_3 as u64);
    assert_eq!(c.ms, 2000 + MAX_CLOCK_STEP_MS);
    // A clock hours behind takes over: no step back, then its own steps.
    let c = c.advance(T0 + 4000);
    assert_eq!(c.ms, 2000 + MAX_CLOCK_STEP_MS);
    let c = c.advance(T0 + 5000);
    assert_eq!(c.ms, 3000 + MAX_CLOCK_STEP_MS);
    // A long pause counts as one step.
    let c = c.advance(T0 + 5000 + HOURS_3 as u64);
    assert_eq!(c.ms, 3000 + 2 * MAX_CLOCK_STEP_MS);
}

#[test]
fn overlay_sees_its_own_writes_and_leaves_base_alone() {
    let base = setup(1, 10, 1, 10);
    let mut overlay = Overlay::new(&base);
    execute(
        &mut overlay,
        &Command::AddStock {
            item_id: "0".into(),
            amount: 5,
        },
    )
    .unwrap();
    execute(
        &mut overlay,
        &Command::AddStock {
            item_id: "0".into(),
            amount: 5,
        },
    )
    .unwrap();
    assert_eq!(overlay.item("0").unwrap().stock, 20);
    let changes = overlay.into_changes();
    assert_eq!(changes.items["0"].stock, 20);
    assert_eq!(base.items["0"].stock, 10);
}

/// Honest wall-clock time at the start of the clock-skew tests.
const T0: u64 = 1_700_000_000_000;
const MINUTE: u64 = 60_000;
const HOURS_3: i64 = 3 * 3_600_000;

/// A proposal as a leader whose clock is off by `skew_ms` stamps it at the
/// honest time `honest_ms`.
fn stamped(request_id: &str, honest_ms: u64, skew_ms: i64, command: Command) -> Proposal {
    Proposal {
        request_id: request_id.into(),
        at_ms: honest_ms.saturating_add_signed(skew_ms),
        command,
    }
}

/// Other clients' writes, one a second of honest time in `[from_ms, to_ms)`,
/// through a leader whose clock is off by `skew_ms`.
fn traffic(s: &mut MemState, from_ms: u64, to_ms: u64, skew_ms: i64) {
    for t in (from_ms..to_ms).step_by(1000) {
        let add = Command::AddStock {
            item_id: "0".into(),
            amount: 1,
        };
        apply_proposal(s, &stamped(&format!("other-{t}"), t, skew_ms, add)).unwrap();
    }
}

fn add_funds_r(honest_ms: u64, skew_ms: i64) -> Proposal {
    stamped(
        "r",
        honest_ms,
        skew_ms,
        Command::AddFunds {
            user_id: "0".into(),
            amount: 5,
        },
    )
}

/// Leaders hours ahead and hours behind take turns while a client retries
/// one request: every retry within the time to live (by honest clocks) is
/// answered with the first outcome, and the id still expires once that
/// much honest time has passed.
#[test]
fn leaders_with_clocks_hours_off_neither_expire_nor_keep_request_ids() {
    let mut s = setup(1, 0, 1, 0);
    let first = T0 + MINUTE;
    traffic(&mut s, T0, first, 0);
    assert_eq!(
        apply_proposal(&mut s, &add_funds_r(first, 0)),
        Ok(Reply::FundsAdded)
    );

    let mut now = first + 1000;
    for (skew, minutes) in [(HOURS_3, 5), (-HOURS_3, 8), (0, 9), (HOURS_3, 9)] {
        let retry_at = first + minutes * MINUTE;
        traffic(&mut s, now, retry_at, skew);
        assert_eq!(
            apply_proposal(&mut s, &add_funds_r(retry_at, skew)),
            Ok(Reply::FundsAdded)
        );
        assert_eq!(
            s.users["0"].credit,
            5,
            "a retry {minutes} min after the first attempt, through a leader {} h off, applied again",
            skew / 3_600_000
        );
        now = retry_at + 1000;
    }

    // Honest time passes the time to live (with a few seconds of slack for
    // the leader changes): the id is forgotten, the same id is a new request.
    let later = first + REQUEST_RECORD_TTL_MS + 30_000;
    traffic(&mut s, now, later, 0);
    apply_proposal(&mut s, &add_funds_r(later, 0)).unwrap();
    assert_eq!(s.users["0"].credit, 10, "the request id never expired");
}

/// A leader whose clock is hours behind stays leader for longer than the
/// time to live: ids remembered before and under it still expire when
/// that much honest time has passed, instead of being kept until its clock
/// catches up with the highest stamp ever seen.
#[test]
fn a_leader_clock_hours_behind_does_not_stop_request_ids_expiring() {
    let mut s = setup(1, 0, 1, 0);
    let first = T0 + MINUTE;
    traffic(&mut s, T0, first, 0);
    apply_proposal(&mut s, &add_funds_r(first, 0)).unwrap();

    let later = first + REQUEST_RECORD_TTL_MS + 30_000;
    traffic(&mut s, first + 1000, later, -HOURS_3);
    apply_proposal(&mut s, &add_funds_r(later, -HOURS_3)).unwrap();
    assert_eq!(
        s.users["0"].credit, 10,
        "the request id outlived its time to live under a leader whose clock is behind"
    );
}

/// The ceiling benchmark's write: it moves the log clock like any
/// proposal, and changes no record, not even a request record.
#[test]
fn a_noop_changes_no_record_and_is_not_remembered() {
    let mut s = setup(2, 5, 2, 9);
    let before = s.clone();
    let proposal = Proposal {
        request_id: "n".into(),
        at_ms: 1_000,
        command: Command::Noop,
    };
    for _ in 0..2 {
        assert_eq!(
            apply_proposal(&mut s, &proposal),
            Ok(Reply::Done {
                msg: "no-op".into()
            })
        );
    }
    assert!(s.request_records.is_empty());
    assert_eq!(s.clock.stamp_ms, Some(1_000));
    s.clock = before.clock;
    assert_eq!(s, before);
}
