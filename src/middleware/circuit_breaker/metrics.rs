//! Rolling metrics for the circuit breaker, shaped like oxy's `RTMetrics`:
//! request, network-error and status-code counts over the last 10 seconds
//! (ten 1-second slots), and a latency histogram over the last 60 seconds
//! (six 10-second slots). A network error is an answer of 502 or 504.
//!
//! Everything is atomics. A slot is recycled by the first recorder of a
//! new period, which zeroes it; a sample racing with that zeroing may be
//! lost, which a breaker can afford.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use super::expr::Stats;

const COUNTER_SLOTS: usize = 10;
const COUNTER_SLOT_US: u64 = 1_000_000;
const HIST_SLOTS: usize = 6;
const HIST_SLOT_US: u64 = 10_000_000;
/// Status codes tracked one by one; others are folded into the last index.
const CODES: usize = 600;

/// Log-linear latency buckets (µs): exact below 128, then 64 buckets per
/// power of two (about 1.6% precision), up to about an hour.
const SUB: u64 = 64;
const BUCKETS: usize = 128 + 26 * SUB as usize;

pub fn bucket_of(us: u64) -> usize {
    if us < 2 * SUB {
        return us as usize;
    }
    let bits = 64 - u64::from(us.leading_zeros());
    let shift = bits - 7;
    let mantissa = us >> shift;
    let index = 2 * SUB + (shift - 1) * SUB + (mantissa - SUB);
    (index as usize).min(BUCKETS - 1)
}

/// The highest value a bucket holds (HDR's "highest equivalent value").
pub fn bucket_high(index: usize) -> u64 {
    let i = index as u64;
    if i < 2 * SUB {
        return i;
    }
    let shift = (i - 2 * SUB) / SUB + 1;
    let mantissa = SUB + (i - 2 * SUB) % SUB;
    ((mantissa + 1) << shift) - 1
}

struct CounterSlot {
    period: AtomicU64,
    total: AtomicU32,
    net_errors: AtomicU32,
    codes: Vec<AtomicU32>,
}

struct HistSlot {
    period: AtomicU64,
    counts: Vec<AtomicU32>,
}

pub struct Metrics {
    counters: Vec<CounterSlot>,
    hist: Vec<HistSlot>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let zeros = |n: usize| (0..n).map(|_| AtomicU32::new(0)).collect::<Vec<_>>();
        Metrics {
            counters: (0..COUNTER_SLOTS)
                .map(|_| CounterSlot {
                    period: AtomicU64::new(u64::MAX),
                    total: AtomicU32::new(0),
                    net_errors: AtomicU32::new(0),
                    codes: zeros(CODES),
                })
                .collect(),
            hist: (0..HIST_SLOTS)
                .map(|_| HistSlot {
                    period: AtomicU64::new(u64::MAX),
                    counts: zeros(BUCKETS),
                })
                .collect(),
        }
    }
}

/// Claims `slot` for `period`, zeroing it if it held an older one.
fn claim(period_cell: &AtomicU64, period: u64, counters: &[&AtomicU32], vec: &[AtomicU32]) {
    let seen = period_cell.load(Ordering::Acquire);
    if seen == period {
        return;
    }
    if period_cell
        .compare_exchange(seen, period, Ordering::AcqRel, Ordering::Acquire)
        .is_ok()
    {
        for c in counters {
            c.store(0, Ordering::Relaxed);
        }
        for c in vec {
            c.store(0, Ordering::Relaxed);
        }
    }
}

impl Metrics {
    pub fn record(&self, status: u16, latency_us: u64, now_us: u64) {
        let period = now_us / COUNTER_SLOT_US;
        let slot = &self.counters[(period % COUNTER_SLOTS as u64) as usize];
        claim(
            &slot.period,
            period,
            &[&slot.total, &slot.net_errors],
            &slot.codes,
        );
        slot.total.fetch_add(1, Ordering::Relaxed);
        if status == 502 || status == 504 {
            slot.net_errors.fetch_add(1, Ordering::Relaxed);
        }
        slot.codes[usize::from(status).min(CODES - 1)].fetch_add(1, Ordering::Relaxed);

        let period = now_us / HIST_SLOT_US;
        let slot = &self.hist[(period % HIST_SLOTS as u64) as usize];
        claim(&slot.period, period, &[], &slot.counts);
        slot.counts[bucket_of(latency_us.max(1))].fetch_add(1, Ordering::Relaxed);
    }

    /// Forgets everything (the breaker just tripped).
    pub fn reset(&self) {
        for s in &self.counters {
            s.period.store(u64::MAX, Ordering::Release);
        }
        for s in &self.hist {
            s.period.store(u64::MAX, Ordering::Release);
        }
    }

    /// A consistent-enough view at `now`, for evaluating an expression.
    pub fn snapshot(&self, now_us: u64) -> Snapshot {
        let mut snap = Snapshot {
            total: 0,
            net_errors: 0,
            codes: vec![0; CODES],
            hist: vec![0; BUCKETS],
        };
        let current = now_us / COUNTER_SLOT_US;
        for s in &self.counters {
            let p = s.period.load(Ordering::Acquire);
            if p == u64::MAX || current.saturating_sub(p) >= COUNTER_SLOTS as u64 {
                continue;
            }
            snap.total += u64::from(s.total.load(Ordering::Relaxed));
            snap.net_errors += u64::from(s.net_errors.load(Ordering::Relaxed));
            for (acc, c) in snap.codes.iter_mut().zip(&s.codes) {
                *acc += u64::from(c.load(Ordering::Relaxed));
            }
        }
        let current = now_us / HIST_SLOT_US;
        for s in &self.hist {
            let p = s.period.load(Ordering::Acquire);
            if p == u64::MAX || current.saturating_sub(p) >= HIST_SLOTS as u64 {
                continue;
            }
            for (acc, c) in snap.hist.iter_mut().zip(&s.counts) {
                *acc += u64::from(c.load(Ordering::Relaxed));
            }
        }
        snap
    }
}

#[derive(Debug, Clone)]
pub struct Snapshot {
    total: u64,
    net_errors: u64,
    codes: Vec<u64>,
    hist: Vec<u64>,
}

impl Stats for Snapshot {
    fn network_error_ratio(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.net_errors as f64 / self.total as f64
        }
    }

    fn response_code_ratio(&self, from: u16, to: u16, div_from: u16, div_to: u16) -> f64 {
        let sum = |lo: u16, hi: u16| -> u64 {
            let lo = usize::from(lo).min(CODES);
            let hi = usize::from(hi).min(CODES);
            if lo >= hi {
                0
            } else {
                self.codes[lo..hi].iter().sum()
            }
        };
        let den = sum(div_from, div_to);
        if den == 0 {
            0.0
        } else {
            sum(from, to) as f64 / den as f64
        }
    }

    fn latency_at_quantile_ms(&self, quantile: f64) -> i64 {
        let total: u64 = self.hist.iter().sum();
        if total == 0 {
            return 0;
        }
        let q = quantile.clamp(0.0, 100.0);
        let wanted = ((q / 100.0 * total as f64) + 0.5) as u64;
        let wanted = wanted.max(1);
        let mut seen = 0;
        for (i, c) in self.hist.iter().enumerate() {
            seen += c;
            if seen >= wanted {
                return (bucket_high(i) / 1000) as i64;
            }
        }
        (bucket_high(BUCKETS - 1) / 1000) as i64
    }

    fn total(&self) -> i64 {
        i64::try_from(self.total).unwrap_or(i64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000;

    #[test]
    fn buckets_are_monotonic_and_precise() {
        let mut last = 0;
        for v in [
            1u64,
            2,
            100,
            127,
            128,
            129,
            1_000,
            12_345,
            1_000_000,
            3_600_000_000,
        ] {
            let i = bucket_of(v);
            assert!(i >= last, "{v}");
            last = i;
            let high = bucket_high(i);
            assert!(high >= v, "{v}: bucket {i} tops at {high}");
            assert!((high - v) as f64 <= v as f64 * 0.016 + 1.0, "{v} -> {high}");
        }
        for i in 0..BUCKETS - 1 {
            assert_eq!(bucket_of(bucket_high(i)), i);
            assert_eq!(bucket_of(bucket_high(i) + 1), i + 1);
        }
    }

    #[test]
    fn ratios_and_quantiles() {
        let m = Metrics::default();
        for i in 0..70 {
            m.record(200, 10_000 + i, 5 * S);
        }
        for _ in 0..20 {
            m.record(500, 200_000, 5 * S);
        }
        for _ in 0..10 {
            m.record(502, 50_000, 6 * S);
        }
        let s = m.snapshot(6 * S);
        assert_eq!(s.total(), 100);
        assert!((s.network_error_ratio() - 0.1).abs() < 1e-9);
        assert!((s.response_code_ratio(500, 600, 0, 600) - 0.3).abs() < 1e-9);
        assert_eq!(s.response_code_ratio(300, 400, 0, 600), 0.0);
        assert_eq!(s.response_code_ratio(500, 600, 300, 400), 0.0);
        assert_eq!(s.latency_at_quantile_ms(50.0), 10);
        assert_eq!(s.latency_at_quantile_ms(75.0), 50);
        let p99 = s.latency_at_quantile_ms(99.0);
        assert!((200..=203).contains(&p99), "{p99}");
    }

    #[test]
    fn old_slots_fall_out_of_the_window_and_reset_clears() {
        let m = Metrics::default();
        m.record(502, 1_000, S);
        assert_eq!(m.snapshot(S).total(), 1);
        assert_eq!(m.snapshot(10 * S).total(), 1);
        assert_eq!(m.snapshot(11 * S).total(), 0, "10 s later it is gone");
        assert_eq!(
            m.snapshot(11 * S).latency_at_quantile_ms(50.0),
            1,
            "latency keeps 60 s"
        );
        // The slot is reused for a later second and starts from zero.
        m.record(200, 1_000, 11 * S);
        let s = m.snapshot(11 * S);
        assert_eq!((s.total(), s.network_error_ratio()), (1, 0.0));
        m.reset();
        let s = m.snapshot(11 * S);
        assert_eq!((s.total(), s.latency_at_quantile_ms(50.0)), (0, 0));
    }
}
