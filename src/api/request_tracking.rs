//! What every request goes through on its way in and out: a request id,
//! a debug log line and the HTTP metrics.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use super::state::AppState;

/// Header carrying the request id: the client's if it sent a sane one,
/// else one made here. Echoed in the response and sent along when the
/// request is forwarded to the leader.
pub const REQUEST_ID: &str = "x-request-id";

fn request_id(req: &Request) -> String {
    req.headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 64)
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string())
}

pub async fn track(State(s): State<AppState>, req: Request, next: Next) -> Response {
    // Labelled by pattern, never by path: ids would explode the series.
    // Written `:param` rather than axum's `{param}`: braces inside a label
    // value trip up simple exposition parsers.
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched".to_string(), |p| {
            p.as_str().replace('{', ":").replace('}', "")
        });
    let id = request_id(&req);
    let span = tracing::debug_span!("request", req = %id, method = %req.method(), %route);
    let started = Instant::now();
    let mut resp = raftcart_raft::trace::scope(id.clone(), next.run(req))
        .instrument(span.clone())
        .await;
    let elapsed = started.elapsed();
    let status = resp.status().as_u16();
    s.metrics
        .observe_http(&route, status, elapsed.as_secs_f64());
    span.in_scope(|| tracing::debug!(status, ms = elapsed.as_secs_f64() * 1e3, "answered"));
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(REQUEST_ID, v);
    }
    resp
}
