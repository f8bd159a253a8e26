//! The nodes behind the gateway: which exist, which leads, and trying
//! one after another until one answers.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::stream::{FuturesUnordered, StreamExt};
use raftcart_raft::ClusterStatus;

use crate::serve::CLIENT_IDLE;
use crate::tls::Tls;

pub(crate) struct Nodes {
    /// Node API addresses, HOST:PORT: the members as the leader last
    /// reported them, or the addresses given at start.
    backends: RwLock<Arc<Vec<String>>>,
    /// "https" when the nodes speak TLS.
    pub(crate) scheme: &'static str,
    pub(crate) http: reqwest::Client,
    /// The leader's API address, when known.
    leader: tokio::sync::watch::Sender<Option<String>>,
    next: AtomicUsize,
    /// The admin token, where the nodes require it for `/cluster/status`.
    status_token: Option<String>,
}

impl Nodes {
    /// With `tls`, the nodes are reached over https, trusting its CA.
    pub(crate) fn new(
        backends: Vec<String>,
        status_token: Option<String>,
        tls: Option<&Tls>,
    ) -> anyhow::Result<Nodes> {
        // The nodes are the cluster's own addresses: proxy variables in the
        // environment are not for them.
        let builder = reqwest::Client::builder()
            .no_proxy()
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
        Ok(Nodes {
            scheme: if tls.is_some() { "https" } else { "http" },
            backends: RwLock::new(Arc::new(backends)),
            http,
            leader: tokio::sync::watch::Sender::new(None),
            next: AtomicUsize::new(0),
            status_token,
        })
    }

    fn backends(&self) -> Arc<Vec<String>> {
        self.backends.read().expect("never poisoned").clone()
    }

    /// Learns who leads, so requests skip the forwarding hop, and which
    /// nodes are members. Asks every node at once and acts on each answer
    /// as it comes, believing the highest term seen, so a frozen or deposed
    /// leader neither delays nor misleads it. Runs until the process ends.
    pub(crate) async fn track_leader(self: Arc<Self>) {
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

    /// Runs `attempt` on the leader, or on one node after another, until
    /// one succeeds or `deadline` passes; then says what went wrong last.
    /// `attempt(backend, time left)` fails with why. Safe to repeat: a
    /// write carries an idempotency key.
    pub(crate) async fn with_failover<T, F, Fut>(
        &self,
        deadline: Instant,
        mut attempt: F,
    ) -> Result<T, String>
    where
        F: FnMut(&str, Duration) -> Fut,
        Fut: std::future::Future<Output = Result<T, String>>,
    {
        let mut backends = self.backends();
        let mut idx = self.first_choice(&backends);
        let mut last_problem = String::from("no node answered");
        let mut tried_in_round = 0;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(last_problem);
            }
            let backend = &backends[idx];
            // A frozen node would hold the request for the whole wait: when
            // another node becomes leader meanwhile, go there instead.
            let mut leader = self.leader.subscribe();
            let seen = leader.borrow_and_update().clone();
            // (The watch's guard is not Send: drop it inside.)
            let moved = async {
                let _ = leader
                    .wait_for(|l| *l != seen && l.is_some() && l.as_ref() != Some(backend))
                    .await
                    .is_ok();
            };
            tokio::select! {
                done = attempt(backend, remaining) => match done {
                    Ok(out) => return Ok(out),
                    Err(problem) => last_problem = format!("{backend}: {problem}"),
                },
                _ = moved => {
                    last_problem = format!("{backend} stopped leading");
                    backends = self.backends();
                    idx = self.first_choice(&backends);
                    tried_in_round = 0;
                    continue;
                }
            }
            idx = (idx + 1) % backends.len();
            tried_in_round += 1;
            if tried_in_round >= backends.len() {
                backends = self.backends();
                idx %= backends.len();
                tried_in_round = 0;
                tokio::time::sleep(Duration::from_millis(50).min(remaining)).await;
            }
        }
    }
}

struct NodeView {
    term: u64,
    /// The leader's API address, if the node knows one.
    leader: Option<String>,
    /// The members' API addresses, when the node is the leader.
    members_if_leader: Option<Vec<String>>,
}
