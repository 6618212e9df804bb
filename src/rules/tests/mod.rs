//! Unit tests of the rule grammars. Helpers here; one file per concern.

mod errors;
mod host_keys;
mod misc;
mod v1;
mod v2;
mod v3;

use std::net::IpAddr;

use http::{HeaderMap, HeaderName, HeaderValue, Method};

use super::{Expr, Matcher, ParsedRule, RequestInfo, RuleError, RuleSyntax, parse};

/// An owned request to build [`RequestInfo`] from.
struct Req {
    host: String,
    path: String,
    query: Option<String>,
    method: Method,
    headers: HeaderMap,
    ip: IpAddr,
}

/// `GET http://{host}{path_and_query}` from 192.0.2.1.
fn req(host: &str, path_and_query: &str) -> Req {
    let (path, query) = match path_and_query.split_once('?') {
        Some((p, q)) => (p, Some(q.to_string())),
        None => (path_and_query, None),
    };
    Req {
        host: host.to_string(),
        path: path.to_string(),
        query,
        method: Method::GET,
        headers: HeaderMap::new(),
        ip: "192.0.2.1".parse().expect("test ip"),
    }
}

impl Req {
    fn method(mut self, method: &str) -> Self {
        self.method = Method::from_bytes(method.as_bytes()).expect("test method");
        self
    }

    fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.append(
            HeaderName::from_bytes(name.as_bytes()).expect("test header name"),
            HeaderValue::from_str(value).expect("test header value"),
        );
        self
    }

    fn ip(mut self, ip: &str) -> Self {
        self.ip = ip.parse().expect("test ip");
        self
    }

    fn info(&self) -> RequestInfo<'_> {
        RequestInfo {
            host: &self.host,
            path: &self.path,
            query: self.query.as_deref(),
            method: &self.method,
            headers: &self.headers,
            client_ip: self.ip,
        }
    }
}

fn parsed(rule: &str, syntax: RuleSyntax) -> ParsedRule {
    match parse(rule, syntax) {
        Ok(parsed) => parsed,
        Err(e) => panic!("{e}\n{}", e.caret()),
    }
}

fn expr(rule: &str, syntax: RuleSyntax) -> Expr {
    parsed(rule, syntax).expr
}

/// Whether `rule` matches `request`.
fn hits(rule: &str, syntax: RuleSyntax, request: &Req) -> bool {
    expr(rule, syntax).matches(&request.info())
}

fn error(rule: &str, syntax: RuleSyntax) -> RuleError {
    match parse(rule, syntax) {
        Ok(parsed) => panic!("`{rule}` parsed as {}", show(&parsed.expr)),
        Err(e) => e,
    }
}

/// A compact, fully parenthesized rendering of an expression, to assert its shape.
fn show(e: &Expr) -> String {
    match e {
        Expr::And(a, b) => format!("({} && {})", show(a), show(b)),
        Expr::Or(a, b) => format!("({} || {})", show(a), show(b)),
        Expr::Not(a) => format!("!{}", show(a)),
        Expr::Match(m) => match m {
            Matcher::Any => "Any".to_string(),
            Matcher::Host(h) => format!("Host({h})"),
            Matcher::HostWildcard(s) => format!("HostWildcard({s})"),
            Matcher::HostRegexp(r) => format!("HostRegexp({})", r.as_str()),
            Matcher::Path(p) => format!("Path({p})"),
            Matcher::PathOptionalSlash(p) => format!("PathOptionalSlash({p})"),
            Matcher::PathPrefix(p) => format!("PathPrefix({p})"),
            Matcher::PathRegexp(r) => format!("PathRegexp({})", r.as_str()),
            Matcher::Method(m) => format!("Method({m})"),
            Matcher::Header { name, value } => format!("Header({name}, {value})"),
            Matcher::HeaderRegexp { name, regex } => {
                format!("HeaderRegexp({name}, {})", regex.as_str())
            }
            Matcher::Query { key, value } => format!("Query({key}, {value})"),
            Matcher::QueryRegexp { key, regex } => {
                format!("QueryRegexp({key}, {})", regex.as_str())
            }
            Matcher::QueryTemplate { key, regex } => {
                format!("QueryTemplate({key}, {})", regex.as_str())
            }
            Matcher::ClientIp(net) => format!("ClientIP({net})"),
        },
    }
}
