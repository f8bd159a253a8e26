//! `raftcart cluster ...`: operator commands against a running cluster,
//! through any node's API (the node forwards to the leader where needed).

mod backup;
mod status;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Subcommand;

mod target;

pub use target::Target;

#[derive(Subcommand)]
pub enum ClusterCmd {
    /// Members, leader, term, and each member's log, applied index and lag.
    Status {
        #[command(flatten)]
        target: Target,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Add an empty node as a learner; it catches up in the background.
    AddLearner {
        #[command(flatten)]
        target: Target,
        #[arg(long)]
        id: u64,
        /// The new node's API address, HOST:PORT.
        #[arg(long)]
        api: String,
        /// The new node's Raft address, HOST:PORT.
        #[arg(long)]
        raft: String,
    },
    /// Make a learner that has caught up a voter.
    Promote {
        #[command(flatten)]
        target: Target,
        #[arg(long)]
        id: u64,
    },
    /// Remove a voter or a learner from the cluster.
    Remove {
        #[command(flatten)]
        target: Target,
        #[arg(long)]
        id: u64,
    },
    /// Hand the leadership to a caught-up voter (the most caught-up one without --to).
    TransferLeader {
        #[command(flatten)]
        target: Target,
        /// The voter to lead.
        #[arg(long)]
        to: Option<u64>,
    },
    /// Snapshot every member now (and let each purge its log).
    Snapshot {
        #[command(flatten)]
        target: Target,
        /// Print JSON instead of lines.
        #[arg(long)]
        json: bool,
    },
    /// Write a consistent copy of the data to FILE (see `raftcart restore`).
    Backup {
        #[command(flatten)]
        target: Target,
        #[arg(long)]
        out: PathBuf,
        /// Print JSON instead of a sentence.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(cmd: ClusterCmd) -> anyhow::Result<()> {
    match cmd {
        ClusterCmd::Status { target, json } => {
            let report = status::status(&target).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                status::print_human(&report);
            }
        }
        ClusterCmd::AddLearner {
            target,
            id,
            api,
            raft,
        } => change(&target, &format!("/cluster/add-learner/{id}/{api}/{raft}")).await?,
        ClusterCmd::Promote { target, id } => {
            change(&target, &format!("/cluster/promote/{id}")).await?
        }
        ClusterCmd::Remove { target, id } => {
            change(&target, &format!("/cluster/remove/{id}")).await?
        }
        ClusterCmd::TransferLeader { target, to } => {
            let path = match to {
                Some(to) => format!("/cluster/transfer-leader/{to}"),
                None => "/cluster/transfer-leader".to_string(),
            };
            change(&target, &path).await?
        }
        ClusterCmd::Snapshot { target, json } => snapshot_all(&target, json).await?,
        ClusterCmd::Backup { target, out, json } => backup::to_file(&target, &out, json).await?,
    }
    Ok(())
}

/// POSTs to `url` and returns its JSON body, or the node's `error` as the
/// error.
async fn post_json(http: &reqwest::Client, url: &str) -> anyhow::Result<serde_json::Value> {
    let resp = http
        .post(url)
        .send()
        .await
        .with_context(|| format!("{url} is unreachable"))?;
    let status = resp.status();
    let body: serde_json::Value = resp
        .json()
        .await
        .with_context(|| format!("{url} answered {status} without a JSON body"))?;
    if !status.is_success() {
        bail!(
            "{} ({status})",
            body["error"].as_str().unwrap_or("unknown error")
        );
    }
    Ok(body)
}

/// Sends a membership change to the target and prints the node's message.
async fn change(target: &Target, path: &str) -> anyhow::Result<()> {
    // A change waits for a joint-consensus commit: allow more than a read.
    let http = target.client(Duration::from_secs(30))?;
    let reply = post_json(&http, &target.url(&target.addr, path)).await?;
    println!("{}", reply["msg"].as_str().unwrap_or_default());
    Ok(())
}

/// Asks every member to snapshot; fails if any could not.
async fn snapshot_all(target: &Target, json: bool) -> anyhow::Result<()> {
    let report = status::status(target).await?;
    let http = target.client(Duration::from_secs(150))?;
    let mut results = Vec::new();
    let mut failed = 0;
    for m in &report.members {
        let url = target.url(&m.api_addr, "/cluster/snapshot");
        let result = post_json(&http, &url).await;
        failed += usize::from(result.is_err());
        results.push(match result {
            Ok(body) => serde_json::json!({"id": m.id, "snapshot_index": body["snapshot_index"]}),
            Err(e) => serde_json::json!({"id": m.id, "error": format!("{e:#}")}),
        });
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    } else {
        for r in &results {
            match r.get("error") {
                Some(e) => println!("node {}: FAILED: {}", r["id"], e.as_str().unwrap_or("")),
                None => println!(
                    "node {}: snapshot at log index {}",
                    r["id"], r["snapshot_index"]
                ),
            }
        }
    }
    if failed > 0 {
        bail!("{failed} of {} members could not snapshot", results.len());
    }
    Ok(())
}
