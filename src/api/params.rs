//! Path parameters, checked by hand so that every mistake gets a clear
//! JSON 400 rather than a framework's plain-text rejection.

use axum::extract::{FromRequestParts, Path, RawQuery};
use axum::http::request::Parts;
use raftcart_raft::Consistency;

use super::error::ApiError;

/// Longest id accepted, in bytes.
pub const MAX_ID_LEN: usize = 256;

/// The route's path parameters, in order.
pub struct Params(pub Vec<String>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(values) = Path::<Vec<(String, String)>>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::bad_request(format!("bad path: {e}")))?;
        Ok(Params(values.into_iter().map(|(_, v)| v).collect()))
    }
}

impl Params {
    pub fn id(&self, i: usize, name: &str) -> Result<String, ApiError> {
        let v = &self.0[i];
        if v.is_empty() || v.len() > MAX_ID_LEN {
            return Err(ApiError::bad_request(format!(
                "{name} must be 1 to {MAX_ID_LEN} bytes long"
            )));
        }
        Ok(v.clone())
    }

    pub fn number(&self, i: usize, name: &str) -> Result<u64, ApiError> {
        parse_u64(name, &self.0[i])
    }
}

pub fn parse_u64(name: &str, s: &str) -> Result<u64, ApiError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::bad_request(format!(
            "{name} must be a non-negative integer, got {s:?}"
        )));
    }
    s.parse::<u64>()
        .map_err(|_| ApiError::bad_request(format!("{name} {s} does not fit in a 64-bit integer")))
}

/// `?stale=true` asks for a local, possibly stale read; the default is
/// linearizable.
pub struct ReadConsistency(pub Consistency);

impl<S: Send + Sync> FromRequestParts<S> for ReadConsistency {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let RawQuery(query) = RawQuery::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let mut consistency = Consistency::Linearizable;
        for pair in query
            .as_deref()
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
        {
            match pair {
                "stale=true" | "stale=1" | "stale" => consistency = Consistency::Stale,
                "stale=false" | "stale=0" => consistency = Consistency::Linearizable,
                other => {
                    return Err(ApiError::bad_request(format!(
                        "unknown query parameter {other:?} (only stale=true|false)"
                    )))
                }
            }
        }
        Ok(ReadConsistency(consistency))
    }
}

#[cfg(test)]
mod tests {
    use super::parse_u64;

    #[test]
    fn numbers() {
        assert_eq!(parse_u64("n", "0").unwrap(), 0);
        assert_eq!(parse_u64("n", "18446744073709551615").unwrap(), u64::MAX);
        for bad in [
            "",
            "-1",
            "+1",
            "1.5",
            "abc",
            " 1",
            "18446744073709551616",
            "1e3",
        ] {
            assert!(parse_u64("n", bad).is_err(), "{bad:?} accepted");
        }
    }
}
