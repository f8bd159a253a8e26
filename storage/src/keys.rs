//! Column families and key layout.
//!
//! `log`:  big-endian u64 index -> entry (so iteration is in log order)
//! `meta`: vote, committed, last purged log id
//! `sm`:   empty; where an older build kept the state machine (moved to the
//!         snapshot file at open).
//!
//! Snapshots and backups carry the state machine as pairs keyed by the
//! record prefixes below, plus its metadata (`m/...`).

pub const CF_LOG: &str = "log";
pub const CF_META: &str = "meta";
pub const CF_SM: &str = "sm";

pub const VOTE: &[u8] = b"vote";
pub const COMMITTED: &[u8] = b"committed";
pub const LAST_PURGED: &[u8] = b"last_purged";

pub const APPLIED: &[u8] = b"m/applied";
pub const MEMBERSHIP: &[u8] = b"m/membership";
/// The log clock (`LogClock`): its milliseconds, and the stamp it counts
/// from, under two keys (the first one alone predates the second).
pub const CLOCK: &[u8] = b"m/clock";
pub const CLOCK_STAMP: &[u8] = b"m/clock_stamp";

pub const USER: &[u8] = b"u/";
pub const ITEM: &[u8] = b"i/";
pub const ORDER: &[u8] = b"o/";
pub const REQUEST_RECORD: &[u8] = b"s/";
/// `t/` + the request record's log clock ms (big-endian) + request id: request records
/// in expiry order.
pub const RECORD_BY_TIME: &[u8] = b"t/";

/// Every `sm` key sorts below this.
pub const SM_END: &[u8] = &[0xff];

pub fn log_index(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

pub fn prefixed(prefix: &[u8], id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(prefix.len() + id.len());
    k.extend_from_slice(prefix);
    k.extend_from_slice(id.as_bytes());
    k
}

pub fn record_by_time(at_ms: u64, request_id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(2 + 8 + request_id.len());
    k.extend_from_slice(RECORD_BY_TIME);
    k.extend_from_slice(&at_ms.to_be_bytes());
    k.extend_from_slice(request_id.as_bytes());
    k
}
