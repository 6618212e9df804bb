//! `rateLimit`: a token bucket per source, as Traefik's (golang.org/x/time
//! rate): `average` requests per `period` (default 1s) refill the bucket,
//! which holds at most `burst` (default 1). `average: 0` means no limit.
//!
//! Traefik delays a request that comes a little early (by up to half a
//! token's time) and refuses the rest with 429, `Retry-After` and
//! `X-Retry-In`. Middlewares here cannot wait, so a request that Traefik
//! would delay is let through at once and its token borrowed from the
//! future: the number of requests over time is the same.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::header::HeaderValue;
use http::{StatusCode, request};

use super::source::{IpStrategy, Source};
use super::{Flow, Layer, MiddlewareError, RequestCtx, persist};
use crate::balance::clock;
use crate::config::dynamic;
use crate::proxy::body::{text_response, untyped_text_response};

const SHARDS: usize = 16;
/// Traefik's bound on tracked sources.
const MAX_SOURCES: usize = 65_536;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    pub tokens: f64,
    /// Last refill (µs).
    pub last: u64,
}

/// Limits: requests per second (infinite for none), bucket size, and the
/// longest wait Traefik would absorb by delaying.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub per_second: f64,
    pub burst: f64,
    pub max_delay: Duration,
}

impl Rate {
    pub fn from_config(c: &dynamic::RateLimit) -> Rate {
        let period = c
            .period
            .map(|p| p.0)
            .filter(|p| !p.is_zero())
            .unwrap_or(Duration::from_secs(1));
        let burst = c.burst.max(1) as f64;
        if c.average == 0 {
            return Rate {
                per_second: f64::INFINITY,
                burst,
                max_delay: Duration::ZERO,
            };
        }
        let per_second = c.average as f64 / period.as_secs_f64();
        let max_delay = if per_second < 1.0 {
            Duration::from_millis(500)
        } else {
            // Go: time.Second / (time.Duration(rtl) * 2), rtl truncated.
            Duration::from_secs(1) / (2 * per_second as u32).max(1)
        };
        Rate {
            per_second,
            burst,
            max_delay,
        }
    }

    /// How long an idle source's bucket is kept (Traefik's TTL).
    pub fn ttl(&self) -> Duration {
        if self.per_second >= 1.0 {
            Duration::from_secs(2)
        } else {
            Duration::from_secs(1 + (1.0 / self.per_second) as u64)
        }
    }

    /// Takes a token at `now`, or says how long until one is available.
    pub fn reserve(&self, bucket: &mut Bucket, now: u64) -> Result<(), Duration> {
        if self.per_second.is_infinite() {
            return Ok(());
        }
        let elapsed = now.saturating_sub(bucket.last) as f64 / 1e6;
        let tokens = (bucket.tokens + elapsed * self.per_second).min(self.burst) - 1.0;
        bucket.last = now;
        let wait = if tokens < 0.0 {
            Duration::from_secs_f64(-tokens / self.per_second)
        } else {
            Duration::ZERO
        };
        if wait > self.max_delay {
            bucket.tokens = tokens + 1.0;
            return Err(wait);
        }
        bucket.tokens = tokens;
        Ok(())
    }
}

#[derive(Debug)]
struct Shard {
    buckets: HashMap<String, Bucket>,
    /// Size at which idle buckets are next swept.
    sweep_at: usize,
}

#[derive(Debug)]
pub struct Buckets {
    hasher: RandomState,
    shards: Vec<Mutex<Shard>>,
}

impl Default for Buckets {
    fn default() -> Self {
        Buckets {
            hasher: RandomState::new(),
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Shard {
                        buckets: HashMap::new(),
                        sweep_at: 64,
                    })
                })
                .collect(),
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Allow,
    Deny(Duration),
    Full,
}

impl Buckets {
    fn take(&self, key: String, rate: &Rate, now: u64) -> Verdict {
        let i = (self.hasher.hash_one(&key) as usize) % SHARDS;
        let mut shard = self.shards[i].lock().unwrap_or_else(|e| e.into_inner());
        let ttl = clock::us(rate.ttl());
        if !shard.buckets.contains_key(&key) {
            if shard.buckets.len() >= shard.sweep_at {
                shard
                    .buckets
                    .retain(|_, b| now.saturating_sub(b.last) < ttl);
                shard.sweep_at = (shard.buckets.len() * 2).max(64);
            }
            if shard.buckets.len() >= MAX_SOURCES / SHARDS {
                return Verdict::Full;
            }
        }
        let bucket = shard.buckets.entry(key).or_insert(Bucket {
            tokens: rate.burst,
            last: now,
        });
        // An expired bucket starts full again, as a fresh one would.
        if now.saturating_sub(bucket.last) >= ttl {
            *bucket = Bucket {
                tokens: rate.burst,
                last: now,
            };
        }
        match rate.reserve(bucket, now) {
            Ok(()) => Verdict::Allow,
            Err(wait) => Verdict::Deny(wait),
        }
    }
}

#[derive(Debug)]
pub struct RateLimit {
    rate: Rate,
    source: Source,
    buckets: Arc<Buckets>,
}

impl RateLimit {
    pub fn new(name: &str, config: &dynamic::RateLimit) -> Result<Self, MiddlewareError> {
        let source = Source::from_config(
            config.source_criterion.as_ref(),
            Source::Ip(IpStrategy::Remote),
        )
        .map_err(|e| MiddlewareError::new(name, e))?;
        let buckets = persist::shared("rateLimit", name, format!("{config:?}"), Buckets::default);
        Ok(RateLimit {
            rate: Rate::from_config(config),
            source,
            buckets,
        })
    }
}

impl Layer for RateLimit {
    fn on_request(&self, req: &mut request::Parts, ctx: &mut RequestCtx) -> Flow {
        if self.rate.per_second.is_infinite() {
            return Flow::Continue;
        }
        let key = self.source.extract(req, ctx);
        match self.buckets.take(key, &self.rate, clock::now_us()) {
            Verdict::Allow => Flow::Continue,
            Verdict::Deny(wait) => {
                // Traefik 3 writes this one without a type.
                let mut res =
                    untyped_text_response(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests");
                let h = res.headers_mut();
                if let Ok(v) = HeaderValue::from_str(&format!("{:.0}", wait.as_secs_f64().ceil())) {
                    h.insert("retry-after", v);
                }
                if let Ok(v) = HeaderValue::from_str(&go_duration(wait)) {
                    h.insert("x-retry-in", v);
                }
                Flow::Respond(res)
            }
            Verdict::Full => Flow::Respond(text_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Could not insert/update bucket",
            )),
        }
    }
}

/// Go's `time.Duration.String()` for the `X-Retry-In` header.
pub fn go_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        return "0s".to_string();
    }
    let trim = |s: String| {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    };
    if ns < 1_000 {
        return format!("{ns}ns");
    }
    if ns < 1_000_000 {
        return format!("{}µs", trim(format!("{:.3}", ns as f64 / 1e3)));
    }
    if ns < 1_000_000_000 {
        return format!("{}ms", trim(format!("{:.6}", ns as f64 / 1e6)));
    }
    let total_secs = d.as_secs();
    let (h, m, s) = (total_secs / 3600, (total_secs / 60) % 60, total_secs % 60);
    let frac = d.subsec_nanos();
    let secs = if frac == 0 {
        s.to_string()
    } else {
        trim(format!("{s}.{frac:09}"))
    };
    match (h, m) {
        (0, 0) => format!("{secs}s"),
        (0, m) => format!("{m}m{secs}s"),
        (h, m) => format!("{h}h{m}m{secs}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::duration::GoDuration;

    const S: u64 = 1_000_000;

    fn rate(average: u64, period_s: u64, burst: u64) -> Rate {
        Rate::from_config(&dynamic::RateLimit {
            average,
            period: Some(GoDuration::from_secs(period_s)),
            burst,
            source_criterion: None,
        })
    }

    #[test]
    fn rate_settings_follow_traefik() {
        let r = rate(100, 1, 0);
        assert_eq!((r.per_second, r.burst), (100.0, 1.0));
        assert_eq!(r.max_delay, Duration::from_millis(5));
        assert_eq!(r.ttl(), Duration::from_secs(2));
        let r = rate(1, 10, 5);
        assert_eq!(r.per_second, 0.1);
        assert_eq!(r.max_delay, Duration::from_millis(500));
        assert_eq!(r.ttl(), Duration::from_secs(11));
        assert!(rate(0, 1, 1).per_second.is_infinite());
    }

    #[test]
    fn bucket_allows_burst_then_average() {
        let r = rate(2, 1, 3);
        let mut b = Bucket {
            tokens: r.burst,
            last: 0,
        };
        for _ in 0..3 {
            assert_eq!(r.reserve(&mut b, 0), Ok(()));
        }
        let wait = r.reserve(&mut b, 0).unwrap_err();
        assert_eq!(wait, Duration::from_millis(500));
        // A refused request does not consume: half a second later one passes.
        assert_eq!(r.reserve(&mut b, S / 2), Ok(()));
        assert!(r.reserve(&mut b, S / 2).is_err());
        // Over 10 s, 2/s: 20 more requests at most.
        let passed = (1..=1000)
            .filter(|i| r.reserve(&mut b, S / 2 + i * 10 * S / 1000).is_ok())
            .count();
        assert!((19..=21).contains(&passed), "{passed}");
    }

    #[test]
    fn slightly_early_requests_pass_like_a_short_delay() {
        // 10/s, burst 1: max delay 50ms.
        let r = rate(10, 1, 1);
        let mut b = Bucket {
            tokens: 1.0,
            last: 0,
        };
        assert!(r.reserve(&mut b, 0).is_ok());
        assert!(
            r.reserve(&mut b, 60_000).is_ok(),
            "40ms early: Traefik delays it"
        );
        assert!(r.reserve(&mut b, 70_000).is_err(), "130ms early: refused");
    }

    #[test]
    fn buckets_are_per_source_and_expire() {
        let r = rate(1, 1, 1);
        let buckets = Buckets::default();
        assert_eq!(buckets.take("a".into(), &r, S), Verdict::Allow);
        assert!(matches!(buckets.take("a".into(), &r, S), Verdict::Deny(_)));
        assert_eq!(buckets.take("b".into(), &r, S), Verdict::Allow);
        assert_eq!(buckets.take("a".into(), &r, 4 * S), Verdict::Allow);
    }

    #[test]
    fn layer_answers_429_with_retry_headers() {
        let l = RateLimit::new(
            "rl-test@file",
            &dynamic::RateLimit {
                average: 1,
                period: Some(GoDuration::from_secs(60)),
                burst: 1,
                source_criterion: None,
            },
        )
        .unwrap();
        let mut parts = http::Request::new(()).into_parts().0;
        let mut ctx = RequestCtx::new([10, 0, 0, 1].into(), "http");
        assert!(matches!(l.on_request(&mut parts, &mut ctx), Flow::Continue));
        match l.on_request(&mut parts, &mut ctx) {
            Flow::Respond(r) => {
                assert_eq!(r.status(), 429);
                let retry_after: u64 = r.headers()["retry-after"]
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                assert!((59..=60).contains(&retry_after), "{retry_after}");
                assert!(r.headers()["x-retry-in"].to_str().unwrap().ends_with('s'));
            }
            Flow::Continue | Flow::Wait(_) => {
                panic!("second request within the minute must be refused")
            }
        }
        let mut other = RequestCtx::new([10, 0, 0, 2].into(), "http");
        assert!(matches!(
            l.on_request(&mut parts, &mut other),
            Flow::Continue
        ));
    }

    #[test]
    fn go_duration_strings() {
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(go_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(go_duration(Duration::from_micros(499_999)), "499.999ms");
        assert_eq!(go_duration(Duration::from_nanos(1500)), "1.5µs");
        assert_eq!(go_duration(Duration::from_secs(3600)), "1h0m0s");
        assert_eq!(go_duration(Duration::ZERO), "0s");
    }
}
