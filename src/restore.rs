//! `raftcart restore --from FILE --data-dir DIR`: seeds the data
//! directories of a new cluster from a backup, one per member.

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use raftcart_storage::{refuse_occupied, Backup};
use raftcart_types::{NodeId, NodeInfo};

use crate::layout::{node_dir, Layout};
use crate::peers::Peer;
use crate::secrets::ClusterSecrets;

#[derive(Args)]
pub struct RestoreArgs {
    /// A file written by `raftcart cluster backup`.
    #[arg(long)]
    from: PathBuf,
    /// Where the new cluster keeps its data: node N's in DIR/nodeN.
    #[arg(long)]
    data_dir: PathBuf,
    /// The new cluster's addresses, as `raftcart up` lays them out.
    #[command(flatten)]
    layout: Layout,
    /// Or the new cluster's members, ID@API_ADDR@RAFT_ADDR, for nodes run by hand (replaces the layout).
    #[arg(long = "peer", value_delimiter = ',')]
    peers: Vec<Peer>,
}

pub fn run(a: RestoreArgs) -> anyhow::Result<()> {
    // Test builds: crash points armed by FAILPOINTS=name=return (the
    // `backup_restore.*` ones run here, not in a node).
    #[cfg(feature = "failpoints")]
    let _crash_points = fail::FailScenario::setup();
    let peers = if a.peers.is_empty() {
        a.layout.peers()?
    } else {
        a.peers
    };
    let bytes = fs::read(&a.from).with_context(|| format!("reading {}", a.from.display()))?;
    let backup = Backup::decode(&bytes).with_context(|| format!("reading {}", a.from.display()))?;
    let members: BTreeMap<NodeId, NodeInfo> = peers.iter().map(|p| (p.id, p.info())).collect();

    // Every target is checked before any is written, so a refusal leaves
    // nothing half-restored.
    for p in &peers {
        refuse_occupied(&node_dir(&a.data_dir, p.id))?;
    }
    let mut start = None;
    for p in &peers {
        let dir = node_dir(&a.data_dir, p.id);
        start = Some(
            backup
                .restore_into(&dir, &members)
                .with_context(|| format!("restoring into {}", dir.display()))?,
        );
    }

    // The new cluster's own secrets: nodes started over these dirs need
    // the peer key (and operators the admin token).
    let secrets = ClusterSecrets::ensure(&a.data_dir)?;

    let s = backup.summary();
    println!(
        "restored {} users, {} items, {} orders for {} members under {}; the new cluster starts at log index {}",
        s.users,
        s.items,
        s.orders,
        peers.len(),
        a.data_dir.display(),
        start.map_or(0, |l| l.index)
    );
    println!(
        "start it with `raftcart up --data-dir {}` (same layout flags), or each member with \
         `raftcart node --data-dir {}/nodeN --peer-key-file {} ...`; no --init is needed.",
        a.data_dir.display(),
        a.data_dir.display(),
        secrets.peer_key.display()
    );
    Ok(())
}
