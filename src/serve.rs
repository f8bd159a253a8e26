//! Serving a router on a port that assumes a hostile network: at most
//! `max_connections` connections at once (one more is closed on arrival,
//! so many clients cannot exhaust memory or file descriptors), a deadline
//! for a TLS handshake, for a request's headers (an idle keep-alive
//! connection too) and for its body, so that slow clients cannot hold
//! connections for ever; optional TLS; a graceful stop.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tower_http::timeout::RequestBodyTimeoutLayer;

#[derive(Clone)]
pub struct Limits {
    pub max_connections: usize,
    /// For a request's headers, counted from when the connection is ready
    /// for one: also how long a keep-alive connection may stay idle.
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub handshake_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 4096,
            header_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(60),
            handshake_timeout: Duration::from_secs(10),
        }
    }
}

/// How long clients in this binary keep an idle connection: below the
/// servers' `header_timeout`, so that a client never sends on a connection
/// the server is closing.
pub const CLIENT_IDLE: Duration = Duration::from_secs(20);

/// Serves `router` on `listener` until `stop` resolves, then lets the
/// requests in flight finish (for up to 3 s).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    limits: Limits,
    stop: impl Future<Output = ()>,
) {
    let router = router.layer(RequestBodyTimeoutLayer::new(limits.body_timeout));
    let tls = tls.map(TlsAcceptor::from);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    tokio::pin!(stop);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = &mut stop => break,
        };
        let tcp = match accepted {
            Ok((tcp, _)) => tcp,
            Err(e) => {
                // Out of file descriptors, say: the next accept may work.
                tracing::debug!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::debug!(
                max = limits.max_connections,
                "connection refused: at the connection limit"
            );
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let router = router.clone();
        let tls = tls.clone();
        let watcher = graceful.watcher();
        let limits = limits.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let service = TowerToHyperService::new(router.into_service::<Incoming>());
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout);
            match tls {
                Some(tls) => {
                    let handshake =
                        tokio::time::timeout(limits.handshake_timeout, tls.accept(tcp)).await;
                    let Ok(Ok(stream)) = handshake else { return };
                    let conn = http.serve_connection(TokioIo::new(stream), service);
                    let _ = watcher.watch(conn).await;
                }
                None => {
                    let conn = http.serve_connection(TokioIo::new(tcp), service);
                    let _ = watcher.watch(conn).await;
                }
            }
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(Duration::from_secs(3), graceful.shutdown()).await;
}
