//! The request id of the client request being served, so that log lines on
//! the leader name the request a follower forwarded to it.
//!
//! Task-local rather than a parameter: it is only for logs, and every
//! executor call would otherwise carry it.

use std::future::Future;

tokio::task_local! {
    static TRACE_ID: String;
}

/// Runs `f` with `id` as the current request id.
pub async fn scope<F: Future>(id: String, f: F) -> F::Output {
    TRACE_ID.scope(id, f).await
}

/// The current request id, if `f` runs inside `scope`.
pub fn current() -> Option<String> {
    TRACE_ID.try_with(|id| id.clone()).ok()
}
