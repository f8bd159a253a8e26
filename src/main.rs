//! raftcart: a fault-tolerant shopping-cart database on Raft.

mod api;
mod cluster_cli;
mod gateway;
mod layout;
mod metrics;
mod node;
mod peers;
mod restore;
mod secrets;
mod serve;
mod signals;
mod supervisor;
mod tls;
mod up;

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use raftcart_raft::peer_auth::PeerKey;
use raftcart_raft::Batching;

use crate::api::admin_auth::AdminToken;
use crate::cluster_cli::ClusterCmd;
use crate::layout::Layout;
use crate::peers::Peer;
use crate::restore::RestoreArgs;
use crate::tls::TlsArgs;

#[derive(Parser)]
#[command(
    name = "raftcart",
    version,
    about = "A fault-tolerant shopping-cart database on Raft"
)]
struct Cli {
    /// Log as JSON lines instead of human-readable text.
    #[arg(long, global = true, env = "RAFTCART_LOG_JSON")]
    log_json: bool,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a local cluster: one process per node and a gateway on :8000.
    Up(UpArgs),
    /// Run one node of a cluster.
    Node(NodeArgs),
    /// Run only the gateway, in front of nodes started elsewhere.
    Gateway(GatewayArgs),
    /// Operate a running cluster.
    #[command(subcommand)]
    Cluster(ClusterCmd),
    /// Seed a new cluster's data directories from a backup.
    Restore(RestoreArgs),
}

#[derive(Args)]
struct UpArgs {
    /// Where the nodes keep their data and logs.
    #[arg(long, default_value = "./data", env = "RAFTCART_DATA_DIR")]
    data_dir: PathBuf,
    #[command(flatten)]
    layout: Layout,
    #[arg(long, default_value_t = 8000)]
    gateway_port: u16,
    /// Require the admin token for the read-only cluster routes too.
    #[arg(long, env = "RAFTCART_AUTH_READS")]
    auth_reads: bool,
    /// Leave a node that exits down instead of restarting it (to watch the
    /// others carry on without it).
    #[arg(long)]
    no_restart: bool,
    #[command(flatten)]
    tls: TlsArgs,
    #[command(flatten)]
    tuning: Tuning,
}

/// Timing and snapshot settings, shared by `node` and `up`.
#[derive(Args, Clone)]
struct Tuning {
    /// How long a request waits for a leader before a 503.
    #[arg(long, default_value_t = 5000, env = "RAFTCART_LEADER_WAIT_MS")]
    leader_wait_ms: u64,
    /// Also the deadline of every append-entries RPC (openraft 0.9): a
    /// follower must persist and answer within it, or it never counts, and
    /// the leader re-sends. With 100 ms, a busy 2-core machine missed it
    /// now and then, and each miss stalled every write for up to 0.9 s.
    /// Elections keep their 400-800 ms: longer ones (750-1500 ms) made
    /// failover take 3.2-3.9 s.
    #[arg(long, default_value_t = 200, env = "RAFTCART_HEARTBEAT_MS")]
    heartbeat_ms: u64,
    #[arg(long, default_value_t = 400, env = "RAFTCART_ELECTION_MIN_MS")]
    election_min_ms: u64,
    #[arg(long, default_value_t = 800, env = "RAFTCART_ELECTION_MAX_MS")]
    election_max_ms: u64,
    /// Take a snapshot (and purge the log) every this many entries. A
    /// snapshot copies the whole state machine, so taking one costs the
    /// same whatever the interval; etcd's default is also 100,000.
    #[arg(long, default_value_t = 100_000, env = "RAFTCART_SNAPSHOT_EVERY")]
    snapshot_every: u64,
    /// The leader packs at most this many waiting writes into one log
    /// entry; 1 turns batching off.
    #[arg(
        long,
        default_value_t = Batching::default().writes_per_entry as u64,
        env = "RAFTCART_WRITES_PER_ENTRY",
        value_parser = clap::value_parser!(u64).range(1..=65_536)
    )]
    writes_per_entry: u64,
    /// Log entries the leader keeps proposed but uncommitted at once.
    #[arg(
        long,
        default_value_t = Batching::default().entries_in_flight as u64,
        env = "RAFTCART_ENTRIES_IN_FLIGHT",
        value_parser = clap::value_parser!(u64).range(1..=4096)
    )]
    entries_in_flight: u64,
}

impl Tuning {
    fn to_args(&self) -> Vec<String> {
        [
            ("--leader-wait-ms", self.leader_wait_ms),
            ("--heartbeat-ms", self.heartbeat_ms),
            ("--election-min-ms", self.election_min_ms),
            ("--election-max-ms", self.election_max_ms),
            ("--snapshot-every", self.snapshot_every),
            ("--writes-per-entry", self.writes_per_entry),
            ("--entries-in-flight", self.entries_in_flight),
        ]
        .iter()
        .flat_map(|(flag, v)| [flag.to_string(), v.to_string()])
        .collect()
    }
}

#[derive(Args)]
struct NodeArgs {
    /// This node's id: a number, or `hostname-ordinal` (host `name-N` is
    /// node N+1, for Kubernetes StatefulSets).
    #[arg(long, env = "RAFTCART_ID", value_parser = peers::parse_node_id)]
    id: u64,
    /// Client API address.
    #[arg(long, env = "RAFTCART_API_ADDR")]
    api: SocketAddr,
    /// Node-to-node (Raft) address.
    #[arg(long, env = "RAFTCART_RAFT_ADDR")]
    raft: SocketAddr,
    #[arg(long, env = "RAFTCART_DATA_DIR")]
    data_dir: PathBuf,
    /// A member of the initial cluster, ID@API_ADDR@RAFT_ADDR (repeat, or
    /// comma-separate). Used by --init.
    #[arg(long = "peer", env = "RAFTCART_PEERS", value_delimiter = ',')]
    peers: Vec<Peer>,
    /// Form the cluster from --peer if this node has no state yet.
    #[arg(long, env = "RAFTCART_INIT")]
    init: bool,
    /// The cluster's peer key: a file holding a secret of at least 32 bytes
    /// that every member holds. Node-to-node requests and answers carry a
    /// MAC under it; a request without a valid one is refused. `raftcart
    /// up` and `raftcart restore` create DATA_DIR/peer.key.
    #[arg(long, env = "RAFTCART_PEER_KEY_FILE")]
    peer_key_file: PathBuf,
    /// The token the operator routes (add-learner, promote, remove,
    /// snapshot, backup) require as `Authorization: Bearer <token>`.
    /// Without it those routes are refused.
    #[arg(long, env = "RAFTCART_ADMIN_TOKEN_FILE")]
    admin_token_file: Option<PathBuf>,
    /// Require the admin token for the read-only cluster routes too
    /// (/cluster/status, /cluster/node, /cluster/overview, /metrics, /ui).
    #[arg(long, env = "RAFTCART_AUTH_READS")]
    auth_reads: bool,
    #[command(flatten)]
    tls: TlsArgs,
    #[command(flatten)]
    tuning: Tuning,
}

#[derive(Args)]
struct GatewayArgs {
    #[arg(long, default_value = "127.0.0.1:8000", env = "RAFTCART_GATEWAY_ADDR")]
    listen: SocketAddr,
    /// A node's API address, HOST:PORT (repeat, or comma-separate).
    #[arg(
        long = "backend",
        env = "RAFTCART_BACKENDS",
        value_delimiter = ',',
        required = true
    )]
    backends: Vec<String>,
    #[arg(long, default_value_t = 5000, env = "RAFTCART_LEADER_WAIT_MS")]
    leader_wait_ms: u64,
    /// The admin token, for nodes run with --auth-reads: the gateway asks
    /// them who leads.
    #[arg(long, env = "RAFTCART_ADMIN_TOKEN_FILE")]
    admin_token_file: Option<PathBuf>,
    /// The gateway's own certificate and key, and the CA that signed the
    /// nodes' certificates: it then listens with TLS and reaches the nodes
    /// over https.
    #[command(flatten)]
    tls: TlsArgs,
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,openraft=warn"));
    // Colours only on a terminal: `up` sends node output to log files.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stdout().is_terminal());
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_logging(cli.log_json);
    match cli.command {
        Cmd::Up(a) => {
            up::run(up::UpConfig {
                data_dir: a.data_dir,
                layout: a.layout,
                gateway_port: a.gateway_port,
                node_args: a.tuning.to_args(),
                auth_reads: a.auth_reads,
                restart: !a.no_restart,
                tls: a.tls,
                leader_wait: Duration::from_millis(a.tuning.leader_wait_ms),
            })
            .await
        }
        Cmd::Node(a) => {
            let peer_key = PeerKey::from_secret(&secrets::read(&a.peer_key_file, "peer key")?)
                .map_err(|e| anyhow::anyhow!("{}: {e}", a.peer_key_file.display()))?;
            let admin_token = match &a.admin_token_file {
                Some(path) => Some(AdminToken::new(&secrets::read(path, "admin token")?)),
                None => None,
            };
            node::run(node::NodeConfig {
                id: a.id,
                api_addr: a.api,
                raft_addr: a.raft,
                data_dir: a.data_dir,
                peers: a.peers,
                init: a.init,
                peer_key,
                admin_token,
                auth_reads: a.auth_reads,
                tls: a.tls.load()?,
                leader_wait: Duration::from_millis(a.tuning.leader_wait_ms),
                heartbeat_ms: a.tuning.heartbeat_ms,
                election_min_ms: a.tuning.election_min_ms,
                election_max_ms: a.tuning.election_max_ms,
                snapshot_every: a.tuning.snapshot_every,
                batching: Batching {
                    writes_per_entry: a.tuning.writes_per_entry as usize,
                    entries_in_flight: a.tuning.entries_in_flight as usize,
                },
            })
            .await
        }
        Cmd::Cluster(cmd) => cluster_cli::run(cmd).await,
        Cmd::Restore(a) => restore::run(a),
        Cmd::Gateway(a) => {
            let status_token = match &a.admin_token_file {
                Some(path) => Some(secrets::read_token(path)?),
                None => None,
            };
            let tls = a.tls.load()?;
            let gateway = gateway::Gateway::new(
                a.backends,
                Duration::from_millis(a.leader_wait_ms),
                status_token,
                tls.as_ref(),
            )?;
            let listener = tokio::net::TcpListener::bind(a.listen).await?;
            tracing::info!(addr = %a.listen, "gateway listening");
            tokio::spawn(gateway.clone().track_leader());
            let server_tls = tls.as_ref().map(|t| t.api_server()).transpose()?;
            serve::serve(
                listener,
                gateway.router(),
                server_tls,
                serve::Limits::default(),
                signals::terminated(),
            )
            .await;
            Ok(())
        }
    }
}
