//! The error a client finally sees when no leader could serve its request.

#[derive(Debug, Clone, thiserror::Error)]
pub enum ClusterError {
    /// No leader answered within the wait: HTTP 503.
    #[error("{0}")]
    Unavailable(String),
}
