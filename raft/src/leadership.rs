//! Moving the leadership to a chosen voter on demand (`raftcart cluster
//! transfer-leader`, and a leader's SIGTERM), built from openraft 0.9's
//! parts, which have no transfer of their own.
//!
//! The leader holds every new request (the executor answers "not the
//! leader", and callers retry), turns off its own elections, waits until
//! the target holds its whole log, and asks the target to stand for
//! election (`/raft/campaign`, signed). The target, with the longest log,
//! stands in the next term, so Raft's own rules keep it safe. The old
//! leader grants it its vote at once (its lease on itself dates from its own
//! election) and steps down: in a cluster of three that is a majority. The
//! leader then keeps up its heartbeats throughout, so the third voter never
//! loses it and so never stands against the target. With more voters the
//! target also needs voters whose lease, renewed by every heartbeat, has run
//! out, so the leader stops its heartbeats once the target holds its log and
//! waits the lease out before it asks. The requests held meanwhile go to
//! the new leader.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::attempt::Attempt;
use crate::peer_client::PeerClient;
use raftcart_types::{codec, NodeId, Raft};

pub const PATH_CAMPAIGN: &str = "/raft/campaign";

/// A voter may take over only when at most this many entries behind; it is
/// then given the rest before the election.
pub const MAX_TRANSFER_LAG: u64 = 1000;

/// Asks a node to stand for election, if the cluster is still in `term`:
/// a late or replayed request does nothing.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CampaignRequest {
    pub term: u64,
    pub from: NodeId,
}

/// Set while this node hands its leadership away: requests wait.
#[derive(Default)]
pub struct Handover(AtomicBool);

impl Handover {
    pub fn in_progress(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

struct Candidate {
    id: NodeId,
    raft_addr: String,
    matched: u64,
}

/// Runs on the leader: moves the leadership to `to`, or to the most
/// caught-up voter that answers.
pub async fn transfer(
    raft: &Raft,
    peers: &PeerClient,
    handover: &Handover,
    to: Option<NodeId>,
) -> Attempt {
    let (me, term_now) = {
        let m = raft.metrics().borrow().clone();
        (m.id, m.current_term)
    };
    if to == Some(me) {
        // Also the answer to a retry whose first attempt moved the
        // leadership here.
        return Attempt::done(format!("node {me} leads (term {term_now})"));
    }
    let (term, last_log, candidates, voters) = {
        let metrics = raft.metrics();
        let m = metrics.borrow();
        if m.current_leader != Some(me) {
            return Attempt::NotLeader(m.current_leader);
        }
        let membership = m.membership_config.membership();
        if let Some(to) = to {
            if membership.get_node(&to).is_none() {
                return Attempt::not_found(format!("node {to} is not a member"));
            }
            if !membership.voter_ids().any(|v| v == to) {
                return Attempt::refused(format!(
                    "node {to} is a learner: only a voter can lead (promote it first)"
                ));
            }
        }
        let matched = m.replication.clone().unwrap_or_default();
        let candidates: Vec<Candidate> = membership
            .voter_ids()
            .filter(|v| *v != me && to.is_none_or(|to| to == *v))
            .filter_map(|v| {
                Some(Candidate {
                    id: v,
                    raft_addr: membership.get_node(&v)?.raft_addr.clone(),
                    matched: matched.get(&v).cloned().flatten().map_or(0, |l| l.index),
                })
            })
            .collect();
        (
            m.current_term,
            m.last_log_index.unwrap_or(0),
            candidates,
            membership.voter_ids().count(),
        )
    };
    let mut candidates = candidates;
    candidates.sort_by_key(|c| std::cmp::Reverse(c.matched));
    let mut problems = Vec::new();
    let mut target = None;
    for c in candidates {
        let behind = last_log.saturating_sub(c.matched);
        if behind > MAX_TRANSFER_LAG {
            problems.push(format!(
                "node {} is {behind} entries behind (at most {MAX_TRANSFER_LAG})",
                c.id
            ));
            continue;
        }
        match peers
            .check_holds_key(&c.raft_addr, Duration::from_millis(500))
            .await
        {
            Ok(()) => {
                target = Some(c);
                break;
            }
            Err(e) => problems.push(format!("node {} does not answer: {e}", c.id)),
        }
    }
    let Some(target) = target else {
        return Attempt::refused(if problems.is_empty() {
            "no other voter to hand the leadership to".into()
        } else {
            format!("no voter can take over: {}", problems.join("; "))
        });
    };
    handover.0.store(true, Ordering::Release);
    let runtime = raft.runtime_config();
    runtime.elect(false);
    // The target's vote and this node's make a majority of at most three
    // voters; with more, the target also needs voters whose lease has run
    // out since the last heartbeat.
    let wait_out_lease = voters / 2 + 1 > 2;
    let result = hand_over(raft, peers, term, me, &target, wait_out_lease).await;
    let runtime = raft.runtime_config();
    runtime.heartbeat(true);
    runtime.elect(true);
    handover.0.store(false, Ordering::Release);
    match result {
        Ok(term) => Attempt::done(format!(
            "node {} leads (term {term}), taking over from node {me}",
            target.id
        )),
        Err(HandOver::Elsewhere { leader, term }) => Attempt::Unavailable(format!(
            "node {leader} won the election of term {term}, not node {}",
            target.id
        )),
        Err(HandOver::Failed(why)) => Attempt::Unavailable(format!(
            "the leadership did not move to node {}: {why}",
            target.id
        )),
    }
}

/// How a hand-over that elected no leader, or the wrong one, ended.
enum HandOver {
    Failed(String),
    /// Another voter stood in the meantime and won: Raft kept the cluster
    /// safe, but the leadership is not where it was asked to go. Answered
    /// as unavailable, so the executor tries again on the new leader.
    Elsewhere {
        leader: NodeId,
        term: u64,
    },
}

async fn hand_over(
    raft: &Raft,
    peers: &PeerClient,
    term: u64,
    me: NodeId,
    target: &Candidate,
    wait_out_lease: bool,
) -> Result<u64, HandOver> {
    // Everything this node appended, writes already under way included,
    // must reach the target: with the longest log it wins the election.
    let config = raft.config().clone();
    // Long enough for the target's candidacy to outlast the other voters'
    // leases and one retry, where the old leader's vote is not enough.
    let settle = Duration::from_millis(4 * config.election_timeout_max);
    let last_log = {
        // Entries proposed before the hold are appended by now or never.
        tokio::time::sleep(Duration::from_millis(10)).await;
        raft.metrics().borrow().last_log_index.unwrap_or(0)
    };
    raft.wait(Some(settle))
        .metrics(
            |m| {
                m.replication
                    .as_ref()
                    .and_then(|r| r.get(&target.id).cloned().flatten())
                    .is_some_and(|l| l.index >= last_log)
            },
            "target caught up",
        )
        .await
        .map_err(|e| HandOver::Failed(format!("it did not catch up with index {last_log}: {e}")))?;
    if wait_out_lease {
        raft.runtime_config().heartbeat(false);
        tokio::time::sleep(Duration::from_millis(config.election_timeout_max + 20)).await;
    }
    let body = codec::encode(&CampaignRequest { term, from: me })
        .map_err(|e| HandOver::Failed(format!("encoding: {e}")))?;
    peers
        .post(
            &target.raft_addr,
            PATH_CAMPAIGN,
            body,
            Duration::from_millis(500),
        )
        .await
        .map_err(|e| HandOver::Failed(format!("asking it to stand: {e}")))?;
    let elected = raft
        .wait(Some(settle))
        .metrics(
            |m| m.current_term > term && m.current_leader.is_some_and(|l| l != me),
            "new leader",
        )
        .await
        .map_err(|e| HandOver::Failed(format!("no new leader in time: {e}")))?;
    match elected.current_leader {
        Some(leader) if leader != target.id => Err(HandOver::Elsewhere {
            leader,
            term: elected.current_term,
        }),
        _ => Ok(elected.current_term),
    }
}

/// Runs on the target: stands for election if nothing changed since the
/// leader asked.
pub async fn campaign(raft: &Raft, req: CampaignRequest) -> Result<(), String> {
    let (term, leader) = {
        let m = raft.metrics();
        let m = m.borrow();
        (m.current_term, m.current_leader)
    };
    if term != req.term {
        return Err(format!(
            "not standing: the term is {term}, the request was for {}",
            req.term
        ));
    }
    // Only the leader this node follows may hand its leadership over.
    if leader != Some(req.from) {
        return Err(format!(
            "not standing: node {} does not lead here (the leader is {leader:?})",
            req.from
        ));
    }
    tracing::info!(
        from = req.from,
        term,
        "standing for election at the leader's request"
    );
    raft.trigger()
        .elect()
        .await
        .map_err(|e| format!("cannot stand: {e}"))
}
