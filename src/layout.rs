//! The one-machine cluster layout that `up` runs and `restore` seeds:
//! node N listens on API port `api_port + N - 1` and Raft port
//! `raft_port + N - 1`, and keeps its data in `DATA_DIR/nodeN`.

use std::path::{Path, PathBuf};

use clap::Args;

use crate::peers::Peer;

#[derive(Args, Clone, Debug)]
pub struct Layout {
    #[arg(long, default_value_t = 3)]
    pub nodes: u64,
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// First node's API port; node N listens on this + N - 1.
    #[arg(long, default_value_t = 8001)]
    pub api_port: u16,
    /// First node's Raft port; node N listens on this + N - 1.
    #[arg(long, default_value_t = 9001)]
    pub raft_port: u16,
}

impl Layout {
    pub fn peers(&self) -> anyhow::Result<Vec<Peer>> {
        anyhow::ensure!(
            (1..=9).contains(&self.nodes),
            "--nodes must be between 1 and 9"
        );
        Ok((0..self.nodes)
            .map(|i| Peer {
                id: i + 1,
                api_addr: format!("{}:{}", self.host, self.api_port as u64 + i),
                raft_addr: format!("{}:{}", self.host, self.raft_port as u64 + i),
            })
            .collect())
    }
}

pub fn node_dir(data_dir: &Path, id: u64) -> PathBuf {
    data_dir.join(format!("node{id}"))
}
