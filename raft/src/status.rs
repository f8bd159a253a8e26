//! A node's view of the cluster, as `GET /cluster/status` shows it.

use serde::{Deserialize, Serialize};

use raftcart_types::{NodeId, Raft};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberStatus {
    pub id: NodeId,
    pub api_addr: String,
    pub raft_addr: String,
    pub voter: bool,
    /// The last log index the leader knows this member holds (leader only).
    pub matched_index: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterStatus {
    pub node_id: NodeId,
    /// "Leader", "Follower", "Candidate", "Learner" or "Shutdown".
    pub state: String,
    pub leader_id: Option<NodeId>,
    pub term: u64,
    pub last_log_index: Option<u64>,
    pub last_applied: Option<u64>,
    pub snapshot_index: Option<u64>,
    pub purged_index: Option<u64>,
    pub members: Vec<MemberStatus>,
    /// Whether the membership is a joint configuration: a change is between
    /// openraft's two steps, and a quorum needs a majority of both the old
    /// and the new voters.
    #[serde(default)]
    pub joint: bool,
    /// How many times this node's process has started on its data dir: 1
    /// until it is restarted (filled in by the node, not by Raft).
    #[serde(default)]
    pub starts: u64,
}

pub fn cluster_status(raft: &Raft) -> ClusterStatus {
    let metrics = raft.metrics();
    let m = metrics.borrow();
    let membership = m.membership_config.membership();
    let voters: Vec<NodeId> = membership.voter_ids().collect();
    let matched = m.replication.as_ref();
    let members = membership
        .nodes()
        .map(|(id, node)| MemberStatus {
            id: *id,
            api_addr: node.api_addr.clone(),
            raft_addr: node.raft_addr.clone(),
            voter: voters.contains(id),
            matched_index: matched.and_then(|r| r.get(id).cloned().flatten().map(|l| l.index)),
        })
        .collect();
    ClusterStatus {
        node_id: m.id,
        state: format!("{:?}", m.state),
        leader_id: m.current_leader,
        term: m.current_term,
        last_log_index: m.last_log_index,
        last_applied: m.last_applied.map(|l| l.index),
        snapshot_index: m.snapshot.map(|l| l.index),
        purged_index: m.purged.map(|l| l.index),
        members,
        joint: membership.get_joint_config().len() > 1,
        starts: 0,
    }
}
