//! The front door of `raftcart up` (port 8000): sends each request to a
//! live node, the leader when it is known, and moves on to another node
//! when one is down or has no leader. It starts from the addresses it is
//! given and then follows the cluster's membership as the leader reports
//! it, so that nodes added later are reached and removed ones are not.
//!
//! Writes get an `Idempotency-Key` here when the client sent none, so that
//! trying a second node after a cut connection can never apply twice.
//!
//! The shop's requests (no body, no credentials) travel to the nodes in
//! batches (`batcher`, `POST /batch`): under load one upstream exchange
//! carries many client requests. A request whose batch fails, or which its
//! batch answers 503, is sent again on its own, as every other request is.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::json;

use crate::batch::{is_shop_route, ShopReply, ShopRequest};
use crate::tls::Tls;

mod batcher;
mod nodes;
use batcher::Batcher;
use nodes::Nodes;

const MAX_BODY: usize = 1024 * 1024;

pub struct Gateway {
    nodes: Arc<Nodes>,
    /// How long one client request may keep trying nodes.
    wait: Duration,
    /// Sends the shop's requests on in batches.
    batcher: Batcher,
}

impl Gateway {
    /// With `tls`, the nodes are reached over https, trusting its CA.
    pub fn new(
        backends: Vec<String>,
        wait: Duration,
        status_token: Option<String>,
        tls: Option<&Tls>,
    ) -> anyhow::Result<Arc<Self>> {
        let nodes = Arc::new(Nodes::new(backends, status_token, tls)?);
        Ok(Arc::new(Gateway {
            batcher: Batcher::start(nodes.clone()),
            nodes,
            wait,
        }))
    }

    pub fn router(self: &Arc<Self>) -> Router {
        Router::new().fallback(proxy).with_state(self.clone())
    }

    /// Learns who leads and which nodes are members; runs until the
    /// process ends.
    pub async fn track_leader(self: Arc<Self>) {
        self.nodes.clone().track_leader().await
    }
}

/// Whether the gateway passes requests for `path` on: the shop's routes and
/// the read-only cluster routes, never the operator's (which change or dump
/// the cluster) nor node-to-node ones. Judged on the path as it will be
/// sent, after URL normalisation (`/cluster/status/../remove/2` is
/// `/cluster/remove/2`).
pub fn is_served(path: &str) -> bool {
    const READ_ONLY: [&str; 3] = ["/cluster/status", "/cluster/node", "/cluster/overview"];
    if path.starts_with("/raft/") || path.starts_with("/debug/") || path == crate::batch::PATH {
        return false;
    }
    !path.starts_with("/cluster/") || READ_ONLY.contains(&path)
}

async fn proxy(State(gw): State<Arc<Gateway>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let Some(sent_path) = sent_path(&path).filter(|p| is_served(p.split('?').next().unwrap_or("")))
    else {
        return match parts.headers.contains_key("authorization") {
            false => error(
                StatusCode::UNAUTHORIZED,
                "operator routes need the admin token and are served only on a node's own \
                 API address, not through the gateway"
                    .into(),
            ),
            true => error(
                StatusCode::FORBIDDEN,
                "operator routes are not served through the gateway: send them to a node's \
                 own API address"
                    .into(),
            ),
        };
    };
    let body = match to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request body too large".into(),
            )
        }
    };
    let mut headers = reqwest::header::HeaderMap::new();
    for name in ["content-type", "authorization"] {
        if let Some(v) = parts.headers.get(name) {
            headers.insert(name, v.clone());
        }
    }
    match parts.headers.get("idempotency-key") {
        Some(key) => {
            headers.insert("idempotency-key", key.clone());
        }
        None if parts.method != Method::GET => {
            let key = HeaderValue::from_str(&format!("gw-{}", uuid::Uuid::new_v4()))
                .expect("a uuid is a valid header value");
            headers.insert("idempotency-key", key);
        }
        None => {}
    }

    let deadline = Instant::now() + gw.wait;
    if let Some(shop) = batchable(&parts, &headers, &body, &sent_path) {
        // Answered 503 inside the batch (no leader there, say), or the
        // batch failed: try this request on its own, as below.
        if let Some(reply) = gw.batcher.submit(shop, deadline).await {
            if reply.status != StatusCode::SERVICE_UNAVAILABLE.as_u16() {
                return from_shop_reply(reply);
            }
        }
    }
    let sent = gw
        .nodes
        .with_failover(deadline, |backend, remaining| {
            let request = gw
                .nodes
                .http
                .request(
                    parts.method.clone(),
                    format!("{}://{backend}{path}", gw.nodes.scheme),
                )
                .headers(headers.clone())
                .body(body.clone())
                .timeout(remaining);
            async move {
                match request.send().await {
                    Ok(resp) if resp.status() != StatusCode::SERVICE_UNAVAILABLE => {
                        relay(resp).await
                    }
                    Ok(resp) => Err(format!("answered {}", resp.status())),
                    Err(e) => Err(e.to_string()),
                }
            }
        })
        .await;
    match sent {
        Ok(out) => out,
        Err(problem) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("no node could serve the request: {problem}"),
        ),
    }
}

/// The path and query as reqwest will send them, after URL normalisation
/// (`/cluster/status/../remove/2` is `/cluster/remove/2`); `None` if they
/// do not parse. A batch carries this form, and `is_served` judges it.
fn sent_path(path_and_query: &str) -> Option<String> {
    // The shop's paths (ids, numbers, `?stale=true`) are left as they are
    // by normalisation: no need to parse them.
    match is_plain(path_and_query) {
        true => Some(path_and_query.to_string()),
        false => normalised(path_and_query),
    }
}

/// The path and query as the URL parser normalises them.
fn normalised(path_and_query: &str) -> Option<String> {
    // Any host will do to see the path as reqwest will send it.
    let url = reqwest::Url::parse(&format!("http://raftcart{path_and_query}")).ok()?;
    Some(match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_string(),
    })
}

/// A path that URL normalisation leaves as it is: it starts with `/`, its
/// segments hold only letters, digits, `-` and `_` (so none is `.` or
/// `..`, and nothing needs percent-encoding), and its query, if any, only
/// those and `=`, `&` and `.`.
fn is_plain(path_and_query: &str) -> bool {
    let (path, query) = match path_and_query.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (path_and_query, None),
    };
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
    path.starts_with('/')
        && path.bytes().all(|b| word(b) || b == b'/')
        && query.is_none_or(|q| {
            !q.is_empty()
                && q.bytes()
                    .all(|b| word(b) || matches!(b, b'=' | b'&' | b'.'))
        })
}

/// The shop request a client's request stands for, if it can ride in a
/// batch: a GET or POST of a shop route, without a body or credentials.
fn batchable(
    parts: &axum::http::request::Parts,
    headers: &reqwest::header::HeaderMap,
    body: &[u8],
    path: &str,
) -> Option<ShopRequest> {
    let post = match parts.method {
        Method::POST => true,
        Method::GET => false,
        _ => return None,
    };
    if !body.is_empty() || headers.contains_key("authorization") || !is_shop_route(path) {
        return None;
    }
    Some(ShopRequest {
        post,
        path: path.to_string(),
        idempotency_key: headers
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
    })
}

fn from_shop_reply(reply: ShopReply) -> Response {
    let mut out = Response::new(Body::from(reply.body));
    *out.status_mut() = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::BAD_GATEWAY);
    if let Some(ct) = reply
        .content_type
        .and_then(|ct| HeaderValue::from_str(&ct).ok())
    {
        out.headers_mut().insert("content-type", ct);
    }
    out
}

async fn relay(resp: reqwest::Response) -> Result<Response, String> {
    let status = resp.status();
    let content_type = resp.headers().get("content-type").cloned();
    match resp.bytes().await {
        Ok(bytes) => {
            let mut out = Response::new(Body::from(bytes));
            *out.status_mut() = status;
            if let Some(ct) = content_type {
                out.headers_mut().insert("content-type", ct);
            }
            Ok(out)
        }
        Err(e) => Err(format!("reply cut: {e}")),
    }
}

fn error(status: StatusCode, message: String) -> Response {
    (status, axum::Json(json!({ "error": message }))).into_response()
}

#[cfg(test)]
mod tests {
    use super::{batchable, is_plain, is_served, normalised, sent_path};
    use axum::http::{Method, Request};
    use proptest::prelude::*;
    use reqwest::header::{HeaderMap, HeaderValue};

    fn judged(method: Method, path: &str, headers: &[(&'static str, &str)], body: &[u8]) -> bool {
        let (parts, ()) = Request::builder()
            .method(method)
            .uri(path)
            .body(())
            .unwrap()
            .into_parts();
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        batchable(&parts, &map, body, path).is_some()
    }

    #[test]
    fn only_bodiless_uncredentialed_shop_requests_ride_in_batches() {
        assert!(judged(Method::POST, "/orders/checkout/1", &[], b""));
        assert!(judged(Method::GET, "/stock/find/x?stale=true", &[], b""));
        assert!(judged(
            Method::POST,
            "/payment/add_funds/u/1",
            &[("idempotency-key", "k")],
            b""
        ));
        let key = batchable(
            &Request::builder()
                .method(Method::POST)
                .uri("/payment/pay/u/1")
                .body(())
                .unwrap()
                .into_parts()
                .0,
            &[(
                "idempotency-key".parse().unwrap(),
                HeaderValue::from_static("k1"),
            )]
            .into_iter()
            .collect(),
            b"",
            "/payment/pay/u/1",
        )
        .unwrap()
        .idempotency_key;
        assert_eq!(key.as_deref(), Some("k1"));

        assert!(!judged(Method::POST, "/orders/checkout/1", &[], b"x"));
        assert!(!judged(
            Method::POST,
            "/orders/checkout/1",
            &[("authorization", "Bearer t")],
            b""
        ));
        assert!(!judged(Method::PUT, "/orders/checkout/1", &[], b""));
        assert!(!judged(Method::DELETE, "/orders/checkout/1", &[], b""));
        assert!(!judged(Method::GET, "/cluster/status", &[], b""));
        assert!(!judged(Method::GET, "/metrics", &[], b""));
        assert!(!judged(Method::POST, "/batch", &[], b""));
        assert!(!judged(
            Method::POST,
            "/orders/../cluster/remove/2",
            &[],
            b""
        ));
    }

    #[test]
    fn a_path_is_sent_as_normalisation_makes_it() {
        for path in [
            "/orders/checkout/1",
            "/stock/find/3fa85f64-5717-4562-b3fc-2c963f66afa6?stale=true",
            "/orders/../cluster/remove/2",
            "/orders/./checkout/1",
            "/cluster/status/%2e%2e/remove/2",
            "/orders/checkout/a b",
            "/orders//checkout",
            "/stock/find/x?",
            "/stock/find/x?a=<b>",
            "/",
        ] {
            assert_eq!(sent_path(path), normalised(path), "{path}");
        }
        assert_eq!(
            sent_path("/orders/../cluster/remove/2").as_deref(),
            Some("/cluster/remove/2")
        );
        assert!(is_plain("/stock/find/x?stale=true"));
        assert!(!is_plain("/orders/../cluster/remove/2"));
        assert!(!is_plain("/stock/find/x?"));
    }

    proptest! {
        #[test]
        fn the_plain_path_shortcut_agrees_with_the_url_parser(
            path in "/[a-zA-Z0-9/_.%-]{0,40}(\\?[a-z=&.%]{0,12})?"
        ) {
            prop_assert_eq!(sent_path(&path), normalised(&path));
        }
    }

    #[test]
    fn the_gateway_serves_the_shop_and_the_read_only_cluster_routes_only() {
        for served in [
            "/orders/checkout/1",
            "/stock/find/x",
            "/cluster/status",
            "/cluster/overview",
            "/metrics",
            "/ui",
        ] {
            assert!(is_served(served), "{served}");
        }
        for refused in [
            "/cluster/remove/2",
            "/cluster/add-learner/9/a:1/b:2",
            "/cluster/promote/9",
            "/cluster/snapshot",
            "/cluster/backup",
            "/cluster/status/extra",
            "/cluster/anything-new",
            "/raft/append",
            "/batch",
        ] {
            assert!(!is_served(refused), "{refused}");
        }
    }
}
