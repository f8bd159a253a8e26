//! Fuzzing the decoding of every node-to-node message: random bytes, and
//! real messages cut short, with bytes flipped or lengths inflated. Decoding
//! may fail, never panic, and never allocate more than the input allows
//! (a claimed length beyond the input is refused before allocating).
//!
//! Longer runs: `PROPTEST_CASES=200000 cargo test -p raftcart-raft --test decode_fuzz`.

use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId, SnapshotMeta, Vote};
use proptest::prelude::*;
use raftcart_domain::{Command, Proposal, Proposals};
use raftcart_raft::attempt::Attempt;
use raftcart_raft::forward::ForwardRequest;
use raftcart_raft::op::Op;
use raftcart_types::codec;
use raftcart_types::{NodeId, TypeConfig};

/// Tries every message a peer may send or answer with.
fn decode_all(bytes: &[u8]) {
    let _ = codec::decode::<AppendEntriesRequest<TypeConfig>>(bytes);
    let _ = codec::decode::<VoteRequest<NodeId>>(bytes);
    let _ = codec::decode::<InstallSnapshotRequest<TypeConfig>>(bytes);
    let _ = codec::decode::<ForwardRequest>(bytes);
    let _ = codec::decode::<Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>>(bytes);
    let _ = codec::decode::<Result<VoteResponse<NodeId>, RaftError<NodeId>>>(bytes);
    let _ = codec::decode::<
        Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>,
    >(bytes);
    let _ = codec::decode::<Attempt>(bytes);
}

fn real_messages() -> Vec<Vec<u8>> {
    let log_id = LogId::new(CommittedLeaderId::new(4, 2), 17);
    let proposal = |i: u64| Proposal {
        request_id: format!("req-{i}"),
        at_ms: 1_700_000_000_000 + i,
        command: Command::AddItem {
            order_id: format!("order-{i}"),
            item_id: "item".into(),
            quantity: i,
        },
    };
    let append: AppendEntriesRequest<TypeConfig> = AppendEntriesRequest {
        vote: Vote::new_committed(4, 2),
        prev_log_id: Some(log_id),
        entries: vec![
            Entry {
                log_id,
                payload: EntryPayload::Normal(Proposals((0..5).map(proposal).collect())),
            },
            Entry {
                log_id,
                payload: EntryPayload::Blank,
            },
        ],
        leader_commit: Some(log_id),
    };
    let snapshot: InstallSnapshotRequest<TypeConfig> = InstallSnapshotRequest {
        vote: Vote::new_committed(4, 2),
        meta: SnapshotMeta {
            last_log_id: Some(log_id),
            snapshot_id: "4-17-1".into(),
            ..Default::default()
        },
        offset: 0,
        data: vec![3; 300],
        done: true,
    };
    let forward = ForwardRequest {
        op: Op::Write {
            request_id: "r".into(),
            command: Command::Checkout {
                order_id: "o".into(),
            },
        },
        wait_ms: 5000,
        trace_id: Some("t".into()),
    };
    vec![
        codec::encode(&append).unwrap(),
        codec::encode(&VoteRequest::new(Vote::new(5, 3), Some(log_id))).unwrap(),
        codec::encode(&snapshot).unwrap(),
        codec::encode(&forward).unwrap(),
        codec::encode(&Attempt::ReadIndex(7)).unwrap(),
    ]
}

/// A real message, damaged: cut, a byte changed, or a length-like byte
/// inflated (0xfd announces an 8-byte length in bincode's varints).
fn damaged() -> impl Strategy<Value = Vec<u8>> {
    let messages = real_messages();
    (
        0..messages.len(),
        any::<prop::sample::Index>(),
        any::<u8>(),
        0..3u8,
    )
        .prop_map(move |(m, at, byte, how)| {
            let mut bytes = messages[m].clone();
            let i = at.index(bytes.len());
            match how {
                0 => bytes.truncate(i),
                1 => bytes[i] = byte,
                _ => {
                    bytes.splice(i..i, [0xfd, 0, 0, 0, 0, 0, 0x10, 0, 0]);
                }
            }
            bytes
        })
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_decode_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        decode_all(&bytes);
    }

    #[test]
    fn damaged_messages_decode_without_panicking(bytes in damaged()) {
        decode_all(&bytes);
    }
}

#[test]
fn real_messages_round_trip() {
    for bytes in real_messages() {
        // Each decodes as (at least) its own type; here only that nothing
        // undecodable was produced by the encoder.
        assert!(!bytes.is_empty());
    }
    let append = &real_messages()[0];
    let decoded: AppendEntriesRequest<TypeConfig> = codec::decode(append).unwrap();
    assert_eq!(decoded.entries.len(), 2);
    assert_eq!(&codec::encode(&decoded).unwrap(), append);
}
