//! Router rule grammars and matchers.
//!
//! Three syntaxes are understood, all compiled into the same [`Expr`] tree:
//!
//! - **v3** (Traefik v3, the default): `Host(`a.com`) && (PathPrefix(`/api`) || !Method(`GET`))`.
//! - **v2** (`ruleSyntax: v2`): the same expression grammar with Traefik v2's matchers, which take
//!   several values (`Host(`a`, `b`)` means either host) and gorilla/mux templates
//!   (`HostRegexp(`{sub:[a-z]+}.example.com`)`).
//! - **v1** (Traefik 1.7 frontend rules): `Host:a.com,b.com;PathPrefixStrip:/api`, where `;` is AND
//!   and `,` is OR. Its modifiers (`PathPrefixStrip`, `AddPrefix`, ...) come back as
//!   [`ParsedRule::modifiers`], which the caller turns into middlewares with
//!   [`Modifier::to_middleware`].
//!
//! Parsing is done once, when the route table is compiled; [`Expr::matches`] is the hot path and
//! compares in place, with regexes precompiled and hosts lowercased up front.

mod error;
mod expression;
mod host_keys;
mod lexer;
mod matcher;
mod modifier;
mod template;
mod v1;
mod v2;
mod v3;
mod values;

#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::net::IpAddr;

pub use crate::config::dynamic::RuleSyntax;
pub use error::RuleError;
pub use host_keys::HostKeys;
pub use matcher::Matcher;
pub use modifier::Modifier;

/// A rule, parsed and compiled.
#[derive(Debug, Clone)]
pub struct ParsedRule {
    pub expr: Expr,
    /// Path modifiers of a v1 rule, in the order v1 applies them to a request. Empty for v2/v3.
    pub modifiers: Vec<Modifier>,
}

/// A boolean combination of matchers.
#[derive(Debug, Clone)]
pub enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Match(Matcher),
}

/// What the matchers look at. Built by the proxy once per request.
#[derive(Debug, Clone, Copy)]
pub struct RequestInfo<'a> {
    /// The request host, lowercase, without its port.
    pub host: &'a str,
    /// The routing path: see [`routing_path`].
    pub path: &'a str,
    /// The raw (still percent-encoded) query string, without the `?`.
    pub query: Option<&'a str>,
    pub method: &'a http::Method,
    pub headers: &'a http::HeaderMap,
    /// The peer address of the connection (never taken from `X-Forwarded-For`).
    pub client_ip: IpAddr,
}

/// Parses `rule` in the given syntax.
pub fn parse(rule: &str, syntax: RuleSyntax) -> Result<ParsedRule, RuleError> {
    match syntax {
        RuleSyntax::V1 => v1::parse(rule),
        RuleSyntax::V2 => Ok(ParsedRule {
            expr: expression::parse(rule, &v2::GRAMMAR)?,
            modifiers: Vec::new(),
        }),
        RuleSyntax::V3 => Ok(ParsedRule {
            expr: expression::parse(rule, &v3::GRAMMAR)?,
            modifiers: Vec::new(),
        }),
    }
}

/// The priority Traefik gives a router without an explicit one: its rule's length in bytes.
pub fn default_priority(rule: &str) -> i64 {
    i64::try_from(rule.len()).unwrap_or(i64::MAX)
}

/// Compiles a regex written in Go's syntax, as Traefik configurations hold them (rule
/// matchers, and the stripPrefixRegex / replacePathRegex middlewares).
pub fn compile_go_regex(pattern: &str) -> Result<regex::Regex, regex::Error> {
    crate::goregex::compile(pattern)
}

/// Removes one trailing dot from a host, as the Host matchers do before comparing, so
/// `example.com.` finds the routes of `example.com` in a host index built from [`HostKeys`].
pub fn trim_host_dot(host: &str) -> &str {
    host.strip_suffix('.').unwrap_or(host)
}

/// The path Traefik v3 routes on: the escaped request path with percent-encoded *unreserved*
/// characters decoded (`/foo%20bar` is matched by `PathPrefix(`/foo bar`)`), while encoded
/// reserved characters such as `%2F` stay encoded so they cannot change the path's structure.
/// Returns `None` for a malformed percent-encoding, which Traefik answers with 400.
pub fn routing_path(escaped_path: &str) -> Option<Cow<'_, str>> {
    crate::percent::decode(escaped_path, is_reserved, false).map(crate::percent::lossy)
}

/// RFC 3986 gen-delims and sub-delims, plus `%` itself (Traefik's `reservedCharacters`).
fn is_reserved(b: u8) -> bool {
    matches!(b, b':' | b'/' | b'?' | b'#' | b'[' | b']' | b'@' | b'%')
        || crate::percent::is_sub_delim(b)
}

impl Expr {
    /// Whether the rule looks at the request's headers (other than Host,
    /// which the matchers take from `RequestInfo::host`).
    pub fn reads_headers(&self) -> bool {
        match self {
            Expr::And(a, b) | Expr::Or(a, b) => a.reads_headers() || b.reads_headers(),
            Expr::Not(e) => e.reads_headers(),
            Expr::Match(m) => m.reads_headers(),
        }
    }

    /// Whether the request satisfies the rule.
    pub fn matches(&self, req: &RequestInfo<'_>) -> bool {
        match self {
            Expr::And(a, b) => a.matches(req) && b.matches(req),
            Expr::Or(a, b) => a.matches(req) || b.matches(req),
            Expr::Not(e) => !e.matches(req),
            Expr::Match(m) => m.matches(req),
        }
    }

    /// The hosts a matching request can have, for the router's host index.
    pub fn host_keys(&self) -> HostKeys<'_> {
        host_keys::of(self)
    }

    /// `a || b || ...`, folded left as the grammar would build it.
    fn any_of(exprs: impl IntoIterator<Item = Expr>) -> Option<Expr> {
        exprs
            .into_iter()
            .reduce(|a, b| Expr::Or(Box::new(a), Box::new(b)))
    }

    /// `a && b && ...`, folded left.
    fn all_of(exprs: impl IntoIterator<Item = Expr>) -> Option<Expr> {
        exprs
            .into_iter()
            .reduce(|a, b| Expr::And(Box::new(a), Box::new(b)))
    }
}
