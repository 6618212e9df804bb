//! `circuitBreaker`: stop sending to a service that is failing, with
//! Traefik's (oxy's) state machine.
//!
//! - **Closed**: requests pass; metrics are collected and, at most once
//!   per `checkPeriod` (100ms), the expression is evaluated. When it holds,
//!   the breaker opens and the metrics are reset.
//! - **Open**: for `fallbackDuration` (10s) every request is answered with
//!   `responseCode` (503) and its status text.
//! - **Recovering**: for `recoveryDuration` (10s) a growing share of
//!   requests passes (`0.5 × elapsed / recoveryDuration` of them). If the
//!   expression holds again, the breaker opens again; otherwise it closes
//!   at the end of the recovery.
//!
//! The breaker sees what happens after it in the chain: the backend's
//! answer, or the proxy's own 502/504 when the backend fails.

mod expr;
mod metrics;

pub use expr::{Expr, ExprError, Metric, Op, Stats};
pub use metrics::Metrics;

use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{StatusCode, request, response};

use super::{Flow, Layer, MiddlewareError, RequestCtx, persist};
use crate::balance::clock;
use crate::config::dynamic;
use crate::proxy::body::untyped_text_response;

pub const DEFAULT_CHECK_PERIOD: Duration = Duration::from_millis(100);
pub const DEFAULT_FALLBACK: Duration = Duration::from_secs(10);
pub const DEFAULT_RECOVERY: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Closed = 0,
    Open = 1,
    Recovering = 2,
}

impl State {
    fn from_u8(v: u8) -> State {
        match v {
            1 => State::Open,
            2 => State::Recovering,
            _ => State::Closed,
        }
    }
}

/// oxy's ratio controller: lets through a share of requests that grows
/// linearly with time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ramp {
    pub start: u64,
    pub duration: u64,
    pub allowed: u64,
    pub denied: u64,
}

impl Ramp {
    pub fn new(start: u64, duration: Duration) -> Ramp {
        Ramp {
            start,
            duration: clock::us(duration).max(1),
            allowed: 0,
            denied: 0,
        }
    }

    pub fn allow(&mut self, now: u64) -> bool {
        let target = 0.5 * now.saturating_sub(self.start) as f64 / self.duration as f64;
        let ratio = (self.allowed + 1) as f64 / (self.allowed + self.denied + 1) as f64;
        if ratio < target {
            self.allowed += 1;
            true
        } else {
            self.denied += 1;
            false
        }
    }
}

#[derive(Debug)]
struct Inner {
    /// End of the open or recovering period (µs).
    until: u64,
    ramp: Ramp,
}

#[derive(Debug)]
pub struct Breaker {
    name: String,
    expr: Expr,
    check_period: u64,
    fallback: Duration,
    recovery: Duration,
    metrics: Metrics,
    state: AtomicU8,
    next_check: AtomicU64,
    inner: Mutex<Inner>,
}

impl Breaker {
    pub fn new(
        name: &str,
        expr: Expr,
        check_period: Duration,
        fallback: Duration,
        recovery: Duration,
    ) -> Self {
        Breaker {
            name: name.to_string(),
            expr,
            check_period: clock::us(check_period),
            fallback,
            recovery,
            metrics: Metrics::default(),
            state: AtomicU8::new(State::Closed as u8),
            next_check: AtomicU64::new(0),
            inner: Mutex::new(Inner {
                until: 0,
                ramp: Ramp::new(0, recovery),
            }),
        }
    }

    pub fn state(&self) -> State {
        State::from_u8(self.state.load(Ordering::Acquire))
    }

    fn set(&self, s: State) {
        self.state.store(s as u8, Ordering::Release);
    }

    /// Whether a request may go through at `now`.
    pub fn allow(&self, now: u64) -> bool {
        if self.state() == State::Closed {
            return true;
        }
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if self.state() == State::Open {
            if now < inner.until {
                return false;
            }
            self.set(State::Recovering);
            inner.until = now + clock::us(self.recovery);
            inner.ramp = Ramp::new(now, self.recovery);
            tracing::info!(middleware = %self.name, "circuit breaker recovering");
        }
        match self.state() {
            State::Recovering if now > inner.until => {
                self.set(State::Closed);
                tracing::info!(middleware = %self.name, "circuit breaker closed");
                true
            }
            State::Recovering => inner.ramp.allow(now),
            _ => true,
        }
    }

    /// Records an exchange and, when due, evaluates the expression.
    pub fn record(&self, status: u16, latency_us: u64, now: u64) {
        self.metrics.record(status, latency_us, now);
        if now < self.next_check.load(Ordering::Relaxed) {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if now < self.next_check.load(Ordering::Relaxed) {
            return;
        }
        self.next_check
            .store(now + self.check_period, Ordering::Relaxed);
        if self.state() == State::Open {
            return;
        }
        if self.expr.eval(&self.metrics.snapshot(now)) {
            self.set(State::Open);
            inner.until = now + clock::us(self.fallback);
            self.metrics.reset();
            tracing::warn!(middleware = %self.name, period = ?self.fallback, "circuit breaker open");
        }
    }
}

/// Lives while the request is in the chain; finds its breaker again in
/// `on_response`.
#[derive(Debug)]
struct Pending {
    breaker: Arc<Breaker>,
    started: u64,
}

#[derive(Debug)]
pub struct CircuitBreaker {
    breaker: Arc<Breaker>,
    response_code: StatusCode,
}

impl CircuitBreaker {
    pub fn new(name: &str, config: &dynamic::CircuitBreaker) -> Result<Self, MiddlewareError> {
        let expr = Expr::parse(&config.expression)
            .map_err(|e| MiddlewareError::new(name, e.to_string()))?;
        let positive = |d: Option<crate::config::duration::GoDuration>, default: Duration| {
            d.map(|d| d.0).filter(|d| !d.is_zero()).unwrap_or(default)
        };
        let check_period = positive(config.check_period, DEFAULT_CHECK_PERIOD);
        let fallback = positive(config.fallback_duration, DEFAULT_FALLBACK);
        let recovery = positive(config.recovery_duration, DEFAULT_RECOVERY);
        let code = config.response_code.filter(|c| *c != 0).unwrap_or(503);
        let response_code = StatusCode::from_u16(code).map_err(|_| {
            MiddlewareError::new(name, format!("responseCode {code} is not a status code"))
        })?;
        let breaker = persist::shared("circuitBreaker", name, format!("{config:?}"), || {
            Breaker::new(name, expr, check_period, fallback, recovery)
        });
        Ok(CircuitBreaker {
            breaker,
            response_code,
        })
    }

    pub fn breaker(&self) -> &Arc<Breaker> {
        &self.breaker
    }
}

impl Layer for CircuitBreaker {
    fn on_request(&self, _req: &mut request::Parts, ctx: &mut RequestCtx) -> Flow {
        let now = clock::now_us();
        if !self.breaker.allow(now) {
            let text = self.response_code.canonical_reason().unwrap_or("");
            // As Traefik 3: the status text, without a type.
            return Flow::Respond(untyped_text_response(self.response_code, text));
        }
        ctx.guards.push(Box::new(Pending {
            breaker: self.breaker.clone(),
            started: now,
        }));
        Flow::Continue
    }

    fn on_response(&self, res: &mut response::Parts, ctx: &RequestCtx) {
        let pending = ctx
            .guards
            .iter()
            .filter_map(|g| (**g).downcast_ref::<Pending>())
            .find(|p| Arc::ptr_eq(&p.breaker, &self.breaker));
        if let Some(p) = pending {
            let now = clock::now_us();
            self.breaker
                .record(res.status.as_u16(), now.saturating_sub(p.started), now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000;
    const S: u64 = 1_000_000;

    fn breaker(expr: &str) -> Breaker {
        Breaker::new(
            "cb@test",
            Expr::parse(expr).unwrap(),
            Duration::from_millis(100),
            Duration::from_secs(10),
            Duration::from_secs(10),
        )
    }

    #[test]
    fn ramp_grows_linearly_to_half() {
        let mut r = Ramp::new(0, Duration::from_secs(10));
        assert!(!r.allow(0), "nothing passes at the very start");
        let mut allowed = 0;
        for i in 0..1000u64 {
            if r.allow(5 * S + i) {
                allowed += 1;
            }
        }
        // Half-way the target is 25%.
        let share = allowed as f64 / 1000.0;
        assert!((0.2..0.3).contains(&share), "{share}");
    }

    #[test]
    fn trips_falls_back_recovers_and_closes() {
        let b = breaker("NetworkErrorRatio() > 0.5");
        let mut now = S;
        for _ in 0..10 {
            b.record(200, MS, now);
            now += MS;
        }
        assert_eq!(b.state(), State::Closed);
        now += 200 * MS;
        for _ in 0..30 {
            b.record(502, MS, now);
            now += 10 * MS;
        }
        assert_eq!(b.state(), State::Open);
        assert!(!b.allow(now));
        assert!(!b.allow(now + 9 * S));
        // After the fallback period: recovering, letting a growing share in.
        let start = now + 10 * S + 1;
        assert!(!b.allow(start), "ramp starts at zero");
        assert_eq!(b.state(), State::Recovering);
        let passed = (0..100).filter(|i| b.allow(start + 8 * S + i)).count();
        assert!(passed > 20 && passed < 60, "{passed}");
        // Healthy answers during recovery, then the recovery ends: closed.
        b.record(200, MS, start + 9 * S);
        assert!(b.allow(start + 10 * S + 1));
        assert_eq!(b.state(), State::Closed);
    }

    #[test]
    fn failing_during_recovery_opens_again() {
        let b = breaker("ResponseCodeRatio(500, 600, 0, 600) > 0.5");
        for i in 0..5 {
            b.record(500, MS, S + i);
        }
        assert_eq!(b.state(), State::Open);
        let t = S + 10 * S + 1;
        b.allow(t);
        assert_eq!(b.state(), State::Recovering);
        for i in 0..5 {
            b.record(503, MS, t + S + i * 200 * MS);
        }
        assert_eq!(b.state(), State::Open);
        assert!(!b.allow(t + 2 * S));
    }

    #[test]
    fn checks_at_most_once_per_period() {
        let b = breaker("RequestThreshold() >= 3");
        b.record(200, MS, S);
        b.record(200, MS, S + 1);
        b.record(200, MS, S + 2);
        assert_eq!(
            b.state(),
            State::Closed,
            "third sample is within the check period"
        );
        b.record(200, MS, S + 100 * MS);
        assert_eq!(b.state(), State::Open);
    }

    #[test]
    fn layer_answers_with_the_response_code_and_records_statuses() {
        let cfg = dynamic::CircuitBreaker {
            expression: "NetworkErrorRatio() > 0.1".into(),
            response_code: Some(418),
            check_period: Some(crate::config::duration::GoDuration::from_millis(1)),
            ..Default::default()
        };
        let l = CircuitBreaker::new("cb-layer-test@file", &cfg).unwrap();
        let mut parts = http::Request::new(()).into_parts().0;
        let mut tripped = false;
        for _ in 0..50 {
            let mut ctx = RequestCtx::new([127, 0, 0, 1].into(), "http");
            match l.on_request(&mut parts, &mut ctx) {
                Flow::Continue => {
                    let mut res = http::Response::new(()).into_parts().0;
                    res.status = StatusCode::BAD_GATEWAY;
                    l.on_response(&mut res, &ctx);
                    std::thread::sleep(Duration::from_millis(2));
                }
                Flow::Respond(r) => {
                    assert_eq!(r.status().as_u16(), 418);
                    tripped = true;
                    break;
                }
                Flow::Wait(_) => panic!("a circuit breaker never waits"),
            }
        }
        assert!(tripped);
        let bad = dynamic::CircuitBreaker {
            expression: "Nope() > 1".into(),
            ..Default::default()
        };
        let err = CircuitBreaker::new("cb-bad@file", &bad).unwrap_err();
        assert!(
            err.message.contains("unsupported function"),
            "{}",
            err.message
        );
    }
}
