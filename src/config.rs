//! A node's timing, snapshot and batching settings: parsed once by clap from
//! flags and environment, checked once (`validate`), and passed to the
//! processes `raftcart up` starts as the same flags, read back from clap's
//! own definitions (`flags_of`), so that no list of flags is kept by hand.

use std::time::Duration;

use anyhow::bail;
use clap::{ArgMatches, Args, Command};
use openraft::SnapshotPolicy;
use raftcart_raft::{rpc_server, Batching};

#[derive(Args, Clone, Debug)]
pub struct Tuning {
    /// Threads a node's client side runs on (its HTTP API, forwarding,
    /// proposing); Raft has two threads of its own (docs/design.md).
    #[arg(long, default_value_t = 1, env = "RAFTCART_API_THREADS",
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub api_threads: u16,
    /// How long a request waits for a leader before it is answered 503.
    #[arg(long, default_value_t = 5000, env = "RAFTCART_LEADER_WAIT_MS")]
    pub leader_wait_ms: u64,
    /// Leader heartbeat interval; also openraft's deadline for every append (docs/design.md).
    #[arg(long, default_value_t = 100, env = "RAFTCART_HEARTBEAT_MS")]
    pub heartbeat_ms: u64,
    /// Time without the leader after which a voter asks the others whether they lost it too.
    #[arg(long, default_value_t = 300, env = "RAFTCART_ELECTION_MIN_MS")]
    pub election_min_ms: u64,
    /// Time after hearing from the leader during which a voter refuses other candidates.
    #[arg(long, default_value_t = 500, env = "RAFTCART_ELECTION_MAX_MS")]
    pub election_max_ms: u64,
    /// Snapshot the state machine and purge the log every this many entries.
    #[arg(long, default_value_t = 100_000, env = "RAFTCART_SNAPSHOT_EVERY",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub snapshot_every: u64,
    /// Also snapshot once this many writes were applied since the last
    /// snapshot: an entry carries up to --writes-per-entry writes, and a
    /// restart applies again every write since the last snapshot.
    #[arg(long, default_value_t = 1_000_000, env = "RAFTCART_SNAPSHOT_WRITES",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub snapshot_writes: u64,
    /// Most waiting writes the leader packs into one log entry (1: no batching).
    #[arg(
        long,
        default_value_t = Batching::default().writes_per_entry as u64,
        env = "RAFTCART_WRITES_PER_ENTRY",
        value_parser = clap::value_parser!(u64).range(1..=65_536)
    )]
    pub writes_per_entry: u64,
    /// Most log entries the leader keeps proposed but not yet committed.
    #[arg(
        long,
        default_value_t = Batching::default().entries_in_flight as u64,
        env = "RAFTCART_ENTRIES_IN_FLIGHT",
        value_parser = clap::value_parser!(u64).range(1..=4096)
    )]
    pub entries_in_flight: u64,
    /// A further entry joins those in flight only while they carry fewer
    /// writes than this (0: one entry at a time): small entries overlap
    /// under light load, one big entry is in flight under heavy load.
    #[arg(
        long,
        default_value_t = Batching::default().overlap_below as u64,
        env = "RAFTCART_OVERLAP_BELOW",
        value_parser = clap::value_parser!(u64).range(0..=65_536)
    )]
    pub overlap_below: u64,
}

impl Tuning {
    /// What clap's per-flag checks cannot see: the timings' order.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.heartbeat_ms == 0 {
            bail!("--heartbeat-ms must be at least 1");
        }
        if self.heartbeat_ms >= self.election_min_ms {
            bail!(
                "--heartbeat-ms ({}) must be below --election-min-ms ({}): \
                 followers would stand for election between heartbeats",
                self.heartbeat_ms,
                self.election_min_ms
            );
        }
        if self.election_min_ms >= self.election_max_ms {
            bail!(
                "--election-min-ms ({}) must be below --election-max-ms ({})",
                self.election_min_ms,
                self.election_max_ms
            );
        }
        Ok(())
    }

    pub fn leader_wait(&self) -> Duration {
        Duration::from_millis(self.leader_wait_ms)
    }

    pub fn batching(&self) -> Batching {
        Batching {
            writes_per_entry: self.writes_per_entry as usize,
            entries_in_flight: self.entries_in_flight as usize,
            overlap_below: self.overlap_below as usize,
        }
    }

    pub fn raft_config(&self) -> anyhow::Result<openraft::Config> {
        let config = openraft::Config {
            cluster_name: "raftcart".into(),
            heartbeat_interval: self.heartbeat_ms,
            election_timeout_min: self.election_min_ms,
            election_timeout_max: self.election_max_ms,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(self.snapshot_every),
            // Keep some log behind a snapshot so that a briefly lagging
            // follower catches up from the log rather than a full snapshot.
            max_in_snapshot_log_to_keep: self.snapshot_every.min(1000),
            // openraft's 200 ms covers sending a snapshot chunk and, for the
            // last one, installing the whole snapshot (a synced rewrite of
            // the state machine). On a loaded machine that takes longer; the
            // leader then drops the request, the follower's install is
            // wasted, and the leader starts over, for ever: a new member
            // never catches up.
            install_snapshot_timeout: 5000,
            // Keeps every append under the peer port's body limit.
            max_payload_entries: rpc_server::MAX_APPEND_ENTRIES,
            ..Default::default()
        };
        Ok(config.validate()?)
    }
}

/// The flags of `T` (a clap `Args` group) that were given to this process,
/// on the command line or in the environment, as a child's command line
/// would repeat them. Defaults are left out: the child has the same ones.
pub fn flags_of<T: Args>(matches: &ArgMatches) -> Vec<String> {
    let group = T::augment_args(Command::new("flags"));
    let mut flags = Vec::new();
    for arg in group.get_arguments() {
        let id = arg.get_id().as_str();
        let Some(long) = arg.get_long() else { continue };
        if matches!(
            matches.value_source(id),
            None | Some(clap::parser::ValueSource::DefaultValue)
        ) {
            continue;
        }
        let Some(values) = matches.get_raw(id) else {
            continue;
        };
        if arg.get_action().takes_values() {
            for v in values {
                flags.push(format!("--{long}"));
                flags.push(v.to_string_lossy().into_owned());
            }
        } else if values.into_iter().any(|v| v == "true") {
            flags.push(format!("--{long}"));
        }
    }
    flags
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        tuning: Tuning,
    }

    fn parse(args: &[&str]) -> (Tuning, Vec<String>) {
        let matches = <Cli as clap::CommandFactory>::command()
            .try_get_matches_from(std::iter::once("raftcart").chain(args.iter().copied()))
            .unwrap();
        let cli = <Cli as clap::FromArgMatches>::from_arg_matches(&matches).unwrap();
        (cli.tuning, flags_of::<Tuning>(&matches))
    }

    #[test]
    fn a_child_gets_exactly_the_flags_given() {
        let (_, flags) = parse(&["--heartbeat-ms", "50", "--writes-per-entry", "7"]);
        assert_eq!(flags, ["--heartbeat-ms", "50", "--writes-per-entry", "7"]);
        let (again, _) = parse(&flags.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!((again.heartbeat_ms, again.writes_per_entry), (50, 7));
        assert_eq!(again.election_min_ms, 300);
    }

    #[test]
    fn defaults_are_not_repeated() {
        assert!(parse(&[]).1.is_empty());
    }

    #[test]
    fn timings_out_of_order_are_refused_with_the_flags_named() {
        let (t, _) = parse(&["--heartbeat-ms", "500"]);
        let e = t.validate().unwrap_err().to_string();
        assert!(
            e.contains("--heartbeat-ms (500)") && e.contains("--election-min-ms (300)"),
            "{e}"
        );
        let (t, _) = parse(&["--election-min-ms", "900"]);
        assert!(t
            .validate()
            .unwrap_err()
            .to_string()
            .contains("--election-max-ms (500)"));
        assert!(parse(&[]).0.validate().is_ok());
    }
}
