//! Packs the writes waiting on the leader into shared log entries.
//!
//! openraft appends, replicates and applies every `client_write` as its own
//! entry, and most of a write's cost is that per-entry work, not the
//! command. So writes queue here and a single task proposes whatever is
//! waiting as one entry, with a few entries in flight at a time: alone, a
//! write goes out at once; under load, each entry carries everything that
//! arrived while the previous ones were committing.

use std::sync::Arc;

use openraft::error::{ClientWriteError, RaftError};
use raftcart_domain::{Proposal, Proposals};
use tokio::sync::{mpsc, oneshot, OwnedRwLockReadGuard, RwLock, Semaphore};

use crate::attempt::Attempt;
use raftcart_types::Raft;

/// How writes share entries. The defaults were measured (docs/performance.md);
/// `writes_per_entry: 1` turns batching off, for comparison.
#[derive(Debug, Clone, Copy)]
pub struct Batching {
    /// Writes per entry, at most: bounds an entry's size and its apply time.
    pub writes_per_entry: usize,
    /// Entries proposed but not yet answered. More let the log append,
    /// replication and apply stages overlap; on a 2-core machine one gave
    /// the most checkouts per second sent to the leader and the lower
    /// Locust p99, and fewer through a saturated gateway
    /// (docs/performance.md, "Entries in flight").
    pub entries_in_flight: usize,
}

impl Default for Batching {
    fn default() -> Self {
        Batching {
            writes_per_entry: 512,
            entries_in_flight: 1,
        }
    }
}

struct Waiting {
    proposal: Proposal,
    answer: oneshot::Sender<Attempt>,
}

#[derive(Clone)]
pub struct Proposer {
    queue: mpsc::UnboundedSender<Waiting>,
    /// Held (read) by whoever submits several writes at once, so that they
    /// share an entry; the proposing task waits for it (write) before it
    /// gathers an entry.
    gate: Arc<RwLock<()>>,
}

impl Proposer {
    /// Starts the proposing task; it ends when the last `Proposer` is dropped.
    pub fn start(raft: Raft, batching: Batching) -> Proposer {
        let (queue, waiting) = mpsc::unbounded_channel();
        let gate = Arc::new(RwLock::new(()));
        tokio::spawn(run(raft, batching, waiting, gate.clone()));
        Proposer { queue, gate }
    }

    /// Until the guard drops, no new entry is gathered: writes submitted
    /// meanwhile wait together and go out in the same entry (up to
    /// `writes_per_entry`). Hold it only while submitting, never while
    /// waiting for answers.
    pub async fn hold(&self) -> OwnedRwLockReadGuard<()> {
        self.gate.clone().read_owned().await
    }

    /// Commits `proposal` (in an entry it may share) and answers with its
    /// outcome, or with why it could not be committed here.
    pub async fn propose(&self, proposal: Proposal) -> Attempt {
        let (answer, answered) = oneshot::channel();
        if self.queue.send(Waiting { proposal, answer }).is_err() {
            return Attempt::Unavailable("this node is shutting down".into());
        }
        answered
            .await
            .unwrap_or_else(|_| Attempt::Unavailable("this node is shutting down".into()))
    }
}

async fn run(
    raft: Raft,
    batching: Batching,
    mut waiting: mpsc::UnboundedReceiver<Waiting>,
    gate: Arc<RwLock<()>>,
) {
    let per_entry = batching.writes_per_entry.max(1);
    let slots = Arc::new(Semaphore::new(batching.entries_in_flight.max(1)));
    while let Some(first) = waiting.recv().await {
        // Waiting for a free slot is what lets the next entry fill up.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        drop(gate.write().await);
        let mut batch = vec![first];
        while batch.len() < per_entry {
            match waiting.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let raft = raft.clone();
        tokio::spawn(async move {
            let (proposals, answers): (Vec<_>, Vec<_>) =
                batch.into_iter().map(|w| (w.proposal, w.answer)).unzip();
            let count = proposals.len();
            let result = raft.client_write(Proposals(proposals)).await;
            drop(slot);
            for (answer, attempt) in answers.into_iter().zip(attempts(result, count)) {
                // The caller may have given up waiting; the write stands.
                let _ = answer.send(attempt);
            }
        });
    }
}

type WriteResult = Result<
    openraft::raft::ClientWriteResponse<raftcart_types::TypeConfig>,
    RaftError<
        raftcart_types::NodeId,
        ClientWriteError<raftcart_types::NodeId, raftcart_types::NodeInfo>,
    >,
>;

/// One attempt per proposal of the entry, in order.
fn attempts(result: WriteResult, count: usize) -> Vec<Attempt> {
    match result {
        Ok(resp) if resp.data.len() == count => resp.data.into_iter().map(Attempt::Done).collect(),
        Ok(resp) => {
            // The state machine answers every proposal; anything else is a
            // bug, and the outcome of each write is unknown.
            let why = format!(
                "the entry's {count} writes got {} outcomes",
                resp.data.len()
            );
            tracing::error!("{why}");
            vec![Attempt::Unavailable(why); count]
        }
        Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
            vec![Attempt::NotLeader(f.leader_id); count]
        }
        Err(e) => vec![Attempt::Unavailable(e.to_string()); count],
    }
}
