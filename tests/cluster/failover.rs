//! Faults on a real 3-node cluster: SIGKILL the leader under load, and a
//! power cut of the whole cluster. Nothing acknowledged may be lost, and
//! nothing may apply twice. And a node whose storage fails stops.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::common::checkout_load::{self, Fate};
use crate::common::{credit, Cluster};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

const USERS: u64 = 40;
const WRITERS: u64 = 8;
const OPS_PER_WRITER: u64 = 120;

#[derive(Default)]
struct Tally {
    acked: Vec<AtomicU64>,
    unknown: Vec<AtomicU64>,
    acked_after_kill: AtomicU64,
}

/// WRITERS tasks each add 1 credit OPS_PER_WRITER times to their own users,
/// through the gateway. After `kill_after` acknowledged writes in total,
/// `on_kill` runs once.
async fn add_funds_under(c: &Cluster, kill_after: u64, on_kill: impl Fn()) -> Arc<Tally> {
    let tally = Arc::new(Tally {
        acked: (0..USERS).map(|_| AtomicU64::new(0)).collect(),
        unknown: (0..USERS).map(|_| AtomicU64::new(0)).collect(),
        acked_after_kill: AtomicU64::new(0),
    });
    let killed = Arc::new(AtomicBool::new(false));
    let total = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let (tally, killed, total) = (tally.clone(), killed.clone(), total.clone());
        let http = c.http.clone();
        let gateway = c.gateway();
        tasks.push(tokio::spawn(async move {
            for op in 0..OPS_PER_WRITER {
                let user = (w + op * WRITERS) % USERS;
                let was_killed = killed.load(Ordering::SeqCst);
                let resp = http
                    .post(format!("{gateway}/payment/add_funds/{user}/1"))
                    .timeout(Duration::from_secs(20))
                    .send()
                    .await;
                match resp {
                    Ok(r) if r.status().is_success() => {
                        tally.acked[user as usize].fetch_add(1, Ordering::SeqCst);
                        if was_killed {
                            tally.acked_after_kill.fetch_add(1, Ordering::SeqCst);
                        }
                        total.fetch_add(1, Ordering::SeqCst);
                    }
                    _ => {
                        tally.unknown[user as usize].fetch_add(1, Ordering::SeqCst);
                    }
                }
            }
        }));
    }
    while !tasks.iter().all(|t| t.is_finished()) {
        if !killed.load(Ordering::SeqCst) && total.load(Ordering::SeqCst) >= kill_after {
            on_kill();
            killed.store(true, Ordering::SeqCst);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for t in tasks {
        t.await.unwrap();
    }
    tally
}

/// Each user's credit lies between what was acknowledged and that plus the
/// requests whose fate is unknown: nothing lost, nothing applied twice.
async fn check_credit(c: &Cluster, tally: &Tally) -> Vec<u64> {
    let mut credits = Vec::new();
    for user in 0..USERS {
        let acked = tally.acked[user as usize].load(Ordering::SeqCst);
        let unknown = tally.unknown[user as usize].load(Ordering::SeqCst);
        let credit = credit(c, &user.to_string()).await;
        assert!(
            credit >= acked && credit <= acked + unknown,
            "user {user}: credit {credit}, acked {acked}, unknown {unknown}"
        );
        credits.push(credit);
    }
    credits
}

/// The most a client may wait for a write while the cluster fails over.
const MAX_WRITE_GAP: Duration = Duration::from_secs(3);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_kill_under_checkout_load_loses_nothing() {
    // Frequent snapshots so that purging and snapshot reads are exercised.
    // The killed leader stays down: the others must carry on without it.
    let c = Cluster::start(21300, &["--snapshot-every", "100", "--no-restart"]).await;
    leader_kill_under_checkout_load(&c).await;
}

/// The same over TLS: the new leader's peers must verify its certificate
/// (and it theirs) before it can take over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_kill_over_tls_loses_nothing() {
    let c = Cluster::start_tls(23200, &["--snapshot-every", "100", "--no-restart"]).await;
    leader_kill_under_checkout_load(&c).await;
}

async fn leader_kill_under_checkout_load(c: &Cluster) {
    checkout_load::populate(c).await;
    let leader = c.wait_for_leader(Duration::from_secs(5)).await;

    let result = checkout_load::run(c, 100, || c.kill_node(leader)).await;

    let new_leader = c.wait_for_leader(Duration::from_secs(10)).await;
    assert_ne!(new_leader, leader, "a new leader was elected");
    report("SIGKILL", &result);
    assert_eq!(
        result.count(Fate::Unknown),
        0,
        "the gateway rode out the failover without failing a request"
    );
    assert!(result.longest_gap() < MAX_WRITE_GAP);
    checkout_load::check_state(c, &result).await;
}

/// A leader frozen for 5 s (SIGSTOP) is deposed; when it wakes it must not
/// answer a read from its old state: every read sent to it during the
/// freeze, for an order whose checkout was acknowledged before the read was
/// sent, sees that order paid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frozen_leader_acknowledges_nothing_and_serves_no_stale_read() {
    let c = Cluster::start(21500, &["--snapshot-every", "100"]).await;
    checkout_load::populate(&c).await;
    let leader = c.wait_for_leader(Duration::from_secs(5)).await;

    let newest_paid = Arc::new(AtomicU64::new(u64::MAX));
    let frozen = Arc::new(AtomicBool::new(false));
    let thawed = Arc::new(AtomicBool::new(false));

    // While the leader is frozen: every 100 ms, read (from the frozen node)
    // the newest order whose checkout was acknowledged.
    let reader = {
        let (http, url) = (c.http.clone(), c.node_url(leader));
        let (newest_paid, frozen, thawed) = (newest_paid.clone(), frozen.clone(), thawed.clone());
        tokio::spawn(async move {
            while !frozen.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let mut pending = Vec::new();
            while !thawed.load(Ordering::SeqCst) {
                let order = newest_paid.load(Ordering::SeqCst);
                let (http, url) = (http.clone(), url.clone());
                pending.push(tokio::spawn(async move {
                    let resp = http
                        .get(format!("{url}/orders/find/{order}"))
                        .timeout(Duration::from_secs(30))
                        .send()
                        .await
                        .ok()?;
                    let status = resp.status().as_u16();
                    let body: serde_json::Value = resp.json().await.ok()?;
                    Some((order, status, body))
                }));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let mut answers = Vec::new();
            for p in pending {
                answers.extend(p.await.unwrap());
            }
            answers
        })
    };
    let thaw = {
        let (pid, frozen, thawed) = (c.node_pid(leader), frozen.clone(), thawed.clone());
        tokio::spawn(async move {
            while !frozen.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            tokio::time::sleep(Duration::from_secs(5)).await;
            kill(Pid::from_raw(pid), Signal::SIGCONT).expect("SIGCONT");
            thawed.store(true, Ordering::SeqCst);
        })
    };

    let on_ack = {
        let newest_paid = newest_paid.clone();
        move |order| newest_paid.store(order, Ordering::SeqCst)
    };
    let result = checkout_load::run_observed(
        &c,
        100,
        || {
            c.freeze_node(leader);
            frozen.store(true, Ordering::SeqCst);
        },
        on_ack,
    )
    .await;
    thaw.await.unwrap();
    let answers = reader.await.unwrap();

    report("SIGSTOP 5 s", &result);
    let served: Vec<_> = answers.iter().filter(|(_, s, _)| *s == 200).collect();
    println!(
        "reads sent to the frozen node: {}, answered 200 after it woke: {}",
        answers.len(),
        served.len()
    );
    assert!(
        served.len() >= 20,
        "the woken node answered the reads sent while it was frozen"
    );
    for (order, _, body) in &served {
        assert_eq!(
            body["paid"],
            serde_json::Value::Bool(true),
            "stale read of order {order} from the once-frozen leader"
        );
    }
    assert_eq!(result.count(Fate::Unknown), 0);
    assert!(result.longest_gap() < MAX_WRITE_GAP);
    checkout_load::check_state(&c, &result).await;
    // The woken node catches up and holds the same data.
    c.wait_replicas_equal(&[1, 2, 3], Duration::from_secs(20))
        .await;
}

fn report(fault: &str, r: &checkout_load::LoadResult) {
    println!(
        "{fault}: paid {}, refused {}, unknown {}; first write after the fault {:?}; longest write gap {:?}",
        r.count(Fate::Paid),
        r.count(Fate::Refused),
        r.count(Fate::Unknown),
        r.first_write_after_fault(),
        r.longest_gap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_cluster_power_cut_keeps_acknowledged_data() {
    let mut c = Cluster::start(21400, &["--snapshot-every", "100"]).await;
    assert_eq!(
        c.post(&format!("/payment/batch_init/{USERS}/0")).await.0,
        200
    );
    assert_eq!(c.post("/orders/batch_init/50/10/40/1").await.0, 200);
    let (_, order_before) = c.get("/orders/find/7").await;

    // SIGKILL every process (nodes and gateway) while writes are in flight;
    // the writes after that fail and count as unknown.
    let tally = add_funds_under(&c, WRITERS * OPS_PER_WRITER / 2, || c.kill_all()).await;
    let acked: u64 = tally.acked.iter().map(|a| a.load(Ordering::SeqCst)).sum();
    assert!(
        acked >= WRITERS * OPS_PER_WRITER / 2,
        "the power cut came mid-load"
    );

    c.launch().await;
    // The restarted leader may still commit writes it had appended before
    // the cut (their clients got no answer): let them land before reading.
    c.wait_settled(&[1, 2, 3], Duration::from_secs(20)).await;
    let after = check_credit(&c, &tally).await;
    let (s, order_after) = c.get("/orders/find/7").await;
    assert_eq!((s, &order_after), (200, &order_before));

    // And the restarted cluster takes writes.
    assert_eq!(c.post("/payment/add_funds/0/5").await.0, 200);
    assert_eq!(credit(&c, "0").await, after[0] + 5);
}

/// With two of three nodes dead there is no quorum: after the leader wait a
/// write and a linearizable read get a 503 with a JSON error, never a 2xx,
/// and the write did not happen once a quorum is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_quorum_requests_fail_with_503_after_the_wait() {
    let mut c = Cluster::start(21900, &["--leader-wait-ms", "1500", "--no-restart"]).await;
    assert_eq!(c.post("/payment/batch_init/1/0").await.0, 200);
    let leader = c.wait_for_leader(Duration::from_secs(5)).await;
    let follower = (1..=3).find(|id| *id != leader).unwrap();
    let survivor = (1..=3).find(|id| *id != leader && *id != follower).unwrap();
    c.wait_replicas_equal(&[1, 2, 3], Duration::from_secs(10))
        .await;
    c.kill_node(leader);
    c.kill_node(follower);

    for (method, path) in [
        (reqwest::Method::POST, "/payment/add_funds/0/1"),
        (reqwest::Method::GET, "/payment/find_user/0"),
    ] {
        for base in [c.gateway(), c.node_url(survivor)] {
            let (s, v) = c.call(method.clone(), &base, path).await;
            assert_eq!(s, 503, "{base}{path}: {v}");
            assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{v}");
        }
    }
    // A stale read is still served by the survivor.
    let (s, v) = c
        .call(
            reqwest::Method::GET,
            &c.node_url(survivor),
            "/payment/find_user/0?stale=true",
        )
        .await;
    assert_eq!((s, v["credit"].as_u64()), (200, Some(0)));

    c.kill_all();
    c.launch().await;
    assert_eq!(credit(&c, "0").await, 0, "the refused writes did not apply");
}

/// A storage error is fatal to openraft: Raft stops on that node. The node
/// must then exit, so that its supervisor restarts it, rather than go on
/// answering HTTP with a Raft that no longer runs. Provoked here by a
/// directory where node 3 saves its snapshot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_raft_stops_exits_and_says_why() {
    let c = Cluster::start(22900, &["--snapshot-every", "40"]).await;
    let snapshot = c.data_dir().join("node3/snapshot");
    let _ = std::fs::remove_file(&snapshot);
    std::fs::create_dir_all(snapshot.join("in-the-way")).unwrap();
    let pid = c.node_pid(3);

    // One entry per write (sent one after another): enough for a snapshot.
    for user in 0..60 {
        let (s, v) = c.post("/payment/create_user").await;
        assert_eq!(s, 200, "write {user}: {v}");
    }
    crate::common::wait_gone(&pid.to_string());

    let log = std::fs::read_to_string(c.data_dir().join("node3.log")).unwrap();
    assert!(log.contains("Error: Raft stopped"), "node 3's log: {log}");
    // `up` reports it (a moment after the process is gone).
    let mut up = String::new();
    for _ in 0..100 {
        up = std::fs::read_to_string(c.dir.path().join("up-1.log")).unwrap();
        if up.contains("node 3 exited (exit status: 1)") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        up.contains("node 3 exited (exit status: 1)"),
        "up's log: {up}"
    );
    // The other two still form a quorum.
    assert_eq!(c.post("/payment/batch_init/1/5").await.0, 200);
    assert_eq!(credit(&c, "0").await, 5);
}

/// `raftcart up` restarts a node that dies: a follower SIGKILLed under a
/// checkout load is running again (a new process) and has caught up with
/// the leader within 15 s, with no manual step, and status shows the
/// restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_restarts_a_killed_node_which_catches_up() {
    let c = Cluster::start(23700, &["--snapshot-every", "100"]).await;
    checkout_load::populate(&c).await;
    let leader = c.wait_for_leader(Duration::from_secs(5)).await;
    let victim = (1..=3).find(|id| *id != leader).unwrap();
    let pid = c.node_pid(victim);

    let result = checkout_load::run(&c, 100, || c.kill_node(victim)).await;
    assert_eq!(result.count(Fate::Unknown), 0, "no request failed");

    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let back = loop {
        let leader_log = c
            .status(leader)
            .await
            .and_then(|s| s["last_log_index"].as_u64());
        let victim_status = c.status(victim).await;
        if let (Some(last), Some(s)) = (leader_log, victim_status) {
            if c.node_pid(victim) != pid && s["last_applied"].as_u64() == Some(last) {
                break s;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "node {victim} was not back and caught up within 15 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(back["starts"].as_u64(), Some(2), "{back}");
    let (ok, out, err) = c.cli(&["cluster", "status", "--addr", &c.node_url(leader), "--json"]);
    assert!(ok, "{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let member = report["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"].as_u64() == Some(victim))
        .unwrap();
    assert_eq!(member["restarts"].as_u64(), Some(1), "{out}");
    assert_eq!(member["lag"].as_u64(), Some(0), "{out}");
    checkout_load::check_state(&c, &result).await;
}

/// A restart applies again every write since the last snapshot, and an
/// entry carries many writes: so a node snapshots after `--snapshot-writes`
/// writes even when far fewer entries than `--snapshot-every` came in.
#[tokio::test(flavor = "multi_thread")]
async fn every_node_snapshots_after_snapshot_writes_writes_in_few_entries() {
    const WRITES: u64 = 300;
    let c = Cluster::start(24200, &["--snapshot-writes", "200", "--no-restart"]).await;
    let leader = c.wait_for_leader(Duration::from_secs(30)).await;
    let at = c.node_url(leader);
    for path in [
        "/payment/batch_init/10/1000000",
        "/stock/batch_init/10/1000000/1",
    ] {
        let (s, v) = c.call(reqwest::Method::POST, &at, path).await;
        assert_eq!(s, 200, "{path}: {v}");
    }
    for user in 0..WRITES {
        let (s, v) = c
            .call(
                reqwest::Method::POST,
                &at,
                &format!("/payment/add_funds/{}/1", user % 10),
            )
            .await;
        assert_eq!(s, 200, "{v}");
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    for id in 1..=3 {
        let status = loop {
            let status = c.status(id).await.expect("every node answers");
            if status["snapshot_index"].as_u64().is_some() {
                break status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "node {id} took no snapshot after {WRITES} writes: {status}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        // Far below the 100,000 entries of --snapshot-every's default.
        let last = status["last_log_index"].as_u64().unwrap();
        assert!(last < 1_000, "node {id}: {status}");
    }
}
