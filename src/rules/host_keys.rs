//! Host constraints extracted from a rule, for the router's host index. Sound by
//! construction: a rule reports hosts only when every request it matches has one of them.

use super::Expr;
use super::matcher::{Matcher, wildcard_matches};

/// What a rule requires of the Host.
///
/// Keys are lowercase and have no trailing dot: look the request host up with
/// [`super::trim_host_dot`] applied. `Exact(vec![])` means no host can satisfy the rule
/// (as in `Host(`a`) && Host(`b`)`).
///
/// The keys borrow the rule's matchers: the index copies each once, into its own key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKeys<'e> {
    /// Any matching request has one of these hosts.
    Exact(Vec<&'e str>),
    /// Suffixes such as `.example.com` from `Host(`*.example.com`)`: any matching request's
    /// host is one label followed by one of them.
    Wildcard(Vec<&'e str>),
    /// Any matching request's host is in `exact` or matches one of `wildcard`.
    Mixed {
        exact: Vec<&'e str>,
        wildcard: Vec<&'e str>,
    },
    /// No constraint could be extracted.
    Any,
}

/// The hosts of a (sub)expression; `Option::None` stands for "any host".
struct Keys<'e> {
    exact: Vec<&'e str>,
    wildcard: Vec<&'e str>,
}

pub(super) fn of(expr: &Expr) -> HostKeys<'_> {
    match keys(expr) {
        None => HostKeys::Any,
        Some(Keys { exact, wildcard }) if wildcard.is_empty() => HostKeys::Exact(exact),
        Some(Keys { exact, wildcard }) if exact.is_empty() => HostKeys::Wildcard(wildcard),
        Some(Keys { exact, wildcard }) => HostKeys::Mixed { exact, wildcard },
    }
}

fn keys(expr: &Expr) -> Option<Keys<'_>> {
    match expr {
        Expr::Match(Matcher::Host(host)) => Some(Keys {
            exact: vec![host.as_str()],
            wildcard: Vec::new(),
        }),
        Expr::Match(Matcher::HostWildcard(suffix)) => Some(Keys {
            exact: Vec::new(),
            wildcard: vec![suffix.as_str()],
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
fn intersect<'e>(a: Keys<'e>, b: Keys<'e>) -> Keys<'e> {
    let covered = |host: &&str, other: &Keys| {
        other.exact.contains(host) || other.wildcard.iter().any(|s| wildcard_matches(host, s))
    };
    let mut exact: Vec<&str> = a.exact.iter().filter(|h| covered(h, &b)).copied().collect();
    let from_b = b
        .exact
        .iter()
        .filter(|h| a.wildcard.iter().any(|s| wildcard_matches(h, s)))
        .copied()
        .collect();
    push_unique(&mut exact, from_b);
    let wildcard = a
        .wildcard
        .into_iter()
        .filter(|s| b.wildcard.contains(s))
        .collect();
    Keys { exact, wildcard }
}

fn push_unique<'e>(into: &mut Vec<&'e str>, from: Vec<&'e str>) {
    for item in from {
        if !into.contains(&item) {
            into.push(item);
        }
    }
}
