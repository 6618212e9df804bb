use std::borrow::Cow;

use http::{HeaderName, Method};
use ipnet::IpNet;
use regex::Regex;

use super::{RequestInfo, trim_host_dot};

/// One compiled condition on a request.
#[derive(Debug, Clone)]
pub enum Matcher {
    /// Matches every request: v3 `Host(`*`)`, or a v1 rule made of modifiers only.
    Any,
    /// The host equals this one (lowercase, no trailing dot). A trailing dot on the request
    /// host is ignored, as Traefik does.
    Host(String),
    /// v3 `Host(`*.example.com`)`, stored as the suffix `.example.com`: exactly one non-empty
    /// label in front of it. Neither the apex nor deeper subdomains match.
    HostWildcard(String),
    /// Unanchored regex on the host (v3), or a gorilla/mux host template compiled to an
    /// anchored, case-insensitive regex (v1/v2).
    HostRegexp(Regex),
    /// The routing path equals this one.
    Path(String),
    /// v1 `Path`: the path equals this one (stored without a trailing slash) with or without
    /// one trailing slash, because Traefik 1.7 routes with gorilla/mux's strict slash on.
    PathOptionalSlash(String),
    /// The routing path starts with this string (a plain string prefix, not per segment).
    PathPrefix(String),
    /// Unanchored regex on the routing path (v3), or a compiled path template (v1/v2).
    PathRegexp(Regex),
    Method(Method),
    /// Some value of the header equals `value`.
    Header {
        name: HeaderName,
        value: String,
    },
    /// Some value of the header matches the unanchored `regex`.
    HeaderRegexp {
        name: HeaderName,
        regex: Regex,
    },
    /// v3: some decoded value of the query parameter equals `value`. `Query(`k`)` has an
    /// empty `value`: it matches `?k` and `?k=`, not `?k=v`.
    Query {
        key: String,
        value: String,
    },
    /// v3: some decoded value of the query parameter matches the unanchored `regex`.
    QueryRegexp {
        key: String,
        regex: Regex,
    },
    /// v1/v2 gorilla/mux `Queries`: the parameter is present and its *first* decoded value
    /// matches the anchored `regex` (compiled from the value template; `.*` when it is empty).
    QueryTemplate {
        key: String,
        regex: Regex,
    },
    /// The connection's peer address is in this network (a single IP is a /32 or /128).
    ClientIp(IpNet),
}

impl Matcher {
    /// Whether the matcher looks at the request's header map.
    pub fn reads_headers(&self) -> bool {
        matches!(self, Matcher::Header { .. } | Matcher::HeaderRegexp { .. })
    }

    pub fn matches(&self, req: &RequestInfo<'_>) -> bool {
        match self {
            Matcher::Any => true,
            Matcher::Host(host) => trim_host_dot(req.host).eq_ignore_ascii_case(host),
            Matcher::HostWildcard(suffix) => wildcard_matches(trim_host_dot(req.host), suffix),
            Matcher::HostRegexp(regex) => regex.is_match(req.host),
            Matcher::Path(path) => req.path == path,
            Matcher::PathOptionalSlash(path) => match req.path.strip_prefix(path.as_str()) {
                Some(rest) => rest.is_empty() || rest == "/",
                None => false,
            },
            Matcher::PathPrefix(prefix) => req.path.starts_with(prefix.as_str()),
            Matcher::PathRegexp(regex) => regex.is_match(req.path),
            Matcher::Method(method) => req.method == method,
            Matcher::Header { name, value } => req
                .headers
                .get_all(name)
                .iter()
                .any(|v| v.as_bytes() == value.as_bytes()),
            Matcher::HeaderRegexp { name, regex } => {
                req.headers.get_all(name).iter().any(|v| {
                    std::str::from_utf8(v.as_bytes()).is_ok_and(|text| regex.is_match(text))
                })
            }
            Matcher::Query { key, value } => {
                query_values(req.query, key).any(|v| v.as_ref() == value)
            }
            Matcher::QueryRegexp { key, regex } => {
                query_values(req.query, key).any(|v| regex.is_match(&v))
            }
            Matcher::QueryTemplate { key, regex } => query_values(req.query, key)
                .next()
                .is_some_and(|v| regex.is_match(&v)),
            Matcher::ClientIp(net) => net.contains(&req.client_ip.to_canonical()),
        }
    }
}

/// `suffix` is `.example.com`; `host` must be one label followed by it.
pub(super) fn wildcard_matches(host: &str, suffix: &str) -> bool {
    let (host, suffix) = (host.as_bytes(), suffix.as_bytes());
    if host.len() <= suffix.len() {
        return false;
    }
    let (label, tail) = host.split_at(host.len() - suffix.len());
    tail.eq_ignore_ascii_case(suffix) && !label.contains(&b'.')
}

/// The decoded values of `key` in a raw query string, in order, the way Go's
/// `url.ParseQuery` reads it: pairs split on `&`, pairs containing `;` or a malformed escape
/// skipped, `+` read as a space. Allocates only for keys or values that need decoding.
fn query_values<'q>(query: Option<&'q str>, key: &'q str) -> impl Iterator<Item = Cow<'q, str>> {
    query
        .unwrap_or("")
        .split('&')
        .filter(|pair| !pair.is_empty() && !pair.contains(';'))
        .filter_map(move |pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let k = unescape(k)?;
            if k != key {
                return None;
            }
            unescape(v)
        })
}

fn unescape(text: &str) -> Option<Cow<'_, str>> {
    crate::percent::decode(text, |_| false, true).map(crate::percent::lossy)
}
