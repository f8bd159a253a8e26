//! The node's side of `POST /batch` (crate::batch): each request of the
//! batch goes through the node's own router, all at once, so that its
//! writes wait in the proposer together.

use std::sync::Arc;

use axum::body::{to_bytes, Body, Bytes};
use axum::extract::Request;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use futures::future::{self, join_all};
use futures::{stream, StreamExt};
use raftcart_raft::Executor;
use raftcart_types::codec;
use tower::ServiceExt;

use super::error::ApiError;
use super::handlers::IDEMPOTENCY_KEY;
use crate::batch::{
    is_shop_route, BatchReply, BatchRequest, ShopReply, ShopRequest, MAX_BODY, MAX_REPLY_BODY,
    MAX_REQUESTS, STARTED,
};

/// Answers a batch. `shop`: the node's router, without `/batch` itself.
pub async fn run(shop: Router, executor: Arc<Executor>, body: Body) -> Response {
    let refuse = |status: StatusCode, message: String| ApiError { status, message }.into_response();
    let Ok(bytes) = to_bytes(body, MAX_BODY).await else {
        return refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("a batch body is at most {MAX_BODY} bytes"),
        );
    };
    let batch: BatchRequest = match codec::decode(&bytes) {
        Ok(b) => b,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, format!("undecodable batch: {e}")),
    };
    if batch.requests.len() > MAX_REQUESTS {
        return refuse(
            StatusCode::BAD_REQUEST,
            format!("a batch carries at most {MAX_REQUESTS} requests"),
        );
    }
    let mut replies = join_all(batch.requests.into_iter().map(|r| one(shop.clone(), r)));
    // The first poll takes each request as far as the proposer's queue:
    // held meanwhile, the proposer puts the batch's writes in one entry
    // instead of proposing the first alone.
    let held = executor.hold_entry().await;
    let first = futures::poll!(&mut replies);
    drop(held);
    let answered = async move {
        let replies = match first {
            std::task::Poll::Ready(replies) => replies,
            std::task::Poll::Pending => replies.await,
        };
        // Encoding plain vectors does not fail; if it ever did, the 200 is
        // already out, so the reply is cut and the gateway sends the
        // batch's requests one by one.
        codec::encode(&BatchReply { replies })
            .map(Bytes::from)
            .map_err(|e| std::io::Error::other(format!("encoding the batch reply: {e}")))
    };
    // `STARTED` leaves at once, so that the gateway's next batch can reach
    // the proposer before it gathers the next entry.
    let body = stream::once(future::ready(Ok(Bytes::from_static(&[STARTED]))))
        .chain(stream::once(answered));
    (
        [("content-type", "application/octet-stream")],
        Body::from_stream(body),
    )
        .into_response()
}

async fn one(shop: Router, r: ShopRequest) -> ShopReply {
    let refused = |status: StatusCode, message: &str| ShopReply {
        status: status.as_u16(),
        content_type: Some("application/json".into()),
        body: serde_json::json!({ "error": message })
            .to_string()
            .into_bytes(),
    };
    if !is_shop_route(&r.path) {
        return refused(
            StatusCode::BAD_REQUEST,
            "a batch carries only the order, stock and payment routes",
        );
    }
    let mut req = Request::builder()
        .method(if r.post { Method::POST } else { Method::GET })
        .uri(&r.path);
    if let Some(key) = &r.idempotency_key {
        req = req.header(IDEMPOTENCY_KEY, key);
    }
    let Ok(req) = req.body(Body::empty()) else {
        return refused(StatusCode::BAD_REQUEST, "malformed path or Idempotency-Key");
    };
    let resp = match shop.oneshot(req).await {
        Ok(resp) => resp,
        Err(never) => match never {},
    };
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    match to_bytes(resp.into_body(), MAX_REPLY_BODY).await {
        Ok(body) => ShopReply {
            status,
            content_type,
            body: body.to_vec(),
        },
        // The gateway sends a request answered 503 again on its own.
        Err(_) => refused(
            StatusCode::SERVICE_UNAVAILABLE,
            "the reply is too large for a batch",
        ),
    }
}
