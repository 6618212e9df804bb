//! Routes of one entrypoint, indexed by host so that the cost of a lookup does
//! not grow with the number of hosts.
//!
//! A rule that pins its host (`Host(`a`) && PathPrefix(`/x`)`) is filed under
//! that host; `Host(`*.example.com`)` under its suffix; every other rule
//! (no host, `HostRegexp`, `!Host`) in a fallback list. A lookup merges the few
//! candidate lists by rank, the global priority order, and returns the first
//! route whose full rule matches, exactly as a linear scan over all routes in
//! priority order would.

use std::collections::HashMap;
use std::sync::Arc;

use super::Route;
use crate::rules::{HostKeys, RequestInfo};

#[derive(Debug, Default)]
pub struct HostIndex {
    exact: HashMap<Box<str>, Vec<Arc<Route>>>,
    /// Keyed by suffix including the leading dot: `.example.com`.
    wildcard: HashMap<Box<str>, Vec<Arc<Route>>>,
    fallback: Vec<Arc<Route>>,
    len: usize,
}

/// Most lookups merge at most this many lists without allocating.
const INLINE_LISTS: usize = 8;

impl HostIndex {
    /// Builds the index from routes already sorted by rank.
    pub fn build(routes: &[Arc<Route>]) -> Self {
        let mut index = HostIndex {
            len: routes.len(),
            ..HostIndex::default()
        };
        for route in routes {
            match route.expr.host_keys() {
                HostKeys::Exact(hosts) => index.file_exact(route, hosts),
                HostKeys::Wildcard(suffixes) => index.file_wildcard(route, suffixes),
                HostKeys::Mixed { exact, wildcard } => {
                    index.file_exact(route, exact);
                    index.file_wildcard(route, wildcard);
                }
                HostKeys::Any => index.fallback.push(route.clone()),
            }
        }
        index
    }

    fn file_exact(&mut self, route: &Arc<Route>, hosts: Vec<String>) {
        for host in dedup(hosts) {
            self.exact
                .entry(host.into())
                .or_default()
                .push(route.clone());
        }
    }

    fn file_wildcard(&mut self, route: &Arc<Route>, suffixes: Vec<String>) {
        for suffix in dedup(suffixes) {
            self.wildcard
                .entry(suffix.into())
                .or_default()
                .push(route.clone());
        }
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
        if let Some(list) = self.exact.get(req.host) {
            lists.push(list);
        }
        if !self.wildcard.is_empty() {
            let mut rest = req.host;
            while let Some(dot) = rest.find('.') {
                if let Some(list) = self.wildcard.get(&rest[dot..]) {
                    lists.push(list);
                }
                rest = &rest[dot + 1..];
            }
        }
        if !self.fallback.is_empty() {
            lists.push(&self.fallback);
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

fn dedup(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v.dedup();
    v
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
