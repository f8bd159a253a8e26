//! `raftcart cluster ...`: operator commands against a running cluster,
//! through any node's API (the node forwards to the leader where needed).

mod backup;
mod status;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Subcommand;

const ADDR_HELP: &str = "Any node's API address";

#[derive(Subcommand)]
pub enum ClusterCmd {
    /// Members, leader, term, and each member's log, applied index and lag.
    Status {
        #[arg(long, default_value = "http://127.0.0.1:8001", env = "RAFTCART_ADDR", help = ADDR_HELP)]
        addr: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Add an empty node as a learner; it catches up in the background.
    AddLearner {
        #[arg(long, default_value = "http://127.0.0.1:8001", env = "RAFTCART_ADDR", help = ADDR_HELP)]
        addr: String,
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
        #[arg(long, default_value = "http://127.0.0.1:8001", env = "RAFTCART_ADDR", help = ADDR_HELP)]
        addr: String,
        #[arg(long)]
        id: u64,
    },
    /// Remove a voter or a learner from the cluster.
    Remove {
        #[arg(long, default_value = "http://127.0.0.1:8001", env = "RAFTCART_ADDR", help = ADDR_HELP)]
        addr: String,
        #[arg(long)]
        id: u64,
    },
    /// Not supported by the Raft library: explains what to do instead.
    TransferLeader {
        #[arg(long)]
        to: u64,
    },
    /// Snapshot every member now (and let each purge its log).
    Snapshot {
        #[arg(long, default_value = "http://127.0.0.1:8001", env = "RAFTCART_ADDR", help = ADDR_HELP)]
        addr: String,
        /// Print JSON instead of lines.
        #[arg(long)]
        json: bool,
    },
    /// Write a consistent copy of the data to FILE (see `raftcart restore`).
    Backup {
        #[arg(long, default_value = "http://127.0.0.1:8001", env = "RAFTCART_ADDR", help = ADDR_HELP)]
        addr: String,
        #[arg(long)]
        out: PathBuf,
        /// Print JSON instead of a sentence.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(cmd: ClusterCmd) -> anyhow::Result<()> {
    match cmd {
        ClusterCmd::Status { addr, json } => {
            let report = status::status(&addr).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                status::print_human(&report);
            }
        }
        ClusterCmd::AddLearner {
            addr,
            id,
            api,
            raft,
        } => change(&addr, &format!("/cluster/add-learner/{id}/{api}/{raft}")).await?,
        ClusterCmd::Promote { addr, id } => {
            change(&addr, &format!("/cluster/promote/{id}")).await?
        }
        ClusterCmd::Remove { addr, id } => change(&addr, &format!("/cluster/remove/{id}")).await?,
        ClusterCmd::TransferLeader { to } => bail!(
            "cannot move the leadership to node {to}: openraft 0.9, the Raft library raftcart \
             pins, has no leadership transfer. To move the leadership off a node, restart that \
             node (SIGTERM, then start it again): the other voters elect a leader among \
             themselves within about a second, and requests in flight are retried. See \
             \"Moving the leader\" in README.md."
        ),
        ClusterCmd::Snapshot { addr, json } => snapshot_all(&addr, json).await?,
        ClusterCmd::Backup { addr, out, json } => backup::to_file(&addr, &out, json).await?,
    }
    Ok(())
}

fn client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .build()
        .expect("building an HTTP client with static settings")
}

fn http_base(addr: &str) -> String {
    let base = if addr.starts_with("http://") || addr.starts_with("https://") {
        addr.to_string()
    } else {
        format!("http://{addr}")
    };
    base.trim_end_matches('/').to_string()
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

/// Sends a membership change to `addr` and prints the node's message.
async fn change(addr: &str, path: &str) -> anyhow::Result<()> {
    // A change waits for a joint-consensus commit: allow more than a read.
    let http = client(Duration::from_secs(30));
    let reply = post_json(&http, &format!("{}{path}", http_base(addr))).await?;
    println!("{}", reply["msg"].as_str().unwrap_or_default());
    Ok(())
}

/// Asks every member to snapshot; fails if any could not.
async fn snapshot_all(addr: &str, json: bool) -> anyhow::Result<()> {
    let report = status::status(addr).await?;
    let http = client(Duration::from_secs(150));
    let mut results = Vec::new();
    let mut failed = 0;
    for m in &report.members {
        let url = format!("{}/cluster/snapshot", http_base(&m.api_addr));
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
