//! `POST /batch`, the route the gateway sends the shop's requests on in
//! batches: each request of a batch is answered as if it had come alone,
//! only the shop's routes answer inside one, and a bad batch gets a JSON
//! 4xx and changes nothing. (Every test that goes through the gateway
//! exercises batches too: consistency, failover, exactly_once.)

use std::time::Duration;

use crate::common::{credit, Cluster};
use raftcart_types::codec;
use serde::{Deserialize, Serialize};
use serde_json::Value;

// The wire format of src/batch.rs, written out again: a change to it that
// would break a gateway and a node of different builds fails here.
#[derive(Serialize)]
struct BatchRequest {
    requests: Vec<ShopRequest>,
}

#[derive(Serialize)]
struct ShopRequest {
    post: bool,
    path: String,
    idempotency_key: Option<String>,
}

#[derive(Deserialize, Debug)]
struct ShopReply {
    status: u16,
    content_type: Option<String>,
    body: Vec<u8>,
}

#[derive(Deserialize)]
struct BatchReply {
    replies: Vec<ShopReply>,
}

fn request(post: bool, path: &str, key: Option<&str>) -> ShopRequest {
    ShopRequest {
        post,
        path: path.into(),
        idempotency_key: key.map(str::to_string),
    }
}

async fn send(url: &str, body: Vec<u8>) -> (u16, Vec<u8>) {
    // A connection per request: a refused body may be left unread.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let resp = http
        .post(format!("{url}/batch"))
        .body(body)
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{url}/batch: {e}"));
    let status = resp.status().as_u16();
    (status, resp.bytes().await.unwrap().to_vec())
}

async fn batch(url: &str, requests: Vec<ShopRequest>) -> Vec<(u16, Value)> {
    let (status, bytes) = send(url, codec::encode(&BatchRequest { requests }).unwrap()).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
    // The node's start byte, then the replies.
    let (&started, bytes) = bytes.split_first().expect("an empty batch reply");
    assert_eq!(started, b'+', "the batch reply's first byte");
    let reply: BatchReply = codec::decode(bytes).unwrap();
    reply
        .replies
        .into_iter()
        .map(|r| {
            assert_eq!(r.content_type.as_deref(), Some("application/json"), "{r:?}");
            (r.status, serde_json::from_slice(&r.body).unwrap())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_request_of_a_batch_is_answered_as_if_alone() {
    let c = Cluster::start(24000, &[]).await;
    let leader = c.wait_for_leader(Duration::from_secs(20)).await;
    let node = c.node_url(leader);
    let (s, user) = c.post("/payment/create_user").await;
    assert_eq!(s, 200, "{user}");
    let user = user["user_id"].as_str().unwrap().to_string();

    let replies = batch(
        &node,
        vec![
            request(true, &format!("/payment/add_funds/{user}/5"), Some("b-1")),
            // The same key again: applied once, answered alike.
            request(true, &format!("/payment/add_funds/{user}/5"), Some("b-1")),
            request(true, &format!("/payment/add_funds/{user}/7"), Some("b-2")),
            request(false, "/payment/find_user/no-such-user", None),
            request(true, "/payment/add_funds/x/not-a-number", None),
            // Not a shop route: refused inside the batch, whatever it is.
            request(true, "/cluster/remove/2", None),
            request(false, "/cluster/status", None),
            request(true, "/batch", None),
            request(true, "/orders/../cluster/remove/2", None),
        ],
    )
    .await;
    let statuses: Vec<u16> = replies.iter().map(|r| r.0).collect();
    assert_eq!(statuses, [200, 200, 200, 404, 400, 400, 400, 400, 400]);
    for (status, body) in &replies[3..] {
        assert!(body["error"].as_str().is_some(), "{status} {body}");
    }
    assert_eq!(credit(&c, &user).await, 12);

    let (s, alone) = c.get(&format!("/payment/find_user/{user}")).await;
    assert_eq!(s, 200);
    let in_batch = batch(
        &node,
        vec![request(false, &format!("/payment/find_user/{user}"), None)],
    )
    .await;
    assert_eq!(in_batch, [(200, alone.clone())]);

    // Through the gateway, a batch carries the path as a single request
    // would send it: dot segments resolved. (Sent raw: an HTTP client
    // library would resolve them itself.)
    let dotted = raw_get(&c.gateway(), &format!("/payment/./x/../find_user/{user}")).await;
    assert!(dotted.starts_with("HTTP/1.1 200"), "{dotted}");
    let body = dotted.split("\r\n\r\n").nth(1).unwrap_or_default();
    assert_eq!(
        serde_json::from_str::<Value>(body).ok(),
        Some(alone),
        "{dotted}"
    );
}

/// A GET written byte for byte: (status line + headers + body) as text.
async fn raw_get(base: &str, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = base.trim_start_matches("http://");
    let mut tcp = tokio::net::TcpStream::connect(host).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(30), tcp.read_to_string(&mut answer))
        .await
        .expect("the gateway answered within 30 s")
        .unwrap();
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_batch_gets_a_json_4xx_and_changes_nothing() {
    let c = Cluster::start(24100, &[]).await;
    let leader = c.wait_for_leader(Duration::from_secs(20)).await;
    let (s, user) = c.post("/payment/create_user").await;
    assert_eq!(s, 200, "{user}");
    let user = user["user_id"].as_str().unwrap().to_string();
    let add = request(true, &format!("/payment/add_funds/{user}/1"), None);

    let too_many = BatchRequest {
        requests: (0..513).map(|_| request(true, &add.path, None)).collect(),
    };
    let mut trailing = codec::encode(&BatchRequest {
        requests: vec![request(true, &add.path, None)],
    })
    .unwrap();
    trailing.push(0);
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("garbage", b"not a batch".to_vec(), 400),
        // Ten bytes claiming a 16 TiB string.
        (
            "16 TiB claim",
            vec![0x01, 0x00, 0xfd, 0, 0, 0, 0, 0, 0x10, 0, 0],
            400,
        ),
        ("513 requests", codec::encode(&too_many).unwrap(), 400),
        ("trailing byte", trailing, 400),
        ("over the body limit", vec![0; 300 * 1024], 413),
    ];
    for node in [c.node_url(leader), c.node_url(leader % 3 + 1)] {
        for (what, body, expected) in &cases {
            let (status, bytes) = send(&node, body.clone()).await;
            let body: Value = serde_json::from_slice(&bytes).unwrap_or_default();
            assert_eq!(status, *expected, "{what}: {body}");
            assert!(body["error"].as_str().is_some(), "{what}: {body}");
        }
    }
    assert_eq!(
        credit(&c, &user).await,
        0,
        "a refused batch changed nothing"
    );

    // The gateway does not pass `/batch` on from clients.
    let (s, body) = c.post("/batch").await;
    assert_eq!(s, 401, "{body}");
}
