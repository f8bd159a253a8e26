//! Gathers the shop requests waiting in the gateway into batches
//! (`POST /batch`, crate::batch): whatever arrived while the previous batch
//! was on its way goes in the next one, so batches grow with the load and
//! a lone request goes at once.
//!
//! One batch is on its way at a time: the next leaves when the node has
//! started the previous one (the reply's first byte, `STARTED`), not when
//! it is answered. The leader gathers a log entry the moment the entry
//! before it commits; a request that waited in the gateway for a batch to
//! be answered reached the leader just after that and rode one entry later
//! than it would have sent directly (docs/performance.md, "The gateway's
//! batches").

use std::sync::Arc;
use std::time::{Duration, Instant};

use raftcart_types::codec;
use tokio::sync::{mpsc, oneshot, Semaphore};

use super::nodes::Nodes;
use crate::batch::{
    BatchReply, BatchRequest, ShopReply, ShopRequest, MAX_REPLY, MAX_REQUESTS, STARTED,
};

/// Batches out at once, at most: started and waiting for their entry.
const IN_FLIGHT: usize = 64;
/// How long the next batch waits for the previous one to start. A node
/// that stalls (frozen, or losing its leadership) must not hold back every
/// request behind it: after this, the next batch leaves anyway.
const START_WAIT: Duration = Duration::from_millis(50);

struct Waiting {
    request: ShopRequest,
    deadline: Instant,
    /// `None`: the batch failed; the caller sends the request on its own.
    answer: oneshot::Sender<Option<ShopReply>>,
}

pub(crate) struct Batcher {
    queue: mpsc::UnboundedSender<Waiting>,
}

impl Batcher {
    /// Starts gathering, for the gateway in front of `nodes`; ends when
    /// the `Batcher` is dropped.
    pub(crate) fn start(nodes: Arc<Nodes>) -> Batcher {
        let (queue, waiting) = mpsc::unbounded_channel();
        tokio::spawn(run(nodes, waiting));
        Batcher { queue }
    }

    /// The reply to `request`, sent in the next batch; `None` if the batch
    /// could not be delivered by `deadline` or was refused as a whole.
    pub(crate) async fn submit(
        &self,
        request: ShopRequest,
        deadline: Instant,
    ) -> Option<ShopReply> {
        let (answer, reply) = oneshot::channel();
        self.queue
            .send(Waiting {
                request,
                deadline,
                answer,
            })
            .ok()?;
        reply.await.ok().flatten()
    }
}

async fn run(nodes: Arc<Nodes>, mut waiting: mpsc::UnboundedReceiver<Waiting>) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut previous_started: Option<oneshot::Receiver<()>> = None;
    while let Some(first) = waiting.recv().await {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        // A closed channel also means "go on": the batch failed or ended.
        if let Some(started) = previous_started.take() {
            let _ = tokio::time::timeout(START_WAIT, started).await;
        }
        let mut batch = vec![first];
        while batch.len() < MAX_REQUESTS {
            match waiting.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let (started, on_start) = oneshot::channel();
        previous_started = Some(on_start);
        let nodes = nodes.clone();
        tokio::spawn(async move {
            let _slot = slot;
            deliver(&nodes, batch, Started::new(started)).await;
        });
    }
}

/// Tells the batcher that the batch has started on a node, once; dropping
/// it unsent tells it too.
struct Started(std::sync::Mutex<Option<oneshot::Sender<()>>>);

impl Started {
    fn new(tell: oneshot::Sender<()>) -> Started {
        Started(std::sync::Mutex::new(Some(tell)))
    }

    fn tell(&self) {
        if let Some(tell) = self.0.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = tell.send(());
        }
    }
}

async fn deliver(nodes: &Nodes, batch: Vec<Waiting>, started: Started) {
    let deadline = batch
        .iter()
        .map(|w| w.deadline)
        .min()
        .expect("a batch is never empty");
    let (requests, answers): (Vec<_>, Vec<_>) =
        batch.into_iter().map(|w| (w.request, w.answer)).unzip();
    let count = requests.len();
    let replies = match codec::encode(&BatchRequest { requests }) {
        Ok(body) => nodes
            .with_failover(deadline, |backend, remaining| {
                let sent = nodes
                    .http
                    .post(format!(
                        "{}://{backend}{}",
                        nodes.scheme,
                        crate::batch::PATH
                    ))
                    .header("content-type", "application/octet-stream")
                    .body(body.clone())
                    .timeout(remaining)
                    .send();
                let started = &started;
                async move { read_reply(sent.await, count, started).await }
            })
            .await
            .map_err(|problem| tracing::debug!("gateway: a batch failed: {problem}"))
            .ok()
            .flatten(),
        Err(e) => {
            tracing::warn!("gateway: encoding a batch: {e}");
            None
        }
    };
    match replies {
        Some(replies) => {
            for (answer, reply) in answers.into_iter().zip(replies) {
                let _ = answer.send(Some(reply));
            }
        }
        None => {
            for answer in answers {
                let _ = answer.send(None);
            }
        }
    }
}

/// The replies, or `None` from a node without `/batch` (another version,
/// during an upgrade): its requests then go one by one.
async fn read_reply(
    sent: reqwest::Result<reqwest::Response>,
    count: usize,
    started: &Started,
) -> Result<Option<Vec<ShopReply>>, String> {
    let mut resp = sent.map_err(|e| e.to_string())?;
    if matches!(resp.status().as_u16(), 404 | 405) {
        return Ok(None);
    }
    if !resp.status().is_success() {
        return Err(format!("answered {}", resp.status()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| format!("reply cut: {e}"))? {
        if body.len() + chunk.len() > MAX_REPLY {
            return Err("batch reply too large".into());
        }
        body.extend_from_slice(&chunk);
        if body.first() == Some(&STARTED) {
            started.tell();
        }
    }
    let Some((&STARTED, body)) = body.split_first() else {
        return Err("a batch reply without its start byte".into());
    };
    let reply: BatchReply = codec::decode(body).map_err(|e| format!("bad batch reply: {e}"))?;
    if reply.replies.len() != count {
        return Err(format!(
            "{} replies to a batch of {count}",
            reply.replies.len()
        ));
    }
    Ok(Some(reply.replies))
}
