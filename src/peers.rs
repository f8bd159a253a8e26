//! The `--peer ID@API_ADDR@RAFT_ADDR` notation.

use std::str::FromStr;

use raftcart_raft::{NodeId, NodeInfo};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub id: NodeId,
    pub api_addr: String,
    pub raft_addr: String,
}

impl Peer {
    pub fn info(&self) -> NodeInfo {
        NodeInfo {
            api_addr: self.api_addr.clone(),
            raft_addr: self.raft_addr.clone(),
        }
    }
}

impl FromStr for Peer {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.split('@').collect();
        let [id, api, raft] = parts[..] else {
            return Err(format!("expected ID@API_ADDR@RAFT_ADDR, got {s:?}"));
        };
        let id = id
            .parse()
            .map_err(|_| format!("peer id must be a number, got {id:?}"))?;
        for addr in [api, raft] {
            if !addr.contains(':') {
                return Err(format!("address {addr:?} needs HOST:PORT"));
            }
        }
        Ok(Peer {
            id,
            api_addr: api.to_string(),
            raft_addr: raft.to_string(),
        })
    }
}

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}@{}", self.id, self.api_addr, self.raft_addr)
    }
}

#[cfg(test)]
mod tests {
    use super::Peer;

    #[test]
    fn parses_and_prints() {
        let p: Peer = "2@127.0.0.1:8002@127.0.0.1:9002".parse().unwrap();
        assert_eq!(p.id, 2);
        assert_eq!(p.to_string(), "2@127.0.0.1:8002@127.0.0.1:9002");
        assert!("x@a:1@b:2".parse::<Peer>().is_err());
        assert!("1@a:1".parse::<Peer>().is_err());
        assert!("1@a@b:2".parse::<Peer>().is_err());
    }
}
