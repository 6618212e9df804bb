//! Least time (Traefik's `leasttime`): the lowest
//! `average time-to-first-byte × (1 + in_flight) / weight` wins; ties go to
//! smooth weighted round robin. Traefik averages the last 100 samples;
//! escale keeps an EWMA of about the last 20, which needs no lock.

use std::sync::Arc;

use super::{ServerState, SmoothWrr};

pub fn score(avg_us: f64, in_flight: u64, weight: u32) -> f64 {
    avg_us * (1.0 + in_flight as f64) / f64::from(weight.max(1))
}

fn score_of(s: &ServerState) -> f64 {
    score(s.latency.average_us(), s.in_flight(), s.weight)
}

pub fn pick(wrr: &SmoothWrr, eligible: impl Fn(&ServerState) -> bool) -> Option<&Arc<ServerState>> {
    let ok = |s: &ServerState| s.weight > 0 && eligible(s);
    let mut best = f64::INFINITY;
    let mut ties = 0usize;
    let mut only: Option<&Arc<ServerState>> = None;
    for s in wrr.servers() {
        if !ok(s) {
            continue;
        }
        let sc = score_of(s);
        if sc < best {
            best = sc;
            ties = 1;
            only = Some(s);
        } else if sc == best {
            ties += 1;
        }
    }
    if ties <= 1 {
        return only;
    }
    wrr.pick_where(|s| ok(s) && score_of(s) == best).or(only)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wrr(weights: &[u32]) -> SmoothWrr {
        SmoothWrr::new(
            weights
                .iter()
                .enumerate()
                .map(|(i, w)| {
                    Arc::new(
                        ServerState::new(&format!("http://127.0.0.1:{}", 1000 + i), *w, None)
                            .unwrap(),
                    )
                })
                .collect(),
        )
    }

    #[test]
    fn score_is_traefiks_formula() {
        assert_eq!(score(10.0, 0, 1), 10.0);
        assert_eq!(score(10.0, 3, 2), 20.0);
    }

    #[test]
    fn fastest_wins_and_ties_rotate() {
        let lb = wrr(&[1, 1, 1]);
        let s = lb.servers().to_vec();
        // No samples yet: all tie at 0, round robin.
        let first: Vec<_> = (0..3)
            .map(|_| pick(&lb, |_| true).unwrap().url.clone())
            .collect();
        assert_eq!(first.len(), 3);
        assert_ne!(first[0], first[1]);
        s[0].latency.observe(2_000.0, 1);
        s[1].latency.observe(1_000.0, 1);
        s[2].latency.observe(3_000.0, 1);
        assert_eq!(pick(&lb, |_| true).unwrap().url, s[1].url);
        // In-flight requests raise the score: 1000 × 4 > 3000 > 2000.
        let _busy: Vec<_> = (0..3).map(|_| s[1].start_request()).collect();
        assert_eq!(pick(&lb, |_| true).unwrap().url, s[0].url);
        assert_eq!(pick(&lb, |x| x.url != s[0].url).unwrap().url, s[2].url);
    }
}
