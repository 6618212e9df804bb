//! Routes of one entrypoint, indexed by host so that the cost of a lookup does
//! not grow with the number of hosts.
//!
//! A rule that pins its host (`Host(`a`) && PathPrefix(`/x`)`) is filed under
//! that host; `Host(`*.example.com`)` under its suffix; every other rule
//! (no host, `HostRegexp`, `!Host`) in a fallback list. A lookup merges the few
//! candidate lists by rank, the global priority order, and returns the first
//! route whose full rule matches, exactly as a linear scan over all routes in
//! priority order would.
//!
//! Within a long list (many tenants on one host told apart by path, as in
//! `Host(`alderaan`) && PathPrefix(`/t1/app`)`), routes whose rule requires a
//! path prefix are filed by that prefix too, so a lookup costs one hash probe
//! per distinct prefix length instead of a scan of the host's routes.

use std::sync::Arc;

// Keyed by the configuration's hosts and prefixes; a request only looks up.
// foldhash costs a fraction of SipHash per lookup, and is seeded per process.
use foldhash::HashMap;

use super::Route;
use crate::rules::{Expr, HostKeys, Matcher, RequestInfo};

#[derive(Debug, Default)]
pub struct HostIndex {
    exact: HashMap<Box<str>, PathIndex>,
    /// Keyed by suffix including the leading dot: `.example.com`.
    wildcard: HashMap<Box<str>, PathIndex>,
    fallback: PathIndex,
    len: usize,
}

/// Most lookups merge at most this many lists without allocating.
const INLINE_LISTS: usize = 8;

/// Below this many routes a list is scanned: a short scan is cheaper than
/// hashing the path.
const PATH_INDEX_MIN: usize = 16;

/// The routes of one host (or suffix, or the fallback), each list in rank
/// order.
#[derive(Debug, Default)]
struct PathIndex {
    /// Routes that may match any path.
    any_path: Vec<Arc<Route>>,
    /// Routes that only match paths starting with the key.
    by_prefix: HashMap<Box<str>, Vec<Arc<Route>>>,
    /// The distinct key lengths of `by_prefix`, ascending.
    lengths: Vec<usize>,
}

impl PathIndex {
    fn new(routes: Vec<Arc<Route>>) -> Self {
        if routes.len() < PATH_INDEX_MIN {
            return PathIndex {
                any_path: routes,
                ..PathIndex::default()
            };
        }
        let mut index = PathIndex::default();
        for route in routes {
            match required_prefix(&route.expr) {
                Some(prefix) => index
                    .by_prefix
                    .entry(prefix.into())
                    .or_default()
                    .push(route),
                None => index.any_path.push(route),
            }
        }
        index.lengths = index.by_prefix.keys().map(|k| k.len()).collect();
        index.lengths.sort_unstable();
        index.lengths.dedup();
        index
    }

    fn is_empty(&self) -> bool {
        self.any_path.is_empty() && self.by_prefix.is_empty()
    }

    fn candidates<'a>(&'a self, path: &str, lists: &mut Candidates<'a>) {
        if !self.any_path.is_empty() {
            lists.push(&self.any_path);
        }
        for &len in &self.lengths {
            if len > path.len() {
                break;
            }
            if let Some(head) = path.get(..len)
                && let Some(list) = self.by_prefix.get(head)
            {
                lists.push(list);
            }
        }
    }
}

/// A non-empty prefix every path the rule matches starts with, if the rule
/// requires one: a `PathPrefix`, `Path` (v1: with an optional trailing
/// slash) among its top-level `&&` operands. `||` and `!` promise nothing.
fn required_prefix(expr: &Expr) -> Option<&str> {
    match expr {
        Expr::Match(Matcher::PathPrefix(p) | Matcher::Path(p) | Matcher::PathOptionalSlash(p)) => {
            Some(p.as_str()).filter(|p| !p.is_empty())
        }
        Expr::And(a, b) => match (required_prefix(a), required_prefix(b)) {
            (Some(x), Some(y)) => Some(if x.len() >= y.len() { x } else { y }),
            (x, y) => x.or(y),
        },
        _ => None,
    }
}

impl HostIndex {
    /// Builds the index from routes already sorted by rank.
    pub fn build(routes: &[Arc<Route>]) -> Self {
        let mut index = HostIndex {
            len: routes.len(),
            ..HostIndex::default()
        };
        let mut fallback = Vec::new();
        for route in routes {
            match route.expr.host_keys() {
                HostKeys::Exact(hosts) => file(&mut index.exact, route, hosts),
                HostKeys::Wildcard(suffixes) => file(&mut index.wildcard, route, suffixes),
                HostKeys::Mixed {
                    exact: hosts,
                    wildcard: suffixes,
                } => {
                    file(&mut index.exact, route, hosts);
                    file(&mut index.wildcard, route, suffixes);
                }
                HostKeys::Any => fallback.push(route.clone()),
            }
        }
        // Routes were filed as `any_path`; index the long lists by path now,
        // in place rather than by moving every entry into new maps.
        for list in index.exact.values_mut().chain(index.wildcard.values_mut()) {
            if list.any_path.len() >= PATH_INDEX_MIN {
                *list = PathIndex::new(std::mem::take(&mut list.any_path));
            }
        }
        index.fallback = PathIndex::new(fallback);
        index
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The highest-ranked route whose rule matches the request.
    pub fn find(&self, req: &RequestInfo) -> Option<&Arc<Route>> {
        let mut lists = Candidates::default();
        if let Some(routes) = self.exact.get(req.host) {
            routes.candidates(req.path, &mut lists);
        }
        if !self.wildcard.is_empty() {
            let mut rest = req.host;
            while let Some(dot) = rest.find('.') {
                if let Some(routes) = self.wildcard.get(&rest[dot..]) {
                    routes.candidates(req.path, &mut lists);
                }
                rest = &rest[dot + 1..];
            }
        }
        if !self.fallback.is_empty() {
            self.fallback.candidates(req.path, &mut lists);
        }
        match &mut lists.spill {
            Some(all) => merge_find(all, req),
            None => merge_find(&mut lists.inline[..lists.len], req),
        }
    }
}

/// The candidate lists of one lookup: inline for the usual few, spilled to
/// the heap only for hosts with many wildcard-matching suffixes.
#[derive(Default)]
struct Candidates<'a> {
    inline: [&'a [Arc<Route>]; INLINE_LISTS],
    len: usize,
    spill: Option<Vec<&'a [Arc<Route>]>>,
}

impl<'a> Candidates<'a> {
    fn push(&mut self, list: &'a [Arc<Route>]) {
        if let Some(all) = &mut self.spill {
            all.push(list);
        } else if self.len < INLINE_LISTS {
            self.inline[self.len] = list;
            self.len += 1;
        } else {
            let mut all = self.inline.to_vec();
            all.push(list);
            self.spill = Some(all);
        }
    }
}

fn file(map: &mut HashMap<Box<str>, PathIndex>, route: &Arc<Route>, mut keys: Vec<&str>) {
    keys.sort_unstable();
    keys.dedup();
    for key in keys {
        map.entry(key.into())
            .or_default()
            .any_path
            .push(route.clone());
    }
}

/// Walks several rank-sorted lists in global rank order; first match wins.
fn merge_find<'a>(lists: &mut [&'a [Arc<Route>]], req: &RequestInfo) -> Option<&'a Arc<Route>> {
    if let [only] = lists {
        return only.iter().find(|r| r.expr.matches(req));
    }
    loop {
        let mut best: Option<usize> = None;
        for (i, list) in lists.iter().enumerate() {
            if let Some(head) = list.first()
                && best.is_none_or(|b| head.rank < lists[b][0].rank)
            {
                best = Some(i);
            }
        }
        let b = best?;
        let (head, rest) = lists[b].split_first()?;
        lists[b] = rest;
        if head.expr.matches(req) {
            return Some(head);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use http::{HeaderMap, Method};

    use super::*;
    use crate::routing::Target;
    use crate::rules::{RuleSyntax, parse};

    /// Routes from rules, ranked as the compiler ranks them.
    fn ranked(rules: &[String]) -> Vec<Arc<Route>> {
        crate::routing::ranked(
            rules
                .iter()
                .enumerate()
                .map(|(i, rule)| Route {
                    name: format!("r{i:04}").into(),
                    priority: rule.len() as i64,
                    rank: 0,
                    expr: parse(rule, RuleSyntax::V3).unwrap().expr,
                    layers: Vec::new(),
                    buffering: None,
                    target: Target::Internal("noop@internal".into()),
                })
                .collect(),
        )
    }

    fn linear<'a>(routes: &'a [Arc<Route>], req: &RequestInfo) -> Option<&'a Arc<Route>> {
        routes.iter().find(|r| r.expr.matches(req))
    }

    fn find_name(index: &HostIndex, host: &str, path: &str) -> Option<String> {
        let headers = HeaderMap::new();
        let req = RequestInfo {
            host,
            path,
            query: None,
            method: &Method::GET,
            headers: &headers,
            client_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        };
        index.find(&req).map(|r| r.name.to_string())
    }

    /// Every lookup answers what a scan of all routes in rank order answers,
    /// with long per-host lists (path-indexed) and short ones (scanned).
    #[test]
    fn agrees_with_linear_scan() {
        let mut rules = Vec::new();
        for t in 0..40 {
            rules.push(format!("Host(`alderaan`) && PathPrefix(`/t{t}`)"));
            rules.push(format!("Host(`alderaan`) && PathPrefix(`/t{t}/app`)"));
            rules.push(format!("PathPrefix(`/t{t}/app/api`) && Host(`alderaan`)"));
        }
        rules.extend([
            "Host(`alderaan`) && Path(`/exact`)".to_string(),
            "Host(`alderaan`) && (PathPrefix(`/a`) || PathPrefix(`/b`))".to_string(),
            "Host(`alderaan`) && !PathPrefix(`/t1`)".to_string(),
            "Host(`alderaan`) && PathPrefix(`/`)".to_string(),
            "Host(`alderaan`)".to_string(),
            "Host(`*.example.com`) && PathPrefix(`/w`)".to_string(),
            "Host(`app.example.com`) && PathPrefix(`/w/x`)".to_string(),
            "PathPrefix(`/t3/app`)".to_string(),
            "PathPrefix(`/static`)".to_string(),
            "Host(`other`) && PathPrefix(`/é`)".to_string(),
        ]);
        for p in 0..20 {
            rules.push(format!("PathPrefix(`/fb{p}`) && Method(`GET`)"));
        }
        let routes = ranked(&rules);
        let index = HostIndex::build(&routes);
        let hosts = [
            "alderaan",
            "app.example.com",
            "x.example.com",
            "other",
            "none",
        ];
        let paths = [
            "/",
            "/t1",
            "/t1/",
            "/t10/app",
            "/t1/app/api/v1",
            "/t3/app/x",
            "/t39/app/api",
            "/exact",
            "/exact/",
            "/a/1",
            "/b",
            "/static/x",
            "/w",
            "/w/x/y",
            "/é/ü",
            "/éx",
            "/fb7/z",
            "/fb1",
            "/fb19x",
            "",
        ];
        let headers = HeaderMap::new();
        for host in hosts {
            for path in paths {
                let req = RequestInfo {
                    host,
                    path,
                    query: None,
                    method: &Method::GET,
                    headers: &headers,
                    client_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
                };
                let want = linear(&routes, &req).map(|r| r.name.to_string());
                let got = index.find(&req).map(|r| r.name.to_string());
                assert_eq!(got, want, "{host}{path}");
            }
        }
    }

    #[test]
    fn long_host_list_is_filed_by_prefix() {
        let rules: Vec<String> = (0..100)
            .map(|t| format!("Host(`alderaan`) && PathPrefix(`/t{t}/ludotheque`)"))
            .collect();
        let index = HostIndex::build(&ranked(&rules));
        let host = &index.exact["alderaan"];
        assert!(host.any_path.is_empty());
        assert_eq!(host.by_prefix.len(), 100);
        assert_eq!(host.lengths, vec![14, 15]);
        assert_eq!(
            find_name(&index, "alderaan", "/t42/ludotheque/index.php").as_deref(),
            Some("r0042")
        );
        assert_eq!(find_name(&index, "alderaan", "/t100/ludotheque"), None);
    }

    #[test]
    fn short_lists_are_scanned() {
        let rules: Vec<String> = (0..3)
            .map(|t| format!("Host(`a`) && PathPrefix(`/t{t}`)"))
            .collect();
        let index = HostIndex::build(&ranked(&rules));
        assert_eq!(index.exact["a"].any_path.len(), 3);
        assert!(index.exact["a"].by_prefix.is_empty());
    }
}
