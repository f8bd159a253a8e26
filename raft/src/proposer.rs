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
use tokio::sync::{mpsc, oneshot, watch, OwnedRwLockReadGuard, RwLock};

use crate::attempt::Attempt;
use raftcart_types::Raft;

/// How writes share entries. The defaults were measured (docs/performance.md);
/// `writes_per_entry: 1` turns batching off, for comparison.
#[derive(Debug, Clone, Copy)]
pub struct Batching {
    /// Writes per entry, at most: bounds an entry's size and its apply time.
    pub writes_per_entry: usize,
    /// Entries proposed but not yet answered, at most. More let the log
    /// append, replication and apply stages overlap.
    pub entries_in_flight: usize,
    /// A second (third, ...) entry leaves only while the entries in flight
    /// carry fewer writes than this. Under light load entries then overlap
    /// and a write does not wait for the one before it to commit; under
    /// heavy load one entry is in flight and the next gathers everything
    /// that arrives meanwhile, which costs the least CPU per write
    /// (docs/performance.md, "Entries in flight"). 0: one entry at a time.
    pub overlap_below: usize,
}

impl Default for Batching {
    fn default() -> Self {
        Batching {
            writes_per_entry: 512,
            entries_in_flight: 4,
            overlap_below: 8,
        }
    }
}

/// What the leader has proposed and not yet seen answered.
#[derive(Debug, Clone, Copy, Default)]
struct InFlight {
    entries: usize,
    writes: usize,
}

impl InFlight {
    /// Whether one more entry may leave now.
    fn admits_another(&self, batching: &Batching) -> bool {
        self.entries == 0
            || (self.entries < batching.entries_in_flight && self.writes < batching.overlap_below)
    }
}

/// One entry in flight, counted in `InFlight` until dropped (also if its
/// task panics, so that the proposer never waits for it forever).
struct Flying {
    in_flight: Arc<watch::Sender<InFlight>>,
    writes: usize,
}

impl Flying {
    fn new(in_flight: Arc<watch::Sender<InFlight>>, writes: usize) -> Flying {
        in_flight.send_modify(|now| {
            now.entries += 1;
            now.writes += writes;
        });
        Flying { in_flight, writes }
    }
}

impl Drop for Flying {
    fn drop(&mut self) {
        self.in_flight.send_modify(|now| {
            now.entries -= 1;
            now.writes -= self.writes;
        });
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
    let (in_flight, mut watched) = watch::channel(InFlight::default());
    let in_flight = Arc::new(in_flight);
    while let Some(first) = waiting.recv().await {
        // Waiting for room is what lets the next entry fill up.
        if watched
            .wait_for(|now| now.admits_another(&batching))
            .await
            .is_err()
        {
            return;
        }
        drop(gate.write().await);
        let mut batch = vec![first];
        while batch.len() < per_entry {
            match waiting.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let count = batch.len();
        let flying = Flying::new(in_flight.clone(), count);
        let raft = raft.clone();
        tokio::spawn(async move {
            let (proposals, answers): (Vec<_>, Vec<_>) =
                batch.into_iter().map(|w| (w.proposal, w.answer)).unzip();
            let result = raft.client_write(Proposals(proposals)).await;
            drop(flying);
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

#[cfg(test)]
mod tests {
    use super::{Batching, InFlight};

    fn admits(entries: usize, writes: usize, batching: &Batching) -> bool {
        InFlight { entries, writes }.admits_another(batching)
    }

    #[test]
    fn entries_overlap_only_while_few_writes_are_in_flight() {
        let b = Batching {
            writes_per_entry: 512,
            entries_in_flight: 4,
            overlap_below: 8,
        };
        assert!(admits(0, 0, &b));
        // Light load: small entries go out side by side, up to the limit.
        assert!(admits(1, 1, &b));
        assert!(admits(3, 7, &b));
        assert!(!admits(4, 4, &b));
        // Heavy load: one big entry in flight, the next one gathers.
        assert!(!admits(1, 8, &b));
        assert!(!admits(2, 30, &b));
    }

    #[test]
    fn overlap_below_zero_keeps_one_entry_in_flight() {
        let b = Batching {
            overlap_below: 0,
            ..Batching::default()
        };
        assert!(admits(0, 0, &b));
        assert!(!admits(1, 1, &b));
    }
}
