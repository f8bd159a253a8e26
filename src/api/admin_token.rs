//! The admin token operators present, kept so that checking it leaks
//! nothing through timing.

use ring::digest::{digest, SHA256};

/// The token operators present. Kept as its SHA-256 so that comparing
/// takes the same time whatever the presented token looks like.
pub struct AdminToken {
    digest: [u8; 32],
}

impl AdminToken {
    pub fn new(secret: &[u8]) -> AdminToken {
        AdminToken {
            digest: sha256(secret),
        }
    }

    pub fn matches(&self, presented: &[u8]) -> bool {
        let presented = sha256(presented);
        // Constant time: every byte is compared whatever the first
        // difference.
        let diff = self
            .digest
            .iter()
            .zip(presented.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        std::hint::black_box(diff) == 0
    }
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    digest(&SHA256, bytes)
        .as_ref()
        .try_into()
        .expect("SHA-256 is 32 bytes")
}
