//! A membership change is two openraft steps (the joint configuration, then
//! the final one), and the second is proposed only once the first has
//! been applied. The leader holds the first step (storage's `HOLD_JOINT`,
//! `POST /debug/hold-joint`) until the caller has given up: the change
//! must still end in the final configuration, not stay joint.
//! Build with `--features raftcart/failpoints`.
#![cfg(feature = "failpoints")]

use std::time::{Duration, Instant};

use crate::common::Cluster;
use serde_json::Value;

/// The leader's view: (joint, voter ids).
async fn membership(c: &Cluster, leader: u64) -> (bool, Vec<u64>) {
    let status: Value = c.status(leader).await.expect("the leader answers");
    let voters = status["members"]
        .as_array()
        .expect("members")
        .iter()
        .filter(|m| m["voter"] == true)
        .map(|m| m["id"].as_u64().unwrap())
        .collect();
    (status["joint"] == true, voters)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promote_whose_caller_gave_up_still_ends_in_the_final_configuration() {
    let c = Cluster::start(23000, &[]).await;
    let leader = c.wait_for_leader(Duration::from_secs(5)).await;
    c.spawn_node(4).await;
    let (ok, _, err) = c.add_learner(&c.node_url(leader), 4);
    assert!(ok, "add-learner: {err}");
    assert_eq!(membership(&c, leader).await, (false, vec![1, 2, 3]));
    // A learner the leader has not yet heard from is refused promotion.
    c.wait_caught_up(4, 0).await;

    c.call_debug(reqwest::Method::POST, leader, "/debug/hold-joint")
        .await;

    // The caller gives up while the joint configuration is held.
    let gave_up = reqwest::Client::new()
        .post(format!("{}/cluster/promote/4", c.node_url(leader)))
        .bearer_auth(c.admin_token())
        .timeout(Duration::from_secs(2))
        .send()
        .await;
    assert!(
        gave_up.as_ref().is_err_and(|e| e.is_timeout()),
        "the promote was answered while its first step was held: {gave_up:?}"
    );
    assert_eq!(
        membership(&c, leader).await,
        (true, vec![1, 2, 3, 4]),
        "the joint configuration is in the leader's log, its apply held"
    );
    // Time for the node to drop the abandoned request's handler: if the
    // change ran in that handler, it is cancelled now.
    tokio::time::sleep(Duration::from_secs(1)).await;

    c.call_debug(reqwest::Method::DELETE, leader, "/debug/hold-joint")
        .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = membership(&c, leader).await;
    while seen != (false, vec![1, 2, 3, 4]) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        seen = membership(&c, leader).await;
    }
    assert_eq!(
        seen,
        (false, vec![1, 2, 3, 4]),
        "the change did not reach its final configuration (joint, voters)"
    );
    // Asked again, the change is already done.
    let (s, v) = c
        .call_admin(
            reqwest::Method::POST,
            &c.node_url(leader),
            "/cluster/promote/4",
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert!(v.to_string().contains("already a voter"), "{v}");
}
