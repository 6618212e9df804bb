//! Live per-server figures for the admin API: request rate and latency
//! percentiles over the last few seconds.
//!
//! Recording is a handful of relaxed atomic adds, no lock: the window is a
//! ring of one-second slots, each with its own latency histogram. A slot is
//! recycled by the first request of a new second; a request racing with that
//! reset may be lost, which is fine for figures meant for eyes, not billing.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Seconds covered by the window (the current, partial second excluded).
pub const WINDOW_SECS: u64 = 10;
const SLOTS: usize = WINDOW_SECS as usize + 1;

/// Upper bounds of the latency buckets, in microseconds: 100 µs doubling up
/// to ~79 s, with a step in between each power of two.
const BUCKETS: usize = 40;
fn bucket_bound_us(i: usize) -> u64 {
    // 100 * 2^(i/2), with the odd steps at 1.5x: close enough to sqrt 2
    // for a display figure, in integer math.
    let base = 100u64 << (i / 2);
    if i.is_multiple_of(2) {
        base
    } else {
        base + base / 2
    }
}

fn bucket_of(us: u64) -> usize {
    (0..BUCKETS)
        .find(|&i| us <= bucket_bound_us(i))
        .unwrap_or(BUCKETS - 1)
}

fn now_secs() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    // +1 so that no live slot ever has epoch 0, the "never used" marker.
    START.get_or_init(Instant::now).elapsed().as_secs() + 1
}

#[derive(Debug)]
struct Slot {
    epoch: AtomicU64,
    count: AtomicU64,
    buckets: [AtomicU64; BUCKETS],
}

impl Default for Slot {
    fn default() -> Self {
        Slot {
            epoch: AtomicU64::new(0),
            count: AtomicU64::new(0),
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

/// A sliding window of request latencies.
///
/// The slots (3.7 KB) are allocated by the first request: a server that
/// never serves costs one pointer, and 10k configured servers cost 40 MB less.
#[derive(Debug, Default)]
pub struct LatencyWindow {
    slots: OnceLock<Box<[Slot; SLOTS]>>,
}

/// What the window says right now.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct WindowSummary {
    pub requests: u64,
    /// Requests per second over the window.
    pub rate: f64,
    /// Percentiles in seconds (bucket upper bounds), `None` without traffic.
    pub p50: Option<f64>,
    pub p99: Option<f64>,
}

impl LatencyWindow {
    pub fn record(&self, latency: Duration) {
        self.record_at(now_secs(), latency);
    }

    fn record_at(&self, sec: u64, latency: Duration) {
        let slots = self
            .slots
            .get_or_init(|| Box::new(std::array::from_fn(|_| Slot::default())));
        let slot = &slots[(sec % SLOTS as u64) as usize];
        let seen = slot.epoch.load(Ordering::Acquire);
        if seen != sec
            && slot
                .epoch
                .compare_exchange(seen, sec, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            slot.count.store(0, Ordering::Relaxed);
            for b in &slot.buckets {
                b.store(0, Ordering::Relaxed);
            }
        }
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        slot.count.fetch_add(1, Ordering::Relaxed);
        slot.buckets[bucket_of(us)].fetch_add(1, Ordering::Relaxed);
    }

    pub fn summary(&self) -> WindowSummary {
        self.summary_at(now_secs())
    }

    fn summary_at(&self, now: u64) -> WindowSummary {
        let mut buckets = [0u64; BUCKETS];
        let mut requests = 0;
        for slot in self.slots.get().into_iter().flat_map(|s| s.iter()) {
            let epoch = slot.epoch.load(Ordering::Acquire);
            // Complete seconds only: the current one would drag the rate down.
            if epoch == 0 || epoch >= now || now - epoch > WINDOW_SECS {
                continue;
            }
            requests += slot.count.load(Ordering::Relaxed);
            for (sum, b) in buckets.iter_mut().zip(&slot.buckets) {
                *sum += b.load(Ordering::Relaxed);
            }
        }
        let total: u64 = buckets.iter().sum();
        let percentile = |q: f64| -> Option<f64> {
            if total == 0 {
                return None;
            }
            let rank = ((total as f64) * q).ceil().max(1.0) as u64;
            let mut seen = 0;
            for (i, n) in buckets.iter().enumerate() {
                seen += n;
                if seen >= rank {
                    return Some(bucket_bound_us(i) as f64 / 1e6);
                }
            }
            None
        };
        WindowSummary {
            requests,
            rate: requests as f64 / WINDOW_SECS as f64,
            p50: percentile(0.5),
            p99: percentile(0.99),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_increasing() {
        for i in 1..BUCKETS {
            assert!(bucket_bound_us(i) > bucket_bound_us(i - 1));
        }
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(100), 0);
        assert_eq!(bucket_of(101), 1);
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn rate_and_percentiles_over_complete_seconds() {
        let w = LatencyWindow::default();
        for _ in 0..98 {
            w.record_at(5, Duration::from_millis(2));
        }
        w.record_at(6, Duration::from_millis(2));
        w.record_at(6, Duration::from_secs(1));
        // The current second is not counted yet.
        w.record_at(7, Duration::from_secs(3));
        let s = w.summary_at(7);
        assert_eq!(s.requests, 100);
        assert!((s.rate - 10.0).abs() < 1e-9);
        let p50 = s.p50.unwrap();
        assert!((0.002..=0.0031).contains(&p50), "p50 {p50}");
        let p99 = s.p99.unwrap();
        assert!((0.002..=0.0031).contains(&p99), "p99 {p99}");
        let s = w.summary_at(8);
        assert_eq!(s.requests, 101);
        assert!(s.p99.unwrap() >= 1.0, "slow requests show at p99");
    }

    #[test]
    fn old_seconds_fall_out_and_slots_are_reused() {
        let w = LatencyWindow::default();
        w.record_at(1, Duration::from_millis(1));
        assert_eq!(w.summary_at(2).requests, 1);
        assert_eq!(w.summary_at(1 + WINDOW_SECS + 1).requests, 0);
        // Same slot, a full ring later: the old count is dropped.
        w.record_at(1 + SLOTS as u64, Duration::from_millis(1));
        assert_eq!(w.summary_at(2 + SLOTS as u64).requests, 1);
        assert_eq!(w.summary_at(2 + SLOTS as u64).p50, Some(0.001_2));
    }

    #[test]
    fn a_window_without_requests_allocates_no_slots() {
        let w = LatencyWindow::default();
        assert_eq!(w.summary_at(5).requests, 0);
        assert!(w.slots.get().is_none());
        w.record_at(5, Duration::from_millis(1));
        assert!(w.slots.get().is_some());
    }

    #[test]
    fn empty_window_has_no_percentiles() {
        let s = LatencyWindow::default().summary();
        assert_eq!(s.requests, 0);
        assert_eq!(s.p50, None);
    }
}
