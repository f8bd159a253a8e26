//! `raftcart up`: a whole cluster on one machine, one OS process per node
//! (restarted when it exits: `supervisor`), behind a gateway on port 8000.

use std::fs::{self, OpenOptions};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use raftcart_raft::ClusterStatus;
use tokio::process::{Child, Command};

use crate::gateway::Gateway;
use crate::layout::{node_dir, Layout};
use crate::peers::Peer;
use crate::secrets::{self, ClusterSecrets};
use crate::serve::{serve, Limits};
use crate::supervisor::{IsMember, Launch, Supervisor};
use crate::tls::TlsArgs;

#[derive(Debug, Clone)]
pub struct UpConfig {
    pub data_dir: PathBuf,
    pub layout: Layout,
    pub gateway_port: u16,
    /// The settings `up` was given (timing, TLS), passed to every `raftcart node`.
    pub node_args: Vec<String>,
    /// Require the admin token for the read-only cluster routes too.
    pub auth_reads: bool,
    /// Restart a node that exits.
    pub restart: bool,
    /// Certificates for every node and the gateway (one certificate that
    /// names the layout's host).
    pub tls: TlsArgs,
    pub leader_wait: Duration,
}

pub async fn run(c: UpConfig) -> anyhow::Result<()> {
    let peers = c.layout.peers()?;
    fs::create_dir_all(&c.data_dir)
        .with_context(|| format!("creating {}", c.data_dir.display()))?;
    let data_dir = fs::canonicalize(&c.data_dir)?;
    let secrets = ClusterSecrets::ensure(&data_dir)?;
    let mut node_args = c.node_args.clone();
    node_args.extend([
        "--peer-key-file".to_string(),
        secrets.peer_key.display().to_string(),
        "--admin-token-file".to_string(),
        secrets.admin_token.display().to_string(),
    ]);
    if c.auth_reads {
        node_args.push("--auth-reads".into());
    }
    let tls = c.tls.load()?;
    let scheme = if tls.is_some() { "https" } else { "http" };

    let exe = std::env::current_exe().context("finding the raftcart binary")?;
    let launches: Vec<(u64, Launch)> = peers
        .iter()
        .map(|peer| {
            let id = peer.id;
            let (exe, data_dir, peer, peers, args) = (
                exe.clone(),
                data_dir.clone(),
                peer.clone(),
                peers.clone(),
                node_args.clone(),
            );
            let launch: Launch =
                Box::new(move || spawn_node(&exe, &data_dir, &peer, &peers, &args));
            (id, launch)
        })
        .collect();
    // Asks its own nodes, never through a proxy from the environment.
    let http = {
        let builder = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_millis(500));
        match &tls {
            Some(tls) => tls.api_client(builder)?,
            None => builder,
        }
        .build()?
    };
    let status_token = match c.auth_reads {
        true => Some(secrets::read_token(&secrets.admin_token)?),
        false => None,
    };
    let is_member: IsMember = {
        let (http, peers, token) = (http.clone(), peers.clone(), status_token.clone());
        Arc::new(move |id| {
            let (http, peers, token) = (http.clone(), peers.clone(), token.clone());
            Box::pin(async move { still_member(&http, scheme, &peers, token.as_deref(), id).await })
        })
    };
    let supervisor = Supervisor::start(launches, is_member, c.restart)?;

    let gateway_addr: SocketAddr = format!("{}:{}", c.layout.host, c.gateway_port)
        .parse()
        .context("gateway address")?;
    let gateway = Gateway::new(
        peers.iter().map(|p| p.api_addr.clone()).collect(),
        c.leader_wait,
        status_token.clone(),
        tls.as_ref(),
    )?;
    let listener = tokio::net::TcpListener::bind(gateway_addr)
        .await
        .with_context(|| format!("binding the gateway on {gateway_addr}"))?;
    tokio::spawn(gateway.clone().track_leader());
    let gateway_tls = tls.as_ref().map(|t| t.api_server()).transpose()?;
    tokio::spawn(serve(
        listener,
        gateway.router(),
        gateway_tls,
        Limits::default(),
        std::future::pending(),
    ));

    let leader = wait_for_leader(&http, scheme, &peers, status_token.as_deref()).await;
    println!("raftcart is up");
    println!("  gateway (the course's clients): {scheme}://{gateway_addr}");
    for peer in &peers {
        println!(
            "  node {}: api {scheme}://{}  raft {}  data {}  log {}/node{}.log",
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
    println!("  live page: {scheme}://{gateway_addr}/ui");
    println!("  metrics: {scheme}://{gateway_addr}/metrics (the node that answers; each node serves its own)");
    println!("  status: {scheme}://{gateway_addr}/cluster/status");
    println!(
        "  admin token: {} (`raftcart cluster ... --data-dir {}` finds it)",
        secrets.admin_token.display(),
        data_dir.display()
    );
    println!("  peer key: {}", secrets.peer_key.display());
    println!("Ctrl-C stops everything.");

    crate::signals::terminated().await;
    println!("stopping...");
    supervisor.stop().await;
    for p in &peers {
        let _ = fs::remove_file(data_dir.join(format!("node{}.pid", p.id)));
    }
    Ok(())
}

/// Starts node `peer` over its data dir and records its pid in
/// `DATA_DIR/nodeN.pid`.
fn spawn_node(
    exe: &PathBuf,
    data_dir: &std::path::Path,
    peer: &Peer,
    peers: &[Peer],
    extra: &[String],
) -> anyhow::Result<Child> {
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
    Ok(child)
}

/// What the node at `addr` says of the cluster, if it answers.
async fn status_of(
    http: &reqwest::Client,
    scheme: &str,
    addr: &str,
    token: Option<&str>,
) -> Option<ClusterStatus> {
    let mut req = http.get(format!("{scheme}://{addr}/cluster/status"));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    req.send().await.ok()?.json().await.ok()
}

/// Whether node `id` is still in the membership, as a node that knows the
/// leader sees it; true when no node can tell.
async fn still_member(
    http: &reqwest::Client,
    scheme: &str,
    peers: &[Peer],
    token: Option<&str>,
    id: u64,
) -> bool {
    for p in peers.iter().filter(|p| p.id != id) {
        let Some(status) = status_of(http, scheme, &p.api_addr, token).await else {
            continue;
        };
        if status.leader_id.is_some() {
            return status.members.iter().any(|m| m.id == id);
        }
    }
    true
}

/// The leader, once one is elected (within 30 s).
async fn wait_for_leader(
    http: &reqwest::Client,
    scheme: &str,
    peers: &[Peer],
    token: Option<&str>,
) -> Option<u64> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        for p in peers {
            let status = status_of(http, scheme, &p.api_addr, token).await;
            if let Some(leader) = status.and_then(|s| s.leader_id) {
                return Some(leader);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}
