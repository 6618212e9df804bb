//! Load balancing: per-server live state and the strategies that pick a
//! server for each request.
//!
//! Server state (`ServerState`) outlives route-table rebuilds: the compiler
//! hands the previous table's states to the new one for servers that remain,
//! so in-flight counts, health, latency and ejections survive a reload.
//!
//! Strategies are Traefik v3's `loadBalancer.strategy` values: `wrr`
//! (default), `p2c`, `hrw` and `leasttime`. `hrw` hashes the client IP as in
//! Traefik; escale adds `hrw:header:<Name>` and `hrw:cookie:<name>` to hash
//! a header or a cookie instead (falling back to the client IP when the
//! request has none).
//!
//! Every strategy skips servers that are down (active health check),
//! ejected (passive health) or at `maxConnsPerServer`. When no server is
//! available at all, the balancer fails open: it tries the down servers
//! rather than answer 503, and logs it.

pub mod clock;
pub mod hrw;
pub mod latency;
pub mod leasttime;
pub mod p2c;
pub mod passive;
pub mod server;
pub mod stats;
pub mod sticky;
pub mod wrr;

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use http::HeaderMap;
use http::header::{self, HeaderName};

pub use server::{Health, InFlight, ServerState, Upstream};
pub use wrr::SmoothWrr;

/// What `hrw` hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashKey {
    ClientIp,
    Header(HeaderName),
    Cookie(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Strategy {
    Wrr,
    P2c,
    Hrw(HashKey),
    LeastTime,
}

impl Strategy {
    /// Parses `loadBalancer.strategy`; empty means `wrr`.
    pub fn parse(value: Option<&str>) -> Result<Strategy, String> {
        let raw = value.unwrap_or("").trim();
        let unsupported = || format!("unsupported load-balancer strategy {raw:?}");
        let (kind, rest) = match raw.split_once(':') {
            Some((k, r)) => (k, Some(r)),
            None => (raw, None),
        };
        match (kind.to_ascii_lowercase().as_str(), rest) {
            ("" | "wrr", None) => Ok(Strategy::Wrr),
            ("p2c", None) => Ok(Strategy::P2c),
            ("leasttime", None) => Ok(Strategy::LeastTime),
            ("hrw", None) => Ok(Strategy::Hrw(HashKey::ClientIp)),
            ("hrw", Some(key)) => {
                let (what, name) = key.split_once(':').unwrap_or((key, ""));
                match (what.to_ascii_lowercase().as_str(), name.trim()) {
                    ("ip", "") => Ok(Strategy::Hrw(HashKey::ClientIp)),
                    ("header", name) if !name.is_empty() => HeaderName::try_from(name)
                        .map(|h| Strategy::Hrw(HashKey::Header(h)))
                        .map_err(|_| format!("hrw: invalid header name {name:?}")),
                    ("cookie", name) if !name.is_empty() => {
                        Ok(Strategy::Hrw(HashKey::Cookie(name.to_string())))
                    }
                    _ => Err(format!(
                        "{}; hrw keys are hrw, hrw:ip, hrw:header:<Name> and hrw:cookie:<name>",
                        unsupported()
                    )),
                }
            }
            _ => Err(unsupported()),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Strategy::Wrr => "wrr",
            Strategy::P2c => "p2c",
            Strategy::Hrw(_) => "hrw",
            Strategy::LeastTime => "leasttime",
        }
    }
}

/// Why no server could be picked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PickError {
    /// No server left to try.
    NoServer,
    /// Servers are up, but every one is at `maxConnsPerServer`.
    AtCapacity,
}

/// A picked server with its in-flight slot already taken.
#[derive(Debug)]
pub struct Picked {
    pub server: Arc<ServerState>,
    pub in_flight: InFlight,
}

/// The balancer of one service.
#[derive(Debug)]
pub struct Balancer {
    service: Arc<str>,
    wrr: SmoothWrr,
    strategy: Strategy,
    rng: p2c::Rng,
    max_conns: Option<u64>,
    /// Set while every server is down and requests go to them anyway.
    failing_open: AtomicBool,
}

impl Balancer {
    pub fn new(
        service: Arc<str>,
        servers: Vec<Arc<ServerState>>,
        strategy: Strategy,
        max_conns: Option<u64>,
    ) -> Self {
        let seed = clock::now_us() ^ (Arc::as_ptr(&service) as *const u8 as usize as u64);
        Balancer {
            service,
            wrr: SmoothWrr::new(servers),
            strategy,
            rng: p2c::Rng::new(seed),
            max_conns: max_conns.filter(|m| *m > 0),
            failing_open: AtomicBool::new(false),
        }
    }

    pub fn servers(&self) -> &[Arc<ServerState>] {
        self.wrr.servers()
    }

    pub fn strategy(&self) -> &Strategy {
        &self.strategy
    }

    pub fn max_conns(&self) -> Option<u64> {
        self.max_conns
    }

    /// A random number in `[0, 1)` (for retry jitter).
    pub fn random_unit(&self) -> f64 {
        self.rng.unit()
    }

    /// Whether the choice of server depends on the request's headers (an
    /// `hrw` key taken from a header or a cookie).
    pub fn reads_request(&self) -> bool {
        matches!(
            &self.strategy,
            Strategy::Hrw(HashKey::Header(_) | HashKey::Cookie(_))
        )
    }

    /// The request's `hrw` key; `None` for other strategies.
    pub fn hash_key(&self, headers: &HeaderMap, client_ip: IpAddr) -> Option<String> {
        let Strategy::Hrw(key) = &self.strategy else {
            return None;
        };
        let from_request = match key {
            HashKey::ClientIp => None,
            HashKey::Header(name) => headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            HashKey::Cookie(name) => cookie(headers, name).map(str::to_string),
        };
        Some(from_request.unwrap_or_else(|| client_ip.to_string()))
    }

    /// The strategy's choice among servers accepted by `eligible`, with no
    /// health or capacity filtering of its own.
    pub fn pick_where(
        &self,
        key: Option<&[u8]>,
        eligible: impl Fn(&ServerState) -> bool,
    ) -> Option<&Arc<ServerState>> {
        match &self.strategy {
            Strategy::Wrr => self.wrr.pick_where(eligible),
            Strategy::P2c => p2c::pick(self.servers(), &self.rng, clock::now_us(), eligible),
            Strategy::LeastTime => leasttime::pick(&self.wrr, eligible),
            Strategy::Hrw(_) => hrw::pick(self.servers(), key.unwrap_or_default(), eligible),
        }
    }

    fn has_room(&self, s: &ServerState) -> bool {
        self.max_conns.is_none_or(|m| s.in_flight() < m)
    }

    /// Picks a server not rejected by `skip` and takes an in-flight slot on
    /// it. Available servers come first; when none is available, the
    /// others are tried (fail open).
    pub fn pick(
        &self,
        key: Option<&[u8]>,
        skip: impl Fn(&ServerState) -> bool,
    ) -> Result<Picked, PickError> {
        if let Some(p) = self.pick_stage(key, |s| s.is_available() && !skip(s)) {
            if self.failing_open.load(Ordering::Relaxed)
                && self.failing_open.swap(false, Ordering::Relaxed)
            {
                tracing::info!(service = %self.service, "servers available again; fail-open over");
            }
            return Ok(p);
        }
        if self.servers().iter().any(|s| s.is_available() && !skip(s)) {
            return Err(PickError::AtCapacity);
        }
        let p = self.pick_stage(key, |s| !skip(s));
        match p {
            Some(p) => {
                if !self.servers().iter().any(|s| s.is_available())
                    && !self.failing_open.swap(true, Ordering::Relaxed)
                {
                    tracing::warn!(
                        service = %self.service,
                        servers = self.servers().len(),
                        "every server is down or ejected; trying them anyway (fail open)"
                    );
                }
                Ok(p)
            }
            None if self.servers().iter().any(|s| !skip(s) && s.weight > 0) => {
                Err(PickError::AtCapacity)
            }
            None => Err(PickError::NoServer),
        }
    }

    fn pick_stage(
        &self,
        key: Option<&[u8]>,
        eligible: impl Fn(&ServerState) -> bool,
    ) -> Option<Picked> {
        // Servers that filled up between the check and the slot.
        let mut raced: Vec<*const ServerState> = Vec::new();
        loop {
            let candidate = {
                let raced = &raced;
                self.pick_where(key, |s| {
                    eligible(s) && self.has_room(s) && !raced.contains(&(s as *const ServerState))
                })
                .cloned()
            }?;
            match candidate.try_start_request(self.max_conns) {
                Some(in_flight) => {
                    return Some(Picked {
                        server: candidate,
                        in_flight,
                    });
                }
                None => raced.push(Arc::as_ptr(&candidate)),
            }
        }
    }
}

/// A cookie's value from the request's `Cookie` headers, trimmed.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// `n` servers of weight 1 on `127.0.0.1:1000`, `:1001`, ...
#[cfg(test)]
pub(crate) fn test_servers(n: usize) -> Vec<Arc<ServerState>> {
    (0..n)
        .map(|i| {
            Arc::new(ServerState::new(&format!("http://127.0.0.1:{}", 1000 + i), 1, None).unwrap())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn balancer(n: usize, strategy: Strategy, max: Option<u64>) -> Balancer {
        Balancer::new("svc@file".into(), test_servers(n), strategy, max)
    }

    #[test]
    fn parses_traefik_strategies_and_hrw_keys() {
        assert_eq!(Strategy::parse(None), Ok(Strategy::Wrr));
        assert_eq!(Strategy::parse(Some("")), Ok(Strategy::Wrr));
        assert_eq!(Strategy::parse(Some("wrr")), Ok(Strategy::Wrr));
        assert_eq!(Strategy::parse(Some("p2c")), Ok(Strategy::P2c));
        assert_eq!(Strategy::parse(Some("leasttime")), Ok(Strategy::LeastTime));
        assert_eq!(
            Strategy::parse(Some("hrw")),
            Ok(Strategy::Hrw(HashKey::ClientIp))
        );
        assert_eq!(
            Strategy::parse(Some("hrw:header:X-Tenant")),
            Ok(Strategy::Hrw(HashKey::Header(HeaderName::from_static(
                "x-tenant"
            ))))
        );
        assert_eq!(
            Strategy::parse(Some("hrw:cookie:sid")),
            Ok(Strategy::Hrw(HashKey::Cookie("sid".into())))
        );
        assert_eq!(
            Strategy::parse(Some("drr")).unwrap_err(),
            "unsupported load-balancer strategy \"drr\""
        );
        assert!(Strategy::parse(Some("hrw:header:")).is_err());
        assert!(Strategy::parse(Some("hrw:body:x")).is_err());
        assert!(Strategy::parse(Some("p2c:x")).is_err());
    }

    #[test]
    fn hash_key_comes_from_ip_header_or_cookie() {
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let mut h = HeaderMap::new();
        h.insert("x-tenant", HeaderValue::from_static("acme"));
        h.insert(header::COOKIE, HeaderValue::from_static("a=1; sid=abc"));
        assert_eq!(balancer(1, Strategy::Wrr, None).hash_key(&h, ip), None);
        let by_ip = balancer(1, Strategy::Hrw(HashKey::ClientIp), None);
        assert_eq!(by_ip.hash_key(&h, ip).as_deref(), Some("192.0.2.7"));
        let by_header = balancer(
            1,
            Strategy::Hrw(HashKey::Header(HeaderName::from_static("x-tenant"))),
            None,
        );
        assert_eq!(by_header.hash_key(&h, ip).as_deref(), Some("acme"));
        assert_eq!(
            by_header.hash_key(&HeaderMap::new(), ip).as_deref(),
            Some("192.0.2.7"),
            "falls back to the client IP"
        );
        let by_cookie = balancer(1, Strategy::Hrw(HashKey::Cookie("sid".into())), None);
        assert_eq!(by_cookie.hash_key(&h, ip).as_deref(), Some("abc"));
    }

    #[test]
    fn skips_unavailable_then_fails_open() {
        for strategy in [
            Strategy::Wrr,
            Strategy::P2c,
            Strategy::LeastTime,
            Strategy::Hrw(HashKey::ClientIp),
        ] {
            let lb = balancer(3, strategy.clone(), None);
            let s = lb.servers().to_vec();
            s[0].set_healthy(false);
            s[1].set_healthy(false);
            for _ in 0..20 {
                let p = lb.pick(Some(b"k"), |_| false).unwrap();
                assert_eq!(p.server.url, s[2].url, "{strategy:?}");
            }
            s[2].set_healthy(false);
            let p = lb.pick(Some(b"k"), |_| false).unwrap();
            assert!(lb.failing_open.load(Ordering::Relaxed));
            // Fail open never picks a server the caller skips.
            let skip = p.server.url.clone();
            let q = lb.pick(Some(b"k"), |x| x.url == skip).unwrap();
            assert_ne!(q.server.url, skip);
            assert_eq!(
                lb.pick(Some(b"k"), |_| true).unwrap_err(),
                PickError::NoServer
            );
            s[1].set_healthy(true);
            assert_eq!(lb.pick(Some(b"k"), |_| false).unwrap().server.url, s[1].url);
            assert!(!lb.failing_open.load(Ordering::Relaxed));
        }
        assert_eq!(
            Balancer::new("e".into(), vec![], Strategy::Wrr, None)
                .pick(None, |_| false)
                .unwrap_err(),
            PickError::NoServer
        );
    }

    #[test]
    fn max_conns_per_server_is_respected() {
        let lb = balancer(2, Strategy::Wrr, Some(2));
        let held: Vec<_> = (0..4).map(|_| lb.pick(None, |_| false).unwrap()).collect();
        assert!(lb.servers().iter().all(|s| s.in_flight() == 2));
        assert_eq!(lb.pick(None, |_| false).unwrap_err(), PickError::AtCapacity);
        // A full healthy pool never spills onto a down server.
        let extra = Arc::new(ServerState::new("http://127.0.0.1:9", 1, None).unwrap());
        extra.set_healthy(false);
        let mut all = lb.servers().to_vec();
        all.push(extra);
        let lb2 = Balancer::new("x".into(), all, Strategy::Wrr, Some(2));
        assert_eq!(
            lb2.pick(None, |_| false).unwrap_err(),
            PickError::AtCapacity
        );
        drop(held);
        assert!(lb.pick(None, |_| false).is_ok());
        assert_eq!(lb.max_conns(), Some(2));
        assert_eq!(balancer(1, Strategy::Wrr, Some(0)).max_conns(), None);
    }

    #[test]
    fn hrw_pick_is_stable_per_key() {
        let lb = balancer(5, Strategy::Hrw(HashKey::ClientIp), None);
        let a = lb
            .pick(Some(b"10.1.1.1"), |_| false)
            .unwrap()
            .server
            .url
            .clone();
        for _ in 0..10 {
            assert_eq!(lb.pick(Some(b"10.1.1.1"), |_| false).unwrap().server.url, a);
        }
    }
}
