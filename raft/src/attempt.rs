//! What running an operation on a node comes to: one attempt's answer
//! (`Attempt`, which also travels back from the leader to a forwarding
//! node) and the error a client finally sees (`ClusterError`).

use raftcart_domain::Outcome;
use serde::{Deserialize, Serialize};

use raftcart_types::NodeId;

/// What one attempt on one node came to.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Attempt {
    Done(Outcome),
    /// The leader's commit point, as confirmed by a quorum.
    ReadIndex(u64),
    /// This node is not the leader; it names the one it knows, if any.
    NotLeader(Option<NodeId>),
    /// No answer could be had in time (lost quorum, shutting down...). For a
    /// write the outcome is unknown; a retry with the same id is safe.
    Unavailable(String),
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ClusterError {
    /// No leader answered within the wait: HTTP 503.
    #[error("{0}")]
    Unavailable(String),
}
