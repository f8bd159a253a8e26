//! `raftcart cluster snapshot`, `cluster backup` and `raftcart restore`
//! against real clusters.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::checkout_load::{self, CREDIT, ITEMS, STOCK, USERS};
use crate::common::{credit, raftcart, raftcart_in, stock, Cluster};
use raftcart_storage::Backup;
use serde_json::Value;

fn backup_to(c: &Cluster, node: u64, file: &Path) -> Value {
    let (ok, out, err) = c.cli(&[
        "cluster",
        "backup",
        "--addr",
        &c.node_url(node),
        "--out",
        file.to_str().unwrap(),
        "--json",
    ]);
    assert!(ok, "backup from node {node} failed: {err}");
    serde_json::from_str(&out).unwrap()
}

fn read_backup(file: &Path) -> Backup {
    Backup::decode(&std::fs::read(file).unwrap()).unwrap()
}

/// A backup taken from a follower in the middle of a checkout load holds
/// every checkout acknowledged before it started and is a consistent cut
/// (money and stock moved together). Restored into a new cluster on other
/// ports (one member left empty), every replica holds exactly the
/// backed-up records, and the new cluster takes writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_under_load_restores_into_an_identical_cluster() {
    let a = Cluster::start(22300, &["--snapshot-every", "100"]).await;
    checkout_load::populate(&a).await;
    let leader = a.wait_for_leader(Duration::from_secs(5)).await;
    let follower = (1..=3).find(|id| *id != leader).unwrap();
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("cart.backup");

    // Each acknowledged checkout, and when.
    let acked: Arc<Mutex<Vec<(u64, Instant)>>> = Arc::default();
    let acked_log = acked.clone();
    let backup_job: Mutex<Option<std::thread::JoinHandle<(Instant, bool, String)>>> =
        Mutex::new(None);
    let (url, path, data_dir) = (a.node_url(follower), file.clone(), a.data_dir());
    let load = checkout_load::run_observed(
        &a,
        300,
        || {
            let job = std::thread::spawn(move || {
                let started = Instant::now();
                let (ok, _, err) = raftcart_in(
                    &data_dir,
                    &[
                        "cluster",
                        "backup",
                        "--addr",
                        &url,
                        "--out",
                        path.to_str().unwrap(),
                    ],
                );
                (started, ok, err)
            });
            *backup_job.lock().unwrap() = Some(job);
        },
        move |order| acked_log.lock().unwrap().push((order, Instant::now())),
    )
    .await;
    let (started, ok, err) = backup_job.lock().unwrap().take().unwrap().join().unwrap();
    assert!(ok, "backup under load failed: {err}");
    checkout_load::check_state(&a, &load).await;

    // Node 3 starts empty: the leader must send it the restored snapshot.
    let b = Cluster::start_restored(22400, &file, &[3]).await;
    // Every checkout acknowledged before the backup began is in it.
    let before: Vec<u64> = acked
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, at)| *at < started)
        .map(|(order, _)| *order)
        .collect();
    assert!(before.len() >= 300, "{} acknowledged first", before.len());
    for order in &before {
        let (s, o) = b.get(&format!("/orders/find/{order}")).await;
        assert_eq!(s, 200, "{o}");
        assert_eq!(
            o["paid"],
            Value::Bool(true),
            "order {order} lost by the backup"
        );
    }
    // A consistent cut: the credit spent is exactly the stock sold (every
    // order is two items at price 1, costing 2).
    let mut spent = 0;
    for user in 0..USERS {
        spent += CREDIT - credit(&b, &user.to_string()).await;
    }
    let mut sold = 0;
    for item in 0..ITEMS {
        sold += STOCK - stock(&b, &item.to_string()).await;
    }
    assert_eq!(spent, sold, "credit spent and stock sold disagree");
    assert!(spent >= 2 * before.len() as u64);

    // Every replica of the new cluster holds exactly the backed-up records.
    let original = read_backup(&file);
    for node in 1..=3 {
        let copy = work.path().join(format!("b{node}.backup"));
        let report = backup_to(&b, node, &copy);
        assert!(
            report["applied_index"].as_u64() >= original.applied_index(),
            "{report}"
        );
        assert_eq!(
            read_backup(&copy).records(),
            original.records(),
            "node {node} of the restored cluster differs from the backup"
        );
    }

    // The restored cluster is a working cluster.
    let unpaid = (0..checkout_load::ORDERS)
        .find(|o| !before.contains(o))
        .unwrap();
    let (s, v) = b.post("/payment/add_funds/0/1000").await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = b.post(&format!("/orders/checkout/{unpaid}")).await;
    assert!(s == 200 || s == 400, "{s} {v}");
}

/// `cluster snapshot` snapshots every member at least up to what it had
/// applied, and the members report it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_covers_every_member() {
    let c = Cluster::start(22500, &[]).await;
    checkout_load::populate(&c).await;
    c.wait_replicas_equal(&[1, 2, 3], Duration::from_secs(10))
        .await;
    let applied = c.status(1).await.unwrap()["last_applied"].as_u64().unwrap();
    assert_eq!(c.status(1).await.unwrap()["snapshot_index"], Value::Null);

    let (ok, out, err) = c.cli(&["cluster", "snapshot", "--addr", &c.node_url(2), "--json"]);
    assert!(ok, "{err}");
    let results: Value = serde_json::from_str(&out).unwrap();
    let results = results.as_array().unwrap();
    assert_eq!(results.len(), 3);
    for r in results {
        let index = r["snapshot_index"].as_u64().unwrap_or(0);
        assert!(index >= applied, "{r}");
        let node = r["id"].as_u64().unwrap();
        let status = c.status(node).await.unwrap();
        assert_eq!(status["snapshot_index"].as_u64(), Some(index), "{status}");
    }

    // A dead member is reported, and the command fails.
    c.kill_node(3);
    let (ok, out, err) = c.cli(&["cluster", "snapshot", "--addr", &c.node_url(1)]);
    assert!(!ok);
    assert!(out.contains("node 3: FAILED"), "{out}");
    assert!(err.contains("1 of 3 members could not snapshot"), "{err}");
}

/// Damaged or foreign files, occupied directories and unreachable nodes
/// are refused with a clear error, and nothing is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_and_restore_errors_are_clear() {
    let c = Cluster::start(22600, &[]).await;
    assert_eq!(c.post("/payment/batch_init/10/5").await.0, 200);
    let work = tempfile::tempdir().unwrap();
    let good = work.path().join("good.backup");
    let report = backup_to(&c, 1, &good);
    assert_eq!(report["records"]["users"], Value::from(10));

    let restore = |from: &Path, dir: &Path| {
        raftcart(&[
            "restore",
            "--from",
            from.to_str().unwrap(),
            "--data-dir",
            dir.to_str().unwrap(),
            "--api-port",
            "22701",
            "--raft-port",
            "22711",
        ])
    };

    // Truncated: the checksum catches it.
    let bytes = std::fs::read(&good).unwrap();
    let truncated = work.path().join("truncated.backup");
    std::fs::write(&truncated, &bytes[..bytes.len() - 10]).unwrap();
    let dir = work.path().join("t");
    let (ok, _, err) = restore(&truncated, &dir);
    assert!(!ok);
    assert!(err.contains("corrupt"), "{err}");
    assert!(!dir.join("node1").exists(), "nothing is written");

    // Not a backup at all.
    let foreign = work.path().join("foreign");
    std::fs::write(&foreign, b"{\"users\": []}").unwrap();
    let (ok, _, err) = restore(&foreign, &dir);
    assert!(!ok);
    assert!(err.contains("not a raftcart backup"), "{err}");

    // Into a directory that already holds a node's data: refused, and the
    // other nodes' directories are not written either.
    let used = work.path().join("used");
    std::fs::create_dir_all(used.join("node2")).unwrap();
    std::fs::write(used.join("node2").join("keep"), b"x").unwrap();
    let (ok, _, err) = restore(&good, &used);
    assert!(!ok);
    assert!(err.contains("already holds data"), "{err}");
    assert!(!used.join("node1").exists());
    assert!(used.join("node2").join("keep").exists());

    // A good restore works once, then refuses the same directory.
    let fresh = work.path().join("fresh");
    let (ok, out, err) = restore(&good, &fresh);
    assert!(ok, "{err}");
    assert!(out.contains("restored 10 users"), "{out}");
    let (ok, _, err) = restore(&good, &fresh);
    assert!(!ok);
    assert!(err.contains("already holds data"), "{err}");

    // No node there.
    let (ok, _, err) = raftcart(&[
        "cluster",
        "backup",
        "--addr",
        "127.0.0.1:1",
        "--out",
        work.path().join("x").to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(err.contains("unreachable"), "{err}");
    assert!(!work.path().join("x").exists());
}
