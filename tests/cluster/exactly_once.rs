//! Exactly-once writes: a write sent again with the same Idempotency-Key
//! gets the first answer and changes nothing, whether the retry comes at
//! once, after an ambiguous failure across a leader change, after a restart
//! of the whole cluster, or on a node that learnt the first write only from
//! a snapshot.

use std::time::Duration;

use crate::common::{credit, stock, Cluster};
use futures::future::join_all;
use reqwest::Method;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_write_repeated_with_its_key_applies_once() {
    let c = Cluster::start(21600, &[]).await;
    assert_eq!(c.post("/payment/batch_init/2/100").await.0, 200);
    assert_eq!(c.post("/stock/batch_init/2/50/3").await.0, 200);

    // Each write twice with one key: same status and body, one effect.
    let writes: [(&str, &str); 9] = [
        ("add", "/payment/add_funds/0/7"),
        ("pay", "/payment/pay/0/5"),
        ("stock-add", "/stock/add/0/4"),
        ("stock-sub", "/stock/subtract/0/10"),
        ("user", "/payment/create_user"),
        ("item", "/stock/item/create/9"),
        ("order", "/orders/create/1"),
        ("add-item", "/orders/addItem/seed/1/2"),
        ("batch", "/payment/batch_init/1/1"),
    ];
    // An order with a known id, for addItem: batch_init makes order "0".
    assert_eq!(
        c.post_keyed("/orders/batch_init/1/2/2/3", "ob").await.0,
        200
    );
    let mut first = Vec::new();
    for (key, path) in writes {
        let path = path.replace("seed", "0");
        let a = c.post_keyed(&path, key).await;
        let b = c.post_keyed(&path, key).await;
        assert_eq!(a.0, 200, "{path}: {}", a.1);
        assert_eq!(a, b, "{path}: the retry gets the first answer");
        first.push(a.1);
    }
    // add 7, pay 5, then batch_init reset user "0" to 1 credit, once.
    assert_eq!(credit(&c, "0").await, 1);
    assert_eq!(stock(&c, "0").await, 50 + 4 - 10);
    let (_, order) = c.get("/orders/find/0").await;
    assert_eq!(order["items"].as_array().unwrap().len(), 3, "{order}");

    // batch_init again with its key does not reset what changed since.
    assert_eq!(c.post("/payment/add_funds/0/3").await.0, 200);
    assert_eq!(
        c.post_keyed("/payment/batch_init/1/1", "batch").await.0,
        200
    );
    assert_eq!(credit(&c, "0").await, 1 + 3);

    // A key reused for another request is refused; the first request's
    // answer stays what its retries get.
    let (s, v) = c.post_keyed("/payment/add_funds/1/1", "add").await;
    assert_eq!(s, 422, "{v}");
    assert!(v["error"].as_str().unwrap().contains("different request"));
    assert_eq!(credit(&c, "1").await, 100);
    assert_eq!(
        c.post_keyed("/payment/add_funds/0/7", "add").await,
        (200, first[0].clone())
    );
    // A new key is a new write.
    assert_eq!(c.post_keyed("/payment/add_funds/1/1", "add2").await.0, 200);
    assert_eq!(credit(&c, "1").await, 101);

    // A refusal is remembered too: the retry is refused even though it
    // would now succeed.
    let refused = c.post_keyed("/payment/pay/1/1000", "big").await;
    assert_eq!(refused.0, 400);
    assert_eq!(c.post("/payment/add_funds/1/2000").await.0, 200);
    assert_eq!(c.post_keyed("/payment/pay/1/1000", "big").await, refused);
    assert_eq!(credit(&c, "1").await, 2101);
}

/// Writes in flight to the leader when it is SIGKILLed have an unknown
/// fate; retried with their keys through the gateway after the failover,
/// each applies exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_retried_across_a_leader_change_apply_once() {
    const WRITES: u64 = 40;
    let c = Cluster::start(21700, &[]).await;
    assert_eq!(c.post("/payment/batch_init/1/0").await.0, 200);
    let leader = c.wait_for_leader(Duration::from_secs(5)).await;
    let leader_url = c.node_url(leader);

    let in_flight = join_all((0..WRITES).map(|i| {
        let (http, url) = (c.http.clone(), leader_url.clone());
        async move {
            http.post(format!("{url}/payment/add_funds/0/1"))
                .header("Idempotency-Key", format!("w{i}"))
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .map(|r| r.status().is_success())
                .unwrap_or(false)
        }
    }));
    let killer = async {
        tokio::time::sleep(Duration::from_millis(3)).await;
        c.kill_node(leader);
    };
    let (first_try, ()) = tokio::join!(in_flight, killer);
    let unknown = first_try.iter().filter(|ok| !**ok).count();
    println!("{unknown} of {WRITES} writes had an unknown fate");

    for i in 0..WRITES {
        let (s, v) = c
            .post_keyed("/payment/add_funds/0/1", &format!("w{i}"))
            .await;
        assert_eq!(s, 200, "retry of w{i}: {v}");
    }
    assert_eq!(credit(&c, "0").await, WRITES, "each write applied once");
}

/// Request records live in the state machine's RocksDB and in its snapshots: a
/// retry after a restart of every node, and a retry applied by a node that
/// learnt the first write only from a snapshot, change nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_records_survive_restarts_and_snapshot_installs() {
    let mut c = Cluster::start(21800, &["--snapshot-every", "50"]).await;
    assert_eq!(c.post("/payment/batch_init/1/0").await.0, 200);
    let leader = c.wait_for_leader(Duration::from_secs(5)).await;
    let lagging = (1..=3).find(|id| *id != leader).unwrap();
    c.kill_node(lagging);

    let first = c.post_keyed("/payment/add_funds/0/10", "once").await;
    assert_eq!(first.0, 200);
    // Enough writes that the log holding "once" is purged behind snapshots.
    for _ in 0..300 {
        assert_eq!(c.post("/stock/item/create/1").await.0, 200);
    }
    let status = c.status(leader).await.unwrap();
    assert!(
        status["purged_index"].as_u64().unwrap() > 10,
        "the leader purged its log: {status}"
    );

    // Power cut, then all three come back; the lagging node can only catch
    // up by installing a snapshot.
    c.kill_all();
    c.launch().await;
    c.wait_replicas_equal(&[1, 2, 3], Duration::from_secs(30))
        .await;
    let lagging_status = c.status(lagging).await.unwrap();
    assert!(
        lagging_status["snapshot_index"].as_u64().unwrap() > 10,
        "the lagging node holds a snapshot: {lagging_status}"
    );

    assert_eq!(c.post_keyed("/payment/add_funds/0/10", "once").await, first);
    c.wait_replicas_equal(&[1, 2, 3], Duration::from_secs(30))
        .await;
    // Every replica, the one that knows "once" only from a snapshot
    // included, answered the retry without applying it.
    for id in 1..=3 {
        let (s, v) = c
            .call(
                Method::GET,
                &c.node_url(id),
                "/payment/find_user/0?stale=true",
            )
            .await;
        assert_eq!(s, 200);
        assert_eq!(v["credit"], Value::from(10), "node {id}");
    }
}
