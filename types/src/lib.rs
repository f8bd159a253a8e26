//! The types every raftcart crate shares: the openraft type configuration
//! (what a log entry, a node and a snapshot are) and the one binary encoding
//! of everything stored or sent between nodes (`codec`).

pub mod codec;

use std::fmt;
use std::io::Cursor;

use raftcart_domain::{Outcome, Proposals};
use serde::{Deserialize, Serialize};

pub type NodeId = u64;

/// Where a member listens: `api_addr` for clients (HTTP API), `raft_addr` for
/// other members (Raft RPCs and forwarded operations).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    pub api_addr: String,
    pub raft_addr: String,
}

impl fmt::Display for NodeInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "api={} raft={}", self.api_addr, self.raft_addr)
    }
}

openraft::declare_raft_types!(
    pub TypeConfig:
        D = Proposals,
        // One outcome per proposal of the entry, in order.
        R = Vec<Outcome>,
        NodeId = NodeId,
        Node = NodeInfo,
        SnapshotData = Cursor<Vec<u8>>,
);

pub type Raft = openraft::Raft<TypeConfig>;
pub type Entry = openraft::Entry<TypeConfig>;
pub type LogId = openraft::LogId<NodeId>;
pub type StorageError = openraft::StorageError<NodeId>;
pub type StoredMembership = openraft::StoredMembership<NodeId, NodeInfo>;
pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, NodeInfo>;
pub type Snapshot = openraft::storage::Snapshot<TypeConfig>;
pub type Vote = openraft::Vote<NodeId>;
