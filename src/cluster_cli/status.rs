//! `raftcart cluster status`: the cluster as the leader sees it, with every
//! member's own view of how far it has applied.

use std::time::Duration;

use anyhow::{bail, Context};
use raftcart_raft::ClusterStatus;
use serde::Serialize;

use super::target::Target;

#[derive(Debug, Serialize)]
pub struct MemberReport {
    pub id: u64,
    pub api_addr: String,
    pub raft_addr: String,
    pub role: &'static str,
    pub reachable: bool,
    pub last_log_index: Option<u64>,
    pub last_applied: Option<u64>,
    /// Log entries the leader has that this member is not known to hold.
    pub lag: Option<u64>,
    pub snapshot_index: Option<u64>,
    /// Times the member's process was restarted on its data dir.
    pub restarts: Option<u64>,
}

#[derive(Debug, Serialize)]
pub struct ClusterReport {
    pub leader_id: Option<u64>,
    pub term: u64,
    /// A membership change is between its joint and its final configuration.
    pub joint: bool,
    pub members: Vec<MemberReport>,
}

pub(super) async fn status_at(http: &reqwest::Client, url: &str) -> anyhow::Result<ClusterStatus> {
    let resp = http
        .get(url)
        .send()
        .await
        .with_context(|| format!("{url} is unreachable"))?;
    if !resp.status().is_success() {
        bail!("{url} answered {}", resp.status());
    }
    resp.json()
        .await
        .with_context(|| format!("{url} did not answer a cluster status"))
}

/// Asks `addr` who leads, then asks the leader (for replication progress)
/// and every member (for its own applied index).
pub async fn status(target: &Target) -> anyhow::Result<ClusterReport> {
    let http = target.client(Duration::from_secs(2))?;
    let url = |addr: &str| target.url(addr, "/cluster/status");
    let first = status_at(&http, &url(&target.addr)).await?;
    let leader = match first.leader_id {
        Some(l) if l == first.node_id => Some(first.clone()),
        Some(l) => match first.members.iter().find(|m| m.id == l) {
            Some(m) => status_at(&http, &url(&m.api_addr)).await.ok(),
            None => None,
        },
        None => None,
    };
    let view = leader.as_ref().unwrap_or(&first);
    let leader_last = leader.as_ref().and_then(|l| l.last_log_index);
    let mut members = Vec::new();
    for m in &view.members {
        let own = status_at(&http, &url(&m.api_addr)).await.ok();
        members.push(MemberReport {
            id: m.id,
            api_addr: m.api_addr.clone(),
            raft_addr: m.raft_addr.clone(),
            role: match (Some(m.id) == view.leader_id, m.voter) {
                (true, _) => "leader",
                (false, true) => "voter",
                (false, false) => "learner",
            },
            reachable: own.is_some(),
            last_log_index: own.as_ref().and_then(|s| s.last_log_index),
            last_applied: own.as_ref().and_then(|s| s.last_applied),
            lag: leader_last.map(|last| last.saturating_sub(m.matched_index.unwrap_or(0))),
            snapshot_index: own.as_ref().and_then(|s| s.snapshot_index),
            restarts: own.as_ref().map(|s| s.starts.saturating_sub(1)),
        });
    }
    Ok(ClusterReport {
        leader_id: view.leader_id,
        term: view.term,
        joint: view.joint,
        members,
    })
}

fn or_dash(v: Option<u64>) -> String {
    v.map_or("-".into(), |v| v.to_string())
}

pub fn print_human(r: &ClusterReport) {
    println!(
        "leader: {}   term: {}{}",
        r.leader_id
            .map_or("none (election in progress?)".into(), |l| l.to_string()),
        r.term,
        match r.joint {
            true => "   joint configuration: a membership change is committing",
            false => "",
        }
    );
    println!(
        "{:>4}  {:<8} {:<22} {:<22} {:>9} {:>9} {:>9} {:>6} {:>9} {:>8}",
        "id",
        "role",
        "api",
        "raft",
        "reachable",
        "last_log",
        "applied",
        "lag",
        "snapshot",
        "restarts"
    );
    for m in &r.members {
        println!(
            "{:>4}  {:<8} {:<22} {:<22} {:>9} {:>9} {:>9} {:>6} {:>9} {:>8}",
            m.id,
            m.role,
            m.api_addr,
            m.raft_addr,
            if m.reachable { "yes" } else { "NO" },
            or_dash(m.last_log_index),
            or_dash(m.last_applied),
            or_dash(m.lag),
            or_dash(m.snapshot_index),
            or_dash(m.restarts),
        );
    }
}
