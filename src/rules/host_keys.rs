//! Host constraints extracted from a rule, for the router's host index. Sound by
//! construction: a rule reports hosts only when every request it matches has one of them.

use super::Expr;
use super::matcher::{Matcher, wildcard_matches};

/// What a rule requires of the Host.
///
/// Keys are lowercase and have no trailing dot: look the request host up with
/// [`super::trim_host_dot`] applied. `Exact(vec![])` means no host can satisfy the rule
/// (as in `Host(`a`) && Host(`b`)`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKeys {
    /// Any matching request has one of these hosts.
    Exact(Vec<String>),
    /// Suffixes such as `.example.com` from `Host(`*.example.com`)`: any matching request's
    /// host is one label followed by one of them.
    Wildcard(Vec<String>),
    /// Any matching request's host is in `exact` or matches one of `wildcard`.
    Mixed {
        exact: Vec<String>,
        wildcard: Vec<String>,
    },
    /// No constraint could be extracted.
    Any,
}

/// The hosts of a (sub)expression; `Option::None` stands for "any host".
struct Keys {
    exact: Vec<String>,
    wildcard: Vec<String>,
}

pub(super) fn of(expr: &Expr) -> HostKeys {
    match keys(expr) {
        None => HostKeys::Any,
        Some(Keys { exact, wildcard }) if wildcard.is_empty() => HostKeys::Exact(exact),
        Some(Keys { exact, wildcard }) if exact.is_empty() => HostKeys::Wildcard(wildcard),
        Some(Keys { exact, wildcard }) => HostKeys::Mixed { exact, wildcard },
    }
}

fn keys(expr: &Expr) -> Option<Keys> {
    match expr {
        Expr::Match(Matcher::Host(host)) => Some(Keys {
            exact: vec![host.clone()],
            wildcard: Vec::new(),
        }),
        Expr::Match(Matcher::HostWildcard(suffix)) => Some(Keys {
            exact: Vec::new(),
            wildcard: vec![suffix.clone()],
        }),
        // Negation turns "one of these hosts" into "any host but these": nothing to index.
        Expr::Match(_) | Expr::Not(_) => None,
        Expr::And(a, b) => match (keys(a), keys(b)) {
            (None, other) | (other, None) => other,
            (Some(a), Some(b)) => Some(intersect(a, b)),
        },
        Expr::Or(a, b) => {
            let (mut a, b) = (keys(a)?, keys(b)?);
            push_unique(&mut a.exact, b.exact);
            push_unique(&mut a.wildcard, b.wildcard);
            Some(a)
        }
    }
}

/// Hosts satisfying both sides. A wildcard covers exactly one label, so two different
/// wildcard suffixes never match the same host, and an exact host survives a wildcard side
/// only if that wildcard matches it.
fn intersect(a: Keys, b: Keys) -> Keys {
    let covered = |host: &String, other: &Keys| {
        other.exact.contains(host) || other.wildcard.iter().any(|s| wildcard_matches(host, s))
    };
    let mut exact: Vec<String> = a.exact.iter().filter(|h| covered(h, &b)).cloned().collect();
    let from_b = b
        .exact
        .iter()
        .filter(|h| a.wildcard.iter().any(|s| wildcard_matches(h, s)))
        .cloned()
        .collect();
    push_unique(&mut exact, from_b);
    let wildcard = a
        .wildcard
        .into_iter()
        .filter(|s| b.wildcard.contains(s))
        .collect();
    Keys { exact, wildcard }
}

fn push_unique(into: &mut Vec<String>, from: Vec<String>) {
    for item in from {
        if !into.contains(&item) {
            into.push(item);
        }
    }
}
