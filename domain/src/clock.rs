//! The state machine's clock, for expiring remembered request ids.
//!
//! Each proposal carries its leader's wall-clock time. Taking the largest
//! stamp seen as the time would let one node's clock decide for every
//! replica: a leader hours ahead would expire every remembered id at once
//! (retries in flight would then apply twice), and the clock would then
//! stay hours ahead, so that ids remembered afterwards would not expire
//! until every clock caught up. So the clock counts only the steps between
//! one stamp and the next, each at most `MAX_CLOCK_STEP_MS`, and never goes
//! back. A leader whose clock is off, ahead or behind, moves it by at most
//! one step when it takes over; after that its stamps advance at the rate
//! of real time, and so does the clock.
//!
//! Deterministic: the clock is part of the state and moves only by the
//! stamps in the log.

use serde::{Deserialize, Serialize};

/// The most one proposal moves the clock forward. A longer pause between
/// proposals counts as this much: expiry comes later (in wall-clock time)
/// when writes are rare, never earlier. Each change to a leader whose clock
/// is ahead can shorten the time a request id is remembered by this much.
pub const MAX_CLOCK_STEP_MS: u64 = 5_000;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogClock {
    /// Milliseconds counted so far; request records are stamped with this.
    pub ms: u64,
    /// The stamp the clock counts from (`None` before the first proposal).
    pub stamp_ms: Option<u64>,
}

impl LogClock {
    /// The clock once a proposal stamped `at_ms` by its leader is applied.
    pub fn advance(self, at_ms: u64) -> LogClock {
        let Some(stamp_ms) = self.stamp_ms else {
            return LogClock {
                ms: self.ms,
                stamp_ms: Some(at_ms),
            };
        };
        if at_ms >= stamp_ms {
            LogClock {
                ms: self
                    .ms
                    .saturating_add((at_ms - stamp_ms).min(MAX_CLOCK_STEP_MS)),
                stamp_ms: Some(at_ms),
            }
        } else if stamp_ms - at_ms <= MAX_CLOCK_STEP_MS {
            // A leader stamps concurrent requests before they are ordered
            // into the log: a stamp a little behind the last one is the same
            // clock out of order, and counting from it would count the same
            // milliseconds again.
            self
        } else {
            // Another clock, far behind (a new leader): count from it on.
            LogClock {
                ms: self.ms,
                stamp_ms: Some(at_ms),
            }
        }
    }
}
