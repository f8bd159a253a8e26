//! `/metrics` parsed as Prometheus text: the counters and Raft gauges move
//! as writes, refusals, snapshots and a leader kill say they should. Also
//! the request id: echoed to the client and logged on the leader when a
//! follower forwards the request.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::common::Cluster;
use prometheus_parse::{Sample, Scrape, Value as PValue};

const CHECKOUT_ROUTE: &str = "/orders/checkout/:order_id";

async fn scrape(c: &Cluster, id: u64) -> Vec<Sample> {
    let text = c
        .http
        .get(format!("{}/metrics", c.node_url(id)))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .expect("scraping /metrics")
        .text()
        .await
        .unwrap();
    let lines = text.lines().map(|l| Ok(l.to_string()));
    Scrape::parse(lines)
        .expect("Prometheus text format")
        .samples
}

/// The value of the sample named `name` whose labels include `labels`.
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.metric == name)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match &s.value {
            PValue::Counter(v) | PValue::Gauge(v) | PValue::Untyped(v) => *v,
            PValue::Histogram(buckets) => buckets.last().map_or(0.0, |b| b.count),
            PValue::Summary(_) => 0.0,
        })
        .sum()
}

fn checkouts(samples: &[Sample]) -> BTreeMap<String, f64> {
    ["committed", "already_paid", "no_stock", "no_credit"]
        .iter()
        .map(|o| {
            (
                o.to_string(),
                value(samples, "raftcart_checkouts_total", &[("outcome", o)]),
            )
        })
        .collect()
}

async fn post_ok(c: &Cluster, base: &str, path: &str) -> serde_json::Value {
    let (s, v) = c.call(reqwest::Method::POST, base, path).await;
    assert_eq!(s, 200, "{path}: {v}");
    v
}

/// A new order of `user` for one of `item`.
async fn order_of(c: &Cluster, at: &str, user: &str, item: &str) -> String {
    let order = post_ok(c, at, &format!("/orders/create/{user}")).await["order_id"]
        .as_str()
        .unwrap()
        .to_string();
    post_ok(c, at, &format!("/orders/addItem/{order}/{item}/1")).await;
    order
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_follow_writes_refusals_snapshots_and_failover() {
    let c = Cluster::start(22800, &["--no-restart"]).await;
    let leader = c.wait_for_leader(Duration::from_secs(30)).await;
    let at = c.node_url(leader);

    post_ok(&c, &at, "/payment/batch_init/10/100").await;
    post_ok(&c, &at, "/stock/batch_init/10/100/1").await;
    post_ok(&c, &at, "/orders/batch_init/10/10/10/1").await;
    // A user without credit, an item without stock, and an order of each.
    let poor = post_ok(&c, &at, "/payment/create_user").await["user_id"]
        .as_str()
        .unwrap()
        .to_string();
    let empty = post_ok(&c, &at, "/stock/item/create/1").await["item_id"]
        .as_str()
        .unwrap()
        .to_string();
    let no_stock_order = order_of(&c, &at, &poor, &empty).await;
    let no_credit_order = order_of(&c, &at, &poor, "0").await;

    let before = scrape(&c, leader).await;
    for order in 0..5 {
        post_ok(&c, &at, &format!("/orders/checkout/{order}")).await;
    }
    post_ok(&c, &at, "/orders/checkout/0").await;
    for order in [&no_stock_order, &no_credit_order] {
        let (s, v) = c
            .call(
                reqwest::Method::POST,
                &at,
                &format!("/orders/checkout/{order}"),
            )
            .await;
        assert_eq!(s, 400, "{v}");
    }
    let after = scrape(&c, leader).await;

    let delta: BTreeMap<String, f64> = checkouts(&after)
        .into_iter()
        .map(|(k, v)| (k.clone(), v - checkouts(&before)[&k]))
        .collect();
    let expected: BTreeMap<String, f64> = [
        ("already_paid", 1.0),
        ("committed", 5.0),
        ("no_credit", 1.0),
        ("no_stock", 1.0),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), *v))
    .collect();
    assert_eq!(delta, expected);

    let requests = |s: &[Sample], status| {
        value(
            s,
            "raftcart_http_requests_total",
            &[("route", CHECKOUT_ROUTE), ("status", status)],
        )
    };
    assert_eq!(requests(&after, "200") - requests(&before, "200"), 6.0);
    assert_eq!(requests(&after, "400") - requests(&before, "400"), 2.0);
    let latency = |s: &[Sample]| {
        value(
            s,
            "raftcart_http_request_duration_seconds",
            &[("route", CHECKOUT_ROUTE)],
        )
    };
    assert_eq!(latency(&after) - latency(&before), 8.0);
    // Routes are patterns: no label carries an id.
    for s in after
        .iter()
        .filter(|s| s.metric.starts_with("raftcart_http"))
    {
        let route = s.labels.get("route").expect("a route label");
        assert!(
            route == "unmatched"
                || route.starts_with('/') && !route.contains(&poor) && !route.ends_with("/0"),
            "route label with an id: {route}"
        );
    }

    // Eight committed writes moved the node's log and state machine. Had an
    // election moved the leadership meanwhile, the node applies them as a
    // follower, a moment after the new leader commits them: wait for that.
    let applied = |s: &[Sample]| value(s, "raftcart_raft_last_applied", &[]);
    let mut now = scrape(&c, leader).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while applied(&now) < applied(&before) + 8.0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        now = scrape(&c, leader).await;
    }
    assert!(
        applied(&now) >= applied(&before) + 8.0,
        "applied {} before the writes, {} after",
        applied(&before),
        applied(&now)
    );
    assert!(value(&after, "raftcart_raft_last_log_index", &[]) >= applied(&after));

    // Roles: one leader, which alone reports replication lag per follower,
    // and one term. An election since the start may have moved the
    // leadership, so judge one view of all three nodes taken in the same
    // term, retrying while the terms differ.
    let mut view = Err(Vec::new());
    for _ in 0..50 {
        let mut scrapes = Vec::new();
        for id in 1..=3 {
            scrapes.push((id, scrape(&c, id).await));
        }
        view = roles(&scrapes);
        if view.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (leader, term) = view.expect("one leader and one term across the nodes");

    // Concurrent reads on a follower share read index rounds: it asks the
    // leader at most once per read, and the leader confirms with a quorum at
    // most once per request it serves.
    let follower = (1..=3).find(|id| *id != leader).unwrap();
    let read_index = |s: &[Sample], what| value(s, "raftcart_read_index_total", &[("what", what)]);
    let (f_before, l_before) = (scrape(&c, follower).await, scrape(&c, leader).await);
    let reads = 100;
    let follower_url = c.node_url(follower);
    let answers = futures::future::join_all(
        (0..reads).map(|_| c.call(reqwest::Method::GET, &follower_url, "/payment/find_user/1")),
    )
    .await;
    for (s, v) in &answers {
        assert_eq!(*s, 200, "{v}");
        assert_eq!(v["credit"], answers[0].1["credit"], "one state, one credit");
    }
    let (f_after, l_after) = (scrape(&c, follower).await, scrape(&c, leader).await);
    let delta = |after: &[Sample], before: &[Sample], what| {
        read_index(after, what) - read_index(before, what)
    };
    let requested = delta(&f_after, &f_before, "requested");
    assert_eq!(delta(&f_after, &f_before, "reads"), reads as f64);
    assert!(
        (1.0..=reads as f64).contains(&requested),
        "the follower asked for {requested} read indexes for {reads} reads"
    );
    let served = delta(&l_after, &l_before, "served");
    let confirmed = delta(&l_after, &l_before, "confirmed");
    assert!(
        served >= requested,
        "the leader served {served} of {requested}"
    );
    assert!(
        (1.0..=served).contains(&confirmed),
        "{confirmed} quorum rounds for {served} read index requests"
    );

    // A snapshot on one node counts there.
    let snaps = |s: &[Sample]| value(s, "raftcart_raft_snapshots_total", &[]);
    let before_snap = snaps(&scrape(&c, follower).await);
    let (s, v) = c
        .call_admin(
            reqwest::Method::POST,
            &c.node_url(follower),
            "/cluster/snapshot",
        )
        .await;
    assert_eq!(s, 200, "snapshot: {v}");
    let mut counted = 0.0;
    for _ in 0..50 {
        counted = snaps(&scrape(&c, follower).await) - before_snap;
        if counted >= 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(counted, 1.0, "snapshots_total on node {follower}");

    // Kill the leader: another node takes over in a later term.
    c.kill_node(leader);
    let mut new_leader = None;
    for _ in 0..100 {
        for id in (1..=3).filter(|id| *id != leader) {
            let s = scrape(&c, id).await;
            if value(&s, "raftcart_raft_is_leader", &[]) == 1.0 {
                assert!(value(&s, "raftcart_raft_term", &[]) > term);
                new_leader = Some(id);
            }
        }
        if new_leader.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let new_leader = new_leader.expect("a new leader within 10 s");
    // It reports lag for both followers, the dead one falling behind.
    post_ok(&c, &c.node_url(new_leader), "/payment/add_funds/1/1").await;
    let s = scrape(&c, new_leader).await;
    assert!(
        value(
            &s,
            "raftcart_raft_replication_lag",
            &[("follower", &leader.to_string())]
        ) >= 1.0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn request_id_is_echoed_and_travels_to_the_leader() {
    let c = Cluster::start_with_env(
        22820,
        &[],
        &[("RUST_LOG", "info,raftcart=debug,raftcart_raft=debug")],
    )
    .await;
    let leader = c.wait_for_leader(Duration::from_secs(30)).await;
    let follower = (1..=3).find(|id| *id != leader).unwrap();

    let id = "trace-me-4711";
    let resp = c
        .http
        .post(format!("{}/payment/create_user", c.node_url(follower)))
        .header("x-request-id", id)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-request-id"], id);

    // A request without one gets a fresh id.
    let resp = c
        .http
        .get(format!("{}/cluster/status", c.node_url(follower)))
        .send()
        .await
        .unwrap();
    let made = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    assert!(made.len() >= 16 && made != id);

    let log = |n: u64| std::fs::read_to_string(c.data_dir().join(format!("node{n}.log"))).unwrap();
    let mut found = false;
    for _ in 0..50 {
        if log(follower).contains(id) && log(leader).contains(id) {
            found = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        found,
        "request id {id} in the logs of follower {follower} and leader {leader}; logs in {}",
        c.dir.path().display()
    );
    let leader_line = log(leader)
        .lines()
        .find(|l| l.contains(id))
        .unwrap()
        .to_string();
    assert!(
        leader_line.contains("forwarded"),
        "leader's line: {leader_line}"
    );
}

/// The leader and term the nodes' metrics agree on, or what is wrong with
/// them: not one term, not exactly one leader, or replication lag reported
/// by anyone but the leader or for anything but its followers.
fn roles(scrapes: &[(u64, Vec<Sample>)]) -> Result<(u64, f64), Vec<String>> {
    let mut problems = Vec::new();
    let terms: BTreeSet<u64> = scrapes
        .iter()
        .map(|(_, s)| value(s, "raftcart_raft_term", &[]) as u64)
        .collect();
    if terms.len() != 1 || terms.contains(&0) {
        problems.push(format!("terms {terms:?}"));
    }
    let leaders: Vec<u64> = scrapes
        .iter()
        .filter(|(_, s)| value(s, "raftcart_raft_is_leader", &[]) == 1.0)
        .map(|(id, _)| *id)
        .collect();
    if leaders.len() != 1 {
        problems.push(format!("leaders {leaders:?}"));
    }
    for (id, s) in scrapes {
        let mut followers: Vec<u64> = s
            .iter()
            .filter(|x| x.metric == "raftcart_raft_replication_lag")
            .map(|x| x.labels.get("follower").unwrap().parse().unwrap())
            .collect();
        followers.sort();
        let expected: Vec<u64> = if leaders == [*id] {
            scrapes
                .iter()
                .map(|(f, _)| *f)
                .filter(|f| f != id)
                .collect()
        } else {
            Vec::new()
        };
        if followers != expected {
            problems.push(format!("node {id} reports lag for {followers:?}"));
        }
    }
    match (problems.is_empty(), leaders.as_slice(), terms.first()) {
        (true, [leader], Some(term)) => Ok((*leader, *term as f64)),
        _ => Err(problems),
    }
}
