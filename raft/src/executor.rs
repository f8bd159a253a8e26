//! Runs a client operation on the leader, wherever it arrived.
//!
//! openraft does not forward; this does. On the leader an operation runs
//! here (a write through the proposer, a read after a read index); on any
//! other node it is sent to the leader (`forward`), and retried, there or
//! at a new leader, until a bounded wait runs out. Retrying a write is safe
//! because the request id travels in the command and the state machine
//! answers a repeated id with the first outcome instead of applying it
//! again.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use openraft::error::{CheckIsLeaderError, RaftError};
use raftcart_domain::{
    answer, Command, Outcome, Proposal, Query, Refusal, Reply, RequestId, StateRead,
};

use crate::attempt::Attempt;
use crate::election::LeaderContact;
use crate::error::ClusterError;
use crate::forward;
use crate::leadership::{self, Handover};
use crate::membership::{self, MembershipOp};
use crate::op::{Consistency, Op};
use crate::peer_client::PeerClient;
use crate::proposer::{Batching, Proposer};
use crate::shared_round::SharedRound;
use raftcart_types::{NodeId, NodeInfo, Raft};

#[derive(Debug, Clone)]
pub struct ExecutorConfig {
    /// How long a request may wait for a leader (election, failover) before
    /// the client gets a 503.
    pub leader_wait: Duration,
    /// How the leader packs writes into log entries.
    pub batching: Batching,
}

/// The least a membership change may take before its caller gets a 503:
/// joint consensus commits two entries, the first needing a quorum of the
/// old and the new voters, and a learner just promoted may still be
/// catching up under load. `raftcart cluster` waits 30 s for its answer.
pub const MEMBERSHIP_WAIT: Duration = Duration::from_secs(20);

impl ExecutorConfig {
    /// How long `op` may wait, on this node and on the leader it is
    /// forwarded to.
    pub fn wait_for(&self, op: &Op) -> Duration {
        match op {
            Op::Membership(_) => self.leader_wait.max(MEMBERSHIP_WAIT),
            _ => self.leader_wait,
        }
    }
}

impl Default for ExecutorConfig {
    fn default() -> Self {
        ExecutorConfig {
            leader_wait: Duration::from_secs(5),
            batching: Batching::default(),
        }
    }
}

pub struct Executor {
    id: NodeId,
    raft: Raft,
    proposer: Proposer,
    reader: Arc<dyn StateRead + Send + Sync>,
    peers: PeerClient,
    config: ExecutorConfig,
    /// Set while this node hands its leadership away.
    handover: Arc<Handover>,
    /// When this node last heard from its leader (`election`).
    contact: Arc<LeaderContact>,
    /// This node's reads waiting for a read index share one request for it.
    read_rounds: SharedRound<Result<u64, ClusterError>>,
    /// As leader: read index requests (its own and its followers') share
    /// one quorum confirmation.
    confirm_rounds: SharedRound<Attempt>,
}

/// How many reads shared a read index, on one node (`Executor::read_index_counts`).
#[derive(Debug, Clone, Copy, Default)]
pub struct ReadIndexCounts {
    /// Reads that needed a read index on this node.
    pub reads: u64,
    /// Read indexes it asked the leader (or, as leader, itself) for.
    pub requested: u64,
    /// Read index requests it served as leader (its own and forwarded).
    pub served: u64,
    /// Quorum confirmations it ran for them.
    pub confirmed: u64,
}

impl Executor {
    pub fn new(
        id: NodeId,
        raft: Raft,
        reader: Arc<dyn StateRead + Send + Sync>,
        peers: PeerClient,
        config: ExecutorConfig,
    ) -> Self {
        Executor {
            id,
            proposer: Proposer::start(raft.clone(), config.batching),
            raft,
            reader,
            peers,
            config,
            handover: Arc::default(),
            contact: Arc::default(),
            read_rounds: SharedRound::default(),
            confirm_rounds: SharedRound::default(),
        }
    }

    pub fn read_index_counts(&self) -> ReadIndexCounts {
        let (requested, reads) = self.read_rounds.counts();
        let (confirmed, served) = self.confirm_rounds.counts();
        ReadIndexCounts {
            reads,
            requested,
            served,
            confirmed,
        }
    }

    pub fn raft(&self) -> &Raft {
        &self.raft
    }

    pub fn leader_contact(&self) -> &Arc<LeaderContact> {
        &self.contact
    }

    /// Stands for election once a majority of the voters has lost the
    /// leader (`election`); runs until the process ends.
    pub async fn watch_leader(&self) {
        let timing = crate::election::Timing::of(self.raft.config());
        crate::election::watch(
            self.raft.clone(),
            self.peers.clone(),
            self.contact.clone(),
            timing,
        )
        .await
    }

    pub fn config(&self) -> &ExecutorConfig {
        &self.config
    }

    pub async fn write(
        &self,
        request_id: RequestId,
        command: Command,
    ) -> Result<Outcome, ClusterError> {
        self.outcome(Op::Write {
            request_id,
            command,
        })
        .await
    }

    /// A change whose first attempt got no answer may have committed: if
    /// a retry then finds it done ("already a member", "not a member"),
    /// that is its answer, not a refusal.
    pub async fn change_membership(&self, op: MembershipOp) -> Result<Outcome, ClusterError> {
        let (answer, retried) = self.run_counting(Op::Membership(op.clone())).await?;
        let outcome = match answer {
            Attempt::Done(outcome) => outcome,
            other => return Err(unexpected(other)),
        };
        if !retried {
            return Ok(outcome);
        }
        let already = match (&op, &outcome) {
            (MembershipOp::AddLearner { id, .. }, Err(Refusal::Invalid(why)))
                if why.contains("already a member") =>
            {
                Some(format!("node {id} added as a learner"))
            }
            (MembershipOp::Remove { id }, Err(Refusal::NotFound(_))) => {
                Some(format!("node {id} removed"))
            }
            _ => None,
        };
        Ok(match already {
            Some(what) => Ok(Reply::Done {
                msg: format!(
                    "{what} (by an earlier attempt of this command, whose answer was lost); {}",
                    membership::describe(
                        self.raft.metrics().borrow().membership_config.membership()
                    )
                ),
            }),
            None => outcome,
        })
    }

    /// Until the guard drops, this node (as leader) gathers no new log
    /// entry: the writes run meanwhile share the next one. For a caller
    /// that starts many writes at once (a gateway's batch); hold it only
    /// while starting them.
    pub async fn hold_entry(&self) -> tokio::sync::OwnedRwLockReadGuard<()> {
        self.proposer.hold().await
    }

    /// Moves the leadership to `to`, or to the most caught-up voter.
    pub async fn transfer_leader(&self, to: Option<NodeId>) -> Result<Outcome, ClusterError> {
        self.outcome(Op::TransferLeader { to }).await
    }

    /// Waits until this node has applied everything the cluster had
    /// committed when it was called: a local read afterwards sees every
    /// write acknowledged before. Returns the index waited for.
    pub async fn catch_up(&self) -> Result<u64, ClusterError> {
        let started = Instant::now();
        let asked = self.read_rounds.run(|| async {
            match self.run(Op::ReadIndex).await? {
                Attempt::ReadIndex(index) => Ok(index),
                other => Err(unexpected(other)),
            }
        });
        // A read that arrived during a round waits for the next one: keep
        // its wait to its own bound.
        let index = tokio::time::timeout(self.config.leader_wait, asked)
            .await
            .map_err(|_| {
                ClusterError::Unavailable(format!(
                    "no read index within {} ms",
                    self.config.leader_wait.as_millis()
                ))
            })??;
        let wait = self.config.leader_wait.saturating_sub(started.elapsed());
        self.raft
            .wait(Some(wait))
            .applied_index_at_least(Some(index), "catch up")
            .await
            .map_err(|e| {
                ClusterError::Unavailable(format!(
                    "node {} did not apply up to index {index} in time: {e}",
                    self.id
                ))
            })?;
        Ok(index)
    }

    pub async fn read(
        &self,
        query: Query,
        consistency: Consistency,
    ) -> Result<Outcome, ClusterError> {
        match consistency {
            Consistency::Stale => Ok(answer(&*self.reader, &query)),
            // The read index: the leader confirms it still leads and names
            // its commit point; once this node has applied that far, its own
            // state holds every write acknowledged before the read began. A
            // follower thus answers for itself, and the leader only names
            // an index.
            Consistency::Linearizable => {
                self.catch_up().await?;
                Ok(answer(&*self.reader, &query))
            }
        }
    }

    async fn outcome(&self, op: Op) -> Result<Outcome, ClusterError> {
        match self.run(op).await? {
            Attempt::Done(outcome) => Ok(outcome),
            other => Err(unexpected(other)),
        }
    }

    async fn run(&self, op: Op) -> Result<Attempt, ClusterError> {
        Ok(self.run_counting(op).await?.0)
    }

    /// Tries the leader, following leader changes, until the wait runs out.
    /// Returns the leader's answer (`Done` or `ReadIndex`), and whether an
    /// earlier attempt was given up on (it may have taken effect).
    async fn run_counting(&self, op: Op) -> Result<(Attempt, bool), ClusterError> {
        let mut retried = false;
        let wait = self.config.wait_for(&op);
        let deadline = Instant::now() + wait;
        let mut pause = Duration::from_millis(5);
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let attempt = match self.raft.current_leader().await {
                Some(leader) if leader == self.id => self.run_here(&op, remaining).await,
                Some(leader) => {
                    forward::to_leader(&self.raft, &self.peers, leader, &op, remaining).await
                }
                None => Attempt::Unavailable("no leader elected".into()),
            };
            let problem = match attempt {
                answer @ (Attempt::Done(_) | Attempt::ReadIndex(_)) => {
                    return Ok((answer, retried))
                }
                Attempt::NotLeader(_) => "the leader changed".to_string(),
                Attempt::Unavailable(why) => why,
            };
            if Instant::now() + pause >= deadline {
                return Err(ClusterError::Unavailable(format!(
                    "no leader could serve the request within {} ms: {problem}",
                    wait.as_millis()
                )));
            }
            tracing::debug!(%problem, "retrying on the leader");
            retried = true;
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    }

    /// Runs the operation on this node if it is the leader, within `wait`.
    pub async fn run_here(&self, op: &Op, wait: Duration) -> Attempt {
        match tokio::time::timeout(wait, self.run_here_unbounded(op)).await {
            Ok(attempt) => attempt,
            Err(_) => Attempt::Unavailable("timed out waiting for a quorum".into()),
        }
    }

    async fn run_here_unbounded(&self, op: &Op) -> Attempt {
        // While the leadership moves, nothing new may reach the log (nor
        // make this node talk to the followers): callers retry, and find
        // the new leader.
        if self.handover.in_progress() {
            return Attempt::NotLeader(None);
        }
        match op {
            Op::Write {
                request_id,
                command,
            } => {
                let proposal = Proposal {
                    request_id: request_id.clone(),
                    at_ms: now_ms(),
                    command: command.clone(),
                };
                self.proposer.propose(proposal).await
            }
            // Nodes read through `ReadIndex` and answer themselves; a peer
            // may still send its query to be answered here.
            Op::Read { query } => match self.raft.ensure_linearizable().await {
                Ok(_) => Attempt::Done(answer(&*self.reader, query)),
                Err(e) => not_confirmed(e),
            },
            Op::ReadIndex => {
                self.confirm_rounds
                    .run(|| async {
                        match self.raft.get_read_log_id().await {
                            Ok((read, _)) => Attempt::ReadIndex(read.map_or(0, |l| l.index)),
                            Err(e) => not_confirmed(e),
                        }
                    })
                    .await
            }
            // Its own task: openraft's change commits a joint configuration,
            // then the final one, and a caller that stopped waiting between
            // the two would leave the cluster in the joint one.
            Op::Membership(op) => {
                let (raft, peers, op) = (self.raft.clone(), self.peers.clone(), op.clone());
                tokio::spawn(async move { membership::run(&raft, &peers, &op).await })
                    .await
                    .unwrap_or_else(|e| {
                        Attempt::Unavailable(format!("membership change failed: {e}"))
                    })
            }
            Op::TransferLeader { to } => {
                // Its own task: the hand-over must finish (and turn the
                // heartbeats back on) even if this caller stops waiting.
                let (raft, peers, handover, to) = (
                    self.raft.clone(),
                    self.peers.clone(),
                    self.handover.clone(),
                    *to,
                );
                tokio::spawn(
                    async move { leadership::transfer(&raft, &peers, &handover, to).await },
                )
                .await
                .unwrap_or_else(|e| Attempt::Unavailable(format!("transfer failed: {e}")))
            }
        }
    }
}

/// Leadership could not be confirmed with a quorum.
fn not_confirmed(e: RaftError<NodeId, CheckIsLeaderError<NodeId, NodeInfo>>) -> Attempt {
    match e {
        RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f)) => {
            Attempt::NotLeader(f.leader_id)
        }
        e => Attempt::Unavailable(e.to_string()),
    }
}

fn unexpected(answer: Attempt) -> ClusterError {
    ClusterError::Unavailable(format!("unexpected answer from the leader: {answer:?}"))
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_membership_change_waits_longer_than_other_operations() {
        let config = ExecutorConfig {
            leader_wait: Duration::from_secs(5),
            ..ExecutorConfig::default()
        };
        let promote = Op::Membership(MembershipOp::Promote { id: 4 });
        assert_eq!(config.wait_for(&promote), MEMBERSHIP_WAIT);
        assert_eq!(config.wait_for(&Op::ReadIndex), Duration::from_secs(5));
        // A longer leader wait is never shortened for a membership change.
        let patient = ExecutorConfig {
            leader_wait: Duration::from_secs(60),
            ..ExecutorConfig::default()
        };
        assert_eq!(patient.wait_for(&promote), Duration::from_secs(60));
    }
}
