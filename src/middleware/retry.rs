//! `retry`: send a failed request again, with Traefik's exponential backoff.
//!
//! The layer only hands its policy to the forwarder (through the request's
//! extensions): retrying happens where the attempts are made. What is
//! retried: a request that never reached a backend (connect failure, any
//! method); an idempotent request whose body can be sent again after a
//! reset or a timeout before the response headers. Each attempt prefers a
//! server not tried yet.

use std::time::Duration;

use http::request;

use super::{Flow, Layer, MiddlewareError, RequestCtx};
use crate::config::dynamic;

/// Longest wait between two attempts (the backoff library's cap).
const MAX_INTERVAL: Duration = Duration::from_secs(60);

/// How many times to try, and how long to wait between tries.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Total attempts, the first one included.
    pub attempts: u32,
    pub initial_interval: Duration,
}

impl RetryPolicy {
    /// The middle of the wait before retry `n` (1 for the first retry).
    /// As Traefik: the multiplier is chosen so that the last wait is about
    /// twice the first.
    pub fn interval(&self, n: u32) -> Duration {
        if self.attempts < 2 || self.initial_interval.is_zero() {
            return Duration::ZERO;
        }
        let multiplier = 2f64.powf(1.0 / f64::from(self.attempts - 1));
        let factor = multiplier.powi(i32::try_from(n.saturating_sub(1)).unwrap_or(i32::MAX));
        let secs = self.initial_interval.as_secs_f64() * factor;
        Duration::from_secs_f64(secs.min(MAX_INTERVAL.as_secs_f64()))
    }

    /// The wait before retry `n`, randomised by ±50% (`unit` in `[0, 1)`).
    pub fn backoff(&self, n: u32, unit: f64) -> Duration {
        self.interval(n).mul_f64(0.5 + unit.clamp(0.0, 1.0))
    }
}

#[derive(Debug)]
pub struct Retry {
    policy: RetryPolicy,
}

impl Retry {
    pub fn new(name: &str, config: &dynamic::Retry) -> Result<Self, MiddlewareError> {
        if config.attempts == 0 {
            return Err(MiddlewareError::new(
                name,
                "incorrect (or empty) value for attempt (0)",
            ));
        }
        Ok(Retry {
            policy: RetryPolicy {
                attempts: config.attempts,
                initial_interval: config.initial_interval.map(|d| d.0).unwrap_or_default(),
            },
        })
    }
}

impl Layer for Retry {
    fn on_request(&self, req: &mut request::Parts, _ctx: &mut RequestCtx) -> Flow {
        req.extensions.insert(self.policy);
        Flow::Continue
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::duration::GoDuration;

    fn policy(attempts: u32, ms: u64) -> RetryPolicy {
        RetryPolicy {
            attempts,
            initial_interval: Duration::from_millis(ms),
        }
    }

    #[test]
    fn backoff_doubles_over_the_attempts() {
        let p = policy(5, 100);
        let waits: Vec<u128> = (1..=4).map(|n| p.interval(n).as_millis()).collect();
        // multiplier 2^(1/4): 100, 119, 141, 168.
        assert_eq!(waits, vec![100, 118, 141, 168]);
        assert_eq!(policy(2, 100).interval(1).as_millis(), 100);
        assert_eq!(policy(1, 100).interval(1), Duration::ZERO);
        assert_eq!(policy(3, 0).interval(2), Duration::ZERO);
        assert_eq!(policy(2, 100_000).interval(3), MAX_INTERVAL);
    }

    #[test]
    fn jitter_is_plus_or_minus_half() {
        let p = policy(3, 100);
        assert_eq!(p.backoff(1, 0.0).as_millis(), 50);
        assert_eq!(p.backoff(1, 0.5).as_millis(), 100);
        assert!(p.backoff(1, 0.999).as_millis() <= 150);
    }

    #[test]
    fn zero_attempts_is_an_error_and_the_layer_sets_the_policy() {
        let err = Retry::new(
            "r@file",
            &dynamic::Retry {
                attempts: 0,
                initial_interval: None,
            },
        )
        .unwrap_err();
        assert_eq!(err.message, "incorrect (or empty) value for attempt (0)");
        let layer = Retry::new(
            "r@file",
            &dynamic::Retry {
                attempts: 3,
                initial_interval: Some(GoDuration::from_millis(10)),
            },
        )
        .unwrap();
        let (mut parts, ()) = http::Request::new(()).into_parts();
        let mut ctx = RequestCtx::new([127, 0, 0, 1].into(), "http");
        assert!(matches!(
            layer.on_request(&mut parts, &mut ctx),
            Flow::Continue
        ));
        assert_eq!(parts.extensions.get::<RetryPolicy>(), Some(&policy(3, 10)));
    }
}
