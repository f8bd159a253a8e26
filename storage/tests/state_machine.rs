//! The state machine over RocksDB: applies survive a reopen, snapshots
//! carry data and metadata together, a bad snapshot is refused before
//! anything is touched, and an unreadable record fails the open.

use openraft::storage::RaftStateMachine;
use std::path::Path;

use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId, RaftSnapshotBuilder, Snapshot};
use raftcart_domain::{Command, Proposal, Proposals, Reply, StateRead, REQUEST_RECORD_TTL_MS};
use raftcart_storage::{open, Backup, StateMachine, StateView};
use raftcart_types::TypeConfig;

fn entry(index: u64, command: Command) -> Entry<TypeConfig> {
    Entry {
        log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
        payload: EntryPayload::Normal(Proposals(vec![Proposal {
            request_id: format!("r{index}"),
            at_ms: index,
            command,
        }])),
    }
}

fn workload() -> Vec<Entry<TypeConfig>> {
    vec![
        entry(1, Command::BatchInitUsers { n: 3, credit: 10 }),
        entry(
            2,
            Command::BatchInitItems {
                n: 2,
                stock: 5,
                price: 2,
            },
        ),
        entry(
            3,
            Command::CreateOrder {
                order_id: "o".into(),
                user_id: "1".into(),
            },
        ),
        entry(
            4,
            Command::AddItem {
                order_id: "o".into(),
                item_id: "0".into(),
                quantity: 2,
            },
        ),
        entry(
            5,
            Command::Checkout {
                order_id: "o".into(),
            },
        ),
    ]
}

/// Applying writes nothing to disk (the log holds the entries); the
/// snapshot file is the state machine's durable copy, and a reopened node
/// starts from it.
#[tokio::test]
async fn applied_entries_survive_a_reopen_through_the_snapshot_file() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (_log, mut sm, _view) = open(dir.path()).unwrap();
        sm.apply(workload().into_iter().take(1)).await.unwrap();
    }
    {
        let (_log, mut sm, view) = open(dir.path()).unwrap();
        assert_eq!(sm.applied_state().await.unwrap().0, None, "no snapshot yet");
        assert!(view.user("1").is_none());
    }
    {
        let (_log, mut sm, view) = open(dir.path()).unwrap();
        let outcomes = sm.apply(workload()).await.unwrap();
        assert_eq!(
            outcomes[4],
            vec![Ok(Reply::CheckedOut {
                order_id: "o".into(),
                already_paid: false
            })]
        );
        assert_eq!(view.user("1").unwrap().credit, 6);
        sm.get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .unwrap();
    }
    let (_log, mut sm, view) = open(dir.path()).unwrap();
    let (applied, _) = sm.applied_state().await.unwrap();
    assert_eq!(applied.map(|l| l.index), Some(5));
    assert_eq!(view.user("1").unwrap().credit, 6);
    assert_eq!(view.item("0").unwrap().stock, 3);
    assert!(view.order("o").unwrap().paid());

    // Re-applying the same entry (same request id) is answered, not redone.
    let again = sm
        .apply(vec![entry(
            5,
            Command::Checkout {
                order_id: "o".into(),
            },
        )])
        .await
        .unwrap();
    assert_eq!(
        again[0],
        vec![Ok(Reply::CheckedOut {
            order_id: "o".into(),
            already_paid: false
        })]
    );
    let dup = Entry {
        log_id: LogId::new(CommittedLeaderId::new(1, 1), 6),
        payload: EntryPayload::Normal(Proposals(vec![Proposal {
            request_id: "r4".into(),
            at_ms: 6,
            command: Command::AddItem {
                order_id: "o".into(),
                item_id: "0".into(),
                quantity: 2,
            },
        }])),
    };
    sm.apply(vec![dup]).await.unwrap();
    assert_eq!(
        view.order("o").unwrap().lines.len(),
        1,
        "a repeated request id applied twice"
    );
}

/// A state machine in `dir` that applied `workload()`, and its snapshot.
async fn workload_snapshot(dir: &Path) -> (StateMachine, StateView, Snapshot<TypeConfig>) {
    let (_log, mut sm, view) = open(dir).unwrap();
    sm.apply(workload()).await.unwrap();
    let snapshot = sm
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    (sm, view, snapshot)
}

#[tokio::test]
async fn snapshot_installs_into_a_fresh_node() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let (mut sm_a, view_a, snapshot) = workload_snapshot(a.path()).await;
    assert_eq!(snapshot.meta.last_log_id.map(|l| l.index), Some(5));

    // The current snapshot is kept on disk.
    let current = sm_a
        .get_current_snapshot()
        .await
        .unwrap()
        .expect("stored snapshot");
    assert_eq!(current.meta, snapshot.meta);

    let (_lb, mut sm_b, view_b) = open(b.path()).unwrap();
    sm_b.apply(vec![entry(
        1,
        Command::BatchInitUsers { n: 10, credit: 99 },
    )])
    .await
    .unwrap();
    sm_b.install_snapshot(&snapshot.meta, snapshot.snapshot)
        .await
        .unwrap();
    assert_eq!(
        sm_b.applied_state().await.unwrap().0,
        snapshot.meta.last_log_id
    );
    for id in ["0", "1", "2"] {
        assert_eq!(view_b.user(id), view_a.user(id));
    }
    assert_eq!(
        view_b.user("5"),
        None,
        "state from before the install is gone"
    );
    assert_eq!(view_b.order("o"), view_a.order("o"));
    assert_eq!(view_b.item("0"), view_a.item("0"));
}

#[tokio::test]
async fn a_snapshot_whose_metadata_disagrees_is_refused_untouched() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let (_sm_a, _, snapshot) = workload_snapshot(a.path()).await;

    let (_lb, mut sm_b, view_b) = open(b.path()).unwrap();
    sm_b.apply(vec![entry(1, Command::BatchInitUsers { n: 1, credit: 7 })])
        .await
        .unwrap();
    let mut meta = snapshot.meta.clone();
    meta.last_log_id = Some(LogId::new(CommittedLeaderId::new(1, 1), 9));
    assert!(sm_b
        .install_snapshot(&meta, snapshot.snapshot)
        .await
        .is_err());
    assert_eq!(view_b.user("0").unwrap().credit, 7);
    assert_eq!(
        sm_b.applied_state().await.unwrap().0.map(|l| l.index),
        Some(1)
    );

    let garbage = Box::new(std::io::Cursor::new(vec![1, 2, 3]));
    assert!(sm_b
        .install_snapshot(&snapshot.meta, garbage)
        .await
        .is_err());
    assert_eq!(view_b.user("0").unwrap().credit, 7);
}

#[tokio::test]
async fn an_entry_of_several_proposals_answers_each_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let (_log, mut sm, view) = open(dir.path()).unwrap();
    let proposal = |id: &str, command| Proposal {
        request_id: id.into(),
        at_ms: 1,
        command,
    };
    let pay = |amount| Command::Pay {
        user_id: "0".into(),
        amount,
        order_id: None,
    };
    let outcomes = sm
        .apply(vec![Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), 1),
            payload: EntryPayload::Normal(Proposals(vec![
                proposal("a", Command::BatchInitUsers { n: 1, credit: 10 }),
                proposal("b", pay(4)),
                // The same request again in the same entry: answered, not paid twice.
                proposal("b", pay(4)),
                // 6 left: refused, and nothing changes.
                proposal("c", pay(7)),
            ])),
        }])
        .await
        .unwrap();
    assert_eq!(outcomes.len(), 1);
    let outcomes = &outcomes[0];
    assert_eq!(outcomes.len(), 4);
    assert!(outcomes[1].is_ok(), "{:?}", outcomes[1]);
    assert_eq!(outcomes[1], outcomes[2]);
    assert!(outcomes[3].is_err(), "{:?}", outcomes[3]);
    assert_eq!(view.user("0").unwrap().credit, 6);
}

/// A record that cannot be decoded stops the start: taken for absent, it
/// would make this replica decide differently from the others.
#[tokio::test]
async fn an_undecodable_record_fails_the_open() {
    let dir = damaged_after_first_entry(b"u/1").await;
    let err = open(dir.path()).err().expect("open refuses");
    assert!(err.to_string().contains("u/1"), "{err}");
}

/// Request records are loaded at open with the rest: one that cannot be
/// decoded stops the open, naming its key, rather than pass for an absent
/// one, which would apply a retry of its request a second time.
#[tokio::test]
async fn an_undecodable_request_record_fails_the_open() {
    let dir = damaged_after_first_entry(b"s/r1").await;
    let err = open(dir.path()).err().expect("open refuses");
    assert!(err.to_string().contains("s/r1"), "{err}");
}

/// Apply reads users, items, orders and the request records from memory: they
/// must come back whole when the node restarts and when it installs a
/// snapshot, or a retry would apply twice and a write would miss a record.
#[tokio::test]
async fn a_reopened_or_installed_node_recognises_retries_and_finds_every_record() {
    let retry_add_item = |index| Entry {
        log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
        payload: EntryPayload::Normal(Proposals(vec![Proposal {
            request_id: "r4".into(),
            at_ms: index,
            command: Command::AddItem {
                order_id: "o".into(),
                item_id: "0".into(),
                quantity: 2,
            },
        }])),
    };
    let add_funds = |index| {
        entry(
            index,
            Command::AddFunds {
                user_id: "1".into(),
                amount: 5,
            },
        )
    };
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let snapshot = workload_snapshot(a.path()).await.2;

    let (_log, mut sm, view) = open(a.path()).unwrap();
    sm.apply(vec![retry_add_item(6), add_funds(7)])
        .await
        .unwrap();
    assert_eq!(
        view.order("o").unwrap().lines.len(),
        1,
        "retry applied twice"
    );
    assert_eq!(view.user("1").unwrap().credit, 11);
    assert_eq!(view.item("0").unwrap().stock, 3);

    let (_log, mut sm, view) = open(b.path()).unwrap();
    sm.install_snapshot(&snapshot.meta, snapshot.snapshot)
        .await
        .unwrap();
    let outcomes = sm
        .apply(vec![retry_add_item(6), add_funds(7)])
        .await
        .unwrap();
    assert!(outcomes[1][0].is_ok(), "{:?}", outcomes[1]);
    assert_eq!(
        view.order("o").unwrap().lines.len(),
        1,
        "retry applied twice"
    );
    assert_eq!(view.user("1").unwrap().credit, 11);
}

/// A request id whose record expired is a new request; used again in the
/// very batch whose sweep deletes its old record, it must be remembered
/// again, so that its own retry is answered, not applied.
#[tokio::test]
async fn a_request_id_reused_as_its_old_record_is_swept_is_remembered_again() {
    const T0: u64 = 1_700_000_000_000;
    let dir = tempfile::tempdir().unwrap();
    let (_log, mut sm, view) = open(dir.path()).unwrap();
    let write = |index: u64, id: &str, step: u64, command| Entry {
        log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
        payload: EntryPayload::Normal(Proposals(vec![Proposal {
            request_id: id.into(),
            at_ms: T0 + step * 5_000,
            command,
        }])),
    };
    let fund = || Command::AddFunds {
        user_id: "0".into(),
        amount: 1,
    };
    sm.apply(vec![
        write(1, "init", 0, Command::BatchInitUsers { n: 1, credit: 0 }),
        write(2, "x", 0, fund()),
    ])
    .await
    .unwrap();
    // 5 s of log clock per write: past the time to live at the last one,
    // which uses "x" again.
    let steps = REQUEST_RECORD_TTL_MS / 5_000 + 4;
    let mut batch: Vec<_> = (1..steps)
        .map(|step| write(step + 2, &format!("w{step}"), step, fund()))
        .collect();
    batch.push(write(steps + 2, "x", steps, fund()));
    sm.apply(batch).await.unwrap();
    assert_eq!(view.user("0").unwrap().credit, steps + 1, "x applied anew");
    sm.apply(vec![write(steps + 3, "x", steps + 1, fund())])
        .await
        .unwrap();
    assert_eq!(
        view.user("0").unwrap().credit,
        steps + 1,
        "the retry of the reused x applied again"
    );
}

/// Unreadable state machine metadata stops the start: taken for "nothing
/// applied yet", it would make every entry apply a second time.
#[tokio::test]
async fn unreadable_metadata_fails_the_open() {
    let dir = damaged_after_first_entry(b"m/applied").await;
    let err = open(dir.path()).err().expect("open refuses");
    assert!(err.to_string().contains("m/applied"), "{err}");
}

/// The data directory of an older build, which kept the state machine in
/// the `sm` column family (moved to the snapshot file at open): the first
/// entry applied, then one record overwritten, behind its back, with bytes
/// that decode as nothing. The checksums of the snapshot file would catch
/// a damaged byte there first; this reaches the decoding.
async fn damaged_after_first_entry(key: &[u8]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let first = {
        let (_log, mut sm, view) = open(dir.path()).unwrap();
        sm.apply(workload().into_iter().take(1)).await.unwrap();
        view
    };
    let db = rocksdb::DB::open_cf(
        &rocksdb::Options::default(),
        dir.path().join("db"),
        ["log", "meta", "sm"],
    )
    .unwrap();
    let sm = db.cf_handle("sm").unwrap();
    let encode = raftcart_types::codec::encode::<raftcart_domain::User>;
    for user in ["0", "1", "2"] {
        let record = encode(&first.user(user).unwrap()).unwrap();
        db.put_cf(sm, format!("u/{user}"), record).unwrap();
    }
    let applied = LogId::new(CommittedLeaderId::new(1, 1), 1u64);
    db.put_cf(
        sm,
        "m/applied",
        raftcart_types::codec::encode(&applied).unwrap(),
    )
    .unwrap();
    db.put_cf(sm, key, [0xff]).unwrap();
    dir
}

/// A leader whose clock is hours behind stays leader for longer than the
/// time to live: the request records that expire meanwhile are deleted as honest
/// time passes, instead of piling up until its clock catches up.
#[tokio::test]
async fn request_records_are_swept_under_a_leader_whose_clock_is_behind() {
    const T0: u64 = 1_700_000_000_000;
    const EVERY_MS: u64 = 2_000;
    const BEHIND_MS: u64 = 3 * 3_600_000;
    let dir = tempfile::tempdir().unwrap();
    let (_log, mut sm, view) = open(dir.path()).unwrap();
    let proposal = |index: u64, at_ms: u64, command| Entry {
        log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
        payload: EntryPayload::Normal(Proposals(vec![Proposal {
            request_id: format!("w{index}"),
            at_ms,
            command,
        }])),
    };
    sm.apply(vec![proposal(
        1,
        T0,
        Command::BatchInitUsers { n: 1, credit: 0 },
    )])
    .await
    .unwrap();
    // 30 minutes of one write every 2 seconds, stamped by a clock 3 h behind.
    let writes: Vec<_> = (2..=901)
        .map(|i| {
            let add = Command::AddFunds {
                user_id: "0".into(),
                amount: 1,
            };
            proposal(i, T0 - BEHIND_MS + i * EVERY_MS, add)
        })
        .collect();
    for batch in writes.chunks(50) {
        sm.apply(batch.to_vec()).await.unwrap();
    }
    assert_eq!(view.user("0").unwrap().credit, 900);
    let kept = Backup::capture(&view).unwrap().summary().request_records;
    let within_ttl = REQUEST_RECORD_TTL_MS / EVERY_MS;
    assert!(
        (within_ttl - 5..=within_ttl + 5).contains(&kept),
        "{kept} request records kept, about {within_ttl} are within the time to live"
    );
}
