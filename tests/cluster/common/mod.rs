//! A real cluster for integration tests: `raftcart up` on loopback ports of
//! the test's own, in a temporary data dir, torn down when dropped.

#![allow(dead_code)]

pub mod checkout_load;

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;
use serde_json::Value;

pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub base_port: u16,
    pub nodes: u64,
    extra: Vec<String>,
    /// Environment of `up` and so of its nodes (RUST_LOG, say).
    env: Vec<(String, String)>,
    up: std::sync::Mutex<Option<Child>>,
    launches: u32,
    /// Nodes started outside `up` (to grow the cluster).
    extra_nodes: std::sync::Mutex<Vec<(u64, Child)>>,
    pub http: reqwest::Client,
    /// "https" for a cluster started with `start_tls`.
    scheme: &'static str,
}

impl Cluster {
    /// Gateway on `base_port`, node APIs on base+1.., Raft on base+11...
    pub async fn start(base_port: u16, extra: &[&str]) -> Cluster {
        Cluster::start_with_env(base_port, extra, &[]).await
    }

    pub async fn start_with_env(base_port: u16, extra: &[&str], env: &[(&str, &str)]) -> Cluster {
        let mut c = Cluster::new(base_port, extra);
        c.env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        c.launch().await;
        c
    }

    /// A cluster whose API and Raft ports (and gateway) speak TLS, with
    /// certificates made here: one CA, one certificate for 127.0.0.1 that
    /// every node and the gateway present. Peers verify each other's.
    pub async fn start_tls(base_port: u16, extra: &[&str]) -> Cluster {
        let mut c = Cluster::new(base_port, extra);
        let certs = c.dir.path().join("certs");
        let ca_pem = make_certs(&certs);
        c.http = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap())
            .pool_max_idle_per_host(64)
            .build()
            .unwrap();
        c.scheme = "https";
        for (flag, file) in [
            ("--tls-cert", "node.pem"),
            ("--tls-key", "node.key"),
            ("--tls-ca", "ca.pem"),
        ] {
            c.extra.push(flag.into());
            c.extra.push(certs.join(file).display().to_string());
        }
        c.launch().await;
        c
    }

    /// A new cluster seeded by `raftcart restore` from a backup file; the
    /// nodes in `empty` start with no data instead.
    pub async fn start_restored(
        base_port: u16,
        backup: &std::path::Path,
        empty: &[u64],
    ) -> Cluster {
        let mut c = Cluster::new(base_port, &[]);
        let out = Command::new(env!("CARGO_BIN_EXE_raftcart"))
            .arg("restore")
            .arg("--from")
            .arg(backup)
            .arg("--data-dir")
            .arg(c.data_dir())
            .args(c.port_flags())
            .output()
            .expect("running raftcart restore");
        assert!(
            out.status.success(),
            "restore failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        for id in empty {
            std::fs::remove_dir_all(c.data_dir().join(format!("node{id}"))).unwrap();
        }
        c.launch().await;
        c
    }

    /// A cluster not yet launched (`launch` starts it).
    pub fn new(base_port: u16, extra: &[&str]) -> Cluster {
        Cluster {
            dir: tempfile::tempdir().expect("temp dir"),
            base_port,
            nodes: 3,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            env: Vec::new(),
            up: std::sync::Mutex::new(None),
            launches: 0,
            extra_nodes: std::sync::Mutex::new(Vec::new()),
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(64)
                .build()
                .unwrap(),
            scheme: "http",
        }
    }

    /// The `up` / `restore` layout flags of this cluster's ports.
    pub fn port_flags(&self) -> Vec<String> {
        vec![
            "--api-port".into(),
            (self.base_port + 1).to_string(),
            "--raft-port".into(),
            (self.base_port + 11).to_string(),
        ]
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// (Re)starts `raftcart up` over the same data dir.
    pub async fn launch(&mut self) {
        self.launches += 1;
        let log = std::fs::File::create(self.dir.path().join(format!("up-{}.log", self.launches)))
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_raftcart"))
            .arg("up")
            .arg("--data-dir")
            .arg(self.data_dir())
            .args(["--gateway-port", &self.base_port.to_string()])
            .args(self.port_flags())
            .args(&self.extra)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .process_group(0)
            .spawn()
            .expect("starting raftcart up");
        *self.up.lock().unwrap() = Some(child);
        self.wait_for_leader(Duration::from_secs(30)).await;
    }

    pub fn gateway(&self) -> String {
        format!("{}://127.0.0.1:{}", self.scheme, self.base_port)
    }

    pub fn node_url(&self, id: u64) -> String {
        format!("{}://127.0.0.1:{}", self.scheme, self.base_port as u64 + id)
    }

    pub async fn status(&self, id: u64) -> Option<Value> {
        // The token matters only to nodes run with --auth-reads.
        let mut req = self
            .http
            .get(format!("{}/cluster/status", self.node_url(id)));
        if let Ok(token) = std::fs::read_to_string(self.data_dir().join("admin.token")) {
            req = req.bearer_auth(token.trim());
        }
        let resp = req.timeout(Duration::from_millis(500)).send().await.ok()?;
        resp.json().await.ok()
    }

    pub async fn wait_for_leader(&self, within: Duration) -> u64 {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            // The leader named in the newest term any node names one in,
            // and only once it says so itself in that term: an old leader
            // that has not yet heard of its successor still names itself,
            // in an older term. (A node cut off from the others may be in a
            // newer term with no leader; it is not asked.)
            let mut newest: Option<(u64, u64)> = None;
            for id in 1..=self.nodes {
                if let Some(s) = self.status(id).await {
                    let (term, leader) = (s["term"].as_u64(), s["leader_id"].as_u64());
                    if let (Some(term), Some(leader)) = (term, leader) {
                        if newest.is_none_or(|(t, _)| term > t) {
                            newest = Some((term, leader));
                        }
                    }
                }
            }
            if let Some((term, l)) = newest {
                if self.status(l).await.is_some_and(|ls| {
                    ls["leader_id"].as_u64() == Some(l) && ls["term"].as_u64() == Some(term)
                }) {
                    return l;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "no leader within {within:?}; logs in {}",
            self.dir.path().display()
        );
    }

    pub fn node_pid(&self, id: u64) -> i32 {
        std::fs::read_to_string(self.data_dir().join(format!("node{id}.pid")))
            .expect("pid file")
            .trim()
            .parse()
            .unwrap()
    }

    pub fn kill_node(&self, id: u64) {
        kill(Pid::from_raw(self.node_pid(id)), Signal::SIGKILL).expect("SIGKILL a node");
    }

    /// Raft address of node `id` (base+10+id).
    pub fn raft_addr(&self, id: u64) -> String {
        format!("127.0.0.1:{}", self.base_port as u64 + 10 + id)
    }

    pub fn api_addr(&self, id: u64) -> String {
        format!("127.0.0.1:{}", self.base_port as u64 + id)
    }

    /// Starts an empty node `id` outside the cluster and waits until it
    /// answers, ready to be added.
    pub async fn spawn_node(&self, id: u64) {
        self.spawn_node_with_key(id, &self.data_dir().join("peer.key"))
            .await
    }

    /// `spawn_node` with the peer key in `key`.
    pub async fn spawn_node_with_key(&self, id: u64, key: &std::path::Path) {
        let log = std::fs::File::create(self.dir.path().join(format!("extra{id}.log"))).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_raftcart"))
            .arg("node")
            .args(["--id", &id.to_string()])
            .args(["--api", &self.api_addr(id)])
            .args(["--raft", &self.raft_addr(id)])
            .arg("--data-dir")
            .arg(self.dir.path().join(format!("extra{id}")))
            .arg("--peer-key-file")
            .arg(key)
            .args(&self.extra)
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("starting a node");
        self.extra_nodes.lock().unwrap().push((id, child));
        for _ in 0..100 {
            if self.status(id).await.is_some() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("node {id} did not start");
    }

    /// Pid of a node started by `spawn_node`.
    pub fn extra_pid(&self, id: u64) -> Pid {
        let nodes = self.extra_nodes.lock().unwrap();
        let (_, child) = nodes
            .iter()
            .find(|(n, _)| *n == id)
            .expect("a spawned node");
        Pid::from_raw(child.id() as i32)
    }

    pub fn freeze_node(&self, id: u64) {
        kill(Pid::from_raw(self.node_pid(id)), Signal::SIGSTOP).expect("SIGSTOP a node");
    }

    pub fn thaw_node(&self, id: u64) {
        kill(Pid::from_raw(self.node_pid(id)), Signal::SIGCONT).expect("SIGCONT a node");
    }

    /// SIGKILLs `up` and every node: a power cut. Returns once the nodes
    /// are gone too: a killed node holds its database lock until the
    /// kernel has torn it down, which on a loaded machine can outlast the
    /// next `launch`, whose node would then fail to open the database.
    pub fn kill_all(&self) {
        if let Some(mut up) = self.up.lock().unwrap().take() {
            let _ = killpg(Pid::from_raw(up.id() as i32), Signal::SIGKILL);
            let _ = up.wait();
            for id in 1..=self.nodes {
                if let Ok(pid) =
                    std::fs::read_to_string(self.data_dir().join(format!("node{id}.pid")))
                {
                    wait_gone(pid.trim());
                }
            }
        }
    }

    /// Waits until every node in `ids` has applied its whole log and all
    /// hold the same last index: nothing written before is still pending.
    /// After a restart the leader may still commit entries appended before
    /// the crash (writes whose clients got no answer), so state read
    /// before this can still change.
    pub async fn wait_settled(&self, ids: &[u64], within: Duration) {
        let settled = |s: Value| {
            let applied = s["last_applied"].as_u64()?;
            (s["last_log_index"].as_u64()? == applied).then_some(applied)
        };
        if !self.wait_all_equal(ids, within, settled).await {
            panic!(
                "nodes {ids:?} did not settle within {within:?}\n{}",
                self.diagnostics(ids).await
            );
        }
    }

    /// Waits until every live node has applied the same log index.
    pub async fn wait_replicas_equal(&self, ids: &[u64], within: Duration) {
        let applied = |s: Value| s["last_applied"].as_u64();
        if !self.wait_all_equal(ids, within, applied).await {
            panic!(
                "replicas {ids:?} did not converge within {within:?}\n{}",
                self.diagnostics(ids).await
            );
        }
    }

    /// What a failed wait prints, since the temporary dir holding the logs
    /// is gone once the test ends: each node's status and the end of the
    /// newest `up` log and of each node's log.
    async fn diagnostics(&self, ids: &[u64]) -> String {
        let mut out = String::new();
        for id in ids {
            let status = self.status(*id).await;
            out += &format!("node {id} status: {}\n", status.unwrap_or(Value::Null));
        }
        let mut logs = vec![self.dir.path().join(format!("up-{}.log", self.launches))];
        logs.extend(
            ids.iter()
                .map(|id| self.data_dir().join(format!("node{id}.log"))),
        );
        for log in logs {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            out += &format!("last lines of {}:\n", log.display());
            for line in &lines[lines.len().saturating_sub(30)..] {
                out += line;
                out += "\n";
            }
        }
        out
    }

    /// Whether, within the time, `of` gave the same value for every node's
    /// status.
    async fn wait_all_equal(
        &self,
        ids: &[u64],
        within: Duration,
        of: impl Fn(Value) -> Option<u64>,
    ) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            let mut values = Vec::new();
            for id in ids {
                values.push(self.status(*id).await.and_then(&of));
            }
            if values.iter().all(|v| v.is_some() && *v == values[0]) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    /// Runs `raftcart` as this cluster's operator: `raftcart cluster ...`
    /// finds the admin token `up` made.
    pub fn cli(&self, args: &[&str]) -> (bool, String, String) {
        if self.scheme == "https" {
            let ca = self.dir.path().join("certs").join("ca.pem");
            let mut with_ca: Vec<&str> = args.to_vec();
            let ca = ca.display().to_string();
            with_ca.extend(["--tls-ca", &ca]);
            return raftcart_in(&self.data_dir(), &with_ca);
        }
        raftcart_in(&self.data_dir(), args)
    }

    /// `raftcart cluster add-learner` of the extra node `id` (started by
    /// `spawn_node`), sent to the node at `via`.
    pub fn add_learner(&self, via: &str, id: u64) -> (bool, String, String) {
        self.cli(&[
            "cluster",
            "add-learner",
            "--addr",
            via,
            "--id",
            &id.to_string(),
            "--api",
            &self.api_addr(id),
            "--raft",
            &self.raft_addr(id),
        ])
    }

    /// Polls `cluster status` until `id` is at most `lag` entries behind.
    pub async fn wait_caught_up(&self, id: u64, lag: u64) {
        for _ in 0..300 {
            let (_, out, _) =
                self.cli(&["cluster", "status", "--addr", &self.node_url(1), "--json"]);
            if let Ok(report) = serde_json::from_str::<Value>(&out) {
                let m = report["members"]
                    .as_array()
                    .and_then(|ms| ms.iter().find(|m| m["id"] == id).cloned());
                if m.is_some_and(|m| m["lag"].as_u64().is_some_and(|l| l <= lag)) {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("node {id} did not catch up");
    }

    /// The admin token `up` made for this cluster.
    pub fn admin_token(&self) -> String {
        std::fs::read_to_string(self.data_dir().join("admin.token"))
            .expect("up writes an admin token")
            .trim()
            .to_string()
    }

    /// A request with the admin token.
    pub async fn call_admin(
        &self,
        method: reqwest::Method,
        base: &str,
        path: &str,
    ) -> (u16, Value) {
        let resp = self
            .http
            .request(method, format!("{base}{path}"))
            .bearer_auth(self.admin_token())
            .timeout(Duration::from_secs(60))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        reply(resp).await
    }

    /// One of `node`'s `/debug/` routes (failpoints builds), with the admin
    /// token; it must answer 200.
    pub async fn call_debug(&self, method: reqwest::Method, node: u64, path: &str) {
        let (s, v) = self
            .call_admin(method.clone(), &self.node_url(node), path)
            .await;
        assert_eq!(s, 200, "{method} {path} on node {node}: {v}");
    }

    pub async fn post(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::POST, &self.gateway(), path)
            .await
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, &self.gateway(), path).await
    }

    pub async fn call(&self, method: reqwest::Method, base: &str, path: &str) -> (u16, Value) {
        self.call_keyed(method, base, path, None).await
    }

    /// POST with an `Idempotency-Key` header, through the gateway.
    pub async fn post_keyed(&self, path: &str, key: &str) -> (u16, Value) {
        self.call_keyed(reqwest::Method::POST, &self.gateway(), path, Some(key))
            .await
    }

    pub async fn call_keyed(
        &self,
        method: reqwest::Method,
        base: &str,
        path: &str,
        key: Option<&str>,
    ) -> (u16, Value) {
        let mut req = self.http.request(method, format!("{base}{path}"));
        if let Some(key) = key {
            req = req.header("Idempotency-Key", key);
        }
        let resp = req
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        reply(resp).await
    }
}

/// An answer's status and body: its JSON, or its text as a JSON string.
pub async fn reply(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.kill_all();
        // A failed test keeps its cluster's data and logs to look at.
        if std::thread::panicking() {
            self.dir.disable_cleanup(true);
            eprintln!(
                "kept the failed test's cluster dir: {}",
                self.dir.path().display()
            );
        }
        for (_, mut node) in self.extra_nodes.lock().unwrap().drain(..) {
            let _ = node.kill();
            let _ = node.wait();
        }
        // Nodes outlive a SIGKILLed `up` only if they left its group; make sure.
        for id in 1..=self.nodes {
            if let Ok(pid) = std::fs::read_to_string(self.data_dir().join(format!("node{id}.pid")))
            {
                if let Ok(pid) = pid.trim().parse::<i32>() {
                    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                }
            }
        }
    }
}

/// Writes ca.pem, node.pem (for 127.0.0.1 and localhost, signed by the CA)
/// and node.key into `dir`; returns the CA's PEM.
pub fn make_certs(dir: &std::path::Path) -> String {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, SanType};
    std::fs::create_dir_all(dir).unwrap();
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let node_key = KeyPair::generate().unwrap();
    let mut node_params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    node_params
        .subject_alt_names
        .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
    let node = node_params.signed_by(&node_key, &ca, &ca_key).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.join("node.pem"), node.pem()).unwrap();
    std::fs::write(dir.join("node.key"), node_key.serialize_pem()).unwrap();
    ca.pem()
}

/// Waits (up to 30 s) until process `pid` has exited and released its
/// files (and so its database lock and ports): it no longer exists, or it
/// is a zombie with no thread left. Its main thread alone being a zombie
/// is not enough: the others (one in an fsync, say) still hold the files.
pub fn wait_gone(pid: &str) {
    let stat = format!("/proc/{pid}/stat");
    let threads = || std::fs::read_dir(format!("/proc/{pid}/task")).map_or(0, |d| d.count());
    for _ in 0..600 {
        let Ok(s) = std::fs::read_to_string(&stat) else {
            return;
        };
        // The state follows the parenthesised command name.
        let zombie = s
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z'));
        if zombie && threads() <= 1 {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("process {pid} still running after 30 s");
}

/// Runs the `raftcart` binary: (succeeded, stdout, stderr). Its data dir
/// (where `raftcart cluster` finds the admin token) is a fresh, empty one.
pub fn raftcart(args: &[&str]) -> (bool, String, String) {
    let none = tempfile::tempdir().unwrap();
    raftcart_in(none.path(), args)
}

/// Runs the `raftcart` binary with `RAFTCART_DATA_DIR` set to `data_dir`.
pub fn raftcart_in(data_dir: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_raftcart"))
        .args(args)
        .env("RAFTCART_DATA_DIR", data_dir)
        .env_remove("RAFTCART_ADMIN_TOKEN")
        .env_remove("RAFTCART_ADMIN_TOKEN_FILE")
        .output()
        .expect("running raftcart");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Credit of a user, read through the gateway (linearizable).
pub async fn credit(c: &Cluster, user: &str) -> u64 {
    let (s, v) = c.get(&format!("/payment/find_user/{user}")).await;
    assert_eq!(s, 200, "find_user {user}: {v}");
    v["credit"].as_u64().unwrap()
}

pub async fn stock(c: &Cluster, item: &str) -> u64 {
    let (s, v) = c.get(&format!("/stock/find/{item}")).await;
    assert_eq!(s, 200, "find item {item}: {v}");
    v["stock"].as_u64().unwrap()
}
