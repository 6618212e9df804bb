//! Smooth weighted round robin (nginx's algorithm): over any window of
//! `sum(weights)` picks each server gets exactly its weight, interleaved
//! rather than in bursts.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::ServerState;

#[derive(Debug)]
pub struct SmoothWrr {
    servers: Vec<Arc<ServerState>>,
    /// All weights equal: a lock-free rotating counter gives the same result.
    uniform: bool,
    next: AtomicUsize,
    current: Mutex<Vec<i64>>,
}

impl SmoothWrr {
    pub fn new(servers: Vec<Arc<ServerState>>) -> Self {
        let uniform = servers.windows(2).all(|w| w[0].weight == w[1].weight);
        let current = Mutex::new(vec![0; servers.len()]);
        SmoothWrr {
            servers,
            uniform,
            next: AtomicUsize::new(0),
            current,
        }
    }

    pub fn servers(&self) -> &[Arc<ServerState>] {
        &self.servers
    }

    /// Picks among available servers. When none is available it picks among
    /// all of them ("fail open"): a possibly-down server beats a certain 503.
    /// `None` only when the service has no server at all.
    pub fn pick(&self) -> Option<&Arc<ServerState>> {
        self.pick_where(|s| s.is_available())
            .or_else(|| self.pick_where(|_| true))
    }

    /// Picks among the servers accepted by `eligible`.
    pub fn pick_where(&self, eligible: impl Fn(&ServerState) -> bool) -> Option<&Arc<ServerState>> {
        let n = self.servers.len();
        if n == 0 {
            return None;
        }
        if self.uniform {
            let start = self.next.fetch_add(1, Ordering::Relaxed);
            return (0..n)
                .map(|i| &self.servers[(start + i) % n])
                .find(|s| s.weight > 0 && eligible(s));
        }
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        let mut total = 0i64;
        let mut best: Option<usize> = None;
        for (i, server) in self.servers.iter().enumerate() {
            if server.weight == 0 || !eligible(server) {
                continue;
            }
            let w = i64::from(server.weight);
            current[i] += w;
            total += w;
            if best.is_none_or(|b| current[i] > current[b]) {
                best = Some(i);
            }
        }
        let chosen = best?;
        current[chosen] -= total;
        Some(&self.servers[chosen])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn servers(weights: &[u32]) -> Vec<Arc<ServerState>> {
        weights
            .iter()
            .enumerate()
            .map(|(i, w)| {
                Arc::new(
                    ServerState::new(&format!("http://127.0.0.1:{}", 1000 + i), *w, None).unwrap(),
                )
            })
            .collect()
    }

    fn picks(lb: &SmoothWrr, n: usize) -> Vec<u16> {
        (0..n)
            .map(|_| lb.pick().unwrap().upstream.authority.port_u16().unwrap() - 1000)
            .collect()
    }

    #[test]
    fn smooth_weights_interleave() {
        let lb = SmoothWrr::new(servers(&[5, 1, 1]));
        // nginx's documented sequence for weights 5,1,1.
        assert_eq!(picks(&lb, 7), vec![0, 0, 1, 0, 2, 0, 0]);
    }

    #[test]
    fn uniform_round_robin() {
        let lb = SmoothWrr::new(servers(&[1, 1, 1]));
        assert_eq!(picks(&lb, 6), vec![0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn skips_unavailable_and_fails_open() {
        let s = servers(&[1, 1]);
        let lb = SmoothWrr::new(s.clone());
        s[0].set_healthy(false);
        assert_eq!(picks(&lb, 3), vec![1, 1, 1]);
        s[1].set_healthy(false);
        assert_eq!(picks(&lb, 1).len(), 1, "all down: still picks one");
        assert!(SmoothWrr::new(vec![]).pick().is_none());
    }

    #[test]
    fn zero_weight_never_picked() {
        let lb = SmoothWrr::new(servers(&[0, 2, 1]));
        assert!(!picks(&lb, 30).contains(&0));
    }
}
