//! Membership changes, run on the leader: add a learner, promote it to
//! voter, remove a member. Each is refused with a clear reason before
//! openraft is asked, and each goes through openraft's joint consensus.
//! Every answer ends with the committed membership it left.

use std::collections::BTreeSet;
use std::time::Duration;

use openraft::error::{ChangeMembershipError, ClientWriteError, RaftError};
use openraft::{ChangeMembers, Membership};
use serde::{Deserialize, Serialize};

use crate::attempt::Attempt;
use crate::peer_client::PeerClient;
use raftcart_types::{NodeId, NodeInfo, Raft};

/// A learner may be promoted only when at most this many entries behind.
pub const MAX_PROMOTE_LAG: u64 = 100;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MembershipOp {
    AddLearner { id: NodeId, info: NodeInfo },
    Promote { id: NodeId },
    Remove { id: NodeId },
}

/// "voters 1, 2, 3; learners 4".
pub fn describe(m: &Membership<NodeId, NodeInfo>) -> String {
    let list = |ids: Vec<NodeId>| {
        ids.iter()
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let voters = list(m.voter_ids().collect());
    let learners: Vec<NodeId> = m.learner_ids().collect();
    match learners.is_empty() {
        true => format!("voters {voters}"),
        false => format!("voters {voters}; learners {}", list(learners)),
    }
}

/// The membership as a quorum confirms it: this node still leads, and
/// what it reports is not a deposed leader's view.
async fn confirmed(raft: &Raft) -> Result<String, Attempt> {
    match raft.ensure_linearizable().await {
        Ok(_) => Ok(describe(
            raft.metrics().borrow().membership_config.membership(),
        )),
        Err(RaftError::APIError(openraft::error::CheckIsLeaderError::ForwardToLeader(f))) => {
            Err(Attempt::NotLeader(f.leader_id))
        }
        Err(e) => Err(Attempt::Unavailable(e.to_string())),
    }
}

struct View {
    voters: BTreeSet<NodeId>,
    members: BTreeSet<NodeId>,
    last_log: u64,
    matched: Option<u64>,
}

fn view(raft: &Raft, id: NodeId) -> View {
    let metrics = raft.metrics();
    let m = metrics.borrow();
    let membership = m.membership_config.membership();
    View {
        voters: membership.voter_ids().collect(),
        members: membership.nodes().map(|(n, _)| *n).collect(),
        last_log: m.last_log_index.unwrap_or(0),
        matched: m
            .replication
            .as_ref()
            .and_then(|r| r.get(&id).cloned().flatten())
            .map(|l| l.index),
    }
}

pub async fn run(raft: &Raft, peers: &PeerClient, op: &MembershipOp) -> Attempt {
    let id = match op {
        MembershipOp::AddLearner { id, .. }
        | MembershipOp::Promote { id }
        | MembershipOp::Remove { id } => *id,
    };
    let v = view(raft, id);
    let change = match op {
        MembershipOp::AddLearner { id, info } => {
            if v.members.contains(id) {
                return Attempt::refused(format!("node {id} is already a member"));
            }
            // Only a key holder may join: it would otherwise receive every
            // record, and its answers would count towards quorums.
            if let Err(e) = peers
                .check_holds_key(&info.raft_addr, Duration::from_secs(2))
                .await
            {
                return Attempt::refused(format!("node {id} cannot be added: {e}"));
            }
            // Not blocking: the learner catches up in the background and
            // `cluster status` shows its lag.
            return match raft.add_learner(*id, info.clone(), false).await {
                Ok(resp) => Attempt::done(format!(
                    "node {id} added as a learner; {}",
                    resp.membership.as_ref().map(describe).unwrap_or_default()
                )),
                Err(e) => write_error(e),
            };
        }
        MembershipOp::Promote { id } => {
            if !v.members.contains(id) {
                return Attempt::not_found(format!("node {id} is not a member"));
            }
            if v.voters.contains(id) {
                return match confirmed(raft).await {
                    Ok(members) => {
                        Attempt::done(format!("node {id} is already a voter; {members}"))
                    }
                    Err(attempt) => attempt,
                };
            }
            let behind = v.last_log.saturating_sub(v.matched.unwrap_or(0));
            if v.matched.is_none() || behind > MAX_PROMOTE_LAG {
                return Attempt::refused(format!(
                    "node {id} has not caught up: {behind} entries behind (at most {MAX_PROMOTE_LAG})"
                ));
            }
            ChangeMembers::AddVoterIds(BTreeSet::from([*id]))
        }
        MembershipOp::Remove { id } => {
            if !v.members.contains(id) {
                return Attempt::not_found(format!("node {id} is not a member"));
            }
            if v.voters.contains(id) {
                if v.voters.len() == 1 {
                    return Attempt::refused(format!("node {id} is the last voter"));
                }
                ChangeMembers::RemoveVoters(BTreeSet::from([*id]))
            } else {
                ChangeMembers::RemoveNodes(BTreeSet::from([*id]))
            }
        }
    };
    match raft.change_membership(change, false).await {
        Ok(resp) => {
            let members = resp.membership.as_ref().map(describe).unwrap_or_default();
            Attempt::done(match op {
                MembershipOp::Promote { id } => format!("node {id} is now a voter; {members}"),
                _ => format!("node {id} removed; {members}"),
            })
        }
        Err(e) => write_error(e),
    }
}

fn write_error(e: RaftError<NodeId, ClientWriteError<NodeId, NodeInfo>>) -> Attempt {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => {
            Attempt::NotLeader(f.leader_id)
        }
        // The previous change is still committing: retry within the wait.
        RaftError::APIError(ClientWriteError::ChangeMembershipError(
            ChangeMembershipError::InProgress(p),
        )) => Attempt::Unavailable(p.to_string()),
        RaftError::APIError(ClientWriteError::ChangeMembershipError(e)) => {
            Attempt::refused(e.to_string())
        }
        other => Attempt::Unavailable(other.to_string()),
    }
}
