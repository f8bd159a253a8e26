//! How nodes are named on the command line: `--id` and the
//! `--peer ID@API_ADDR@RAFT_ADDR` notation.

use std::str::FromStr;

use raftcart_types::{NodeId, NodeInfo};

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

/// `--id`: a number, or `hostname-ordinal` for the trailing `-N` of the
/// host name plus one, so that a Kubernetes StatefulSet's pod `raftcart-0`
/// is node 1 without a per-pod setting.
pub fn parse_node_id(s: &str) -> Result<NodeId, String> {
    if s != "hostname-ordinal" {
        return s
            .parse()
            .map_err(|_| format!("--id must be a number or hostname-ordinal, got {s:?}"));
    }
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .ok_or("--id hostname-ordinal: no HOSTNAME and no /etc/hostname")?;
    ordinal_id(&host)
}

fn ordinal_id(host: &str) -> Result<NodeId, String> {
    host.rsplit_once('-')
        .and_then(|(_, n)| n.parse::<NodeId>().ok())
        .and_then(|n| n.checked_add(1))
        .ok_or_else(|| format!("--id hostname-ordinal: host name {host:?} does not end in -N"))
}

#[cfg(test)]
mod tests {
    use super::{ordinal_id, parse_node_id, Peer};

    #[test]
    fn node_ids() {
        assert_eq!(parse_node_id("7"), Ok(7));
        assert!(parse_node_id("seven").is_err());
        assert_eq!(ordinal_id("raftcart-0"), Ok(1));
        assert_eq!(ordinal_id("my-db-raftcart-12"), Ok(13));
        assert!(ordinal_id("raftcart").is_err());
        assert!(ordinal_id("raftcart-x").is_err());
    }

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
