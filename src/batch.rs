//! `POST /batch`: several shop requests in one, as the gateway sends them
//! to a node. The node runs each through its own router, as if it had
//! come alone, and answers all of them in one reply, so that a busy
//! gateway pays one upstream request (and the node one HTTP exchange) per
//! batch instead of per client request. The writes of one batch reach the
//! leader's proposer together and usually share a log entry.
//!
//! The body is bincode (`raftcart_types::codec`, whose decoding is bounded
//! by the input). A batch carries no credentials: only the shop's routes
//! answer inside it (`is_shop_route`), the same routes any client may call
//! one at a time.

use serde::{Deserialize, Serialize};

pub const PATH: &str = "/batch";
/// The first byte of every batch reply, sent as soon as the node has
/// started each request of the batch (its writes are queued for the next
/// log entry); the encoded `BatchReply` follows once all are answered. The
/// gateway sends its next batch when this byte arrives (`gateway::batcher`).
pub const STARTED: u8 = b'+';
/// Most requests in one batch.
pub const MAX_REQUESTS: usize = 512;
/// Largest request body a node takes on `/batch`.
pub const MAX_BODY: usize = 256 * 1024;
/// Largest reply body of one request inside a batch; a larger one is
/// answered 503, and the gateway sends that request again on its own.
pub const MAX_REPLY_BODY: usize = 64 * 1024;
/// Largest batch reply the gateway reads, `STARTED` included.
pub const MAX_REPLY: usize = 1 + MAX_REQUESTS * (MAX_REPLY_BODY + 1024);

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BatchRequest {
    pub requests: Vec<ShopRequest>,
}

/// One client request without a body (every shop route takes its
/// arguments in the path).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ShopRequest {
    pub post: bool,
    /// Path and query, as the client sent them.
    pub path: String,
    pub idempotency_key: Option<String>,
}

/// The answer to one `ShopRequest`, in the same position.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ShopReply {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BatchReply {
    pub replies: Vec<ShopReply>,
}

/// The routes a batch may carry: the order, stock and payment services.
pub fn is_shop_route(path: &str) -> bool {
    ["/orders/", "/stock/", "/payment/"]
        .iter()
        .any(|prefix| path.starts_with(prefix))
        && !path.contains("/../")
        && !path.ends_with("/..")
}
