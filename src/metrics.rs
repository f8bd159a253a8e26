//! This node's Prometheus metrics, served as text on `GET /metrics`.
//!
//! Counters are bumped on the request path; the Raft gauges are read from
//! openraft's metrics when scraped, so they are never stale.

use prometheus::core::Collector;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};
use raftcart_raft::ReadIndexCounts;
use raftcart_types::Raft;

pub struct Metrics {
    registry: Registry,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    checkouts: IntCounterVec,
    snapshots: IntCounter,
    term: IntGauge,
    is_leader: IntGauge,
    last_log_index: IntGauge,
    last_applied: IntGauge,
    replication_lag: IntGaugeVec,
    read_index: IntCounterVec,
    /// Held while `read_index` is brought up to the executor's counts: two
    /// scrapes at once would otherwise both add the same difference.
    read_index_update: std::sync::Mutex<()>,
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let m = Metrics {
            http_requests: IntCounterVec::new(
                Opts::new(
                    "raftcart_http_requests_total",
                    "HTTP requests served by this node, by route pattern and status.",
                ),
                &["route", "status"],
            )
            .expect("static metric definition"),
            http_duration: HistogramVec::new(
                HistogramOpts::new(
                    "raftcart_http_request_duration_seconds",
                    "Time to answer an HTTP request, by route pattern.",
                )
                .buckets(vec![
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                ]),
                &["route"],
            )
            .expect("static metric definition"),
            checkouts: IntCounterVec::new(
                Opts::new(
                    "raftcart_checkouts_total",
                    "Checkouts answered by this node, by outcome.",
                ),
                &["outcome"],
            )
            .expect("static metric definition"),
            snapshots: IntCounter::new(
                "raftcart_raft_snapshots_total",
                "Snapshots this node built or installed since it started.",
            )
            .expect("static metric definition"),
            term: IntGauge::new("raftcart_raft_term", "Current Raft term.")
                .expect("static metric definition"),
            is_leader: IntGauge::new(
                "raftcart_raft_is_leader",
                "1 if this node is the leader, else 0.",
            )
            .expect("static metric definition"),
            last_log_index: IntGauge::new(
                "raftcart_raft_last_log_index",
                "Index of the last entry in this node's log.",
            )
            .expect("static metric definition"),
            last_applied: IntGauge::new(
                "raftcart_raft_last_applied",
                "Index of the last entry this node's state machine applied.",
            )
            .expect("static metric definition"),
            replication_lag: IntGaugeVec::new(
                Opts::new(
                    "raftcart_raft_replication_lag",
                    "Entries the leader holds that a follower does not (on the leader only).",
                ),
                &["follower"],
            )
            .expect("static metric definition"),
            read_index: IntCounterVec::new(
                Opts::new(
                    "raftcart_read_index_total",
                    "Linearizable reads and the read index rounds behind them: `reads` on this \
                     node, read indexes it `requested` for them, and as leader the requests it \
                     `served` and the quorum rounds that `confirmed` them.",
                ),
                &["what"],
            )
            .expect("static metric definition"),
            read_index_update: std::sync::Mutex::new(()),
            registry,
        };
        let collectors: [Box<dyn prometheus::core::Collector>; 10] = [
            Box::new(m.http_requests.clone()),
            Box::new(m.http_duration.clone()),
            Box::new(m.checkouts.clone()),
            Box::new(m.snapshots.clone()),
            Box::new(m.term.clone()),
            Box::new(m.is_leader.clone()),
            Box::new(m.last_log_index.clone()),
            Box::new(m.last_applied.clone()),
            Box::new(m.replication_lag.clone()),
            Box::new(m.read_index.clone()),
        ];
        for c in collectors {
            m.registry
                .register(c)
                .expect("each metric is registered once");
        }
        m
    }

    pub fn observe_http(&self, route: &str, status: u16, seconds: f64) {
        self.http_requests
            .with_label_values(&[route, &status.to_string()])
            .inc();
        self.http_duration
            .with_label_values(&[route])
            .observe(seconds);
    }

    pub fn count_checkout(&self, outcome: &str) {
        self.checkouts.with_label_values(&[outcome]).inc();
    }

    pub fn count_snapshot(&self) {
        self.snapshots.inc();
    }

    /// Totals the live page charts: (HTTP requests, checkouts by outcome).
    pub fn totals(&self) -> (u64, Vec<(String, u64)>) {
        let requests = sum_counters(&self.http_requests.collect());
        let checkouts = self
            .checkouts
            .collect()
            .iter()
            .flat_map(|f| f.get_metric())
            .map(|m| {
                let outcome = m.get_label().first().map(|l| l.value().to_string());
                (
                    outcome.unwrap_or_default(),
                    m.get_counter().get_value() as u64,
                )
            })
            .collect();
        (requests, checkouts)
    }

    /// The Prometheus text exposition, with the Raft gauges and the read
    /// index counts read now.
    pub fn render(&self, raft: &Raft, reads: ReadIndexCounts) -> String {
        self.read_raft(raft);
        self.read_read_index(reads);
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("text encoding into a Vec cannot fail");
        String::from_utf8(out).expect("the text format is UTF-8")
    }

    fn read_read_index(&self, reads: ReadIndexCounts) {
        let _updating = self.read_index_update.lock().expect("never poisoned");
        for (what, total) in [
            ("reads", reads.reads),
            ("requested", reads.requested),
            ("served", reads.served),
            ("confirmed", reads.confirmed),
        ] {
            let counter = self.read_index.with_label_values(&[what]);
            counter.inc_by(total.saturating_sub(counter.get()));
        }
    }

    fn read_raft(&self, raft: &Raft) {
        let metrics = raft.metrics();
        let m = metrics.borrow();
        let index = |i: Option<u64>| i.map_or(0, |i| i as i64);
        self.term.set(m.current_term as i64);
        self.is_leader.set((m.current_leader == Some(m.id)) as i64);
        self.last_log_index.set(index(m.last_log_index));
        self.last_applied
            .set(index(m.last_applied.map(|l| l.index)));
        // Rebuilt each time, so that a removed follower (or a deposed
        // leader's followers) leave no stale series behind.
        self.replication_lag.reset();
        if let Some(replication) = &m.replication {
            let last = m.last_log_index.unwrap_or(0);
            for (follower, matched) in replication {
                if *follower == m.id {
                    continue;
                }
                let matched = matched.map_or(0, |l| l.index);
                self.replication_lag
                    .with_label_values(&[&follower.to_string()])
                    .set(last.saturating_sub(matched) as i64);
            }
        }
    }
}

fn sum_counters(families: &[prometheus::proto::MetricFamily]) -> u64 {
    families
        .iter()
        .flat_map(|f| f.get_metric())
        .map(|m| m.get_counter().get_value() as u64)
        .sum()
}
