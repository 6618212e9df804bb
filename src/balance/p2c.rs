//! Power of two choices: draw two distinct eligible servers at random and
//! keep the cheaper one. Traefik compares in-flight requests only; escale
//! weighs them by the server's peak-EWMA latency, as linkerd and Finagle do,
//! so a slow server gets few requests even when the load is light:
//! `cost = (latency + 1µs) × (in_flight + 1) / weight`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::ServerState;

/// A lock-free random stream: SplitMix64 over an atomic counter.
#[derive(Debug)]
pub struct Rng(AtomicU64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(AtomicU64::new(seed))
    }

    pub fn next_u64(&self) -> u64 {
        let mut z = self
            .0
            .fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed)
            .wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The cost p2c minimises.
pub fn cost(latency_us: f64, in_flight: u64, weight: u32) -> f64 {
    (latency_us + 1.0) * (in_flight as f64 + 1.0) / f64::from(weight.max(1))
}

pub fn pick<'a>(
    servers: &'a [Arc<ServerState>],
    rng: &Rng,
    now_us: u64,
    eligible: impl Fn(&ServerState) -> bool,
) -> Option<&'a Arc<ServerState>> {
    let ok = |s: &ServerState| s.weight > 0 && eligible(s);
    let n = servers.iter().filter(|s| ok(s)).count();
    match n {
        0 => return None,
        1 => return servers.iter().find(|s| ok(s)),
        _ => {}
    }
    let i = rng.below(n);
    let mut j = rng.below(n - 1);
    if j >= i {
        j += 1;
    }
    let mut first = None;
    let mut second = None;
    for (k, s) in servers.iter().filter(|s| ok(s)).enumerate() {
        if k == i {
            first = Some(s);
        } else if k == j {
            second = Some(s);
        }
    }
    match (first, second) {
        (Some(a), Some(b)) => {
            let ca = cost(a.latency.peak_us(now_us), a.in_flight(), a.weight);
            let cb = cost(b.latency.peak_us(now_us), b.in_flight(), b.weight);
            Some(if cb < ca { b } else { a })
        }
        // Eligibility changed between the two passes.
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::test_servers;

    #[test]
    fn rng_is_uniform_enough() {
        let rng = Rng::new(7);
        let mut counts = [0u32; 5];
        for _ in 0..50_000 {
            counts[rng.below(5)] += 1;
        }
        assert!(
            counts.iter().all(|c| (9_000..11_000).contains(c)),
            "{counts:?}"
        );
        let u = rng.unit();
        assert!((0.0..1.0).contains(&u));
    }

    #[test]
    fn cost_weighs_in_flight_by_latency() {
        assert!(cost(100_000.0, 0, 1) > cost(5_000.0, 3, 1));
        assert!(cost(5_000.0, 30, 1) > cost(100_000.0, 0, 1));
        assert!(cost(10.0, 0, 1) > cost(10.0, 0, 4), "weight divides");
    }

    #[test]
    fn slow_server_gets_few_requests() {
        let s = test_servers(2);
        let now = 1_000_000;
        s[0].latency.observe(5_000.0, now);
        s[1].latency.observe(100_000.0, now);
        let rng = Rng::new(1);
        let slow = (0..1000)
            .filter(|_| pick(&s, &rng, now, |_| true).unwrap().url == s[1].url)
            .count();
        assert_eq!(slow, 0, "with two servers both are always compared");
    }

    #[test]
    fn prefers_fewer_in_flight_at_equal_latency() {
        let s = test_servers(3);
        let busy: Vec<_> = (0..5).map(|_| s[0].start_request()).collect();
        let rng = Rng::new(3);
        let picks_busy = (0..3000)
            .filter(|_| pick(&s, &rng, 1, |_| true).unwrap().url == s[0].url)
            .count();
        assert_eq!(picks_busy, 0, "the busy server always loses its duel");
        drop(busy);
        let seen: std::collections::BTreeSet<_> = (0..300)
            .map(|_| pick(&s, &rng, 1, |_| true).unwrap().url.clone())
            .collect();
        assert_eq!(seen.len(), 3);
    }

    #[test]
    fn respects_eligibility() {
        let s = test_servers(4);
        let rng = Rng::new(9);
        for _ in 0..200 {
            let p = pick(&s, &rng, 1, |x| x.url != s[2].url).unwrap();
            assert_ne!(p.url, s[2].url);
        }
        assert_eq!(
            pick(&s, &rng, 1, |x| x.url == s[1].url).unwrap().url,
            s[1].url
        );
        assert!(pick(&s, &rng, 1, |_| false).is_none());
    }
}
