//! `raftcart up`: a whole cluster on one machine, one OS process per node,
//! behind a gateway on port 8000.

use std::fs::{self, OpenOptions};
use std::future::IntoFuture;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use raftcart_raft::ClusterStatus;
use tokio::process::{Child, Command};

use crate::gateway::Gateway;
use crate::layout::{node_dir, Layout};
use crate::peers::Peer;

#[derive(Debug, Clone)]
pub struct UpConfig {
    pub data_dir: PathBuf,
    pub layout: Layout,
    pub gateway_port: u16,
    /// Extra flags passed to every `raftcart node`.
    pub node_args: Vec<String>,
    pub leader_wait: Duration,
}

pub async fn run(c: UpConfig) -> anyhow::Result<()> {
    let peers = c.layout.peers()?;
    fs::create_dir_all(&c.data_dir)
        .with_context(|| format!("creating {}", c.data_dir.display()))?;
    let data_dir = fs::canonicalize(&c.data_dir)?;

    let exe = std::env::current_exe().context("finding the raftcart binary")?;
    let mut children = Vec::new();
    for peer in &peers {
        children.push(spawn_node(&exe, &data_dir, peer, &peers, &c.node_args)?);
    }

    let gateway_addr: SocketAddr = format!("{}:{}", c.layout.host, c.gateway_port)
        .parse()
        .context("gateway address")?;
    let gateway = Gateway::new(
        peers.iter().map(|p| p.api_addr.clone()).collect(),
        c.leader_wait,
    );
    let listener = tokio::net::TcpListener::bind(gateway_addr)
        .await
        .with_context(|| format!("binding the gateway on {gateway_addr}"))?;
    tokio::spawn(gateway.clone().track_leader());
    tokio::spawn(axum::serve(listener, gateway.router()).into_future());

    let leader = wait_for_leader(&peers, Duration::from_secs(30)).await;
    println!("raftcart is up");
    println!("  gateway (the course's clients): http://{gateway_addr}");
    for peer in &peers {
        println!(
            "  node {}: api http://{}  raft {}  data {}  log {}/node{}.log",
            peer.id,
            peer.api_addr,
            peer.raft_addr,
            node_dir(&data_dir, peer.id).display(),
            data_dir.display(),
            peer.id
        );
    }
    match leader {
        Some(id) => println!("  leader: node {id}"),
        None => println!("  no leader yet: see the node logs"),
    }
    println!("  live page: http://{gateway_addr}/ui");
    println!("  metrics: http://{gateway_addr}/metrics (the node that answers; each node serves its own)");
    println!("  status: http://{gateway_addr}/cluster/status");
    println!("Ctrl-C stops everything.");

    // One task per node reaps it and reports its exit, so a node that dies
    // while the rest keeps serving is visible here.
    let mut pids = Vec::new();
    let mut waiters = Vec::new();
    for (id, mut child) in children {
        pids.extend(child.id());
        waiters.push(tokio::spawn(async move {
            let status = child.wait().await;
            println!("node {id} exited ({})", describe(status));
        }));
    }
    crate::signals::terminated().await;
    println!("stopping...");
    stop_nodes(&pids, waiters).await;
    for p in &peers {
        let _ = fs::remove_file(data_dir.join(format!("node{}.pid", p.id)));
    }
    Ok(())
}

/// SIGTERM every node, then SIGKILL those still running after 5 s.
async fn stop_nodes(pids: &[u32], waiters: Vec<tokio::task::JoinHandle<()>>) {
    for pid in pids {
        let _ = kill(Pid::from_raw(*pid as i32), Signal::SIGTERM);
    }
    let all = futures::future::join_all(waiters);
    tokio::pin!(all);
    if tokio::time::timeout(Duration::from_secs(5), &mut all)
        .await
        .is_err()
    {
        for pid in pids {
            let _ = kill(Pid::from_raw(*pid as i32), Signal::SIGKILL);
        }
        all.await;
    }
}

fn describe(status: std::io::Result<std::process::ExitStatus>) -> String {
    match status {
        Ok(s) => s.to_string(),
        Err(e) => e.to_string(),
    }
}

fn spawn_node(
    exe: &PathBuf,
    data_dir: &std::path::Path,
    peer: &Peer,
    peers: &[Peer],
    extra: &[String],
) -> anyhow::Result<(u64, Child)> {
    let log_path = data_dir.join(format!("node{}.log", peer.id));
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)?;
    let mut cmd = Command::new(exe);
    cmd.arg("node")
        .arg("--id")
        .arg(peer.id.to_string())
        .arg("--api")
        .arg(&peer.api_addr)
        .arg("--raft")
        .arg(&peer.raft_addr)
        .arg("--data-dir")
        .arg(node_dir(data_dir, peer.id));
    for p in peers {
        cmd.arg("--peer").arg(p.to_string());
    }
    // Safe on every start: a node with state ignores it.
    if peer.id == 1 {
        cmd.arg("--init");
    }
    cmd.args(extra)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    let child = cmd
        .spawn()
        .with_context(|| format!("starting node {}", peer.id))?;
    if let Some(pid) = child.id() {
        fs::write(
            data_dir.join(format!("node{}.pid", peer.id)),
            pid.to_string(),
        )?;
    }
    Ok((peer.id, child))
}

async fn wait_for_leader(peers: &[Peer], within: Duration) -> Option<u64> {
    let http = reqwest::Client::new();
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        for p in peers {
            let url = format!("http://{}/cluster/status", p.api_addr);
            if let Ok(resp) = http
                .get(&url)
                .timeout(Duration::from_millis(500))
                .send()
                .await
            {
                if let Ok(status) = resp.json::<ClusterStatus>().await {
                    if let Some(leader) = status.leader_id {
                        return Some(leader);
                    }
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}
