//! `raftcart cluster ...` against a real cluster.

use std::time::Duration;

use crate::common::checkout_load::{self, Fate};
use crate::common::{raftcart, Cluster};
use nix::sys::signal::{kill, Signal};
use reqwest::Method;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_reports_members_leader_and_lag() {
    let c = Cluster::start(22000, &[]).await;
    assert_eq!(c.post("/payment/batch_init/10/1").await.0, 200);
    let leader = c.wait_for_leader(Duration::from_secs(5)).await;
    c.wait_replicas_equal(&[1, 2, 3], Duration::from_secs(10))
        .await;
    let follower = (1..=3).find(|id| *id != leader).unwrap();

    // Asked through a follower, it still reports the leader's view.
    let addr = c.node_url(follower);
    let (ok, out, err) = c.cli(&["cluster", "status", "--addr", &addr, "--json"]);
    assert!(ok, "{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["leader_id"], Value::from(leader));
    let members = report["members"].as_array().unwrap();
    assert_eq!(members.len(), 3);
    let applied: Vec<_> = members.iter().map(|m| m["last_applied"].clone()).collect();
    for m in members {
        assert_eq!(m["reachable"], Value::Bool(true));
        assert_eq!(m["lag"], Value::from(0), "{m}");
        assert_eq!(m["last_applied"], applied[0], "replicas agree");
        let role = if m["id"] == leader { "leader" } else { "voter" };
        assert_eq!(m["role"], Value::from(role));
    }

    // The table names the leader and every member.
    let (ok, out, _) = c.cli(&["cluster", "status", "--addr", &addr]);
    assert!(ok);
    assert!(out.starts_with(&format!("leader: {leader}")), "{out}");
    assert_eq!(out.lines().filter(|l| l.contains("127.0.0.1:")).count(), 3);

    // A dead member shows as unreachable; the rest still report.
    c.kill_node(follower);
    let (ok, out, _) = c.cli(&["cluster", "status", "--addr", &c.node_url(leader), "--json"]);
    assert!(ok);
    let report: Value = serde_json::from_str(&out).unwrap();
    let dead = report["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == follower)
        .unwrap()
        .clone();
    assert_eq!(dead["reachable"], Value::Bool(false));
}

#[test]
fn status_of_an_unreachable_address_is_a_clear_error() {
    let (ok, _, err) = raftcart(&["cluster", "status", "--addr", "127.0.0.1:1"]);
    assert!(!ok);
    assert!(err.contains("unreachable"), "{err}");
}

#[test]
fn a_node_whose_port_is_taken_exits_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("peer.key");
    std::fs::write(&key, format!("{}\n", "ab".repeat(32))).unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let api = taken.local_addr().unwrap().to_string();
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let raft = free.local_addr().unwrap().to_string();
    drop(free);
    let data = dir.path().join("node");
    let (ok, _, err) = raftcart(&[
        "node",
        "--id",
        "1",
        "--api",
        &api,
        "--raft",
        &raft,
        "--data-dir",
        data.to_str().unwrap(),
        "--peer-key-file",
        key.to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(
        err.contains(&format!("binding the API address {api}")),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

/// Grow 3 -> 4 under a checkout load (the new node catches up by snapshot),
/// promote it, remove an old voter and kill its process: no request fails,
/// and the state is exactly what the paid orders imply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grow_promote_and_shrink_under_load() {
    let c = Cluster::start(22100, &["--snapshot-every", "100"]).await;
    checkout_load::populate(&c).await;
    // Enough entries that the log is purged: the new node needs a snapshot.
    for _ in 0..250 {
        assert_eq!(c.post("/payment/add_funds/0/0").await.0, 200);
    }
    let leader = c.wait_for_leader(Duration::from_secs(5)).await;
    let old = (1..=3).find(|id| *id != leader).unwrap();
    let any = c.node_url(old);
    c.spawn_node(4).await;

    let ops = async {
        let (ok, out, err) = c.add_learner(&any, 4);
        assert!(ok, "add-learner: {err}");
        assert!(out.contains("learner"), "{out}");
        c.wait_caught_up(4, 10).await;
        let (ok, _, err) = c.cli(&["cluster", "promote", "--addr", &any, "--id", "4"]);
        assert!(ok, "promote: {err}");
        let (ok, _, err) = c.cli(&[
            "cluster",
            "remove",
            "--addr",
            &any,
            "--id",
            &old.to_string(),
        ]);
        assert!(ok, "remove: {err}");
        c.kill_node(old);
    };
    let (result, ()) = tokio::join!(checkout_load::run(&c, 0, || {}), ops);

    assert_eq!(result.count(Fate::Unknown), 0, "no request failed");
    checkout_load::check_state(&c, &result).await;
    let remaining: Vec<u64> = [1, 2, 3, 4].into_iter().filter(|id| *id != old).collect();
    c.wait_replicas_equal(&remaining, Duration::from_secs(20))
        .await;
    let status = c.status(4).await.unwrap();
    assert!(
        status["snapshot_index"].as_u64().is_some(),
        "node 4 holds a snapshot: {status}"
    );
    let members: Vec<u64> = status["members"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["voter"] == true)
        .map(|m| m["id"].as_u64().unwrap())
        .collect();
    assert_eq!(members, remaining);
    // The new voter serves the same data.
    for user in ["0", "1", "2"] {
        let path = format!("/payment/find_user/{user}?stale=true");
        let (_, a) = c.call(Method::GET, &c.node_url(4), &path).await;
        let (_, b) = c.call(Method::GET, &c.node_url(leader), &path).await;
        assert_eq!(a, b);
    }

    // The gateway follows the membership: once node 4, which it was not
    // started with, leads, the gateway sends requests to node 4 itself.
    let (ok, _, err) = c.cli(&[
        "cluster",
        "transfer-leader",
        "--addr",
        &c.node_url(leader),
        "--to",
        "4",
    ]);
    assert!(ok, "transfer-leader: {err}");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut served_by = Vec::new();
    while std::time::Instant::now() < deadline {
        let (_, status) = c.get("/cluster/status").await;
        served_by.push(status["node_id"].as_u64());
        if served_by.iter().rev().take(5).all(|n| *n == Some(4)) && served_by.len() >= 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        served_by.iter().rev().take(5).all(|n| *n == Some(4)),
        "the gateway did not reach node 4: served by {served_by:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_errors_are_clear() {
    let c = Cluster::start(22200, &[]).await;
    let addr = c.node_url(1);
    let cases: [(&[&str], &str); 5] = [
        (&["promote", "--id", "9"], "not a member"),
        (&["remove", "--id", "9"], "not a member"),
        (
            &[
                "add-learner",
                "--id",
                "9",
                "--api",
                "127.0.0.1:22209",
                "--raft",
                "127.0.0.1:22219",
            ],
            "unreachable",
        ),
        (
            &[
                "add-learner",
                "--id",
                "2",
                "--api",
                "127.0.0.1:22202",
                "--raft",
                "127.0.0.1:22212",
            ],
            "already a member",
        ),
        (
            &[
                "add-learner",
                "--id",
                "9",
                "--api",
                "nonsense",
                "--raft",
                "x",
            ],
            "HOST:PORT",
        ),
    ];
    for (args, expected) in cases {
        let mut full = vec!["cluster", args[0], "--addr", &addr];
        full.extend_from_slice(&args[1..]);
        let (ok, _, err) = c.cli(&full);
        assert!(!ok, "{args:?} should fail");
        assert!(err.contains(expected), "{args:?}: {err}");
    }

    // A learner that has not caught up cannot be promoted: node 5 is added
    // (it answers the key check), then frozen (its socket still accepts
    // connections) while the cluster moves on without it.
    c.spawn_node(5).await;
    let (ok, _, err) = c.add_learner(&addr, 5);
    assert!(ok, "{err}");
    let pid = c.extra_pid(5);
    kill(pid, Signal::SIGSTOP).unwrap();
    for _ in 0..150 {
        assert_eq!(c.post("/payment/create_user").await.0, 200);
    }
    let (ok, _, err) = c.cli(&["cluster", "promote", "--addr", &addr, "--id", "5"]);
    assert!(!ok);
    assert!(err.contains("has not caught up"), "{err}");
    kill(pid, Signal::SIGCONT).unwrap();

    // A node that does not hold the peer key is not added.
    let stranger = c.dir.path().join("stranger.key");
    std::fs::write(&stranger, "a-key-of-another-cluster-0123456789abcdef").unwrap();
    c.spawn_node_with_key(6, &stranger).await;
    let (ok, _, err) = c.add_learner(&addr, 6);
    assert!(!ok);
    assert!(err.contains("peer key"), "{err}");

    // Removing voters down to the last one, then the last is refused.
    for id in [5, 2, 3] {
        let (ok, _, err) = c.cli(&[
            "cluster",
            "remove",
            "--addr",
            &addr,
            "--id",
            &id.to_string(),
        ]);
        assert!(ok, "remove {id}: {err}");
    }
    let (ok, _, err) = c.cli(&["cluster", "remove", "--addr", &addr, "--id", "1"]);
    assert!(!ok);
    assert!(err.contains("last voter"), "{err}");
    // And the one-node cluster still takes writes.
    let (s, _) = c.call(Method::POST, &addr, "/payment/batch_init/1/1").await;
    assert_eq!(s, 200);
}

/// `transfer-leader` moves the leadership to the voter asked for, under a
/// checkout load, without a failed request; it refuses what cannot lead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfer_leader_moves_the_leadership_and_refuses_what_cannot_lead() {
    let c = Cluster::start(23800, &["--no-restart"]).await;
    checkout_load::populate(&c).await;
    let leader = c.wait_for_leader(Duration::from_secs(5)).await;
    let to = (1..=3).find(|id| *id != leader).unwrap();
    let data_dir = c.data_dir();
    let addr = c.node_url(to);
    let moved = std::sync::Mutex::new(None);
    let result = checkout_load::run(&c, 100, || {
        let (addr, data_dir) = (addr.clone(), data_dir.clone());
        *moved.lock().unwrap() = Some(std::thread::spawn(move || {
            crate::common::raftcart_in(
                &data_dir,
                &[
                    "cluster",
                    "transfer-leader",
                    "--addr",
                    &addr,
                    "--to",
                    &to.to_string(),
                ],
            )
        }));
    })
    .await;
    let (ok, out, err) = moved.lock().unwrap().take().unwrap().join().unwrap();
    assert!(ok, "{err}");
    assert!(out.contains(&format!("node {to} leads")), "{out}");
    assert_eq!(
        c.wait_for_leader(Duration::from_secs(5)).await,
        to,
        "the leadership moved on to another node"
    );
    assert_eq!(
        result.count(Fate::Unknown),
        0,
        "no request failed while the leadership moved"
    );
    checkout_load::check_state(&c, &result).await;

    // Already the leader: nothing to do.
    let (ok, out, err) = c.cli(&[
        "cluster",
        "transfer-leader",
        "--addr",
        &addr,
        "--to",
        &to.to_string(),
    ]);
    assert!(
        ok && out.contains(&format!("node {to} leads")),
        "{out}{err}"
    );
    // Not a member.
    let (ok, _, err) = c.cli(&["cluster", "transfer-leader", "--addr", &addr, "--to", "9"]);
    assert!(!ok && err.contains("not a member"), "{err}");
    // A dead voter cannot take over, and nothing moves.
    let dead = (1..=3).find(|id| *id != to).unwrap();
    c.kill_node(dead);
    let (ok, _, err) = c.cli(&[
        "cluster",
        "transfer-leader",
        "--addr",
        &addr,
        "--to",
        &dead.to_string(),
    ]);
    assert!(!ok && err.contains("does not answer"), "{err}");
    assert_eq!(c.wait_for_leader(Duration::from_secs(5)).await, to);
    // Without --to: the most caught-up voter that answers.
    let (ok, out, err) = c.cli(&["cluster", "transfer-leader", "--addr", &addr]);
    assert!(ok, "{err}");
    let last = (1..=3).find(|id| *id != to && *id != dead).unwrap();
    assert!(out.contains(&format!("node {last} leads")), "{out}");
}
