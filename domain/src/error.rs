//! Why a command or query was refused. A refusal changes nothing.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Refusal {
    /// An id that names nothing (HTTP 404).
    #[error("{0}")]
    NotFound(String),
    /// Understood but not allowed: an overflow, an argument out of range
    /// (HTTP 400).
    #[error("{0}")]
    Invalid(String),
    /// An idempotency key sent again with a different request (HTTP 422).
    #[error("{0}")]
    KeyReused(String),
    /// Not enough stock for a subtraction or a checkout (HTTP 400). Kept
    /// apart from `Invalid` so that checkouts can be counted by outcome.
    #[error("{0}")]
    NoStock(String),
    /// Not enough credit for a payment or a checkout (HTTP 400).
    #[error("{0}")]
    NoCredit(String),
}

pub(crate) fn not_found(what: &str, id: &str) -> Refusal {
    Refusal::NotFound(format!("{what} {id:?} not found"))
}

pub(crate) fn invalid(msg: impl Into<String>) -> Refusal {
    Refusal::Invalid(msg.into())
}

/// Checked addition with the refusal every balance overflow gets.
pub(crate) fn add(a: u64, b: u64, what: &str) -> Result<u64, Refusal> {
    a.checked_add(b)
        .ok_or_else(|| invalid(format!("{what} would overflow a 64-bit integer")))
}

pub(crate) fn mul(a: u64, b: u64, what: &str) -> Result<u64, Refusal> {
    a.checked_mul(b)
        .ok_or_else(|| invalid(format!("{what} would overflow a 64-bit integer")))
}
