//! The server side of node-to-node traffic: Raft RPCs and forwarded client
//! operations, on the node's `raft_addr`.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tracing::Instrument;

use crate::codec;
use crate::forward::{Executor, ForwardRequest, PATH_FORWARD};
use crate::network::{PATH_APPEND, PATH_SNAPSHOT, PATH_VOTE};

pub fn router(executor: Arc<Executor>) -> Router {
    Router::new()
        .route(PATH_APPEND, post(append))
        .route(PATH_VOTE, post(vote))
        .route(PATH_SNAPSHOT, post(snapshot))
        .route(PATH_FORWARD, post(forward))
        // Snapshot chunks and large appends exceed axum's 2 MB default.
        .layer(DefaultBodyLimit::max(256 * 1024 * 1024))
        .with_state(executor)
}

/// Decodes the request, runs `f` on it and encodes what it returns.
async fn serve<Req, Resp, Fut>(body: Bytes, f: impl FnOnce(Req) -> Fut) -> Response
where
    Req: DeserializeOwned,
    Resp: Serialize,
    Fut: Future<Output = Resp>,
{
    let req = match codec::decode::<Req>(&body) {
        Ok(req) => req,
        Err(e) => {
            return (StatusCode::BAD_REQUEST, format!("undecodable request: {e}")).into_response()
        }
    };
    match codec::encode(&f(req).await) {
        Ok(bytes) => bytes.into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("encoding reply: {e}"),
        )
            .into_response(),
    }
}

async fn append(State(ex): State<Arc<Executor>>, body: Bytes) -> Response {
    serve(
        body,
        |req| async move { ex.raft().append_entries(req).await },
    )
    .await
}

async fn vote(State(ex): State<Arc<Executor>>, body: Bytes) -> Response {
    serve(body, |req| async move { ex.raft().vote(req).await }).await
}

async fn snapshot(State(ex): State<Arc<Executor>>, body: Bytes) -> Response {
    serve(
        body,
        |req| async move { ex.raft().install_snapshot(req).await },
    )
    .await
}

async fn forward(State(ex): State<Arc<Executor>>, body: Bytes) -> Response {
    serve(body, |req: ForwardRequest| async move {
        // Never forward again from here: the origin follows leader changes.
        let wait = Duration::from_millis(req.wait_ms).min(ex.config().leader_wait);
        let trace_id = req.trace_id.unwrap_or_default();
        let span = tracing::debug_span!("forwarded", req = %trace_id);
        async {
            tracing::debug!(op = req.op.name(), "running a forwarded operation");
            ex.run_here(&req.op, wait).await
        }
        .instrument(span)
        .await
    })
    .await
}
