//! `raftcart up`'s supervisor: a node that exits is started again over its
//! data dir, as Compose's and Kubernetes' restart policies do, so the local
//! cluster keeps its fault tolerance after a crash. A node that keeps
//! failing right after it starts (a broken data dir, a port taken) is
//! retried with a growing pause and then left down, loudly. A node that
//! the cluster no longer counts as a member (`cluster remove`, then its
//! process stopped) is left down too: started again, it would only stand
//! for elections in a cluster that has moved on.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::process::Child;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// An exit this soon after a start counts as a failure to start.
const QUICK_EXIT: Duration = Duration::from_secs(10);
/// Failures to start in a row after which the node is left down.
const GIVE_UP_AFTER: u32 = 5;
/// The pause before the first restart, doubled per failure to start.
const FIRST_PAUSE: Duration = Duration::from_millis(250);
const LONGEST_PAUSE: Duration = Duration::from_secs(8);

/// Starts a node process (and records its pid where the tools look).
pub type Launch = Box<dyn Fn() -> anyhow::Result<Child> + Send + Sync>;

/// Whether the cluster still counts node `id` as a member (true when it
/// cannot tell).
pub type IsMember = Arc<dyn Fn(u64) -> Pin<Box<dyn Future<Output = bool> + Send>> + Send + Sync>;

pub struct Supervisor {
    stopping: watch::Sender<bool>,
    pids: Vec<Arc<AtomicU32>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Supervisor {
    /// Starts every node once; fails if one cannot be started at all.
    /// With `restart` false a node that exits is only reported.
    pub fn start(
        nodes: Vec<(u64, Launch)>,
        is_member: IsMember,
        restart: bool,
    ) -> anyhow::Result<Supervisor> {
        let (stopping, _) = watch::channel(false);
        let mut pids = Vec::new();
        let mut tasks = Vec::new();
        for (id, launch) in nodes {
            let child = launch()?;
            let pid = Arc::new(AtomicU32::new(child.id().unwrap_or(0)));
            pids.push(pid.clone());
            tasks.push(tokio::spawn(keep_running(
                id,
                launch,
                child,
                pid,
                is_member.clone(),
                restart,
                stopping.subscribe(),
            )));
        }
        Ok(Supervisor {
            stopping,
            pids,
            tasks,
        })
    }

    /// SIGINT every node (stop now: the cluster stops as a whole, so a
    /// leader has no one to hand over to), then SIGKILL those still
    /// running after 5 s.
    pub async fn stop(self) {
        let _ = self.stopping.send(true);
        let signal_all = |signal| {
            for pid in &self.pids {
                let pid = pid.load(Ordering::SeqCst);
                if pid != 0 {
                    let _ = kill(Pid::from_raw(pid as i32), signal);
                }
            }
        };
        signal_all(Signal::SIGINT);
        let all = futures::future::join_all(self.tasks);
        tokio::pin!(all);
        if tokio::time::timeout(Duration::from_secs(5), &mut all)
            .await
            .is_err()
        {
            signal_all(Signal::SIGKILL);
            all.await;
        }
    }
}

/// Reaps the node and starts it again until `up` stops, or until it has
/// failed to start `GIVE_UP_AFTER` times in a row.
async fn keep_running(
    id: u64,
    launch: Launch,
    mut child: Child,
    pid: Arc<AtomicU32>,
    is_member: IsMember,
    restart: bool,
    mut stopping: watch::Receiver<bool>,
) {
    let mut started = Instant::now();
    let mut failures = 0u32;
    loop {
        let status = child.wait().await;
        if *stopping.borrow() {
            return;
        }
        let status = status.map_or_else(|e| e.to_string(), |s| s.to_string());
        if !restart {
            println!("node {id} exited ({status}); not restarting it (--no-restart)");
            return;
        }
        failures = if started.elapsed() < QUICK_EXIT {
            failures + 1
        } else {
            0
        };
        if failures >= GIVE_UP_AFTER {
            println!(
                "node {id} exited ({status}), the {failures}th time in a row within {} s of \
                 starting: not restarting it; see its log",
                QUICK_EXIT.as_secs()
            );
            return;
        }
        let pause = FIRST_PAUSE
            .saturating_mul(1 << failures.min(6))
            .min(LONGEST_PAUSE);
        println!(
            "node {id} exited ({status}); restarting it in {} ms",
            pause.as_millis()
        );
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = stopping.wait_for(|s| *s) => return,
        }
        if !is_member(id).await {
            println!("node {id} is no longer a member of the cluster: not restarting it");
            return;
        }
        if *stopping.borrow() {
            return;
        }
        loop {
            match launch() {
                Ok(next) => {
                    let next_pid = next.id().unwrap_or(0);
                    pid.store(next_pid, Ordering::SeqCst);
                    // `stop` may have signalled the pids before this one
                    // was stored (it came while `is_member` or `launch`
                    // ran): the new node would then outlive `up`. `stop`
                    // sets `stopping` before it reads the pids, so seen
                    // here after the store, one of the two signals it.
                    if *stopping.borrow() && next_pid != 0 {
                        let _ = kill(Pid::from_raw(next_pid as i32), Signal::SIGINT);
                    }
                    println!("node {id} restarted (pid {next_pid})");
                    child = next;
                    started = Instant::now();
                    break;
                }
                Err(e) => {
                    failures += 1;
                    if failures >= GIVE_UP_AFTER {
                        println!("node {id} could not be restarted: {e:#}; giving up");
                        return;
                    }
                    println!("node {id} could not be restarted: {e:#}; trying again");
                    tokio::select! {
                        _ = tokio::time::sleep(LONGEST_PAUSE) => {}
                        _ = stopping.wait_for(|s| *s) => return,
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use tokio::sync::Notify;

    /// A node that notes a SIGINT in `marks` before it exits, so the test
    /// tells a clean stop from the SIGKILL `stop` falls back to.
    fn launch_marking(marks: std::path::PathBuf, pids: Arc<Mutex<Vec<u32>>>) -> Launch {
        Box::new(move || {
            let child = tokio::process::Command::new("sh")
                .arg("-c")
                .arg(format!(
                    "trap 'echo $$ >> {}; exit 0' INT; while :; do sleep 0.05; done",
                    marks.display()
                ))
                .spawn()?;
            pids.lock().unwrap().push(child.id().unwrap());
            Ok(child)
        })
    }

    /// `stop` comes while the supervisor asks whether a crashed node is
    /// still a member: the node it then starts must get `stop`'s SIGINT
    /// too, not outlive it until the SIGKILL.
    #[tokio::test(flavor = "current_thread")]
    async fn a_node_restarted_while_stopping_is_stopped_too() {
        let dir = tempfile::tempdir().unwrap();
        let marks = dir.path().join("marks");
        let pids = Arc::new(Mutex::new(Vec::new()));
        let (asked, answer) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
        let is_member: IsMember = {
            let (asked, answer) = (asked.clone(), answer.clone());
            Arc::new(move |_| {
                let (asked, answer) = (asked.clone(), answer.clone());
                Box::pin(async move {
                    asked.notify_one();
                    answer.notified().await;
                    true
                })
            })
        };
        let sup = Supervisor::start(
            vec![(1, launch_marking(marks.clone(), pids.clone()))],
            is_member,
            true,
        )
        .unwrap();
        let first = pids.lock().unwrap()[0];
        kill(Pid::from_raw(first as i32), Signal::SIGKILL).unwrap();
        asked.notified().await;
        // On this single-threaded runtime the yield lets `stop` run up to
        // its wait for the tasks: `stopping` is set and the (dead) first
        // pid signalled before the supervisor hears it is a member.
        let stop = tokio::spawn(sup.stop());
        tokio::task::yield_now().await;
        answer.notify_one();
        stop.await.unwrap();
        let launched = pids.lock().unwrap().clone();
        let marked = std::fs::read_to_string(&marks).unwrap_or_default();
        assert!(
            launched.len() == 1 || marked.lines().any(|l| l == launched[1].to_string()),
            "launched {launched:?}, SIGINT seen by {marked:?}"
        );
    }
}
