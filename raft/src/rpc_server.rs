//! The server side of node-to-node traffic: Raft RPCs and forwarded client
//! operations, on the node's `raft_addr`.
//!
//! Nothing here trusts the sender. A request without a peer MAC is refused
//! (401) before its body is read, one with a wrong MAC (403) before its body
//! is decoded; each route takes bodies only up to what a real peer sends,
//! and decoding is bounded by the body's size (`codec`). Refusals are 4xx
//! with a JSON `{"error": ...}` body and change nothing.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use openraft::raft::{AppendEntriesResponse, InstallSnapshotRequest};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::json;
use tracing::Instrument;

use crate::election::{self, PreVoteRequest, PATH_PRE_VOTE};
use crate::executor::Executor;
use crate::forward::{ForwardRequest, PATH_FORWARD};
use crate::leadership::{self, CampaignRequest, PATH_CAMPAIGN};
use crate::network::{PATH_APPEND, PATH_SNAPSHOT, PATH_VOTE};
use crate::peer_auth::{PeerKey, MAC_HEADER};
use crate::peer_client::PATH_KEY_CHECK;
use raftcart_types::codec;
use raftcart_types::TypeConfig;

/// Body limits per route: what a real peer sends, with room to spare.
/// An append holds at most `MAX_APPEND_ENTRIES` entries of at most
/// `writes_per_entry` (512 by default) proposals of under 1 KiB each.
pub const MAX_APPEND_BYTES: usize = 64 << 20;
/// One snapshot chunk (openraft sends 3 MiB chunks) and its metadata.
pub const MAX_SNAPSHOT_CHUNK_BYTES: usize = 16 << 20;
/// A forwarded operation: one command, one query or a membership change.
pub const MAX_FORWARD_BYTES: usize = 1 << 20;
pub const MAX_VOTE_BYTES: usize = 4 << 10;
/// The whole of a snapshot being received, over all its chunks. The
/// snapshot of the course's stress data set is about 30 MB.
pub const MAX_SNAPSHOT_BYTES: u64 = 4 << 30;
/// Entries per append, which openraft is configured with.
pub const MAX_APPEND_ENTRIES: u64 = 64;

#[derive(Clone)]
struct RpcState {
    executor: Arc<Executor>,
    key: PeerKey,
    snapshots: Arc<Mutex<SnapshotStreams>>,
}

pub fn router(executor: Arc<Executor>, key: PeerKey) -> Router {
    let state = RpcState {
        executor,
        key,
        snapshots: Arc::default(),
    };
    let limited = |bytes| DefaultBodyLimit::max(bytes);
    Router::new()
        .route(PATH_APPEND, post(append).layer(limited(MAX_APPEND_BYTES)))
        .route(PATH_VOTE, post(vote).layer(limited(MAX_VOTE_BYTES)))
        .route(
            PATH_SNAPSHOT,
            post(snapshot).layer(limited(MAX_SNAPSHOT_CHUNK_BYTES)),
        )
        .route(
            PATH_FORWARD,
            post(forward).layer(limited(MAX_FORWARD_BYTES)),
        )
        .route(PATH_KEY_CHECK, post(key_check).layer(limited(64)))
        .route(PATH_CAMPAIGN, post(campaign).layer(limited(64)))
        .route(PATH_PRE_VOTE, post(pre_vote).layer(limited(64)))
        .route_layer(middleware::from_fn(require_mac))
        .fallback(|| async { refuse(StatusCode::NOT_FOUND, "no such route".into()) })
        .method_not_allowed_fallback(|| async {
            refuse(
                StatusCode::METHOD_NOT_ALLOWED,
                "node-to-node routes take POST".into(),
            )
        })
        .with_state(state)
}

fn refuse(status: StatusCode, message: String) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

/// Refuses a request that carries no MAC at all before its body is read.
async fn require_mac(req: Request, next: Next) -> Response {
    if !req.headers().contains_key(MAC_HEADER) {
        return refuse(
            StatusCode::UNAUTHORIZED,
            format!("node-to-node requests must carry the cluster's peer MAC ({MAC_HEADER})"),
        );
    }
    next.run(req).await
}

/// Checks the MAC, decodes the request, runs `f` on it, and encodes and
/// signs what it returns; `f` refuses a request it finds wrong with `Err`.
async fn serve<Req, Resp, Fut>(
    s: &RpcState,
    path: &str,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    f: impl FnOnce(Req) -> Fut,
) -> Response
where
    Req: DeserializeOwned,
    Resp: Serialize,
    Fut: Future<Output = Result<Resp, String>>,
{
    let body = match body {
        Ok(body) => body,
        Err(rejection) => return refuse(rejection.status(), rejection.body_text()),
    };
    let mac = headers
        .get(MAC_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !s.key.verify_request(path, &body, mac) {
        return refuse(
            StatusCode::FORBIDDEN,
            "wrong peer MAC: the sender does not hold this cluster's peer key".into(),
        );
    }
    let req = match codec::decode::<Req>(&body) {
        Ok(req) => req,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, format!("undecodable request: {e}")),
    };
    let answer = match f(req).await {
        Ok(answer) => answer,
        Err(why) => return refuse(StatusCode::BAD_REQUEST, why),
    };
    match codec::encode(&answer) {
        Ok(bytes) => signed(&s.key, mac, StatusCode::OK, bytes),
        Err(e) => refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("encoding reply: {e}"),
        ),
    }
}

fn signed(key: &PeerKey, request_mac: &str, status: StatusCode, body: Vec<u8>) -> Response {
    let answer_mac = key.sign_response(request_mac, status.as_u16(), &body);
    let mut resp = (status, body).into_response();
    if let Ok(v) = HeaderValue::from_str(&answer_mac) {
        resp.headers_mut().insert(MAC_HEADER, v);
    }
    resp
}

async fn append(
    State(s): State<RpcState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let raft = s.executor.raft().clone();
    let contact = s.executor.leader_contact().clone();
    serve(&s, PATH_APPEND, &headers, body, |req| async move {
        let resp = raft.append_entries(req).await;
        // A deposed leader's append is answered with the higher vote.
        if matches!(&resp, Ok(r) if !matches!(r, AppendEntriesResponse::HigherVote(_))) {
            contact.heard();
        }
        Ok(resp)
    })
    .await
}

async fn vote(
    State(s): State<RpcState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let raft = s.executor.raft().clone();
    serve(&s, PATH_VOTE, &headers, body, |req| async move {
        Ok(raft.vote(req).await)
    })
    .await
}

async fn snapshot(
    State(s): State<RpcState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let raft = s.executor.raft().clone();
    let contact = s.executor.leader_contact().clone();
    let streams = s.snapshots.clone();
    serve(
        &s,
        PATH_SNAPSHOT,
        &headers,
        body,
        |req: InstallSnapshotRequest<TypeConfig>| async move {
            // Refused, the sender's openraft retries, from offset 0 if need be.
            streams.lock().unwrap_or_else(|e| e.into_inner()).admit(
                &req.meta.snapshot_id,
                req.offset,
                req.data.len() as u64,
            )?;
            let vote = req.vote;
            let resp = raft.install_snapshot(req).await;
            if matches!(&resp, Ok(r) if r.vote <= vote) {
                contact.heard();
            }
            Ok(resp)
        },
    )
    .await
}

async fn forward(
    State(s): State<RpcState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let ex = s.executor.clone();
    serve(
        &s,
        PATH_FORWARD,
        &headers,
        body,
        |req: ForwardRequest| async move {
            // Never forward again from here: the origin follows leader changes.
            let wait = Duration::from_millis(req.wait_ms).min(ex.config().wait_for(&req.op));
            let trace_id = req.trace_id.unwrap_or_default();
            let span = tracing::debug_span!("forwarded", req = %trace_id);
            let attempt = async {
                tracing::debug!(op = req.op.name(), "running a forwarded operation");
                ex.run_here(&req.op, wait).await
            };
            Ok(attempt.instrument(span).await)
        },
    )
    .await
}

/// Answers with a signed empty body: proof that this node holds the key.
async fn key_check(
    State(s): State<RpcState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    serve(&s, PATH_KEY_CHECK, &headers, body, |()| async { Ok(()) }).await
}

async fn campaign(
    State(s): State<RpcState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let raft = s.executor.raft().clone();
    serve(
        &s,
        PATH_CAMPAIGN,
        &headers,
        body,
        |req: CampaignRequest| async move { leadership::campaign(&raft, req).await },
    )
    .await
}

async fn pre_vote(
    State(s): State<RpcState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let ex = s.executor.clone();
    serve(
        &s,
        PATH_PRE_VOTE,
        &headers,
        body,
        |req: PreVoteRequest| async move { election::answer(ex.raft(), ex.leader_contact(), &req) },
    )
    .await
}

/// The snapshots being received, so that a chunk lands only where the
/// stream has reached: openraft writes a chunk at whatever offset it names,
/// and a chunk at offset 2^40 would make it allocate a terabyte.
#[derive(Default)]
struct SnapshotStreams {
    /// (snapshot id, bytes received up to) of the latest streams.
    streams: VecDeque<(String, u64)>,
}

/// Streams remembered at once: a new leader may start one while a deposed
/// one's is still arriving.
const STREAMS_KEPT: usize = 4;

impl SnapshotStreams {
    fn admit(&mut self, id: &str, offset: u64, len: u64) -> Result<(), String> {
        let end = offset
            .checked_add(len)
            .filter(|end| *end <= MAX_SNAPSHOT_BYTES)
            .ok_or_else(|| {
                format!("snapshot {id}: a chunk ending past {MAX_SNAPSHOT_BYTES} bytes")
            })?;
        let known = self.streams.iter().position(|(s, _)| s == id);
        match known {
            _ if offset == 0 => {
                if let Some(i) = known {
                    self.streams.remove(i);
                }
                if self.streams.len() == STREAMS_KEPT {
                    self.streams.pop_front();
                }
                self.streams.push_back((id.to_string(), end));
                Ok(())
            }
            Some(i) if offset <= self.streams[i].1 => {
                self.streams[i].1 = self.streams[i].1.max(end);
                Ok(())
            }
            Some(i) => Err(format!(
                "snapshot {id}: chunk at offset {offset}, but only {} bytes have arrived",
                self.streams[i].1
            )),
            None => Err(format!(
                "snapshot {id}: chunk at offset {offset} of a stream that did not start at 0"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_land_only_where_the_stream_has_reached() {
        let mut s = SnapshotStreams::default();
        assert!(s.admit("a", 5, 10).is_err(), "a stream starts at 0");
        assert!(s.admit("a", 0, 10).is_ok());
        assert!(s.admit("a", 10, 10).is_ok());
        assert!(s.admit("a", 10, 10).is_ok(), "a resent chunk");
        assert!(s.admit("a", 1 << 40, 1).is_err());
        assert!(s.admit("a", 21, 1).is_err(), "a gap");
        assert!(s.admit("a", 20, 5).is_ok());
        assert!(s.admit("a", 0, MAX_SNAPSHOT_BYTES + 1).is_err());
        assert!(s.admit("a", u64::MAX, 2).is_err());
    }

    #[test]
    fn a_few_streams_are_followed_at_once() {
        let mut s = SnapshotStreams::default();
        for id in ["a", "b", "c", "d"] {
            s.admit(id, 0, 10).unwrap();
        }
        assert!(s.admit("a", 10, 10).is_ok());
        s.admit("e", 0, 10).unwrap();
        assert!(s.admit("a", 20, 1).is_err(), "the oldest is forgotten");
        assert!(s.admit("e", 10, 1).is_ok());
    }
}
