//! `raftcart cluster ...` against a real cluster.

mod common;

use std::process::Command;
use std::time::Duration;

use common::Cluster;
use serde_json::Value;

fn raftcart(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_raftcart"))
        .args(args)
        .output()
        .expect("running raftcart");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

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
    let (ok, out, err) = raftcart(&["cluster", "status", "--addr", &addr, "--json"]);
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
        let role = if m["id"] == Value::from(leader) {
            "leader"
        } else {
            "voter"
        };
        assert_eq!(m["role"], Value::from(role));
    }

    // The table names the leader and every member.
    let (ok, out, _) = raftcart(&["cluster", "status", "--addr", &addr]);
    assert!(ok);
    assert!(out.starts_with(&format!("leader: {leader}")), "{out}");
    assert_eq!(out.lines().filter(|l| l.contains("127.0.0.1:")).count(), 3);

    // A dead member shows as unreachable; the rest still report.
    c.kill_node(follower);
    let (ok, out, _) = raftcart(&["cluster", "status", "--addr", &c.node_url(leader), "--json"]);
    assert!(ok);
    let report: Value = serde_json::from_str(&out).unwrap();
    let dead = report["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == Value::from(follower))
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
