//! Lets concurrent callers share one run of an operation whose answer is
//! only valid for callers that arrived before the run started: a read
//! index. Each read needs a commit point the leader confirmed with a
//! quorum *after* the read arrived; every read waiting when a round starts
//! may share that round's answer, and reads arriving during it wait for
//! the next. Under load a node then asks the leader once per round trip,
//! not once per read (docs/design.md, "Reads").
//!
//! No task is spawned: the caller that finds no round running drives one.
//! When it is done it answers the callers that were waiting when it
//! started, and hands the next round to one of those that arrived since.
//! A driver that is dropped mid-round (its client went away) wakes every
//! waiter, and one of them drives instead.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use tokio::sync::oneshot;

/// What a waiter is told: the answer, or that it drives the next round.
enum Turn<T> {
    Answer(T),
    Drive,
}

struct Queue<T> {
    /// A round is being driven, or has been handed to a waiter.
    driving: bool,
    /// Callers that arrived while a round was running.
    waiting: Vec<oneshot::Sender<Turn<T>>>,
}

pub struct SharedRound<T> {
    queue: Mutex<Queue<T>>,
    rounds: AtomicU64,
    callers: AtomicU64,
}

impl<T: Clone> Default for SharedRound<T> {
    fn default() -> Self {
        SharedRound {
            queue: Mutex::new(Queue {
                driving: false,
                waiting: Vec::new(),
            }),
            rounds: AtomicU64::new(0),
            callers: AtomicU64::new(0),
        }
    }
}

impl<T: Clone> SharedRound<T> {
    /// The answer of a run of `op` that started after this call did,
    /// shared with the callers that were waiting for the same round.
    pub async fn run<F, Fut>(&self, op: F) -> T
    where
        F: Fn() -> Fut,
        Fut: Future<Output = T>,
    {
        self.callers.fetch_add(1, Ordering::Relaxed);
        loop {
            let turn = {
                let mut queue = self.queue.lock().expect("never poisoned");
                if queue.driving {
                    let (tx, rx) = oneshot::channel();
                    queue.waiting.push(tx);
                    Some(rx)
                } else {
                    queue.driving = true;
                    None
                }
            };
            let drive = match turn {
                None => true,
                Some(rx) => match rx.await {
                    Ok(Turn::Answer(answer)) => return answer,
                    Ok(Turn::Drive) => true,
                    // The driver was dropped before answering: try again.
                    Err(_) => false,
                },
            };
            if drive {
                return self.drive(&op).await;
            }
        }
    }

    /// Rounds run so far, and calls made: their ratio is how many callers
    /// a round served on average.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.rounds.load(Ordering::Relaxed),
            self.callers.load(Ordering::Relaxed),
        )
    }

    /// Runs one round for this caller and everyone waiting now.
    async fn drive<F, Fut>(&self, op: &F) -> T
    where
        F: Fn() -> Fut,
        Fut: Future<Output = T>,
    {
        let mut guard = Driving {
            shared: self,
            served: std::mem::take(&mut self.queue.lock().expect("never poisoned").waiting),
            done: false,
        };
        self.rounds.fetch_add(1, Ordering::Relaxed);
        let answer = op().await;
        for waiter in guard.served.drain(..) {
            let _ = waiter.send(Turn::Answer(answer.clone()));
        }
        guard.done = true;
        guard.hand_over();
        answer
    }
}

/// The driver's duty, kept even if its future is dropped mid-round.
struct Driving<'a, T> {
    shared: &'a SharedRound<T>,
    /// The callers this round answers.
    served: Vec<oneshot::Sender<Turn<T>>>,
    done: bool,
}

impl<T> Driving<'_, T> {
    /// Gives the next round to a caller that arrived during this one, or
    /// lets the next caller start one.
    fn hand_over(&mut self) {
        let mut queue = self.shared.queue.lock().expect("never poisoned");
        while let Some(next) = queue.waiting.pop() {
            // A caller that has gone away cannot drive: try the next.
            if next.send(Turn::Drive).is_ok() {
                return;
            }
        }
        queue.driving = false;
    }
}

impl<T> Drop for Driving<'_, T> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        // Dropped mid-round: the callers it would have answered see their
        // channel close and queue again; one of them, or of those waiting
        // for the next round, drives.
        self.served.clear();
        self.hand_over();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use tokio::sync::Semaphore;
    use tokio::task::JoinHandle;

    use super::SharedRound;

    /// An operation that counts its runs, answers with the run's number,
    /// and finishes only when the test lets it.
    struct Gate {
        runs: AtomicU64,
        open: Semaphore,
    }

    impl Gate {
        fn new() -> Arc<Gate> {
            Arc::new(Gate {
                runs: AtomicU64::new(0),
                open: Semaphore::new(0),
            })
        }

        async fn op(&self) -> u64 {
            let run = self.runs.fetch_add(1, Ordering::SeqCst) + 1;
            self.open.acquire().await.expect("never closed").forget();
            run
        }
    }

    fn spawn_call(shared: &Arc<SharedRound<u64>>, gate: &Arc<Gate>) -> JoinHandle<u64> {
        let (shared, gate) = (shared.clone(), gate.clone());
        tokio::spawn(async move { shared.run(|| gate.op()).await })
    }

    /// A caller driving round 1 (held by the gate), and `n` callers that
    /// arrived during it and wait.
    async fn round_with_waiters(
        n: usize,
    ) -> (
        Arc<SharedRound<u64>>,
        Arc<Gate>,
        JoinHandle<u64>,
        Vec<JoinHandle<u64>>,
    ) {
        let shared = Arc::new(SharedRound::default());
        let gate = Gate::new();
        let driver = spawn_call(&shared, &gate);
        until_running(&gate).await;
        let waiters = (0..n).map(|_| spawn_call(&shared, &gate)).collect();
        until_waiting(&shared, n).await;
        (shared, gate, driver, waiters)
    }

    async fn answers(callers: Vec<JoinHandle<u64>>) -> Vec<u64> {
        let mut out = Vec::new();
        for caller in callers {
            out.push(caller.await.expect("the caller finished"));
        }
        out
    }

    async fn until_running(gate: &Gate) {
        while gate.runs.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
    }

    async fn waiting(shared: &SharedRound<u64>) -> usize {
        tokio::task::yield_now().await;
        shared.queue.lock().unwrap().waiting.len()
    }

    async fn until_waiting(shared: &SharedRound<u64>, n: usize) {
        while waiting(shared).await < n {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    #[tokio::test]
    async fn callers_arriving_during_a_round_share_the_next_one_not_the_running_one() {
        let (shared, gate, first, later) = round_with_waiters(10).await;
        gate.open.add_permits(1);
        assert_eq!(first.await.unwrap(), 1, "the first caller's own round");
        gate.open.add_permits(1);
        assert_eq!(
            answers(later).await,
            [2; 10],
            "a caller that arrived during round 1 got an answer from a round that started before it"
        );
        assert_eq!(gate.runs.load(Ordering::SeqCst), 2);
        assert_eq!(shared.counts(), (2, 11));
    }

    #[tokio::test]
    async fn a_driver_dropped_mid_round_leaves_no_caller_stranded() {
        let (_, gate, driver, others) = round_with_waiters(3).await;
        driver.abort();
        assert!(driver.await.unwrap_err().is_cancelled());
        gate.open.add_permits(1);
        assert_eq!(
            answers(others).await,
            [2; 3],
            "answered by the round run after the drop"
        );
        assert_eq!(gate.runs.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_lone_caller_runs_its_own_round_each_time() {
        let shared = SharedRound::default();
        let runs = AtomicU64::new(0);
        for expected in 1..=3 {
            let answer = shared
                .run(|| async { runs.fetch_add(1, Ordering::SeqCst) + 1 })
                .await;
            assert_eq!(answer, expected);
        }
        assert_eq!(shared.counts(), (3, 3));
    }
}
