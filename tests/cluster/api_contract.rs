//! The API contract of docs/API.md against a real 3-node cluster: the
//! course's stock, payment and order tests, the older endpoints, and every
//! bad-input rule (a clear 4xx with a JSON error, and nothing changed).

use crate::common::{credit, stock, Cluster};
use reqwest::Method;
use serde_json::Value;
use std::time::Duration;

fn id(v: &Value, field: &str) -> String {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("no {field} in {v}"))
        .to_string()
}

async fn new_item(c: &Cluster, price: u64) -> String {
    let (s, v) = c.post(&format!("/stock/item/create/{price}")).await;
    assert_eq!(s, 200, "{v}");
    id(&v, "item_id")
}

async fn new_user(c: &Cluster) -> String {
    let (s, v) = c.post("/payment/create_user").await;
    assert_eq!(s, 200, "{v}");
    id(&v, "user_id")
}

async fn new_order(c: &Cluster, user: &str) -> String {
    let (s, v) = c.post(&format!("/orders/create/{user}")).await;
    assert_eq!(s, 200, "{v}");
    id(&v, "order_id")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_contract() {
    let c = Cluster::start(21000, &[]).await;
    whole_contract(&c).await;
}

/// The same contract with every port speaking TLS, peers verifying each
/// other's certificates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_contract_over_tls() {
    let c = Cluster::start_tls(23100, &[]).await;
    whole_contract(&c).await;
    let (ok, out, err) = c.cli(&["cluster", "status", "--addr", &c.node_url(1), "--json"]);
    assert!(ok, "cluster status over TLS: {err}");
    assert!(out.contains("\"reachable\": true"), "{out}");
}

/// Proxy variables in the environment of `up` and its nodes point at a
/// port nothing listens on. Raft RPCs, forwarded writes and the gateway's
/// requests go to the cluster's own addresses all the same: the leader is
/// elected, and the course's order flow and every node's forwarding work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_variables_do_not_reroute_cluster_traffic() {
    const NOWHERE: &str = "http://127.0.0.1:9";
    let c = Cluster::start_with_env(
        24300,
        &[],
        &[
            ("HTTP_PROXY", NOWHERE),
            ("HTTPS_PROXY", NOWHERE),
            ("ALL_PROXY", NOWHERE),
            ("http_proxy", NOWHERE),
            ("https_proxy", NOWHERE),
            ("all_proxy", NOWHERE),
        ],
    )
    .await;
    course_order(&c).await;
    every_node_serves_and_forwards(&c).await;
}

async fn whole_contract(c: &Cluster) {
    course_stock(c).await;
    course_payment(c).await;
    course_order(c).await;
    older_endpoints(c).await;
    every_node_serves_and_forwards(c).await;
    bad_input(c).await;
    status_endpoint(c).await;
    bench_routes(c).await;
}

async fn course_stock(c: &Cluster) {
    let item = new_item(c, 5).await;
    let (s, v) = c.get(&format!("/stock/find/{item}")).await;
    assert_eq!(
        (s, v["stock"].as_u64(), v["price"].as_u64()),
        (200, Some(0), Some(5))
    );
    assert_eq!(c.post(&format!("/stock/add/{item}/50")).await.0, 200);
    assert_eq!(stock(c, &item).await, 50);
    assert_eq!(c.post(&format!("/stock/subtract/{item}/200")).await.0, 400);
    assert_eq!(stock(c, &item).await, 50);
    assert_eq!(c.post(&format!("/stock/subtract/{item}/15")).await.0, 200);
    assert_eq!(stock(c, &item).await, 35);
}

async fn course_payment(c: &Cluster) {
    let user = new_user(c).await;
    assert_eq!(credit(c, &user).await, 0);
    let (s, v) = c.post(&format!("/payment/add_funds/{user}/15")).await;
    assert_eq!((s, v["done"].as_bool()), (200, Some(true)));
    assert_eq!(credit(c, &user).await, 15);
    assert_eq!(c.post(&format!("/payment/pay/{user}/10")).await.0, 200);
    assert_eq!(credit(c, &user).await, 5);
    assert_eq!(c.post(&format!("/payment/pay/{user}/10")).await.0, 400);
    assert_eq!(credit(c, &user).await, 5);
}

async fn course_order(c: &Cluster) {
    let user = new_user(c).await;
    let order = new_order(c, &user).await;
    let item1 = new_item(c, 10).await;
    let item2 = new_item(c, 10).await;
    c.post(&format!("/stock/add/{item1}/15")).await;
    c.post(&format!("/stock/add/{item2}/1")).await;
    assert_eq!(
        c.post(&format!("/orders/addItem/{order}/{item1}/1"))
            .await
            .0,
        200
    );
    assert_eq!(
        c.post(&format!("/orders/addItem/{order}/{item2}/1"))
            .await
            .0,
        200
    );
    assert_eq!(
        c.post(&format!("/orders/addItem/{order}/nosuchitem/1"))
            .await
            .0,
        404
    );
    c.post(&format!("/stock/subtract/{item2}/1")).await;

    // No stock for item2: refused, nothing taken.
    assert_eq!(c.post(&format!("/orders/checkout/{order}")).await.0, 400);
    assert_eq!(stock(c, &item1).await, 15);
    c.post(&format!("/stock/add/{item2}/15")).await;

    // No credit: refused, nothing taken.
    assert_eq!(c.post(&format!("/orders/checkout/{order}")).await.0, 400);
    assert_eq!((stock(c, &item1).await, stock(c, &item2).await), (15, 15));

    c.post(&format!("/payment/add_funds/{user}/25")).await;
    assert_eq!(c.post(&format!("/orders/checkout/{order}")).await.0, 200);
    assert_eq!((stock(c, &item1).await, stock(c, &item2).await), (14, 14));
    assert_eq!(credit(c, &user).await, 5);
    let (s, v) = c.get(&format!("/orders/find/{order}")).await;
    assert_eq!(s, 200);
    assert_eq!(v["paid"], Value::Bool(true));
    assert_eq!(v["total_cost"].as_u64(), Some(20));
    assert_eq!(v["user_id"].as_str(), Some(user.as_str()));
    assert_eq!(v["items"], serde_json::json!([[item1, 1], [item2, 1]]));

    // A paid order answers 200 again and charges nothing.
    assert_eq!(c.post(&format!("/orders/checkout/{order}")).await.0, 200);
    assert_eq!(credit(c, &user).await, 5);
    assert_eq!(stock(c, &item1).await, 14);

    assert_eq!(c.post("/orders/checkout/nosuchorder").await.0, 404);
    assert_eq!(c.post("/orders/create/nosuchuser").await.0, 404);
}

async fn older_endpoints(c: &Cluster) {
    let user = new_user(c).await;
    c.post(&format!("/payment/add_funds/{user}/100")).await;
    let item = new_item(c, 3).await;
    c.post(&format!("/stock/add/{item}/10")).await;
    let order = new_order(c, &user).await;

    // addItem without a quantity adds one; removeItem by DELETE and POST.
    assert_eq!(
        c.post(&format!("/orders/addItem/{order}/{item}")).await.0,
        200
    );
    assert_eq!(
        c.post(&format!("/orders/addItem/{order}/{item}")).await.0,
        200
    );
    let (_, v) = c.get(&format!("/orders/find/{order}")).await;
    assert_eq!(v["total_cost"].as_u64(), Some(6));
    let (s, _) = c
        .call(
            Method::DELETE,
            &c.gateway(),
            &format!("/orders/removeItem/{order}/{item}"),
        )
        .await;
    assert_eq!(s, 200);
    let (_, v) = c.get(&format!("/orders/find/{order}")).await;
    assert_eq!(
        (
            v["total_cost"].as_u64(),
            v["items"].as_array().map(|a| a.len())
        ),
        (Some(0), Some(0))
    );
    assert_eq!(
        c.post(&format!("/orders/removeItem/{order}/{item}"))
            .await
            .0,
        404
    );

    // Pay against an order, its status, and cancel gives it all back.
    c.post(&format!("/orders/addItem/{order}/{item}/2")).await;
    assert_eq!(c.post(&format!("/orders/checkout/{order}")).await.0, 200);
    assert_eq!((credit(c, &user).await, stock(c, &item).await), (94, 8));
    for method in [Method::GET, Method::POST] {
        let (s, v) = c
            .call(
                method,
                &c.gateway(),
                &format!("/payment/status/{user}/{order}"),
            )
            .await;
        assert_eq!((s, v["paid"].as_bool()), (200, Some(true)));
    }
    assert_eq!(
        c.post(&format!("/payment/cancel/{user}/{order}")).await.0,
        200
    );
    assert_eq!((credit(c, &user).await, stock(c, &item).await), (100, 10));
    let (_, v) = c.get(&format!("/payment/status/{user}/{order}")).await;
    assert_eq!(v["paid"].as_bool(), Some(false));
    assert_eq!(
        c.post(&format!("/payment/cancel/{user}/{order}")).await.0,
        400
    );

    let order2 = new_order(c, &user).await;
    assert_eq!(
        c.post(&format!("/payment/pay/{user}/{order2}/7")).await.0,
        200
    );
    assert_eq!(
        c.post(&format!("/payment/pay/{user}/{order2}/7")).await.0,
        200
    );
    assert_eq!(credit(c, &user).await, 93);
    let (_, v) = c.get(&format!("/payment/status/{user}/{order2}")).await;
    assert_eq!(v["paid"].as_bool(), Some(true));

    // remove an unpaid order, by DELETE and by POST.
    let order3 = new_order(c, &user).await;
    let (s, _) = c
        .call(
            Method::DELETE,
            &c.gateway(),
            &format!("/orders/remove/{order3}"),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(c.get(&format!("/orders/find/{order3}")).await.0, 404);
    let order4 = new_order(c, &user).await;
    assert_eq!(c.post(&format!("/orders/remove/{order4}")).await.0, 200);
    assert_eq!(
        c.post(&format!("/orders/remove/{order2}")).await.0,
        400,
        "a paid order stays"
    );
}

async fn every_node_serves_and_forwards(c: &Cluster) {
    let user = new_user(c).await;
    // One unit of credit, written through `node`.
    let add_one = |node: u64| {
        let path = format!("/payment/add_funds/{user}/1");
        async move { c.call(Method::POST, &c.node_url(node), &path).await.0 }
    };
    // The credit as `node` reads it (linearizable: the default).
    let credit_on = |node: u64| {
        let path = format!("/payment/find_user/{user}");
        async move {
            let (s, v) = c.call(Method::GET, &c.node_url(node), &path).await;
            (s, v["credit"].as_u64())
        }
    };
    for node in 1..=3 {
        assert_eq!(add_one(node).await, 200, "write through node {node}");
        // Each node sees every write so far.
        assert_eq!(
            credit_on(node).await,
            (200, Some(node)),
            "read through node {node}"
        );
    }
    // A follower answers a read itself once it has applied up to the
    // leader's commit point: right after the leader acknowledges a write,
    // every node already sees it.
    let leader = c.wait_for_leader(Duration::from_secs(10)).await;
    for round in 1..=20u64 {
        assert_eq!(add_one(leader).await, 200);
        for node in 1..=3 {
            assert_eq!(
                credit_on(node).await,
                (200, Some(3 + round)),
                "read through node {node} right after write {round} (leader {leader})"
            );
        }
    }
}

/// The ceiling benchmark's routes (`bench/compare.sh --ceiling`): an
/// answer from the HTTP server alone, and a no-op write that commits
/// through Raft, on any node, and changes no record.
async fn bench_routes(c: &Cluster) {
    let user = new_user(c).await;
    c.post(&format!("/payment/add_funds/{user}/7")).await;
    let applied = |v: Option<Value>| v.unwrap()["last_applied"].as_u64().unwrap();
    let leader = c.wait_for_leader(Duration::from_secs(10)).await;
    for node in 1..=3 {
        let before = applied(c.status(leader).await);
        let (s, v) = c
            .call_admin(Method::POST, &c.node_url(node), "/cluster/bench/noop")
            .await;
        assert_eq!(
            (s, v["msg"].as_str()),
            (200, Some("no-op")),
            "node {node}: {v}"
        );
        let after = applied(c.status(leader).await);
        assert!(
            after > before,
            "through node {node}: applied {before} -> {after}"
        );
        let (s, v) = c
            .call_admin(Method::POST, &c.node_url(node), "/cluster/bench/http")
            .await;
        assert_eq!((s, v["done"].as_bool()), (200, Some(true)), "{v}");
    }
    assert_eq!(credit(c, &user).await, 7);
}

/// Each bad request gets the expected 4xx with a JSON error, and the state
/// (an item, a user, an order) is the same afterwards.
async fn bad_input(c: &Cluster) {
    let user = new_user(c).await;
    c.post(&format!("/payment/add_funds/{user}/50")).await;
    let item = new_item(c, 2).await;
    c.post(&format!("/stock/add/{item}/5")).await;
    let order = new_order(c, &user).await;
    c.post(&format!("/orders/addItem/{order}/{item}/1")).await;
    let max = u64::MAX;
    let snapshot = || async {
        (
            credit(c, &user).await,
            stock(c, &item).await,
            c.get(&format!("/orders/find/{order}")).await.1,
        )
    };
    let before = snapshot().await;

    let cases: Vec<(Method, String, u16)> = vec![
        (Method::POST, format!("/stock/add/{item}/abc"), 400),
        (Method::POST, format!("/stock/add/{item}/-1"), 400),
        (Method::POST, format!("/stock/add/{item}/1.5"), 400),
        (
            Method::POST,
            format!("/stock/add/{item}/18446744073709551616"),
            400,
        ),
        (Method::POST, format!("/stock/add/{item}/{max}"), 400),
        (Method::POST, format!("/stock/subtract/{item}/6"), 400),
        (
            Method::POST,
            format!("/stock/subtract/{item}/99999999999999999999999"),
            400,
        ),
        (Method::POST, "/stock/item/create/-3".into(), 400),
        (Method::POST, "/stock/item/create/x".into(), 400),
        (Method::POST, "/stock/add/nosuchitem/1".into(), 404),
        (Method::GET, "/stock/find/nosuchitem".into(), 404),
        (
            Method::POST,
            format!("/payment/add_funds/{user}/{max}"),
            400,
        ),
        (Method::POST, format!("/payment/add_funds/{user}/-5"), 400),
        (Method::POST, format!("/payment/pay/{user}/51"), 400),
        (Method::POST, format!("/payment/pay/{user}/NaN"), 400),
        (Method::POST, "/payment/add_funds/nosuchuser/1".into(), 404),
        (Method::GET, "/payment/find_user/nosuchuser".into(), 404),
        (Method::POST, "/payment/pay/nosuchuser/1".into(), 404),
        (
            Method::POST,
            format!("/orders/addItem/{order}/{item}/{max}"),
            400,
        ),
        (
            Method::POST,
            format!("/orders/addItem/{order}/{item}/0"),
            400,
        ),
        (
            Method::POST,
            format!("/orders/addItem/{order}/{item}/-1"),
            400,
        ),
        (
            Method::POST,
            format!("/orders/addItem/nosuchorder/{item}/1"),
            404,
        ),
        (Method::GET, "/orders/find/nosuchorder".into(), 404),
        (Method::POST, "/orders/batch_init/10/0/10/1".into(), 400),
        (Method::POST, "/orders/batch_init/10/10/10/x".into(), 400),
        (Method::POST, "/stock/batch_init/1000001/1/1".into(), 400),
        (Method::POST, "/payment/batch_init/-1/1".into(), 400),
        (Method::GET, "/no/such/route".into(), 404),
        (Method::POST, "/stock/find".into(), 404),
        (Method::DELETE, format!("/stock/add/{item}/1"), 405),
        (Method::GET, format!("/orders/checkout/{order}"), 405),
        (Method::PUT, "/payment/create_user".into(), 405),
        (Method::GET, format!("/stock/find/{item}?stale=maybe"), 400),
        (Method::GET, format!("/stock/find/{}", "x".repeat(300)), 400),
    ];
    for (method, path, want) in cases {
        let (s, v) = c.call(method.clone(), &c.gateway(), &path).await;
        assert_eq!(s, want, "{method} {path}: {v}");
        assert!(
            v["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{method} {path}: no JSON error body: {v}"
        );
    }
    assert_eq!(
        snapshot().await,
        before,
        "a refused request changed the state"
    );
}

async fn status_endpoint(c: &Cluster) {
    let leader = c.wait_for_leader(std::time::Duration::from_secs(5)).await;
    for node in 1..=3 {
        let s = c.status(node).await.expect("status");
        assert_eq!(s["node_id"].as_u64(), Some(node));
        assert_eq!(s["leader_id"].as_u64(), Some(leader));
        assert!(s["term"].as_u64().unwrap() >= 1);
        assert!(s["last_log_index"].as_u64().unwrap() >= s["last_applied"].as_u64().unwrap());
        let members = s["members"].as_array().unwrap();
        assert_eq!(members.len(), 3);
        for m in members {
            let id = m["id"].as_u64().unwrap();
            assert_eq!(
                m["api_addr"].as_str().unwrap(),
                format!("127.0.0.1:{}", c.base_port as u64 + id)
            );
            assert!(m["raft_addr"].as_str().is_some());
        }
    }
}
