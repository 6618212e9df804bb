//! A process-wide monotonic clock in microseconds, so per-server timestamps
//! fit in one `AtomicU64` and pure functions can take "now" as a number.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Microseconds since the first call in this process (never 0 after the
/// first microsecond; 0 is used as "never" by callers).
pub fn now_us() -> u64 {
    us_at(Instant::now())
}

/// `at` on this clock: lets a caller that has just read `Instant::now()`
/// for its own use skip a second read.
pub fn us_at(at: Instant) -> u64 {
    u64::try_from(at.saturating_duration_since(epoch()).as_micros())
        .unwrap_or(u64::MAX)
        .max(1)
}

pub fn us(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}
