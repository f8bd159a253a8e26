//! Work that must not compete with the request path: a snapshot reads and
//! writes the whole state machine (0.3-1 s for the stress data set), and
//! every node takes one at about the same log index. At normal priority,
//! checkouts around a snapshot took up to 0.7 s on a 2-core machine (1000
//! users); at the lowest priority, up to about 0.1 s.

use crate::error::{self, Result};

/// Runs `work` on its own thread at the lowest CPU priority and waits for
/// it without blocking the async runtime.
pub(crate) async fn run_low_priority<T, F>(name: &str, work: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    let (done, result) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            lower_this_threads_priority();
            let _ = done.send(work());
        })
        .map_err(error::write_snapshot)?;
    result.await.map_err(|_| {
        error::write_snapshot(std::io::Error::other(
            "the background thread ended without an answer",
        ))
    })?
}

#[cfg(target_os = "linux")]
fn lower_this_threads_priority() {
    // On Linux, PRIO_PROCESS with a thread id sets that thread's nice value
    // alone; the thread is ours and ends with the work, so nothing else is
    // slowed.
    // SAFETY: plain syscalls on the calling thread, no pointers involved.
    let result = unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 19)
    };
    if result != 0 {
        tracing::debug!(
            "could not lower the priority of a background thread: {}",
            std::io::Error::last_os_error()
        );
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_this_threads_priority() {}
