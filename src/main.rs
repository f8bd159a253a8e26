//! raftcart: a fault-tolerant shopping-cart database on Raft.

mod api;
mod batch;
mod cluster_cli;
mod config;
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

/// glibc's malloc, after a bulk load or a snapshot freed a million small
/// records, sorted them back into its bins inside later allocations: the
/// Raft threads then stalled for 100 ms and more (docs/performance.md,
/// "The allocator"). mimalloc frees into per-page lists and has no such
/// pass.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use raftcart_raft::peer_auth::PeerKey;

use crate::api::admin_token::AdminToken;
use crate::cluster_cli::ClusterCmd;
use crate::config::{flags_of, Tuning};
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
    /// Port of the gateway, on the layout's host.
    #[arg(long, default_value_t = 8000)]
    gateway_port: u16,
    /// Require the admin token for the read-only cluster routes too.
    #[arg(long, env = "RAFTCART_AUTH_READS")]
    auth_reads: bool,
    /// Leave a node that exits down instead of restarting it.
    #[arg(long)]
    no_restart: bool,
    #[command(flatten)]
    gateway: GatewayThreads,
    #[command(flatten)]
    tls: TlsArgs,
    #[command(flatten)]
    tuning: Tuning,
}

#[derive(Args)]
struct NodeArgs {
    /// This node's id: a number, or `hostname-ordinal` (host `name-N` is node N+1).
    #[arg(long, env = "RAFTCART_ID", value_parser = peers::parse_node_id)]
    id: u64,
    /// Client API address.
    #[arg(long, env = "RAFTCART_API_ADDR")]
    api: SocketAddr,
    /// Node-to-node (Raft) address.
    #[arg(long, env = "RAFTCART_RAFT_ADDR")]
    raft: SocketAddr,
    /// Where this node keeps its database, snapshot and start count.
    #[arg(long, env = "RAFTCART_DATA_DIR")]
    data_dir: PathBuf,
    /// A member of the initial cluster, ID@API_ADDR@RAFT_ADDR (repeat or comma-separate; for --init).
    #[arg(long = "peer", env = "RAFTCART_PEERS", value_delimiter = ',')]
    peers: Vec<Peer>,
    /// Form the cluster from --peer if this node has no state yet.
    #[arg(long, env = "RAFTCART_INIT")]
    init: bool,
    /// File holding the cluster's peer key (32+ bytes, the same on every member; docs/SECURITY.md).
    #[arg(long, env = "RAFTCART_PEER_KEY_FILE")]
    peer_key_file: PathBuf,
    /// File holding the admin token the operator routes require (none: they are refused).
    #[arg(long, env = "RAFTCART_ADMIN_TOKEN_FILE")]
    admin_token_file: Option<PathBuf>,
    /// Require the admin token for /cluster/status, /cluster/node, /cluster/overview, /metrics and /ui too.
    #[arg(long, env = "RAFTCART_AUTH_READS")]
    auth_reads: bool,
    #[command(flatten)]
    tls: TlsArgs,
    #[command(flatten)]
    tuning: Tuning,
}

#[derive(Args)]
struct GatewayArgs {
    /// Address the gateway listens on.
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
    /// How long a request waits for a leader before it is answered 503.
    #[arg(long, default_value_t = 5000, env = "RAFTCART_LEADER_WAIT_MS")]
    leader_wait_ms: u64,
    /// File holding the admin token, for nodes run with --auth-reads.
    #[arg(long, env = "RAFTCART_ADMIN_TOKEN_FILE")]
    admin_token_file: Option<PathBuf>,
    #[command(flatten)]
    gateway: GatewayThreads,
    #[command(flatten)]
    tls: TlsArgs,
}

#[derive(Args)]
struct GatewayThreads {
    /// Threads the gateway runs on (under `up`, with the supervisor).
    #[arg(
        long = "gateway-threads",
        default_value_t = 1,
        env = "RAFTCART_GATEWAY_THREADS",
        value_parser = clap::value_parser!(u16).range(1..=256)
    )]
    threads: u16,
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

fn main() -> anyhow::Result<()> {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    init_logging(cli.log_json);
    runtime(&cli.command)?.block_on(run(cli, matches))
}

/// The gateway runs on `--gateway-threads` threads and a node's client
/// side on `--api-threads`, one each by default: each is a pipeline
/// (connections feeding one batcher, or one proposer), and on one thread
/// its tasks wake each other without a hop between threads
/// (docs/performance.md, "The gateway's thread" and "The nodes' API
/// thread"). The CLI's commands get a thread per core.
fn runtime(command: &Cmd) -> std::io::Result<tokio::runtime::Runtime> {
    let threads = match command {
        Cmd::Up(a) => Some(a.gateway.threads),
        Cmd::Gateway(a) => Some(a.gateway.threads),
        Cmd::Node(a) => Some(a.tuning.api_threads),
        _ => None,
    };
    let mut builder = match threads {
        Some(1) => tokio::runtime::Builder::new_current_thread(),
        Some(n) => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(n.into());
            b
        }
        None => tokio::runtime::Builder::new_multi_thread(),
    };
    builder.enable_all().build()
}

async fn run(cli: Cli, matches: clap::ArgMatches) -> anyhow::Result<()> {
    match cli.command {
        Cmd::Up(a) => {
            a.tuning.validate()?;
            let given = matches
                .subcommand_matches("up")
                .expect("the up subcommand was parsed");
            let mut node_args = flags_of::<Tuning>(given);
            node_args.extend(flags_of::<TlsArgs>(given));
            up::run(up::UpConfig {
                data_dir: a.data_dir,
                layout: a.layout,
                gateway_port: a.gateway_port,
                node_args,
                auth_reads: a.auth_reads,
                restart: !a.no_restart,
                tls: a.tls,
                leader_wait: a.tuning.leader_wait(),
            })
            .await
        }
        Cmd::Node(a) => {
            a.tuning.validate()?;
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
                tuning: a.tuning,
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
