//! Per-server response-time estimates, kept in atomics.
//!
//! Two estimates, for two strategies:
//! - a *peak EWMA* (Finagle's, used by linkerd) for `p2c`: it jumps up at
//!   once on a slow answer, falls slowly on fast ones, and decays towards
//!   zero while the server gets no traffic, so a server that was slow is
//!   tried again after a while instead of being starved forever;
//! - a plain EWMA of time-to-first-byte for `leasttime`, which Traefik
//!   computes as the mean of the last 100 samples.
//!
//! Updates race benignly: two concurrent samples may overwrite each other,
//! which only loses a sample.

use std::sync::atomic::{AtomicU64, Ordering};

/// How fast the peak EWMA forgets (Finagle's default decay time).
pub const DECAY_US: f64 = 10_000_000.0;
/// Weight of a new sample in the plain EWMA (about a 20-sample memory).
const AVG_ALPHA: f64 = 0.1;

#[derive(Debug, Default)]
pub struct Latency {
    /// Peak EWMA in microseconds (f64 bits); 0 before any sample.
    peak: AtomicU64,
    /// When `peak` was last updated (µs on [`super::clock`]).
    stamp: AtomicU64,
    /// Plain EWMA in microseconds (f64 bits); 0 before any sample.
    avg: AtomicU64,
}

impl Latency {
    /// Records one response time.
    pub fn observe(&self, rtt_us: f64, now_us: u64) {
        let peak = f64::from_bits(self.peak.load(Ordering::Relaxed));
        let stamp = self.stamp.load(Ordering::Relaxed);
        let next = peak_update(peak, stamp, rtt_us, now_us);
        self.peak.store(next.to_bits(), Ordering::Relaxed);
        self.stamp.store(now_us, Ordering::Relaxed);
        let avg = f64::from_bits(self.avg.load(Ordering::Relaxed));
        let next = if avg == 0.0 {
            rtt_us
        } else {
            avg + AVG_ALPHA * (rtt_us - avg)
        };
        self.avg.store(next.to_bits(), Ordering::Relaxed);
    }

    /// The peak EWMA as of `now`, decayed for the time without samples.
    pub fn peak_us(&self, now_us: u64) -> f64 {
        let peak = f64::from_bits(self.peak.load(Ordering::Relaxed));
        decayed(peak, self.stamp.load(Ordering::Relaxed), now_us)
    }

    /// The plain EWMA (0 before any sample).
    pub fn average_us(&self) -> f64 {
        f64::from_bits(self.avg.load(Ordering::Relaxed))
    }
}

/// Folds a sample into a peak EWMA: a slower sample replaces the estimate,
/// a faster one is blended in with a weight that grows with the time since
/// the previous sample.
pub fn peak_update(peak: f64, stamp: u64, rtt: f64, now: u64) -> f64 {
    if rtt > peak {
        return rtt;
    }
    let w = weight(stamp, now);
    peak * w + rtt * (1.0 - w)
}

/// The estimate after `now - stamp` without samples.
pub fn decayed(peak: f64, stamp: u64, now: u64) -> f64 {
    peak * weight(stamp, now)
}

fn weight(stamp: u64, now: u64) -> f64 {
    let elapsed = now.saturating_sub(stamp) as f64;
    (-elapsed / DECAY_US).exp()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peak_jumps_up_and_falls_slowly() {
        let p = peak_update(1_000.0, 0, 50_000.0, 1_000);
        assert_eq!(p, 50_000.0, "a slow sample is taken at once");
        let p2 = peak_update(p, 1_000, 1_000.0, 2_000);
        assert!(
            p2 > 49_000.0,
            "one fast sample 1ms later barely moves it: {p2}"
        );
        let p3 = peak_update(p, 1_000, 1_000.0, 1_000 + 10 * DECAY_US as u64);
        assert!(
            p3 < 2_000.0,
            "after a long gap the new sample dominates: {p3}"
        );
    }

    #[test]
    fn idle_estimate_decays_towards_zero() {
        let l = Latency::default();
        l.observe(100_000.0, 1);
        assert_eq!(l.peak_us(1), 100_000.0);
        let later = l.peak_us(1 + DECAY_US as u64);
        assert!(
            (later - 100_000.0 / std::f64::consts::E).abs() < 1.0,
            "{later}"
        );
        // 20x slower than a 5ms peer: below it after tau * ln(20), about 30s.
        assert!(l.peak_us(1 + 25_000_000) > 5_000.0);
        assert!(l.peak_us(1 + 31_000_000) < 5_000.0);
    }

    #[test]
    fn average_follows_samples() {
        let l = Latency::default();
        assert_eq!(l.average_us(), 0.0);
        l.observe(1_000.0, 1);
        assert_eq!(l.average_us(), 1_000.0);
        for i in 0..100 {
            l.observe(3_000.0, 2 + i);
        }
        assert!((l.average_us() - 3_000.0).abs() < 1.0);
    }
}
