//! Starting one node: storage, Raft, the node-to-node server and the API.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use raftcart_raft::network::Network;
use raftcart_raft::peer_auth::PeerKey;
use raftcart_raft::peer_client::PeerClient;
use raftcart_raft::{rpc_server, Attempt, Executor, ExecutorConfig};
use raftcart_storage::StateView;
use raftcart_types::{NodeId, NodeInfo, Raft};

use crate::api::admin_token::AdminToken;
use crate::api::{self, AppState};
use crate::config::Tuning;
use crate::metrics::Metrics;
use crate::peers::Peer;
use crate::serve::{serve, Limits, CLIENT_IDLE};
use crate::signals::StopSignal;
use crate::tls::Tls;

pub struct NodeConfig {
    pub id: NodeId,
    pub api_addr: SocketAddr,
    pub raft_addr: SocketAddr,
    pub data_dir: PathBuf,
    pub peers: Vec<Peer>,
    pub init: bool,
    pub peer_key: PeerKey,
    pub admin_token: Option<AdminToken>,
    pub auth_reads: bool,
    pub tls: Option<Tls>,
    pub tuning: Tuning,
}

pub async fn run(mut c: NodeConfig) -> anyhow::Result<()> {
    let starts = count_start(&c.data_dir)?;
    let (log, sm, view) = raftcart_storage::open(&c.data_dir)
        .with_context(|| format!("opening the database in {}", c.data_dir.display()))?;
    let peers = PeerClient::new(
        peer_http(c.tls.as_ref())?,
        c.tls.is_some(),
        c.peer_key.clone(),
    );
    // openraft's core, its replication and the peer server run on threads
    // of their own: a flood of client requests on the API's threads cannot
    // then hold a heartbeat or an append past openraft's deadline, which
    // would cost a needless election.
    let raft_runtime = RaftRuntime(Some(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("raft")
            .enable_all()
            .build()
            .context("starting Raft's threads")?,
    ));
    let raft = raft_runtime
        .spawn(Raft::new(
            c.id,
            Arc::new(c.tuning.raft_config()?),
            Network::new(peers.clone()),
            log,
            sm,
        ))
        .await?
        .context("starting Raft")?;
    let executor = Arc::new(Executor::new(
        c.id,
        raft.clone(),
        Arc::new(view.clone()),
        peers,
        ExecutorConfig {
            leader_wait: c.tuning.leader_wait(),
            batching: c.tuning.batching(),
        },
    ));

    tokio::spawn(snapshot_by_writes(
        raft.clone(),
        view.clone(),
        c.tuning.snapshot_writes,
    ));

    let raft_listener = raft_runtime
        .spawn(tokio::net::TcpListener::bind(c.raft_addr))
        .await?
        .with_context(|| format!("binding the Raft address {}", c.raft_addr))?;
    let api_listener = tokio::net::TcpListener::bind(c.api_addr)
        .await
        .with_context(|| format!("binding the API address {}", c.api_addr))?;
    tracing::info!(id = c.id, api = %c.api_addr, raft = %c.raft_addr, data = %c.data_dir.display(), "node started");

    let metrics = Arc::new(Metrics::new());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let (peer_tls, api_tls) = match &c.tls {
        Some(tls) => (Some(tls.peer_server()?), Some(tls.api_server()?)),
        None => (None, None),
    };
    let raft_server = raft_runtime.spawn(serve(
        raft_listener,
        rpc_server::router(executor.clone(), c.peer_key.clone()),
        peer_tls,
        Limits::default(),
        stopped(stop_rx.clone()),
    ));
    let leader_watch = {
        let executor = executor.clone();
        raft_runtime.spawn(async move { executor.watch_leader().await })
    };
    let api_server = tokio::spawn(serve(
        api_listener,
        api::router(AppState {
            executor: executor.clone(),
            view,
            metrics: metrics.clone(),
            http: api_http(c.tls.as_ref())?,
            admin: c.admin_token.take().map(Arc::new),
            auth_reads: c.auth_reads,
            scheme: if c.tls.is_some() { "https" } else { "http" },
            starts,
        }),
        api_tls,
        Limits::default(),
        stopped(stop_rx),
    ));

    tokio::spawn(watch_raft(raft.clone(), metrics.clone()));
    if c.init {
        initialize(&raft, &c).await?;
    }

    let fatal = tokio::select! {
        signal = crate::signals::stop_signal() => {
            if signal == StopSignal::Terminate {
                hand_over_leadership(&executor).await;
            }
            None
        }
        fatal = raft_stopped(&raft) => Some(fatal),
    };
    tracing::info!(id = c.id, "stopping");
    // A node on its way out does not stand for election.
    leader_watch.abort();
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(3), async {
        let _ = raft_server.await;
        let _ = api_server.await;
    })
    .await;
    raft.shutdown().await.ok();
    drop(raft_runtime);
    match fatal {
        // Exiting (rather than serving HTTP with a dead Raft) lets the
        // supervisor restart the node, which recovers from its data dir.
        Some(fatal) => Err(anyhow::anyhow!("Raft stopped: {fatal}")),
        None => Ok(()),
    }
}

/// Raft's runtime, stopped without waiting for its threads when dropped:
/// dropping a runtime the plain way blocks, which tokio forbids inside
/// the node's own async code, so an early error return (a port already
/// in use, say) would panic instead of reporting the error.
struct RaftRuntime(Option<tokio::runtime::Runtime>);

impl std::ops::Deref for RaftRuntime {
    type Target = tokio::runtime::Runtime;

    fn deref(&self) -> &Self::Target {
        self.0.as_ref().expect("taken only on drop")
    }
}

impl Drop for RaftRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// A leader asked to stop hands its leadership to a caught-up voter
/// while it still serves, so that a planned restart costs clients no
/// election. Once, bounded: a cluster stopping as a whole has no one to
/// hand over to.
async fn hand_over_leadership(executor: &Executor) {
    let raft = executor.raft();
    let me = raft.metrics().borrow().id;
    if raft.current_leader().await != Some(me) {
        return;
    }
    let op = raftcart_raft::Op::TransferLeader { to: None };
    match executor.run_here(&op, Duration::from_secs(5)).await {
        Attempt::Done(Ok(reply)) => tracing::info!(?reply, "leadership handed over"),
        other => tracing::info!(?other, "leadership not handed over"),
    }
}

/// Counts this start in `DATA_DIR/starts` and returns the count, so that
/// status shows restarts whatever restarts the node (`up`, Compose,
/// Kubernetes).
fn count_start(data_dir: &std::path::Path) -> anyhow::Result<u64> {
    let path = data_dir.join("starts");
    let before: u64 = std::fs::read_to_string(&path)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    let now = before + 1;
    let tmp = data_dir.join("starts.tmp");
    std::fs::create_dir_all(data_dir)
        .and_then(|_| std::fs::write(&tmp, now.to_string()))
        .and_then(|_| std::fs::rename(&tmp, &path))
        .with_context(|| format!("recording the start in {}", path.display()))?;
    Ok(now)
}

/// The client for the other members' Raft ports. It ignores proxy
/// variables (`HTTP_PROXY`, `ALL_PROXY`, ...): the members are the
/// cluster's own addresses, and a proxy in the way would stop elections.
fn peer_http(tls: Option<&Tls>) -> anyhow::Result<reqwest::Client> {
    let builder = reqwest::Client::builder()
        .no_proxy()
        .connect_timeout(Duration::from_millis(500))
        .pool_idle_timeout(CLIENT_IDLE)
        .tcp_nodelay(true);
    let builder = match tls {
        Some(tls) => tls.peer_client(builder)?,
        None => builder,
    };
    builder.build().context("building the peer HTTP client")
}

/// The client for the other members' API ports (the live page's data),
/// without proxies for the same reason.
fn api_http(tls: Option<&Tls>) -> anyhow::Result<reqwest::Client> {
    let builder = reqwest::Client::builder()
        .no_proxy()
        .connect_timeout(Duration::from_millis(300))
        .pool_idle_timeout(CLIENT_IDLE);
    let builder = match tls {
        Some(tls) => tls.api_client(builder)?,
        None => builder,
    };
    builder.build().context("building the HTTP client")
}

/// Resolves if Raft stops on its own (a storage error is fatal to
/// openraft), with the reason.
async fn raft_stopped(raft: &Raft) -> String {
    // openraft's core holds the metrics senders until it stops, after it
    // has recorded why. The server metrics change only with the vote, the
    // role, the leader or the membership: waiting on the full metrics
    // would wake this task (on the API thread) several times per entry.
    let mut server = raft.server_metrics();
    while server.changed().await.is_ok() {}
    match &raft.metrics().borrow().running_state {
        Err(fatal) => fatal.to_string(),
        Ok(()) => "its metrics channel closed".into(),
    }
}

/// Forms the cluster from `--peer` on first start. A node that already has
/// state (a vote, a log or a snapshot) is left as it is, so passing
/// `--init` on every start is safe.
async fn initialize(raft: &Raft, c: &NodeConfig) -> anyhow::Result<()> {
    if raft.is_initialized().await? {
        return Ok(());
    }
    let members: BTreeMap<NodeId, NodeInfo> = c.peers.iter().map(|p| (p.id, p.info())).collect();
    if !members.contains_key(&c.id) {
        // A node added later (scaling a StatefulSet up) shares the initial
        // members' settings; it waits to be added instead of forming a
        // cluster of its own.
        tracing::info!(
            id = c.id,
            "not among the initial members (--peer): waiting to be added"
        );
        return Ok(());
    }
    match raft.initialize(members).await {
        Ok(()) => tracing::info!("cluster initialized with {} members", c.peers.len()),
        Err(e) => tracing::info!("not initializing: {e}"),
    }
    Ok(())
}

/// Asks openraft for a snapshot once `limit` writes were applied since the
/// last one. openraft counts entries (`--snapshot-every`), and an entry
/// carries up to `--writes-per-entry` writes: counted in entries alone, the
/// work a restart repeats could be 512 times what the interval suggests.
/// openraft ignores the request while a snapshot is being built.
async fn snapshot_by_writes(raft: Raft, view: StateView, limit: u64) {
    let mut every_second = tokio::time::interval(Duration::from_secs(1));
    loop {
        every_second.tick().await;
        if view.unsnapshotted_writes() >= limit {
            if let Err(e) = raft.trigger().snapshot().await {
                tracing::warn!("asking for a snapshot: {e}");
                return;
            }
        }
    }
}

/// One log line per change of leader or term, of membership, and per
/// snapshot built or installed (which the snapshot counter also counts).
async fn watch_raft(raft: Raft, counters: Arc<Metrics>) {
    // Leader, term and membership are in the server metrics, which change
    // only with them. The full metrics (and the data metrics, where the
    // snapshot is) change several times per entry, and each change would
    // wake this task on the API thread: snapshots are looked for once a
    // second instead.
    let mut server = raft.server_metrics();
    let data = raft.data_metrics();
    let mut every_second = tokio::time::interval(Duration::from_secs(1));
    every_second.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut leader = (None, 0);
    let mut membership = server.borrow().membership_config.log_id().map(|l| l.index);
    let mut snapshot = data.borrow().snapshot;
    loop {
        {
            let m = server.borrow_and_update();
            let now = (m.current_leader, m.vote.leader_id().get_term());
            if now != leader {
                leader = now;
                tracing::info!(leader = ?leader.0, term = leader.1, "leader changed");
            }
            let at = m.membership_config.log_id().map(|l| l.index);
            if at != membership {
                membership = at;
                let config = m.membership_config.membership();
                let voters: Vec<NodeId> = config.voter_ids().collect();
                let learners: Vec<NodeId> = config.learner_ids().collect();
                tracing::info!(?voters, ?learners, at = ?membership, "membership changed");
            }
        }
        let now = data.borrow().snapshot;
        if now != snapshot {
            snapshot = now;
            counters.count_snapshot();
            tracing::info!(index = ?snapshot.map(|l| l.index), "snapshot taken or installed");
        }
        tokio::select! {
            changed = server.changed() => if changed.is_err() { return },
            _ = every_second.tick() => {}
        }
    }
}
