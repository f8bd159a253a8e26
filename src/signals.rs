//! Waiting for Ctrl-C (SIGINT) or SIGTERM.

/// How the process was asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopSignal {
    /// Ctrl-C, or `raftcart up` stopping the whole cluster at once: stop
    /// now.
    Interrupt,
    /// A restart or a drain of this one process (`kill`, Compose,
    /// Kubernetes): a leader first hands its leadership away.
    Terminate,
}

pub async fn stop_signal() -> StopSignal {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => StopSignal::Interrupt,
        _ = term.recv() => StopSignal::Terminate,
    }
}

pub async fn terminated() {
    stop_signal().await;
}
