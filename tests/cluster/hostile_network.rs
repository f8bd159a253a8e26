//! A hostile network against a live cluster: forged, oversized, truncated
//! and random frames on every Raft route of every node, operator calls
//! without the admin token, and fuzzed HTTP requests. No node stops or
//! restarts, no such request changes anything, no bad input gets a 5xx,
//! and the cluster still commits writes afterwards.

use std::time::Duration;

use crate::common::Cluster;
use openraft::raft::{AppendEntriesRequest, InstallSnapshotRequest, VoteRequest};
use openraft::{CommittedLeaderId, LogId, SnapshotMeta, Vote};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use raftcart_raft::peer_auth::{PeerKey, MAC_HEADER};
use raftcart_types::codec;
use raftcart_types::TypeConfig;
use reqwest::Method;
use serde_json::Value;

/// Ten bytes claiming a 16 TiB string: decoded without a limit, they abort
/// the process.
const FRAME_16_TIB: [u8; 10] = [0x00, 0xfd, 0, 0, 0, 0, 0, 0x10, 0, 0];

const RAFT_ROUTES: [&str; 7] = [
    "/raft/append",
    "/raft/vote",
    "/raft/snapshot",
    "/raft/forward",
    "/raft/key-check",
    "/raft/campaign",
    "/raft/pre-vote",
];

/// The routes that change or dump the cluster.
const OPERATOR_ROUTES: [(&str, &str); 9] = [
    ("POST", "/cluster/add-learner/99/127.0.0.1:1/127.0.0.1:2"),
    ("POST", "/cluster/promote/2"),
    ("POST", "/cluster/remove/2"),
    ("POST", "/cluster/transfer-leader"),
    ("POST", "/cluster/transfer-leader/2"),
    ("POST", "/cluster/snapshot"),
    ("GET", "/cluster/backup"),
    ("POST", "/cluster/bench/http"),
    ("POST", "/cluster/bench/noop"),
];

fn peer_key(c: &Cluster) -> PeerKey {
    let secret = std::fs::read(c.data_dir().join("peer.key")).unwrap();
    PeerKey::from_secret(&secret).unwrap()
}

/// POSTs `body` to a Raft route, with `mac` if given: (status, JSON body).
async fn raft_post(url: &str, body: Vec<u8>, mac: Option<String>) -> (u16, Value) {
    let what = format!("{url} ({} bytes, MAC {})", body.len(), mac.is_some());
    // A connection per request: a refused request's unread body leaves its
    // connection unusable (the server closes it).
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let mut req = http.post(url).body(body).timeout(Duration::from_secs(30));
    if let Some(mac) = mac {
        req = req.header(MAC_HEADER, mac);
    }
    let resp = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("{what}: the node did not answer: {e:?}"));
    crate::common::reply(resp).await
}

fn assert_refused(what: &str, (status, body): (u16, Value), expected: &[u16]) {
    assert!(
        expected.contains(&status),
        "{what}: {status} {body}, expected one of {expected:?}"
    );
    assert!(
        body["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{what}: {status} without a JSON error: {body}"
    );
}

/// Real frames of every Raft route, to cut short.
fn real_frames() -> Vec<(&'static str, Vec<u8>)> {
    let vote = Vote::new(3, 1);
    let append: AppendEntriesRequest<TypeConfig> = AppendEntriesRequest {
        vote,
        prev_log_id: Some(LogId::new(CommittedLeaderId::new(3, 1), 10)),
        entries: Vec::new(),
        leader_commit: None,
    };
    let snapshot: InstallSnapshotRequest<TypeConfig> = InstallSnapshotRequest {
        vote,
        meta: SnapshotMeta::default(),
        offset: 0,
        data: vec![1; 100],
        done: false,
    };
    vec![
        ("/raft/append", codec::encode(&append).unwrap()),
        (
            "/raft/vote",
            codec::encode(&VoteRequest::new(vote, None)).unwrap(),
        ),
        ("/raft/snapshot", codec::encode(&snapshot).unwrap()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_frames_on_every_raft_route_stop_no_node() {
    let c = Cluster::start(23300, &[]).await;
    let key = peer_key(&c);
    let pids: Vec<i32> = (1..=3).map(|id| c.node_pid(id)).collect();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut random = |len: usize| -> Vec<u8> {
        (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect()
    };

    for node in 1..=3 {
        for route in RAFT_ROUTES {
            let url = format!("http://{}{route}", c.raft_addr(node));
            let what = |case: &str| format!("node {node} {route}: {case}");
            // No MAC: refused before the body is read.
            let r = raft_post(&url, FRAME_16_TIB.to_vec(), None).await;
            assert_refused(&what("no MAC"), r, &[401]);
            // A MAC made up, or made with another key.
            let r = raft_post(&url, FRAME_16_TIB.to_vec(), Some("00".repeat(32))).await;
            assert_refused(&what("made-up MAC"), r, &[403]);
            let other = PeerKey::from_secret(&[b'k'; 32]).unwrap();
            let forged = other.sign_request(route, &FRAME_16_TIB);
            let r = raft_post(&url, FRAME_16_TIB.to_vec(), Some(forged)).await;
            assert_refused(&what("another key's MAC"), r, &[403]);
            // Even a key holder's 16 TiB claim only gets a 400.
            let mac = key.sign_request(route, &FRAME_16_TIB);
            let r = raft_post(&url, FRAME_16_TIB.to_vec(), Some(mac)).await;
            assert_refused(&what("16 TiB claim"), r, &[400]);
            for len in [1, 7, 64] {
                let r = raft_post(&url, random(len), None).await;
                assert_refused(&what(&format!("{len} random bytes, no MAC")), r, &[401]);
            }
            for len in [1, 7, 64, 1000, 70_000] {
                let body = random(len);
                let mac = key.sign_request(route, &body);
                let r = raft_post(&url, body, Some(mac)).await;
                assert_refused(&what(&format!("{len} random bytes")), r, &[400, 413]);
            }
        }
        // Bodies over each route's limit.
        for (route, len) in [("/raft/vote", 1 << 20), ("/raft/forward", 2 << 20)] {
            let url = format!("http://{}{route}", c.raft_addr(node));
            let body = vec![0u8; len];
            let mac = key.sign_request(route, &body);
            let r = raft_post(&url, body, Some(mac)).await;
            assert_refused(&format!("node {node} {route}: {len} bytes"), r, &[413]);
        }
        // Real frames cut short.
        for (route, frame) in real_frames() {
            let url = format!("http://{}{route}", c.raft_addr(node));
            for cut in [1, frame.len() / 2, frame.len() - 1] {
                let body = frame[..cut].to_vec();
                let mac = key.sign_request(route, &body);
                let r = raft_post(&url, body, Some(mac)).await;
                assert_refused(&format!("node {node} {route} cut at {cut}"), r, &[400]);
            }
        }
    }

    // A snapshot chunk far beyond what has arrived: refused, not allocated.
    let url = format!("http://{}/raft/snapshot", c.raft_addr(2));
    let chunk = |offset: u64| -> Vec<u8> {
        let req: InstallSnapshotRequest<TypeConfig> = InstallSnapshotRequest {
            vote: Vote::new(0, 9),
            meta: SnapshotMeta {
                snapshot_id: "hostile".into(),
                ..Default::default()
            },
            offset,
            data: vec![7; 16],
            done: false,
        };
        codec::encode(&req).unwrap()
    };
    let far = chunk(1 << 40);
    let r = raft_post(
        &url,
        far.clone(),
        Some(key.sign_request("/raft/snapshot", &far)),
    )
    .await;
    assert_refused("a chunk at 1 TiB", r, &[400]);

    // A forged append with a huge term, without the key: the node keeps its
    // term (a genuine one would have made it follow the forger).
    let forged: AppendEntriesRequest<TypeConfig> = AppendEntriesRequest {
        vote: Vote::new_committed(1_000_000, 9),
        prev_log_id: None,
        entries: Vec::new(),
        leader_commit: None,
    };
    let body = codec::encode(&forged).unwrap();
    let mac = PeerKey::from_secret(&[b'f'; 40])
        .unwrap()
        .sign_request("/raft/append", &body);
    for node in 1..=3 {
        let url = format!("http://{}/raft/append", c.raft_addr(node));
        let r = raft_post(&url, body.clone(), Some(mac.clone())).await;
        assert_refused("a forged append", r, &[403]);
    }

    // Every node still runs (the same process), follows the same leader
    // and term, and the cluster commits a write.
    let leader = c.wait_for_leader(Duration::from_secs(10)).await;
    for node in 1..=3 {
        assert_eq!(
            c.node_pid(node),
            pids[node as usize - 1],
            "node {node} restarted"
        );
        let s = c.status(node).await.expect("the node answers");
        assert!(s["term"].as_u64().unwrap() < 1_000_000, "{s}");
    }
    let (s, v) = c.post("/payment/create_user").await;
    assert_eq!(s, 200, "{v}");
    c.wait_replicas_equal(&[1, 2, 3], Duration::from_secs(10))
        .await;
    assert!(c.status(leader).await.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_routes_need_the_admin_token() {
    let c = Cluster::start(23400, &[]).await;
    let (s, user) = c.post("/payment/create_user").await;
    assert_eq!(s, 200);
    let user = user["user_id"].as_str().unwrap().to_string();
    assert_eq!(
        c.post(&format!("/payment/add_funds/{user}/50")).await.0,
        200
    );
    let voters = |s: &Value| -> Vec<u64> {
        s["members"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["voter"] == Value::Bool(true))
            .map(|m| m["id"].as_u64().unwrap())
            .collect()
    };
    // Every node has heard from the leader (a node that started last may
    // take a replication back-off to be reached) before anything is sent.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    for node in 1..=3 {
        while std::time::Instant::now() < deadline
            && c.status(node).await.map(|s| voters(&s)) != Some(vec![1, 2, 3])
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let before = voters(&c.status(1).await.unwrap());
    assert_eq!(before, vec![1, 2, 3]);

    for base in [c.gateway(), c.node_url(1), c.node_url(2)] {
        for (method, path) in OPERATOR_ROUTES {
            let method = Method::from_bytes(method.as_bytes()).unwrap();
            let send = |auth: Option<&str>| {
                let mut req = c.http.request(method.clone(), format!("{base}{path}"));
                if let Some(auth) = auth {
                    req = req.header("authorization", auth);
                }
                async move {
                    let resp = req.send().await.unwrap();
                    let status = resp.status().as_u16();
                    (status, resp.json::<Value>().await.unwrap_or_default())
                }
            };
            assert_refused(
                &format!("{base}{path} without a token"),
                send(None).await,
                &[401],
            );
            assert_refused(
                &format!("{base}{path} with a wrong token"),
                send(Some("Bearer not-the-token")).await,
                &[403],
            );
        }
    }
    // Through the gateway not even with the token, whatever the spelling.
    let token = format!("Bearer {}", c.admin_token());
    for path in [
        "/cluster/remove/2",
        "/cluster/status/../remove/2",
        "/raft/vote",
    ] {
        let resp = c
            .http
            .post(format!("{}{path}", c.gateway()))
            .header("authorization", &token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 403, "{path} through the gateway");
    }

    // Nothing changed.
    for node in 1..=3 {
        assert_eq!(voters(&c.status(node).await.unwrap()), before);
    }
    assert_eq!(crate::common::credit(&c, &user).await, 50);

    // The read-only routes stay open; the operator's commands work with the
    // token `up` made.
    assert_eq!(c.get("/cluster/status").await.0, 200);
    let (s, _) = c.call(Method::GET, &c.node_url(1), "/metrics").await;
    assert_eq!(s, 200);
    let (ok, out, err) = c.cli(&["cluster", "snapshot", "--addr", &c.node_url(1)]);
    assert!(ok, "snapshot with the token: {err}");
    assert_eq!(out.lines().count(), 3, "{out}");
    // Without it, the command says what is missing.
    let (ok, _, err) =
        crate::common::raftcart(&["cluster", "remove", "--addr", &c.node_url(1), "--id", "2"]);
    assert!(!ok);
    assert!(err.contains("admin token"), "{err}");
    assert_eq!(voters(&c.status(1).await.unwrap()), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_reads_closes_the_read_only_routes_too() {
    let c = Cluster::start(23500, &["--auth-reads"]).await;
    for path in ["/cluster/status", "/cluster/overview", "/metrics", "/ui"] {
        let (s, v) = c.call(Method::GET, &c.node_url(1), path).await;
        assert_eq!(s, 401, "{path} without the token: {v}");
        let (s, v) = c.call_admin(Method::GET, &c.node_url(1), path).await;
        assert_eq!(s, 200, "{path} with the token: {v}");
    }
    // The shop stays open, through the gateway (which has the token to
    // find the leader).
    let (s, v) = c.post("/payment/create_user").await;
    assert_eq!(s, 200, "{v}");
    let (ok, out, err) = c.cli(&["cluster", "status", "--addr", &c.node_url(2), "--json"]);
    assert!(ok, "{err}");
    assert!(!out.contains("\"reachable\": false"), "{out}");
}

/// Random requests to the HTTP API: paths made of the API's own segments,
/// ids and numbers of every shape, garbage, methods, headers and bodies.
/// None gets a 5xx (the cluster is healthy, so not even a 503), and every
/// error has a JSON body.
#[test]
fn fuzzed_http_requests_never_get_a_5xx() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let c = rt.block_on(Cluster::start(23600, &[]));
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(300);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let segment = prop_oneof![
        Just("stock".to_string()),
        Just("payment".to_string()),
        Just("orders".to_string()),
        Just("cluster".to_string()),
        Just("raft".to_string()),
        Just("find".to_string()),
        Just("checkout".to_string()),
        Just("batch_init".to_string()),
        Just("add".to_string()),
        Just("pay".to_string()),
        Just("addItem".to_string()),
        Just("create_user".to_string()),
        Just("status".to_string()),
        Just("..".to_string()),
        Just("%00".to_string()),
        Just("%2F".to_string()),
        Just("18446744073709551616".to_string()),
        Just("-1".to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        "[a-zA-Z0-9_.~-]{0,300}",
        "[%a-f0-9]{1,12}",
    ];
    let request = (
        prop_oneof![
            Just("GET"),
            Just("POST"),
            Just("DELETE"),
            Just("PUT"),
            Just("PATCH"),
            Just("OPTIONS"),
        ],
        proptest::collection::vec(segment, 0..7),
        proptest::option::of("[ -~]{0,300}"),
        proptest::option::of("[ -~]{0,100}"),
        proptest::collection::vec(any::<u8>(), 0..2000),
        any::<bool>(),
    );
    let result = runner.run(
        &request,
        |(method, segments, idempotency_key, request_id, body, via_gateway)| {
            let path = format!("/{}", segments.join("/"));
            let base = if via_gateway {
                c.gateway()
            } else {
                c.node_url(1)
            };
            let url = format!("{base}{path}");
            let Ok(parsed) = reqwest::Url::parse(&url) else {
                return Ok(());
            };
            let mut req = c
                .http
                .request(Method::from_bytes(method.as_bytes()).unwrap(), parsed)
                .timeout(Duration::from_secs(30))
                .body(body);
            if let Some(k) = &idempotency_key {
                req = req.header("idempotency-key", k.as_str());
            }
            if let Some(id) = &request_id {
                req = req.header("x-request-id", id.as_str());
            }
            let (status, text) = rt.block_on(async {
                let resp = match req.send().await {
                    Ok(resp) => resp,
                    // A header reqwest itself will not send: nothing to test.
                    Err(e) if e.is_builder() => return Ok((0, String::new())),
                    Err(e) => return Err(TestCaseError::fail(format!("{method} {path}: {e}"))),
                };
                let status = resp.status().as_u16();
                Ok::<_, TestCaseError>((status, resp.text().await.unwrap_or_default()))
            })?;
            prop_assert!(status < 500, "{method} {path}: {status} {text}");
            if status >= 400 {
                let v: Value = serde_json::from_str(&text).unwrap_or_default();
                prop_assert!(v["error"].is_string(), "{method} {path}: {status} {text}");
            }
            Ok(())
        },
    );
    if let Err(e) = result {
        panic!("{e}");
    }
    rt.block_on(async {
        let (s, v) = c.post("/payment/create_user").await;
        assert_eq!(s, 200, "{v}");
        c.wait_replicas_equal(&[1, 2, 3], Duration::from_secs(10))
            .await;
    });
}
