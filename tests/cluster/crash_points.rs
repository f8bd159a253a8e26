//! Crash points (storage's `CRASH_POINTS`): for each one, a node aborts
//! there under a checkout load, and then it comes back by itself (`up`
//! restarts it), catches up, every acknowledged checkout is on every
//! replica and the replicas are equal. The `backup_restore.*` points abort
//! `raftcart restore` instead; a second restore then completes, or refuses
//! clearly, and the cluster started from the result holds the backup.
//!
//! `CRASH_POINT_RUNS` (default 1) runs each point that many times;
//! `CRASH_POINT_ONLY` (a substring) picks points.
//! Build with `--features raftcart/failpoints`.
#![cfg(feature = "failpoints")]

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::checkout_load::{self, Fate};
use crate::common::Cluster;
use raftcart_storage::{Backup, CRASH_POINTS};
use serde_json::Value;

/// Ports 24000-24990: each cluster takes the next block of 15.
static NEXT_PORT: AtomicU16 = AtomicU16::new(0);

fn next_port() -> u16 {
    24000 + (NEXT_PORT.fetch_add(1, Ordering::SeqCst) % 66) * 15
}

fn runs() -> usize {
    std::env::var("CRASH_POINT_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(1)
}

fn selected(prefix: &str) -> Vec<&'static str> {
    let only = std::env::var("CRASH_POINT_ONLY").unwrap_or_default();
    CRASH_POINTS
        .iter()
        .copied()
        .filter(|p| p.starts_with(prefix) && p.contains(only.as_str()))
        .collect()
}

async fn arm(c: &Cluster, node: u64, point: &str) {
    debug_post(c, node, &format!("/debug/crash-at/{point}")).await;
}

/// Posts to one of `node`'s `/debug/` routes with the admin token.
async fn debug_post(c: &Cluster, node: u64, path: &str) {
    c.call_debug(reqwest::Method::POST, node, path).await;
}

/// Posts to node 1's `path` with the admin token and checks the answer is
/// `status` with a JSON error that mentions `mentions`.
async fn refused(c: &Cluster, path: &str, status: u16, mentions: &str) {
    let (s, v) = c
        .call_admin(reqwest::Method::POST, &c.node_url(1), path)
        .await;
    assert_eq!(s, status, "POST {path}: {v}");
    assert!(
        v["error"].as_str().is_some_and(|e| e.contains(mentions)),
        "POST {path}: {v}"
    );
}

async fn status(c: &Cluster, id: u64) -> Value {
    c.status(id).await.unwrap_or(Value::Null)
}

/// Waits until `node`'s pid is no longer `pid` (it aborted and `up`
/// restarted it).
async fn wait_restarted(c: &Cluster, node: u64, pid: i32, point: &str, within: Duration) {
    let deadline = Instant::now() + within;
    while c.node_pid(node) == pid {
        assert!(
            Instant::now() < deadline,
            "crash point {point} was not reached on node {node} within {within:?} \
             (node {node} still runs as pid {pid}); logs in {}",
            c.dir.path().display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The crash happened during the load: the node is back (new pid,
/// answering), has applied the leader's whole log within 15 s, every
/// acknowledged checkout is there, and the replicas are equal.
async fn check_recovery(
    c: &Cluster,
    node: u64,
    pid: i32,
    point: &str,
    load: &checkout_load::LoadResult,
) {
    wait_restarted(c, node, pid, point, Duration::from_secs(20)).await;
    let leader = c.wait_for_leader(Duration::from_secs(15)).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let last = status(c, leader).await["last_log_index"].as_u64();
        let s = status(c, node).await;
        if last.is_some() && s["last_applied"].as_u64() == last {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{point}: node {node} did not catch up with leader {leader} within 15 s: {s}; logs in {}",
            c.dir.path().display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let back = status(c, node).await;
    assert!(back["starts"].as_u64() >= Some(2), "{point}: {back}");
    c.wait_settled(&[1, 2, 3], Duration::from_secs(15)).await;
    checkout_load::check_state(c, load).await;
    c.wait_replicas_equal(&[1, 2, 3], Duration::from_secs(15))
        .await;
}

/// A follower of the current leader.
async fn a_follower(c: &Cluster) -> (u64, u64) {
    let leader = c.wait_for_leader(Duration::from_secs(10)).await;
    let follower = (1..=3).find(|id| *id != leader).unwrap();
    (leader, follower)
}

/// Append, apply, purge and snapshot build happen on every node: armed on
/// a follower (even runs) or the leader (odd runs) once the load is under
/// way.
async fn crash_anywhere(point: &'static str, run: usize) {
    let c = Arc::new(Cluster::start(next_port(), &["--snapshot-every", "50"]).await);
    checkout_load::populate(&c).await;
    let (leader, follower) = a_follower(&c).await;
    let victim = if run.is_multiple_of(2) {
        follower
    } else {
        leader
    };
    let pid = c.node_pid(victim);
    let armed = Arc::new(std::sync::Mutex::new(None));
    let load = {
        let (c2, armed2) = (c.clone(), armed.clone());
        checkout_load::run(&c, 100, move || {
            *armed2.lock().unwrap() = Some(tokio::spawn(async move {
                arm(&c2, victim, point).await;
            }));
        })
        .await
    };
    let job = armed.lock().unwrap().take().unwrap();
    // The arming call may be cut by the crash it caused: only its panic
    // (a refusal) matters, and then the node did not crash.
    let _ = job.await;
    eprintln!(
        "{point} run {run} on node {victim} ({}): {} paid, {} unknown",
        if victim == leader {
            "leader"
        } else {
            "follower"
        },
        load.count(Fate::Paid),
        load.count(Fate::Unknown)
    );
    check_recovery(&c, victim, pid, point, &load).await;
}

/// Snapshot install happens on a follower the leader has purged its log
/// past: the follower is armed; the leader is cut off from it (`POST
/// /debug/cut-off/{id}`) and it is frozen while the others write past a
/// snapshot and purge; then the cut-off is lifted and it is thawed.
/// Freezing alone would not keep the entries off it: its kernel takes in
/// the appends the leader sends, and thawed, it may append past the purge
/// from them and need no snapshot.
async fn crash_installing(point: &'static str, run: usize) {
    let c = Arc::new(Cluster::start(next_port(), &["--snapshot-every", "50"]).await);
    checkout_load::populate(&c).await;
    let (leader, victim) = a_follower(&c).await;
    let pid = c.node_pid(victim);
    arm(&c, victim, point).await;
    let job = Arc::new(std::sync::Mutex::new(None));
    let load = {
        let (c2, job2) = (c.clone(), job.clone());
        checkout_load::run(&c, 100, move || {
            *job2.lock().unwrap() = Some(tokio::spawn(async move {
                debug_post(&c2, leader, &format!("/debug/cut-off/{victim}")).await;
                // An append already on its way lands within this pause,
                // well inside the election timeout (300 ms): frozen before
                // its timer fires, the follower never campaigns.
                tokio::time::sleep(Duration::from_millis(100)).await;
                let behind = status(&c2, victim).await["last_log_index"]
                    .as_u64()
                    .unwrap_or(0);
                c2.freeze_node(victim);
                let deadline = Instant::now() + Duration::from_secs(30);
                let purged = loop {
                    let p = status(&c2, leader).await["purged_index"].as_u64();
                    if p.is_some_and(|p| p > behind + 10) {
                        break p;
                    }
                    if Instant::now() > deadline {
                        break p;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                };
                c2.call_debug(reqwest::Method::DELETE, leader, "/debug/cut-off")
                    .await;
                c2.thaw_node(victim);
                (behind, purged)
            }));
        })
        .await
    };
    let job = job.lock().unwrap().take().unwrap();
    let (behind, purged) = job.await.unwrap();
    assert!(
        purged.is_some_and(|p| p > behind),
        "{point}: the leader did not purge past the frozen follower's log ({behind}): {purged:?}"
    );
    eprintln!(
        "{point} run {run} on follower {victim} (log at {behind}, leader purged to {purged:?}): {} paid, {} unknown",
        load.count(Fate::Paid),
        load.count(Fate::Unknown)
    );
    check_recovery(&c, victim, pid, point, &load).await;
}

/// Truncation happens on a node holding entries a new leader does not.
/// Before the load, the leader (armed) is cut off (`POST /debug/cut-off`:
/// it sends no Raft RPC) and its followers are frozen while it appends a
/// write it cannot commit; then it is frozen itself while the followers
/// elect a new leader; under the load it is thawed and truncates that
/// entry. Freezing alone would not keep the entry off the followers: their
/// kernels take in what the leader sends, and thawed, they may append it
/// before they elect, leaving nothing to truncate.
async fn crash_truncating(point: &'static str, run: usize) {
    // No snapshots here: with them, the new leader may have purged the
    // entries the deposed one lacks and send it a snapshot, which replaces
    // its log without a truncate.
    let c = Cluster::start(next_port(), &[]).await;
    checkout_load::populate(&c).await;
    let old = c.wait_for_leader(Duration::from_secs(10)).await;
    let others: Vec<u64> = (1..=3).filter(|id| *id != old).collect();
    let pid = c.node_pid(old);
    arm(&c, old, point).await;
    debug_post(&c, old, "/debug/cut-off").await;
    for id in &others {
        c.freeze_node(*id);
    }
    // Nothing is in flight (populate was answered): what the old leader
    // appends from now on is on no other node.
    let before = status(&c, old).await["last_log_index"].as_u64().unwrap();
    // A write outside the checkout load (a new user), straight to the old
    // leader: appended there, never committed.
    let write = c
        .http
        .post(format!("{}/payment/create_user", c.node_url(old)))
        .timeout(Duration::from_secs(2))
        .send();
    let write = tokio::spawn(write);
    let deadline = Instant::now() + Duration::from_secs(5);
    while status(&c, old).await["last_log_index"].as_u64() <= Some(before) {
        assert!(
            Instant::now() < deadline,
            "{point}: node {old} did not append the write its followers cannot see"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    c.freeze_node(old);
    let _ = write.await;
    for id in &others {
        c.thaw_node(*id);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let new_leader = loop {
        let mut found = None;
        for id in &others {
            if status(&c, *id).await["state"].as_str() == Some("Leader") {
                found = Some(*id);
            }
        }
        if let Some(l) = found {
            break l;
        }
        assert!(
            Instant::now() < deadline,
            "{point}: no new leader among {others:?} while node {old} was frozen"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // The new leader's first entry (its blank one) goes where the deposed
    // leader's write is: the two conflict, so the deposed one truncates.
    let deadline = Instant::now() + Duration::from_secs(10);
    let new_last = loop {
        let last = status(&c, new_leader).await["last_log_index"].as_u64();
        if let Some(last) = last.filter(|l| *l > before) {
            break last;
        }
        assert!(
            Instant::now() < deadline,
            "{point}: new leader {new_leader} appended nothing past {before}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        new_last,
        before + 1,
        "{point}: new leader {new_leader} holds more than its blank entry past {before}: \
         the deposed leader's write reached it"
    );
    let load = checkout_load::run(&c, 100, || c.thaw_node(old)).await;
    eprintln!(
        "{point} run {run} on deposed leader {old} (new leader {new_leader}): {} paid, {} unknown",
        load.count(Fate::Paid),
        load.count(Fate::Unknown)
    );
    check_recovery(&c, old, pid, point, &load).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_crashed_at_each_point_comes_back_and_catches_up() {
    let mut points = Vec::new();
    for prefix in ["append.", "purge.", "snapshot_build."] {
        points.extend(selected(prefix).into_iter().map(|p| (p, "anywhere")));
    }
    points.extend(
        selected("snapshot_install.")
            .into_iter()
            .map(|p| (p, "install")),
    );
    points.extend(selected("truncate.").into_iter().map(|p| (p, "truncate")));
    for (point, how) in points {
        for run in 0..runs() {
            let started = Instant::now();
            match how {
                "anywhere" => crash_anywhere(point, run).await,
                "install" => crash_installing(point, run).await,
                _ => crash_truncating(point, run).await,
            }
            eprintln!("PASS {point} run {run} ({:?})", started.elapsed());
        }
    }
}

/// A restore aborted at each point, run again, completes, or refuses
/// because a member's directory is already in place (the abort came after
/// that member's rename); the rule then is to remove the data dir and
/// restore again. Either way the cluster started from the result holds
/// exactly the backup on every member.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_crashed_at_each_point_completes_when_run_again() {
    let points = selected("backup_restore.");
    if points.is_empty() {
        return;
    }
    let source = Cluster::start(next_port(), &[]).await;
    checkout_load::populate(&source).await;
    // The arming route: admin token only, known names only.
    refused(
        &source,
        "/debug/crash-at/no.such_point",
        404,
        "no.such_point",
    )
    .await;
    for (method, path) in [
        (
            reqwest::Method::POST,
            format!("/debug/crash-at/{}", CRASH_POINTS[0]),
        ),
        (reqwest::Method::POST, "/debug/cut-off".to_string()),
        (reqwest::Method::POST, "/debug/cut-off/2".to_string()),
        (reqwest::Method::DELETE, "/debug/cut-off".to_string()),
        (reqwest::Method::POST, "/debug/hold-joint".to_string()),
        (reqwest::Method::DELETE, "/debug/hold-joint".to_string()),
    ] {
        let tokenless = source
            .http
            .request(method.clone(), format!("{}{path}", source.node_url(1)))
            .send()
            .await
            .unwrap();
        assert_eq!(
            tokenless.status().as_u16(),
            401,
            "{method} {path} without a token"
        );
    }
    refused(&source, "/debug/cut-off/two", 400, "node id").await;
    let (s, _) = source
        .post(&format!("/debug/crash-at/{}", CRASH_POINTS[0]))
        .await;
    assert_eq!(s, 401, "the gateway does not serve /debug/");
    for order in 0..20 {
        let _ = source.post(&format!("/orders/checkout/{order}")).await;
    }
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("cart.backup");
    let leader = source.wait_for_leader(Duration::from_secs(5)).await;
    let (ok, _, err) = source.cli(&[
        "cluster",
        "backup",
        "--addr",
        &source.node_url(leader),
        "--out",
        file.to_str().unwrap(),
    ]);
    assert!(ok, "backup: {err}");
    drop(source);
    let original = Backup::decode(&std::fs::read(&file).unwrap()).unwrap();

    for point in points {
        for run in 0..runs() {
            let mut c = Cluster::new(next_port(), &[]);
            let restore = |failpoints: Option<&str>| {
                let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_raftcart"));
                cmd.arg("restore")
                    .arg("--from")
                    .arg(&file)
                    .arg("--data-dir")
                    .arg(c.data_dir())
                    .args(c.port_flags())
                    .env_remove("FAILPOINTS");
                if let Some(f) = failpoints {
                    cmd.env("FAILPOINTS", f);
                }
                cmd.output().expect("running raftcart restore")
            };
            let crashed = restore(Some(&format!("{point}=return")));
            let stderr = String::from_utf8_lossy(&crashed.stderr);
            assert!(
                !crashed.status.success() && stderr.contains("reached: aborting"),
                "{point}: restore did not crash there: {stderr}"
            );
            let again = restore(None);
            let outcome = if again.status.success() {
                "completed"
            } else {
                let stderr = String::from_utf8_lossy(&again.stderr);
                assert!(
                    stderr.contains("already holds data"),
                    "{point}: the second restore failed without a clear refusal: {stderr}"
                );
                std::fs::remove_dir_all(c.data_dir()).unwrap();
                let third = restore(None);
                assert!(
                    third.status.success(),
                    "{point}: restore into a cleared dir failed: {}",
                    String::from_utf8_lossy(&third.stderr)
                );
                "refused (then completed in a cleared dir)"
            };
            c.launch().await;
            c.wait_for_leader(Duration::from_secs(15)).await;
            for node in 1..=3 {
                let copy = work.path().join(format!("{point}-{run}-{node}.backup"));
                let (ok, _, err) = c.cli(&[
                    "cluster",
                    "backup",
                    "--addr",
                    &c.node_url(node),
                    "--out",
                    copy.to_str().unwrap(),
                ]);
                assert!(ok, "{point}: backup of node {node}: {err}");
                let b = Backup::decode(&std::fs::read(&copy).unwrap()).unwrap();
                assert_eq!(
                    b.records(),
                    original.records(),
                    "{point}: node {node} of the restored cluster differs from the backup"
                );
            }
            eprintln!("PASS {point} run {run}: second restore {outcome}");
        }
    }
}
