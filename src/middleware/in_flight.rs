//! `inFlightReq`: at most `amount` requests at once per source (by default
//! per request host, as in Traefik); the others get 429. A request counts
//! until its response body has been sent.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex};

use http::{StatusCode, request};

use super::source::Source;
use super::{Flow, Layer, MiddlewareError, RequestCtx, persist};
use crate::config::dynamic;
use crate::proxy::body::text_response;

const SHARDS: usize = 16;

/// In-flight counts by source, sharded so that sources rarely contend.
#[derive(Debug)]
pub struct Counts {
    hasher: RandomState,
    shards: Vec<Mutex<HashMap<String, u64>>>,
}

impl Default for Counts {
    fn default() -> Self {
        Counts {
            hasher: RandomState::new(),
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
        }
    }
}

impl Counts {
    fn shard(&self, key: &str) -> &Mutex<HashMap<String, u64>> {
        &self.shards[(self.hasher.hash_one(key) as usize) % SHARDS]
    }

    /// Takes a slot for `key` unless `max` are taken.
    pub fn acquire(self: &Arc<Self>, key: String, max: u64) -> Option<Permit> {
        let mut shard = self.shard(&key).lock().unwrap_or_else(|e| e.into_inner());
        let n = shard.entry(key.clone()).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(Permit {
            counts: self.clone(),
            key,
        })
    }

    pub fn current(&self, key: &str) -> u64 {
        let shard = self.shard(key).lock().unwrap_or_else(|e| e.into_inner());
        shard.get(key).copied().unwrap_or(0)
    }
}

/// Frees its slot when the exchange ends.
#[derive(Debug)]
pub struct Permit {
    counts: Arc<Counts>,
    key: String,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut shard = self
            .counts
            .shard(&self.key)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(n) = shard.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                shard.remove(&self.key);
            }
        }
    }
}

#[derive(Debug)]
pub struct InFlightReq {
    amount: u64,
    source: Source,
    counts: Arc<Counts>,
}

impl InFlightReq {
    pub fn new(name: &str, config: &dynamic::InFlightReq) -> Result<Self, MiddlewareError> {
        if config.amount == 0 {
            // Traefik would answer 429 to every request.
            return Err(MiddlewareError::new(name, "amount must be at least 1"));
        }
        let source = Source::from_config(config.source_criterion.as_ref(), Source::Host)
            .map_err(|e| MiddlewareError::new(name, e))?;
        let counts = persist::shared("inFlightReq", name, format!("{config:?}"), Counts::default);
        Ok(InFlightReq {
            amount: config.amount,
            source,
            counts,
        })
    }
}

impl Layer for InFlightReq {
    fn on_request(&self, req: &mut request::Parts, ctx: &mut RequestCtx) -> Flow {
        let key = self.source.extract(req, ctx);
        match self.counts.acquire(key, self.amount) {
            Some(permit) => {
                ctx.guards.push(Box::new(permit));
                Flow::Continue
            }
            None => Flow::Respond(text_response(
                StatusCode::TOO_MANY_REQUESTS,
                format!("max connections reached: {}", self.amount),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(name: &str, amount: u64) -> InFlightReq {
        InFlightReq::new(
            name,
            &dynamic::InFlightReq {
                amount,
                source_criterion: None,
            },
        )
        .unwrap()
    }

    fn parts(host: &str) -> request::Parts {
        http::Request::builder()
            .uri("/")
            .header("host", host)
            .body(())
            .unwrap()
            .into_parts()
            .0
    }

    #[test]
    fn limits_per_host_until_guards_drop() {
        let l = layer("ifr-test-1@file", 2);
        let mut held = Vec::new();
        for _ in 0..2 {
            let mut ctx = RequestCtx::new([127, 0, 0, 1].into(), "http");
            assert!(matches!(
                l.on_request(&mut parts("a.test"), &mut ctx),
                Flow::Continue
            ));
            held.push(ctx);
        }
        let mut ctx = RequestCtx::new([127, 0, 0, 1].into(), "http");
        match l.on_request(&mut parts("a.test"), &mut ctx) {
            Flow::Respond(r) => assert_eq!(r.status(), 429),
            Flow::Continue | Flow::Wait(_) => panic!("third request must be refused"),
        }
        // Another host has its own count.
        assert!(matches!(
            l.on_request(&mut parts("b.test"), &mut ctx),
            Flow::Continue
        ));
        held.pop();
        let mut ctx = RequestCtx::new([127, 0, 0, 1].into(), "http");
        assert!(matches!(
            l.on_request(&mut parts("a.test"), &mut ctx),
            Flow::Continue
        ));
        drop(ctx);
        drop(held);
        assert_eq!(l.counts.current("a.test"), 0);
    }

    #[test]
    fn zero_amount_is_refused_and_state_survives_rebuilds() {
        let err = InFlightReq::new("ifr-zero@file", &dynamic::InFlightReq::default()).unwrap_err();
        assert_eq!(err.message, "amount must be at least 1");
        let a = layer("ifr-test-2@file", 1);
        let b = layer("ifr-test-2@file", 1);
        assert!(Arc::ptr_eq(&a.counts, &b.counts));
        assert!(!Arc::ptr_eq(&a.counts, &layer("ifr-test-2@file", 3).counts));
    }
}
