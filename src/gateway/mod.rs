//! The front door of `raftcart up` (port 8000): sends each request to a
//! live node, the leader when it is known, and moves on to another node
//! when one is down or has no leader. It starts from the addresses it is
//! given and then follows the cluster's membership as the leader reports
//! it, so that nodes added later are reached and removed ones are not.
//!
//! Writes get an `Idempotency-Key` here when the client sent none, so that
//! trying a second node after a cut connection can never apply twice.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use futures::stream::{FuturesUnordered, StreamExt};
use raftcart_raft::ClusterStatus;
use serde_json::json;

use crate::serve::CLIENT_IDLE;
use crate::tls::Tls;

const MAX_BODY: usize = 1024 * 1024;

pub struct Gateway {
    /// Node API addresses, HOST:PORT: the members as the leader last
    /// reported them, or the addresses given at start.
    backends: RwLock<Arc<Vec<String>>>,
    /// "https" when the nodes speak TLS.
    scheme: &'static str,
    http: reqwest::Client,
    /// The leader's API address, when known.
    leader: tokio::sync::watch::Sender<Option<String>>,
    next: AtomicUsize,
    /// How long one client request may keep trying nodes.
    wait: Duration,
    /// The admin token, where the nodes require it for `/cluster/status`.
    status_token: Option<String>,
}

impl Gateway {
    /// With `tls`, the nodes are reached over https, trusting its CA.
    pub fn new(
        backends: Vec<String>,
        wait: Duration,
        status_token: Option<String>,
        tls: Option<&Tls>,
    ) -> anyhow::Result<Arc<Self>> {
        let builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(300))
            .tcp_nodelay(true)
            .pool_idle_timeout(CLIENT_IDLE)
            .pool_max_idle_per_host(1024);
        let builder = match tls {
            Some(tls) => tls.api_client(builder)?,
            None => builder,
        };
        let http = builder
            .build()
            .context("building the gateway's HTTP client")?;
        Ok(Arc::new(Gateway {
            scheme: if tls.is_some() { "https" } else { "http" },
            backends: RwLock::new(Arc::new(backends)),
            http,
            leader: tokio::sync::watch::Sender::new(None),
            next: AtomicUsize::new(0),
            wait,
            status_token,
        }))
    }

    pub fn router(self: &Arc<Self>) -> Router {
        Router::new().fallback(proxy).with_state(self.clone())
    }

    fn backends(&self) -> Arc<Vec<String>> {
        self.backends.read().expect("never poisoned").clone()
    }

    /// Learns who leads, so requests skip the forwarding hop, and which
    /// nodes are members. Asks every node at once and acts on each answer
    /// as it comes, believing the highest term seen, so a frozen or deposed
    /// leader neither delays nor misleads it. Runs until the process ends.
    pub async fn track_leader(self: Arc<Self>) {
        let mut best_term = 0;
        loop {
            let backends = self.backends();
            let mut views: FuturesUnordered<_> = backends.iter().map(|b| self.view_of(b)).collect();
            while let Some(view) = views.next().await {
                let Some(view) = view else { continue };
                if view.term < best_term {
                    continue;
                }
                // In the newest term a node that knows the leader beats one
                // that does not know it yet.
                if view.term > best_term || view.leader.is_some() {
                    best_term = view.term;
                    let found = view.leader;
                    self.leader
                        .send_if_modified(|l| std::mem::replace(l, found.clone()) != found);
                }
                // The leader's own membership is the newest a node can
                // report: follow it, never an empty one.
                if let Some(members) = view.members_if_leader {
                    if !members.is_empty() && view.term >= best_term {
                        let mut current = self.backends.write().expect("never poisoned");
                        if **current != members {
                            tracing::info!(?members, "gateway: the cluster's members changed");
                            *current = Arc::new(members);
                        }
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// What one node says of the cluster.
    async fn view_of(&self, backend: &str) -> Option<NodeView> {
        let mut req = self
            .http
            .get(format!("{}://{backend}/cluster/status", self.scheme));
        if let Some(token) = &self.status_token {
            req = req.bearer_auth(token);
        }
        let resp = req.timeout(Duration::from_millis(300)).send().await.ok()?;
        let status: ClusterStatus = resp.json().await.ok()?;
        let leader = status.leader_id.and_then(|leader| {
            status
                .members
                .iter()
                .find(|m| m.id == leader)
                .map(|m| m.api_addr.clone())
        });
        let is_leader = status.leader_id == Some(status.node_id);
        Some(NodeView {
            term: status.term,
            leader,
            members_if_leader: is_leader
                .then(|| status.members.into_iter().map(|m| m.api_addr).collect()),
        })
    }

    /// The leader if known, else the next member in turn.
    fn first_choice(&self, backends: &[String]) -> usize {
        let leader = self.leader.borrow().clone();
        leader
            .and_then(|l| backends.iter().position(|b| *b == l))
            .unwrap_or_else(|| self.next.fetch_add(1, Ordering::Relaxed) % backends.len())
    }
}

struct NodeView {
    term: u64,
    /// The leader's API address, if the node knows one.
    leader: Option<String>,
    /// The members' API addresses, when the node is the leader.
    members_if_leader: Option<Vec<String>>,
}

/// Whether the gateway passes requests for `path` on: the shop's routes and
/// the read-only cluster routes, never the operator's (which change or dump
/// the cluster) nor node-to-node ones. Judged on the path as it will be
/// sent, after URL normalisation (`/cluster/status/../remove/2` is
/// `/cluster/remove/2`).
pub fn is_served(path: &str) -> bool {
    const READ_ONLY: [&str; 3] = ["/cluster/status", "/cluster/node", "/cluster/overview"];
    if path.starts_with("/raft/") || path.starts_with("/debug/") {
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
    // Any host will do to see the path as reqwest will send it.
    let normalised = reqwest::Url::parse(&format!("http://raftcart{path}"));
    if !normalised.is_ok_and(|url| is_served(url.path())) {
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
    }
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
    let mut backends = gw.backends();
    let mut idx = gw.first_choice(&backends);
    let mut last_problem = String::from("no node answered");
    let mut tried_in_round = 0;
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("no node could serve the request: {last_problem}"),
            );
        }
        let backend = &backends[idx];
        let sent = gw
            .http
            .request(
                parts.method.clone(),
                format!("{}://{backend}{path}", gw.scheme),
            )
            .headers(headers.clone())
            .body(body.clone())
            .timeout(remaining)
            .send();
        // A frozen node would hold the request for the whole wait: when
        // another node becomes leader meanwhile, go there instead. Safe to
        // abandon: a write carries an idempotency key.
        let mut leader = gw.leader.subscribe();
        let seen = leader.borrow_and_update().clone();
        // (The watch's guard is not Send: drop it inside.)
        let moved = async {
            let _ = leader
                .wait_for(|l| *l != seen && l.is_some() && l.as_ref() != Some(backend))
                .await
                .is_ok();
        };
        tokio::select! {
            sent = sent => match sent {
                Ok(resp) if resp.status() != StatusCode::SERVICE_UNAVAILABLE => {
                    match relay(resp).await {
                        Ok(out) => return out,
                        Err(problem) => last_problem = format!("{backend}: {problem}"),
                    }
                }
                Ok(resp) => last_problem = format!("{backend} answered {}", resp.status()),
                Err(e) => last_problem = format!("{backend}: {e}"),
            },
            _ = moved => {
                last_problem = format!("{backend} stopped leading");
                backends = gw.backends();
                idx = gw.first_choice(&backends);
                tried_in_round = 0;
                continue;
            }
        }
        idx = (idx + 1) % backends.len();
        tried_in_round += 1;
        if tried_in_round >= backends.len() {
            backends = gw.backends();
            idx %= backends.len();
            tried_in_round = 0;
            tokio::time::sleep(Duration::from_millis(50).min(remaining)).await;
        }
    }
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
    use super::is_served;

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
        ] {
            assert!(!is_served(refused), "{refused}");
        }
    }
}
