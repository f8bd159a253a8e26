//! The executor and the proposer on an in-process three-node cluster: real
//! openraft, real RocksDB stores in temporary directories, the signed
//! node-to-node server on loopback ports the system picks. No binary, no
//! HTTP API: what `raftcart node` wires together, minus the wiring.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use raftcart_domain::{Command, Query, Reply, StateRead};
use raftcart_raft::network::Network;
use raftcart_raft::peer_auth::PeerKey;
use raftcart_raft::peer_client::PeerClient;
use raftcart_raft::{rpc_server, Batching, ClusterError, Consistency, Executor, ExecutorConfig};
use raftcart_storage::StateView;
use raftcart_types::{NodeId, NodeInfo, Raft};

const KEY: &[u8] = b"an in-process cluster's peer key, 32+ bytes";

struct Node {
    id: NodeId,
    raft: Raft,
    executor: Arc<Executor>,
    view: StateView,
    server: tokio::task::JoinHandle<()>,
    watch: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

struct Cluster {
    nodes: Vec<Node>,
}

impl Cluster {
    async fn start(batching: Batching, leader_wait: Duration) -> Cluster {
        let key = PeerKey::from_secret(KEY).unwrap();
        let mut listeners = Vec::new();
        let mut members = BTreeMap::new();
        for id in 1..=3u64 {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = l.local_addr().unwrap().to_string();
            members.insert(
                id,
                NodeInfo {
                    api_addr: addr.clone(),
                    raft_addr: addr,
                },
            );
            listeners.push((id, l));
        }
        let config = Arc::new(
            openraft::Config {
                heartbeat_interval: 100,
                election_timeout_min: 300,
                election_timeout_max: 600,
                ..Default::default()
            }
            .validate()
            .unwrap(),
        );
        let mut nodes = Vec::new();
        for (id, listener) in listeners {
            let dir = tempfile::tempdir().unwrap();
            let (log, sm, view) = raftcart_storage::open(dir.path()).unwrap();
            let peers = PeerClient::new(reqwest::Client::new(), false, key.clone());
            let raft = Raft::new(id, config.clone(), Network::new(peers.clone()), log, sm)
                .await
                .unwrap();
            let executor = Arc::new(Executor::new(
                id,
                raft.clone(),
                Arc::new(view.clone()),
                peers,
                ExecutorConfig {
                    leader_wait,
                    batching,
                },
            ));
            let router = rpc_server::router(executor.clone(), key.clone());
            let server = tokio::spawn(async move {
                axum::serve(listener, router).await.unwrap();
            });
            let watch = tokio::spawn({
                let executor = executor.clone();
                async move { executor.watch_leader().await }
            });
            nodes.push(Node {
                id,
                raft,
                executor,
                view,
                server,
                watch,
                _dir: dir,
            });
        }
        nodes[0].raft.initialize(members).await.unwrap();
        let c = Cluster { nodes };
        c.leader().await;
        c
    }

    /// The node every member agrees leads.
    async fn leader(&self) -> &Node {
        for _ in 0..200 {
            let leaders: Vec<_> = self
                .nodes
                .iter()
                .map(|n| n.raft.metrics().borrow().current_leader)
                .collect();
            if let Some(Some(l)) = leaders.first() {
                if leaders.iter().all(|x| *x == Some(*l)) {
                    return self.node(*l);
                }
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("no leader agreed on by every member");
    }

    fn node(&self, id: NodeId) -> &Node {
        self.nodes.iter().find(|n| n.id == id).unwrap()
    }

    async fn followers(&self) -> Vec<&Node> {
        let leader = self.leader().await.id;
        self.nodes.iter().filter(|n| n.id != leader).collect()
    }
}

fn create_user(id: &str) -> Command {
    Command::CreateUser {
        user_id: id.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_on_a_follower_is_forwarded_committed_and_applied_on_every_node() {
    let c = Cluster::start(Batching::default(), Duration::from_secs(5)).await;
    let follower = c.followers().await[0];
    let reply = follower
        .executor
        .write("r-1".into(), create_user("u1"))
        .await
        .expect("a leader");
    assert_eq!(
        reply,
        Ok(Reply::UserCreated {
            user_id: "u1".into()
        })
    );
    for n in &c.nodes {
        n.executor.catch_up().await.unwrap();
        let user = n.view.user("u1").expect("applied on every node");
        assert_eq!(user.credit, 0, "node {}", n.id);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_id_applies_once_whichever_node_it_is_retried_on() {
    let c = Cluster::start(Batching::default(), Duration::from_secs(5)).await;
    let leader = c.leader().await;
    leader
        .executor
        .write("setup".into(), create_user("u"))
        .await
        .unwrap()
        .unwrap();
    let add = Command::AddFunds {
        user_id: "u".into(),
        amount: 7,
    };
    for n in &c.nodes {
        let reply = n
            .executor
            .write("add-once".into(), add.clone())
            .await
            .unwrap();
        assert_eq!(reply, Ok(Reply::FundsAdded), "node {}", n.id);
    }
    let read = c.followers().await[1]
        .executor
        .read(
            Query::FindUser {
                user_id: "u".into(),
            },
            Consistency::Linearizable,
        )
        .await
        .unwrap();
    assert_eq!(
        read,
        Ok(Reply::User {
            user_id: "u".into(),
            credit: 7
        }),
        "three tries of one request id, credited once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_share_log_entries_and_each_gets_its_own_outcome() {
    const WRITES: u64 = 200;
    let c = Cluster::start(Batching::default(), Duration::from_secs(10)).await;
    let leader = c.leader().await;
    let before = leader.raft.metrics().borrow().last_log_index.unwrap_or(0);
    // Every write is in flight before the first is answered.
    let writes: Vec<_> = (0..WRITES)
        .map(|i| {
            let executor = leader.executor.clone();
            tokio::spawn(async move {
                executor
                    .write(format!("w-{i}"), create_user(&format!("user-{i}")))
                    .await
            })
        })
        .collect();
    for (i, write) in writes.into_iter().enumerate() {
        assert_eq!(
            write.await.unwrap().unwrap(),
            Ok(Reply::UserCreated {
                user_id: format!("user-{i}")
            })
        );
    }
    let entries = leader.raft.metrics().borrow().last_log_index.unwrap_or(0) - before;
    assert!(
        entries < WRITES / 2,
        "{WRITES} concurrent writes took {entries} log entries"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_quorum_a_write_is_unavailable_once_the_leader_wait_is_over() {
    let c = Cluster::start(Batching::default(), Duration::from_millis(800)).await;
    let leader = c.leader().await;
    for f in c.followers().await {
        f.server.abort();
        f.raft.shutdown().await.unwrap();
    }
    let answer = leader.executor.write("lost".into(), create_user("x")).await;
    assert!(
        matches!(answer, Err(ClusterError::Unavailable(_))),
        "{answer:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_membership_answer_names_the_membership_a_quorum_confirms() {
    let c = Cluster::start(Batching::default(), Duration::from_secs(5)).await;
    let follower = c.followers().await[0];
    let answer = follower
        .executor
        .change_membership(raftcart_raft::MembershipOp::Promote { id: follower.id })
        .await
        .unwrap();
    assert_eq!(
        answer,
        Ok(Reply::Done {
            msg: format!("node {} is already a voter; voters 1, 2, 3", follower.id)
        })
    );
    let answer = follower
        .executor
        .change_membership(raftcart_raft::MembershipOp::Remove { id: 9 })
        .await
        .unwrap();
    assert!(
        matches!(answer, Err(raftcart_domain::Refusal::NotFound(_))),
        "a first attempt that finds nothing to remove is a refusal: {answer:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_leader_dies_the_best_follower_stands_once_and_wins() {
    let c = Cluster::start(Batching::default(), Duration::from_secs(5)).await;
    let leader = c.leader().await;
    for i in 0..20 {
        leader
            .executor
            .write(format!("w-{i}"), create_user(&format!("u{i}")))
            .await
            .unwrap()
            .unwrap();
    }
    let term = leader.raft.metrics().borrow().current_term;
    let followers = c.followers().await;
    // Only the leader watch can start an election now: openraft's own
    // timer would also get there, later, and might split the vote.
    for f in &followers {
        f.raft.runtime_config().elect(false);
    }
    leader.watch.abort();
    leader.server.abort();
    leader.raft.shutdown().await.unwrap();
    let mut new_leader = None;
    for _ in 0..400 {
        let views: Vec<_> = followers
            .iter()
            .map(|f| {
                let m = f.raft.metrics().borrow().clone();
                (m.current_leader, m.current_term)
            })
            .collect();
        if let Some((Some(l), t)) = views.first().cloned() {
            if l != leader.id && views.iter().all(|v| *v == (Some(l), t)) {
                new_leader = Some((l, t));
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let (l, t) = new_leader.expect("a follower stood and won without openraft's timer");
    assert_eq!(
        t,
        term + 1,
        "one election, not a split vote and a second round"
    );
    let winner = c.node(l);
    let reply = winner
        .executor
        .write("after".into(), create_user("after"))
        .await
        .unwrap();
    assert!(reply.is_ok(), "{reply:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_leader_can_ask_a_node_to_stand_and_only_voters_get_a_pre_vote() {
    use raftcart_raft::election::{PreVoteAnswer, PreVoteRequest, PATH_PRE_VOTE};
    use raftcart_raft::leadership::{CampaignRequest, PATH_CAMPAIGN};
    use raftcart_types::codec;

    let c = Cluster::start(Batching::default(), Duration::from_secs(5)).await;
    let leader = c.leader().await;
    let followers = c.followers().await;
    let (target, other) = (followers[0], followers[1]);
    let term = leader.raft.metrics().borrow().current_term;
    let addr = target
        .raft
        .metrics()
        .borrow()
        .membership_config
        .membership()
        .get_node(&target.id)
        .unwrap()
        .raft_addr
        .clone();
    let peers = PeerClient::new(
        reqwest::Client::new(),
        false,
        PeerKey::from_secret(KEY).unwrap(),
    );
    let ask = |body: Vec<u8>, path: &'static str| {
        let (peers, addr) = (peers.clone(), addr.clone());
        async move { peers.post(&addr, path, body, Duration::from_secs(2)).await }
    };
    for (from, term) in [(other.id, term), (leader.id, term + 1), (leader.id, 0)] {
        let body = codec::encode(&CampaignRequest { term, from }).unwrap();
        let answer = ask(body, PATH_CAMPAIGN).await;
        assert!(
            answer.is_err(),
            "campaign from {from} in term {term}: {answer:?}"
        );
    }
    for (from, asked) in [(target.id, term), (9, term), (other.id, term + 1)] {
        let body = codec::encode(&PreVoteRequest { from, term: asked }).unwrap();
        let answer = ask(body, PATH_PRE_VOTE).await;
        assert!(
            answer.is_err(),
            "pre-vote from {from} in term {asked}: {answer:?}"
        );
    }
    let body = codec::encode(&PreVoteRequest {
        from: other.id,
        term,
    })
    .unwrap();
    let answer: PreVoteAnswer = codec::decode(&ask(body, PATH_PRE_VOTE).await.unwrap()).unwrap();
    assert_eq!((answer.term, answer.leads), (term, false));
    for n in &c.nodes {
        let m = n.raft.metrics().borrow().clone();
        assert_eq!(
            (m.current_term, m.current_leader),
            (term, Some(leader.id)),
            "node {}: nothing changed",
            n.id
        );
    }
}
