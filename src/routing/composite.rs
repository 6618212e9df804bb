//! Traefik's services over services: `weighted` (round robin by weight,
//! optionally sticky), `highestRandomWeight` (the client's address hashed
//! over the children, by weight), `failover` (a fallback while the main service is
//! down, or answers with a caught status) and `mirroring` (copies of
//! requests to other services). They are built over the load-balancer
//! services (pools) and each other; the proxy serves them
//! (`proxy::composite`).
//!
//! Health, as Traefik's `healthCheck: {}` propagates it, is read when a
//! request comes rather than pushed on change: a pool is up while one of
//! its servers is available (active check and passive ejection), a
//! weighted or highestRandomWeight service while one child is, a failover while its main service
//! or (with `healthCheck`) its fallback is, a mirroring while its main
//! service is.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use http::HeaderMap;
use http::header::HeaderValue;

use super::ServiceRuntime;
use super::model::{Entry, Index};
use crate::balance::hrw;
use crate::balance::sticky::StickyCookie;
use crate::config::dynamic::{Service, WeightedService};
use crate::middleware::error_pages::StatusRanges;
use crate::middleware::qualify;

/// A service as routers and middlewares send to it.
#[derive(Debug, Clone)]
pub enum Node {
    Pool(Arc<ServiceRuntime>),
    Weighted(Arc<Weighted>),
    Hrw(Arc<Hrw>),
    Failover(Arc<Failover>),
    Mirroring(Arc<Mirroring>),
}

impl Node {
    pub fn name(&self) -> &Arc<str> {
        match self {
            Node::Pool(s) => &s.name,
            Node::Weighted(w) => &w.name,
            Node::Hrw(h) => &h.name,
            Node::Failover(f) => &f.name,
            Node::Mirroring(m) => &m.name,
        }
    }

    /// Whether the service can answer, as a parent with `healthCheck` sees it.
    pub fn is_up(&self) -> bool {
        match self {
            Node::Pool(s) => s.balancer.servers().iter().any(|s| s.is_available()),
            Node::Weighted(w) => w.children.iter().any(|c| c.node.is_up()),
            Node::Hrw(h) => h.children.iter().any(|c| c.node.is_up()),
            Node::Failover(f) => f.main.is_up() || (f.health_check && f.fallback.is_up()),
            Node::Mirroring(m) => m.main.is_up(),
        }
    }
}

#[derive(Debug)]
pub struct Weighted {
    pub name: Arc<str>,
    /// Children of positive weight, in configuration order.
    children: Vec<Child>,
    sticky: Option<StickyCookie>,
    /// Down children are skipped (Traefik's `healthCheck: {}`).
    health_check: bool,
    /// Earliest-deadline-first state, as Traefik's weighted round robin:
    /// the current deadline and each child's next one.
    schedule: Mutex<(f64, Vec<f64>)>,
    /// Picks that reach every usable child at least once.
    max_rounds: usize,
}

#[derive(Debug)]
struct Child {
    node: Node,
    /// The name as the configuration writes it: Traefik's sticky cookie
    /// value hashes this one, not the qualified name.
    written: String,
    weight: f64,
}

/// A weighted service's choice for one request.
pub struct Choice<'a> {
    pub node: &'a Node,
    /// For a sticky service: the cookie to send with the answer.
    pub set_cookie: Option<HeaderValue>,
}

impl Child {
    /// Whether the child may take a request: always, unless its parent
    /// asks for health (`healthCheck: {}`) and it is down.
    fn usable(&self, health_check: bool) -> bool {
        !health_check || self.node.is_up()
    }
}

impl Weighted {
    fn usable(&self, child: &Child) -> bool {
        child.usable(self.health_check)
    }

    /// The child for a request, `None` when none is usable.
    pub fn choose(&self, headers: &HeaderMap) -> Option<Choice<'_>> {
        if let Some(sticky) = &self.sticky
            && let Some((i, rewrite)) = sticky.find_by(headers, &self.children, |c| &c.written)
            && self.usable(&self.children[i])
        {
            let child = &self.children[i];
            let set_cookie = rewrite
                .then(|| sticky.set_cookie_for(&child.written))
                .flatten();
            return Some(Choice {
                node: &child.node,
                set_cookie,
            });
        }
        let child = &self.children[self.next()?];
        let set_cookie = self
            .sticky
            .as_ref()
            .and_then(|s| s.set_cookie_for(&child.written));
        Some(Choice {
            node: &child.node,
            set_cookie,
        })
    }

    /// The next usable child by earliest deadline.
    fn next(&self) -> Option<usize> {
        if !self.children.iter().any(|c| self.usable(c)) {
            return None;
        }
        let mut schedule = self.schedule.lock().unwrap_or_else(|e| e.into_inner());
        let (now, deadlines) = &mut *schedule;
        // A child's health may change meanwhile: bounded, so that children
        // all going down at this moment cannot keep the loop turning.
        for _ in 0..self.max_rounds {
            let (i, deadline) = deadlines
                .iter()
                .copied()
                .enumerate()
                .min_by(|a, b| a.1.total_cmp(&b.1))?;
            *now = deadline;
            deadlines[i] = deadline + 1.0 / self.children[i].weight;
            if self.usable(&self.children[i]) {
                return Some(i);
            }
        }
        None
    }
}

/// Rendezvous hashing over services: a client address always goes to the
/// same usable child, and a child leaving moves only its own clients.
#[derive(Debug)]
pub struct Hrw {
    pub name: Arc<str>,
    children: Vec<Child>,
    health_check: bool,
}

impl Hrw {
    /// The child for a client address, `None` when none is usable.
    pub fn choose(&self, client: IpAddr) -> Option<&Node> {
        let key = client.to_string();
        self.children
            .iter()
            .filter(|c| c.usable(self.health_check))
            .map(|c| (c, hrw::score(key.as_bytes(), &c.written, c.weight as u32)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(c, _)| &c.node)
    }
}

#[derive(Debug)]
pub struct Failover {
    pub name: Arc<str>,
    pub main: Node,
    pub fallback: Node,
    /// The fallback's own health counts (Traefik's `healthCheck: {}`).
    health_check: bool,
    /// Main answers sent to the fallback instead, and the most request
    /// body kept to send again (`None`: no limit).
    pub errors: Option<(StatusRanges, Option<u64>)>,
}

impl Failover {
    /// Whether the fallback may take a request.
    pub fn fallback_usable(&self) -> bool {
        !self.health_check || self.fallback.is_up()
    }
}

#[derive(Debug)]
pub struct Mirroring {
    pub name: Arc<str>,
    pub main: Node,
    mirrors: Vec<(Node, u64)>,
    /// Requests seen, and requests each mirror got (Traefik's counting).
    counts: Mutex<(u64, Vec<u64>)>,
    pub mirror_body: bool,
    /// `None`: no limit.
    pub max_body_size: Option<u64>,
    /// Copies on their way: past [`MAX_MIRRORING`], requests go unmirrored
    /// rather than pile up behind a slow mirror.
    pub in_flight: std::sync::atomic::AtomicUsize,
}

/// The most copies of one mirroring service on their way at once.
pub const MAX_MIRRORING: usize = 1024;

impl Mirroring {
    /// The mirrors this request goes to: each gets its percent of requests.
    pub fn active(&self) -> Vec<&Node> {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let (total, sent) = &mut *counts;
        *total += 1;
        let mut out = Vec::new();
        for ((node, percent), sent) in self.mirrors.iter().zip(sent.iter_mut()) {
            if *sent * 100 < *total * percent {
                *sent += 1;
                out.push(node);
            }
        }
        out
    }
}

/// Builds the services over services of a configuration, given its pools.
pub struct Builder<'a> {
    configs: &'a Index<'a, Service>,
    pools: &'a BTreeMap<String, Arc<ServiceRuntime>>,
    built: HashMap<String, Result<Node, String>>,
}

impl<'a> Builder<'a> {
    /// `configs`: every service by qualified name.
    pub fn new(
        configs: &'a Index<'a, Service>,
        pools: &'a BTreeMap<String, Arc<ServiceRuntime>>,
    ) -> Self {
        Builder {
            configs,
            pools,
            built: HashMap::new(),
        }
    }

    /// The service of that qualified name, or why it cannot serve.
    pub fn node(&mut self, name: &str) -> Result<Node, String> {
        self.node_in(name, &mut Vec::new())
    }

    fn node_in(&mut self, name: &str, stack: &mut Vec<String>) -> Result<Node, String> {
        if let Some(pool) = self.pools.get(name) {
            return Ok(Node::Pool(pool.clone()));
        }
        let Some(&Entry {
            object: service,
            provider,
        }) = self.configs.get(name)
        else {
            return Err(format!("the service \"{name}\" does not exist"));
        };
        if !is_composite(service) || types_error(service).is_some() {
            // A pool that did not build, or a service of several types.
            return Err(disabled(name));
        }
        if let Some(done) = self.built.get(name) {
            return done.clone();
        }
        if stack.iter().any(|s| s == name) {
            let mut cycle = stack.clone();
            cycle.push(name.to_owned());
            return Err(format!("recursion detected: {}", cycle.join(" -> ")));
        }
        stack.push(name.to_owned());
        let built = self.build(name, service, provider, stack);
        stack.pop();
        self.built.insert(name.to_owned(), built.clone());
        built
    }

    /// A child's node. A child's own errors are its own: the parent only
    /// says it is disabled (a cycle is told whole).
    fn child(
        &mut self,
        name: &str,
        provider: &str,
        stack: &mut Vec<String>,
    ) -> Result<Node, String> {
        let qualified = qualify(name, provider);
        match self.node_in(&qualified, stack) {
            Err(e)
                if !e.starts_with("recursion detected")
                    && self
                        .configs
                        .get(&qualified)
                        .is_some_and(|e| is_composite(e.object)) =>
            {
                Err(disabled(&qualified))
            }
            other => other,
        }
    }

    /// The children of positive weight (Traefik leaves out the others).
    fn children(
        &mut self,
        services: &[WeightedService],
        provider: &str,
        stack: &mut Vec<String>,
    ) -> Result<Vec<Child>, String> {
        let mut children = Vec::with_capacity(services.len());
        for c in services {
            let node = self.child(&c.name, provider, stack)?;
            let weight = c.weight.unwrap_or(1);
            if weight > 0 {
                children.push(Child {
                    node,
                    written: c.name.clone(),
                    weight: weight.min(i64::from(u32::MAX)) as f64,
                });
            }
        }
        Ok(children)
    }

    fn build(
        &mut self,
        name: &str,
        service: &Service,
        provider: &str,
        stack: &mut Vec<String>,
    ) -> Result<Node, String> {
        let name: Arc<str> = name.into();
        if let Some(h) = &service.highest_random_weight {
            return Ok(Node::Hrw(Arc::new(Hrw {
                children: self.children(&h.services, provider, stack)?,
                health_check: h.health_check.is_some(),
                name,
            })));
        }
        if let Some(w) = &service.weighted {
            let children = self.children(&w.services, provider, stack)?;
            let deadlines = children.iter().map(|c| 1.0 / c.weight).collect();
            let total: f64 = children.iter().map(|c| c.weight).sum();
            let lightest = children.iter().map(|c| c.weight).fold(f64::MAX, f64::min);
            let max_rounds = (total / lightest).min(1e6) as usize + children.len();
            return Ok(Node::Weighted(Arc::new(Weighted {
                sticky: w
                    .sticky
                    .as_ref()
                    .and_then(|s| s.cookie.as_ref())
                    .map(|c| StickyCookie::new(&name, c)),
                health_check: w.health_check.is_some(),
                schedule: Mutex::new((0.0, deadlines)),
                max_rounds,
                children,
                name,
            })));
        }
        if let Some(f) = &service.failover {
            let main = self.child(&f.service, provider, stack)?;
            let fallback = self.child(&f.fallback, provider, stack)?;
            let errors = match &f.errors {
                Some(e) if !e.status.is_empty() => Some((
                    StatusRanges::parse(e.status.iter().map(String::as_str), "errors.status")?,
                    e.max_request_body_bytes.and_then(|m| u64::try_from(m).ok()),
                )),
                _ => None,
            };
            return Ok(Node::Failover(Arc::new(Failover {
                name,
                main,
                fallback,
                health_check: f.health_check.is_some(),
                errors,
            })));
        }
        if let Some(m) = &service.mirroring {
            let main = self.child(&m.service, provider, stack)?;
            let mut mirrors = Vec::with_capacity(m.mirrors.len());
            for mirror in &m.mirrors {
                if !(0..=100).contains(&mirror.percent) {
                    return Err(format!(
                        "mirror \"{}\": percent must be between 0 and 100, not {}",
                        mirror.name, mirror.percent
                    ));
                }
                let node = self.child(&mirror.name, provider, stack)?;
                mirrors.push((node, mirror.percent as u64));
            }
            let counts = Mutex::new((0, vec![0; mirrors.len()]));
            return Ok(Node::Mirroring(Arc::new(Mirroring {
                name,
                main,
                counts,
                mirrors,
                mirror_body: m.mirror_body.unwrap_or(true),
                max_body_size: m.max_body_size.and_then(|s| u64::try_from(s).ok()),
                in_flight: Default::default(),
            })));
        }
        Err("the service has no loadBalancer".to_string())
    }
}

/// Whether a service is one of Traefik's services over services.
pub fn is_composite(service: &Service) -> bool {
    service.weighted.is_some()
        || service.highest_random_weight.is_some()
        || service.failover.is_some()
        || service.mirroring.is_some()
}

/// The error of a service that sets more than one type, as Traefik's.
pub fn types_error(service: &Service) -> Option<String> {
    let set = [
        service.load_balancer.is_some(),
        service.weighted.is_some(),
        service.highest_random_weight.is_some(),
        service.failover.is_some(),
        service.mirroring.is_some(),
    ]
    .iter()
    .filter(|s| **s)
    .count();
    (set > 1).then(|| {
        "multi-types service not supported, consider declaring two different pieces of service instead"
            .to_string()
    })
}

fn disabled(name: &str) -> String {
    format!("service \"{name}\" is disabled by its own errors")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::RouteTable;
    use crate::routing::compile::{compile_yaml, route_for};

    fn table(services: &str) -> RouteTable {
        let yaml = format!(
            "http:\n  routers:\n    r:\n      rule: Host(`a`)\n      service: top\n  services:\n{services}"
        );
        compile_yaml(&yaml, None)
    }

    fn pools(names: &[&str]) -> String {
        names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                format!(
                    "    {n}:\n      loadBalancer:\n        servers:\n          - url: http://127.0.0.1:{}\n",
                    9000 + i
                )
            })
            .collect()
    }

    fn top(t: &RouteTable) -> Node {
        match &route_for(t, "a").unwrap().target {
            crate::routing::Target::Composite(n) => n.clone(),
            other => panic!("{other:?}"),
        }
    }

    fn error_of(t: &RouteTable, service: &str) -> String {
        t.service_views[service].error.join("; ")
    }

    #[test]
    fn weights_share_requests_and_zero_weights_get_none() {
        let t = table(&format!(
            "    top:\n      weighted:\n        services:\n          - name: a\n            weight: 3\n          - name: b\n          - name: c\n            weight: 0\n{}",
            pools(&["a", "b", "c"])
        ));
        let Node::Weighted(w) = top(&t) else { panic!() };
        let mut count: BTreeMap<String, usize> = BTreeMap::new();
        for _ in 0..400 {
            let choice = w.choose(&HeaderMap::new()).unwrap();
            assert!(choice.set_cookie.is_none());
            *count.entry(choice.node.name().to_string()).or_default() += 1;
        }
        assert_eq!(count.get("a@file"), Some(&300), "{count:?}");
        assert_eq!(count.get("b@file"), Some(&100), "{count:?}");
        assert_eq!(count.get("c@file"), None);
    }

    #[test]
    fn sticky_weighted_pins_by_cookie_and_health_check_skips_down_children() {
        let t = table(&format!(
            "    top:\n      weighted:\n        sticky:\n          cookie:\n            name: lane\n        healthCheck: {{}}\n        services:\n          - name: a\n          - name: b\n{}",
            pools(&["a", "b"])
        ));
        let Node::Weighted(w) = top(&t) else { panic!() };
        let first = w.choose(&HeaderMap::new()).unwrap();
        let cookie = first.set_cookie.clone().unwrap();
        let pair = cookie
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string();
        assert!(pair.starts_with("lane="), "{pair}");
        let chosen = first.node.name().clone();
        let mut headers = HeaderMap::new();
        headers.insert(http::header::COOKIE, pair.parse().unwrap());
        for _ in 0..5 {
            let again = w.choose(&headers).unwrap();
            assert_eq!(again.node.name(), &chosen);
            assert!(again.set_cookie.is_none(), "a good cookie is not set again");
        }
        // The pinned child goes down: another is chosen, and pinned.
        let Node::Pool(pool) = &w
            .children
            .iter()
            .find(|c| c.node.name() == &chosen)
            .unwrap()
            .node
        else {
            panic!()
        };
        pool.balancer.servers()[0].set_healthy(false);
        let moved = w.choose(&headers).unwrap();
        assert_ne!(moved.node.name(), &chosen);
        assert!(moved.set_cookie.is_some());
        // Both down: nothing to choose.
        for c in &w.children {
            let Node::Pool(p) = &c.node else { panic!() };
            p.balancer.servers()[0].set_healthy(false);
        }
        assert!(w.choose(&HeaderMap::new()).is_none());
        assert!(!top(&t).is_up());
    }

    #[test]
    fn highest_random_weight_keeps_each_client_on_one_usable_child() {
        let t = table(&format!(
            "    top:\n      highestRandomWeight:\n        healthCheck: {{}}\n        services:\n          - name: a\n          - name: b\n          - name: c\n            weight: 0\n{}",
            pools(&["a", "b", "c"])
        ));
        let Node::Hrw(h) = top(&t) else { panic!() };
        let mut first: BTreeMap<IpAddr, String> = BTreeMap::new();
        let mut per_child: BTreeMap<String, usize> = BTreeMap::new();
        for i in 0..200u32 {
            let ip = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            let name = h.choose(ip).unwrap().name().to_string();
            assert_eq!(h.choose(ip).unwrap().name().as_ref(), name, "stable");
            *per_child.entry(name.clone()).or_default() += 1;
            first.insert(ip, name);
        }
        assert_eq!(per_child.get("c@file"), None, "no weight, no clients");
        assert!(
            per_child["a@file"] > 60 && per_child["b@file"] > 60,
            "{per_child:?}"
        );
        // b goes down: only its clients move.
        let Node::Pool(b) = &h.children[1].node else {
            panic!()
        };
        b.balancer.servers()[0].set_healthy(false);
        for (ip, was) in &first {
            let now = h.choose(*ip).unwrap().name().to_string();
            if was == "a@file" {
                assert_eq!(&now, was);
            } else {
                assert_eq!(now, "a@file");
            }
        }
        let Node::Pool(a) = &h.children[0].node else {
            panic!()
        };
        a.balancer.servers()[0].set_healthy(false);
        assert!(h.choose(first.keys().next().copied().unwrap()).is_none());
    }

    #[test]
    fn failover_and_mirroring_build_and_count() {
        let t = table(&format!(
            "    top:\n      mirroring:\n        service: fo\n        mirrors:\n          - name: m1\n            percent: 50\n          - name: m2\n            percent: 100\n    fo:\n      failover:\n        service: a\n        fallback: b\n        errors:\n          status: [\"500-599\"]\n{}",
            pools(&["a", "b", "m1", "m2"])
        ));
        let Node::Mirroring(m) = top(&t) else {
            panic!()
        };
        let Node::Failover(f) = &m.main else { panic!() };
        assert_eq!(f.main.name().as_ref(), "a@file");
        assert!(f.errors.as_ref().unwrap().0.contains(503));
        assert_eq!(f.errors.as_ref().unwrap().1, None);
        let mut sent: BTreeMap<String, usize> = BTreeMap::new();
        for _ in 0..10 {
            for n in m.active() {
                *sent.entry(n.name().to_string()).or_default() += 1;
            }
        }
        assert_eq!(sent["m1@file"], 5);
        assert_eq!(sent["m2@file"], 10);
        assert!(m.mirror_body && m.max_body_size.is_none());
    }

    #[test]
    fn broken_references_disable_the_service_with_the_reason() {
        let t = table(&format!(
            "    top:\n      weighted:\n        services:\n          - name: ghost\n    loop1:\n      failover:\n        service: loop2\n        fallback: a\n    loop2:\n      weighted:\n        services:\n          - name: loop1\n    uses-broken:\n      weighted:\n        services:\n          - name: top\n    pct:\n      mirroring:\n        service: a\n        mirrors:\n          - name: a\n            percent: 101\n    both:\n      weighted:\n        services: [{{name: a}}]\n      failover:\n        service: a\n        fallback: a\n{}",
            pools(&["a"])
        ));
        assert_eq!(
            error_of(&t, "top@file"),
            "the service \"ghost@file\" does not exist"
        );
        assert_eq!(
            error_of(&t, "loop1@file"),
            "recursion detected: loop1@file -> loop2@file -> loop1@file"
        );
        assert_eq!(
            error_of(&t, "uses-broken@file"),
            "service \"top@file\" is disabled by its own errors"
        );
        assert!(error_of(&t, "pct@file").contains("percent must be between 0 and 100"));
        assert!(error_of(&t, "both@file").starts_with("multi-types service not supported"));
        assert!(
            t.entrypoint("web").unwrap().index.is_empty(),
            "the router is disabled"
        );
        assert_eq!(
            t.service_views["a@file"].status,
            crate::routing::Status::Enabled
        );
    }
}
