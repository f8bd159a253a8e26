//! The one HTTP client a node uses to talk to other members' Raft ports:
//! Raft RPCs, forwarded operations and the key check of a new member.
//! Every request is signed with the peer key, every answer is checked
//! against it and read only up to a size limit.

use std::time::Duration;

use crate::peer_auth::{PeerKey, MAC_HEADER};

/// A route that answers any signed request with a signed empty answer:
/// a node proves it holds the peer key by answering it.
pub const PATH_KEY_CHECK: &str = "/raft/key-check";

/// The largest answer a peer may send (an outcome, a vote, an append
/// result: all far smaller).
pub const MAX_REPLY_BYTES: usize = 64 << 20;

#[derive(Debug)]
pub enum CallError {
    /// No connection could be made: the peer is down or unreachable.
    Unreachable(String),
    /// A connection was made but no valid answer came back.
    Failed(String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Unreachable(why) | CallError::Failed(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for CallError {}

#[derive(Clone)]
pub struct PeerClient {
    http: reqwest::Client,
    /// "http" or "https".
    scheme: &'static str,
    key: PeerKey,
}

impl PeerClient {
    /// `http` must already hold the TLS settings (CA, client certificate)
    /// when `tls` is set.
    pub fn new(http: reqwest::Client, tls: bool, key: PeerKey) -> PeerClient {
        PeerClient {
            http,
            scheme: if tls { "https" } else { "http" },
            key,
        }
    }

    pub fn key(&self) -> &PeerKey {
        &self.key
    }

    /// Whether the node at `addr` answers with this cluster's peer MAC, i.e.
    /// holds the peer key.
    pub async fn check_holds_key(&self, addr: &str, timeout: Duration) -> Result<(), CallError> {
        self.post(addr, PATH_KEY_CHECK, Vec::new(), timeout)
            .await
            .map(|_| ())
    }

    /// POSTs `body` to `path` on the peer at `addr` (HOST:PORT) and returns
    /// the answer's body, once its MAC proves it came from a key holder.
    /// Only a 2xx answer counts.
    pub async fn post(
        &self,
        addr: &str,
        path: &str,
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<Vec<u8>, CallError> {
        let mac = self.key.sign_request(path, &body);
        let sent = self
            .http
            .post(format!("{}://{addr}{path}", self.scheme))
            .header(MAC_HEADER, &mac)
            .timeout(timeout)
            .body(body)
            .send()
            .await;
        let mut resp = match sent {
            Ok(resp) => resp,
            Err(e) if e.is_connect() => {
                return Err(CallError::Unreachable(format!("{addr} unreachable: {e}")))
            }
            Err(e) => return Err(CallError::Failed(format!("{addr}: {e}"))),
        };
        let status = resp.status();
        let answer_mac = resp
            .headers()
            .get(MAC_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        if resp
            .content_length()
            .is_some_and(|n| n > MAX_REPLY_BYTES as u64)
        {
            return Err(CallError::Failed(format!(
                "{addr} sent an answer over {MAX_REPLY_BYTES} bytes"
            )));
        }
        let mut bytes = Vec::new();
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) if bytes.len() + chunk.len() <= MAX_REPLY_BYTES => {
                    bytes.extend_from_slice(&chunk)
                }
                Ok(Some(_)) => {
                    return Err(CallError::Failed(format!(
                        "{addr} sent an answer over {MAX_REPLY_BYTES} bytes"
                    )))
                }
                Ok(None) => break,
                Err(e) => return Err(CallError::Failed(format!("{addr}: answer cut: {e}"))),
            }
        }
        if !status.is_success() {
            // Refusals come as JSON {"error": ...}; show them as they are.
            let why = String::from_utf8_lossy(&bytes[..bytes.len().min(500)]).into_owned();
            return Err(CallError::Failed(format!(
                "{addr} answered {status}: {why}"
            )));
        }
        let genuine =
            answer_mac.is_some_and(|m| self.key.verify_response(&mac, status.as_u16(), &bytes, &m));
        if !genuine {
            return Err(CallError::Failed(format!(
                "{addr}'s answer does not carry this cluster's peer MAC: it does not hold the peer key"
            )));
        }
        Ok(bytes)
    }
}
