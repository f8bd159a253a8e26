//! Standing for election as soon as a majority of the voters has lost the
//! leader, rather than on openraft's own timer.
//!
//! openraft 0.9 lets a follower stand only once the leader's lease (the
//! longest election timeout) *and* its own election timeout have passed
//! since it last heard from the leader, and each node draws that timeout
//! once, when it starts. Two followers whose timeouts are close stand in
//! the same term and split the vote; a follower with a shorter log that
//! stands first is refused and then held back for twice the lease. Either
//! way a failover could take more than twice the election timeout.
//!
//! Here each voter notes when it last heard from the leader (an append or
//! snapshot chunk it accepted). Once that is longer ago than the shortest
//! election timeout, it asks the other voters (signed `/raft/pre-vote`) for
//! their term, their last log id and how long they have gone without the
//! leader. It stands only if a majority, itself included, has lost the
//! leader in the same term, the leader itself did not answer, and none of
//! them holds a longer log (or an equal one and a lower id): one voter
//! stands, and it can win. It stands once the
//! lease has run out at enough of them to give it a majority, and not if it
//! heard from the leader meanwhile. The election itself is openraft's
//! ordinary one, so Raft's rules keep it safe; openraft's own timer stays on
//! for when the voters cannot be asked.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use openraft::{LogId, ServerState};
use serde::{Deserialize, Serialize};

use crate::peer_client::PeerClient;
use raftcart_types::{codec, NodeId, Raft};

pub const PATH_PRE_VOTE: &str = "/raft/pre-vote";

/// When this node last heard from a leader it follows.
pub struct LeaderContact(Mutex<Instant>);

impl Default for LeaderContact {
    /// A node that has just started has heard from no one: it gives the
    /// leader the same time as after a contact before it asks around.
    fn default() -> Self {
        LeaderContact(Mutex::new(Instant::now()))
    }
}

impl LeaderContact {
    pub fn heard(&self) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }

    fn last(&self) -> Instant {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn silent_for(&self) -> Duration {
        self.last().elapsed()
    }
}

/// Only a voter in the same term gets an answer: any other view would
/// not count towards a stand anyway.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PreVoteRequest {
    pub from: NodeId,
    pub term: u64,
}

/// A voter's view, as a node that considers standing needs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreVoteAnswer {
    pub term: u64,
    pub leads: bool,
    pub last_log: Option<LogId<NodeId>>,
    /// Milliseconds since it last heard from the leader.
    pub silent_ms: u64,
}

/// What this node knows, as an answer to a pre-vote.
fn view(raft: &Raft, contact: &LeaderContact) -> PreVoteAnswer {
    let (term, leads) = {
        let m = raft.metrics();
        let m = m.borrow();
        (m.current_term, m.state == ServerState::Leader)
    };
    PreVoteAnswer {
        term,
        leads,
        last_log: raft.data_metrics().borrow().last_log,
        silent_ms: contact.silent_for().as_millis() as u64,
    }
}

/// Answers a pre-vote: what this node knows, nothing changed.
pub fn answer(
    raft: &Raft,
    contact: &LeaderContact,
    req: &PreVoteRequest,
) -> Result<PreVoteAnswer, String> {
    {
        let m = raft.metrics();
        let m = m.borrow();
        let membership = m.membership_config.membership();
        if req.from == m.id || !membership.voter_ids().any(|v| v == req.from) {
            return Err(format!("node {} is not another voter", req.from));
        }
        if req.term != m.current_term {
            return Err(format!(
                "the term here is {}, the question was for {}",
                m.current_term, req.term
            ));
        }
    }
    Ok(view(raft, contact))
}

/// The timings the watch works with, from openraft's config.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Silence after which a voter counts the leader as lost.
    pub silence: Duration,
    /// How long after its last contact a voter refuses to vote (openraft's
    /// leader lease: the longest election timeout).
    pub lease: Duration,
}

impl Timing {
    pub fn of(config: &openraft::Config) -> Timing {
        Timing {
            silence: Duration::from_millis(config.election_timeout_min),
            lease: Duration::from_millis(config.election_timeout_max),
        }
    }
}

/// Kept over the lease's end, for the small difference between when a
/// voter noted its contact and when openraft did.
const LEASE_MARGIN: Duration = Duration::from_millis(15);

/// Whether this node should stand, and when: `Some(wait)` if it should
/// stand after `wait`. `others` are the answers of the other voters that
/// answered; `voters` counts all voters, this node included.
pub fn decide(
    me: NodeId,
    mine: &PreVoteAnswer,
    others: &[(NodeId, PreVoteAnswer)],
    voters: usize,
    timing: Timing,
) -> Option<Duration> {
    let silence = timing.silence.as_millis() as u64;
    if voters < 2 || mine.leads || mine.silent_ms < silence {
        return None;
    }
    if others.iter().any(|(_, a)| a.term > mine.term) {
        // A newer term exists: openraft learns of it by itself.
        return None;
    }
    if others.iter().any(|(_, a)| a.leads) {
        // The leader is alive and answers: it is handing its leadership
        // over, or its heartbeats are late; openraft's own timer is the
        // remedy if they never come.
        return None;
    }
    let lost: Vec<&(NodeId, PreVoteAnswer)> = others
        .iter()
        .filter(|(_, a)| a.term == mine.term && !a.leads && a.silent_ms >= silence)
        .collect();
    let majority = voters / 2 + 1;
    if 1 + lost.len() < majority {
        return None;
    }
    let rank = |id: NodeId, a: &PreVoteAnswer| (a.last_log, std::cmp::Reverse(id));
    if lost.iter().any(|(id, a)| rank(*id, a) > rank(me, mine)) {
        return None;
    }
    // The others' leases, shortest left first; this node needs the votes
    // of `majority - 1` of them.
    let mut left: Vec<u64> = lost
        .iter()
        .map(|(_, a)| (timing.lease.as_millis() as u64).saturating_sub(a.silent_ms))
        .collect();
    left.sort_unstable();
    Some(Duration::from_millis(left[majority - 2]) + LEASE_MARGIN)
}

/// Watches this node's contact with the leader and stands for election as
/// described above; runs until the process ends.
pub async fn watch(
    raft: Raft,
    peers: PeerClient,
    contact: std::sync::Arc<LeaderContact>,
    timing: Timing,
) {
    let tick = (timing.silence / 10).max(Duration::from_millis(10));
    loop {
        tokio::time::sleep(tick).await;
        let (me, state) = {
            let m = raft.metrics();
            let m = m.borrow();
            (m.id, m.state)
        };
        if state == ServerState::Leader {
            // A leader that steps down gives its successor the usual time.
            contact.heard();
            continue;
        }
        if state != ServerState::Follower || contact.silent_for() < timing.silence {
            continue;
        }
        let voters: Vec<(NodeId, String)> = {
            let m = raft.metrics();
            let m = m.borrow();
            let membership = m.membership_config.membership();
            membership
                .voter_ids()
                .filter_map(|v| Some((v, membership.get_node(&v)?.raft_addr.clone())))
                .collect()
        };
        if !voters.iter().any(|(v, _)| *v == me) {
            continue;
        }
        let contact_then = contact.last();
        let mine = view(&raft, &contact);
        let body = match codec::encode(&PreVoteRequest {
            from: me,
            term: mine.term,
        }) {
            Ok(body) => body,
            Err(_) => continue,
        };
        let asked = Instant::now();
        let mut asks = tokio::task::JoinSet::new();
        for (v, addr) in voters.iter().filter(|(v, _)| *v != me).cloned() {
            let (peers, body) = (peers.clone(), body.clone());
            asks.spawn(async move {
                let bytes = peers
                    .post(&addr, PATH_PRE_VOTE, body, timing.silence / 2)
                    .await
                    .ok()?;
                Some((v, codec::decode::<PreVoteAnswer>(&bytes).ok()?))
            });
        }
        let others: Vec<(NodeId, PreVoteAnswer)> =
            asks.join_all().await.into_iter().flatten().collect();
        let Some(wait) = decide(me, &mine, &others, voters.len(), timing) else {
            continue;
        };
        // The leases were measured when the voters answered; an answer that
        // never came (a frozen leader) cost time that counts.
        tokio::time::sleep(wait.saturating_sub(asked.elapsed())).await;
        let term_now = raft.metrics().borrow().current_term;
        if contact.last() != contact_then || term_now != mine.term {
            continue;
        }
        tracing::info!(
            term = mine.term,
            silent_ms = contact.silent_for().as_millis() as u64,
            "a majority of the voters lost the leader: standing for election"
        );
        if raft.trigger().elect().await.is_err() {
            return;
        }
        // openraft carries this election through, retries included.
        tokio::time::sleep(timing.lease).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::CommittedLeaderId;

    const T: Timing = Timing {
        silence: Duration::from_millis(300),
        lease: Duration::from_millis(500),
    };

    /// A voter in term 3 whose last log entry is (`log_term`, `index`).
    fn at(log_term: u64, index: u64, silent_ms: u64) -> PreVoteAnswer {
        PreVoteAnswer {
            term: 3,
            leads: false,
            last_log: Some(LogId::new(CommittedLeaderId::new(log_term, 0), index)),
            silent_ms,
        }
    }

    #[test]
    fn the_voter_with_the_longest_log_stands_once_the_lease_is_out() {
        let me = at(3, 100, 320);
        let other = (2, at(3, 99, 310));
        assert_eq!(
            decide(1, &me, std::slice::from_ref(&other), 3, T),
            Some(Duration::from_millis(190) + LEASE_MARGIN)
        );
        assert_eq!(decide(2, &other.1, &[(1, me)], 3, T), None);
    }

    #[test]
    fn equal_logs_go_to_the_lower_id() {
        let (a, b) = (at(3, 100, 400), at(3, 100, 400));
        assert!(decide(1, &a, &[(2, b.clone())], 3, T).is_some());
        assert_eq!(decide(2, &b, &[(1, a)], 3, T), None);
    }

    #[test]
    fn a_later_term_in_the_log_outranks_a_longer_log() {
        let (old, new) = (at(2, 500, 400), at(3, 100, 400));
        assert_eq!(decide(1, &old, &[(2, new.clone())], 3, T), None);
        assert!(decide(2, &new, &[(1, old)], 3, T).is_some());
    }

    #[test]
    fn no_stand_without_a_majority_that_lost_the_leader() {
        let me = at(3, 100, 400);
        // The other voter still hears from the leader.
        assert_eq!(decide(1, &me, &[(2, at(3, 90, 50))], 3, T), None);
        // The other voter did not answer.
        assert_eq!(decide(1, &me, &[], 3, T), None);
        // The other voter leads.
        let leader = PreVoteAnswer {
            leads: true,
            ..at(3, 100, 0)
        };
        assert_eq!(decide(1, &me, &[(2, leader)], 3, T), None);
        // This node itself has heard from the leader lately.
        assert_eq!(
            decide(1, &at(3, 100, 100), &[(2, at(3, 90, 400))], 3, T),
            None
        );
    }

    #[test]
    fn a_newer_term_elsewhere_holds_the_stand() {
        let me = at(3, 100, 400);
        let newer = PreVoteAnswer {
            term: 4,
            ..at(3, 90, 400)
        };
        assert_eq!(decide(1, &me, &[(2, newer)], 3, T), None);
    }

    #[test]
    fn with_five_voters_it_waits_for_the_second_shortest_lease() {
        let me = at(3, 100, 400);
        let others = [
            (2, at(3, 90, 450)),
            (3, at(3, 90, 350)),
            (4, at(3, 90, 320)),
        ];
        // Needs two of the three: leases left 50, 150, 180 ms.
        assert_eq!(
            decide(1, &me, &others, 5, T),
            Some(Duration::from_millis(150) + LEASE_MARGIN)
        );
        // Two of five lost is not a majority.
        assert_eq!(decide(1, &me, &others[..1], 5, T), None);
        // A leader that answers holds the stand, majority or not.
        let leader = PreVoteAnswer {
            leads: true,
            ..at(3, 100, 0)
        };
        let mut with_leader = others.to_vec();
        with_leader.push((5, leader));
        assert_eq!(decide(1, &me, &with_leader, 5, T), None);
    }
}
