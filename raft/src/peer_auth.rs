//! Proof that node-to-node traffic comes from a member of the cluster.
//!
//! Every member holds the cluster's peer key (a shared secret). A request
//! carries an HMAC-SHA256 of its path and body under that key, and the
//! answer an HMAC of the request's MAC, its status and its body, so that a
//! node acts only on requests from key holders and believes only answers
//! from them (an answer cannot be replayed for another request). The key
//! itself never travels. The MAC proves who sent a message, not that it is
//! fresh: an eavesdropper can replay a captured request. Raft's terms make
//! a replayed RPC harmless, and a write's request id a replay within its
//! time to live, but not later: where traffic can be captured, TLS
//! (`--tls-*`) keeps such an eavesdropper out.

use ring::hmac;

/// Header carrying the MAC of a request or of its answer, in hex.
pub const MAC_HEADER: &str = "x-raftcart-mac";

/// Shortest accepted key: 32 bytes (a 256-bit secret as 64 hex digits is
/// longer still).
pub const MIN_KEY_BYTES: usize = 32;

const REQUEST: &[u8] = b"raftcart peer request v1\0";
const RESPONSE: &[u8] = b"raftcart peer response v1\0";

#[derive(Clone)]
pub struct PeerKey {
    key: hmac::Key,
}

impl std::fmt::Debug for PeerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PeerKey(..)")
    }
}

impl PeerKey {
    /// A key from the contents of a key file (surrounding whitespace is not
    /// part of it).
    pub fn from_secret(secret: &[u8]) -> Result<PeerKey, String> {
        let secret = secret.trim_ascii();
        if secret.len() < MIN_KEY_BYTES {
            return Err(format!(
                "a peer key must be at least {MIN_KEY_BYTES} bytes long, this one has {}",
                secret.len()
            ));
        }
        Ok(PeerKey {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
        })
    }

    pub fn sign_request(&self, path: &str, body: &[u8]) -> String {
        hex(hmac::sign(&self.key, &request_message(path, body)).as_ref())
    }

    pub fn verify_request(&self, path: &str, body: &[u8], mac: &str) -> bool {
        match unhex(mac) {
            Some(mac) => hmac::verify(&self.key, &request_message(path, body), &mac).is_ok(),
            None => false,
        }
    }

    pub fn sign_response(&self, request_mac: &str, status: u16, body: &[u8]) -> String {
        let message = response_message(request_mac, status, body);
        hex(hmac::sign(&self.key, &message).as_ref())
    }

    pub fn verify_response(&self, request_mac: &str, status: u16, body: &[u8], mac: &str) -> bool {
        match unhex(mac) {
            Some(mac) => {
                let message = response_message(request_mac, status, body);
                hmac::verify(&self.key, &message, &mac).is_ok()
            }
            None => false,
        }
    }
}

/// The path's length first, so that no split of path and body can be
/// passed off as another.
fn request_message(path: &str, body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(REQUEST.len() + 8 + path.len() + body.len());
    m.extend_from_slice(REQUEST);
    m.extend_from_slice(&(path.len() as u64).to_be_bytes());
    m.extend_from_slice(path.as_bytes());
    m.extend_from_slice(body);
    m
}

fn response_message(request_mac: &str, status: u16, body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(RESPONSE.len() + 8 + request_mac.len() + 2 + body.len());
    m.extend_from_slice(RESPONSE);
    m.extend_from_slice(&(request_mac.len() as u64).to_be_bytes());
    m.extend_from_slice(request_mac.as_bytes());
    m.extend_from_slice(&status.to_be_bytes());
    m.extend_from_slice(body);
    m
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    // An HMAC-SHA256 is 32 bytes: anything else is not one of ours.
    if s.len() != 64 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(secret: &str) -> PeerKey {
        PeerKey::from_secret(secret.as_bytes()).unwrap()
    }

    #[test]
    fn a_request_verifies_only_under_the_same_key_path_and_body() {
        let k = key("0123456789abcdef0123456789abcdef");
        let mac = k.sign_request("/raft/vote", b"body");
        assert!(k.verify_request("/raft/vote", b"body", &mac));
        assert!(!k.verify_request("/raft/vote", b"bodz", &mac));
        assert!(!k.verify_request("/raft/append", b"body", &mac));
        // The same bytes split differently between path and body.
        assert!(!k.verify_request("/raft/vot", b"ebody", &mac));
        let other = key("0123456789abcdef0123456789abcdeX");
        assert!(!other.verify_request("/raft/vote", b"body", &mac));
        assert!(!k.verify_request("/raft/vote", b"body", "zz"));
        assert!(!k.verify_request("/raft/vote", b"body", &"é".repeat(32)));
    }

    #[test]
    fn an_answer_verifies_only_for_its_request_and_status() {
        let k = key("0123456789abcdef0123456789abcdef");
        let req = k.sign_request("/raft/vote", b"q");
        let other_req = k.sign_request("/raft/vote", b"r");
        let mac = k.sign_response(&req, 200, b"a");
        assert!(k.verify_response(&req, 200, b"a", &mac));
        assert!(!k.verify_response(&other_req, 200, b"a", &mac));
        assert!(!k.verify_response(&req, 400, b"a", &mac));
        assert!(!k.verify_response(&req, 200, b"b", &mac));
    }

    #[test]
    fn short_keys_are_refused_and_whitespace_is_not_part_of_a_key() {
        assert!(PeerKey::from_secret(b"short").is_err());
        assert!(PeerKey::from_secret(&[b' '; 40]).is_err());
        let a = key("0123456789abcdef0123456789abcdef");
        let b = key("  0123456789abcdef0123456789abcdef\n");
        assert!(b.verify_request("/p", b"", &a.sign_request("/p", b"")));
    }
}
