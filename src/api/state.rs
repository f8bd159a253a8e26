//! What every handler of a node's API shares.

use std::sync::Arc;

use raftcart_raft::Executor;
use raftcart_storage::StateView;

use super::admin_token::AdminToken;
use crate::metrics::Metrics;

#[derive(Clone)]
pub struct AppState {
    pub executor: Arc<Executor>,
    /// This node's state machine, for backups.
    pub view: StateView,
    pub metrics: Arc<Metrics>,
    /// For the live page's calls to the other members.
    pub http: reqwest::Client,
    /// The admin token the operator routes require; without one they are
    /// refused.
    pub admin: Option<Arc<AdminToken>>,
    /// Whether the read-only cluster routes require the token too.
    pub auth_reads: bool,
    /// "https" when the members' API ports speak TLS, else "http".
    pub scheme: &'static str,
    /// How many times this node has started on its data dir.
    pub starts: u64,
}

impl AppState {
    /// This node's view of the cluster, as `/cluster/status` shows it.
    pub fn status(&self) -> raftcart_raft::ClusterStatus {
        let mut status = raftcart_raft::status::cluster_status(self.executor.raft());
        status.starts = self.starts;
        status
    }
}
