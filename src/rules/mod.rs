//! TEMPORARY stub of the rules API (replaced by the real grammar module).
use crate::config::dynamic::Middleware;
pub use crate::config::dynamic::RuleSyntax;

#[derive(Debug, Clone)]
pub struct ParsedRule {
    pub expr: Expr,
    pub modifiers: Vec<Modifier>,
}
#[derive(Debug, Clone)]
pub enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Match(Matcher),
}
#[derive(Debug, Clone)]
pub enum Matcher {
    Host(String),
    PathPrefix(String),
}
pub struct RequestInfo<'a> {
    pub host: &'a str,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub method: &'a http::Method,
    pub headers: &'a http::HeaderMap,
    pub client_ip: std::net::IpAddr,
}
#[derive(Debug, Clone)]
pub enum HostKeys {
    Exact(Vec<String>),
    Wildcard(Vec<String>),
    Mixed {
        exact: Vec<String>,
        wildcard: Vec<String>,
    },
    Any,
}
#[derive(Debug, Clone)]
pub enum Modifier {
    StripPrefix(Vec<String>),
}
impl Modifier {
    pub fn to_middleware(&self) -> Middleware {
        Middleware::default()
    }
}
#[derive(Debug, Clone, thiserror::Error)]
#[error("invalid rule `{rule}`: {message} at position {position}")]
pub struct RuleError {
    pub rule: String,
    pub position: usize,
    pub message: String,
}
impl Expr {
    pub fn matches(&self, req: &RequestInfo) -> bool {
        match self {
            Expr::And(a, b) => a.matches(req) && b.matches(req),
            Expr::Or(a, b) => a.matches(req) || b.matches(req),
            Expr::Not(a) => !a.matches(req),
            Expr::Match(Matcher::Host(h)) => req.host == h,
            Expr::Match(Matcher::PathPrefix(p)) => req.path.starts_with(p.as_str()),
        }
    }
    pub fn host_keys(&self) -> HostKeys {
        match self {
            Expr::Match(Matcher::Host(h)) => HostKeys::Exact(vec![h.clone()]),
            _ => HostKeys::Any,
        }
    }
}
pub fn parse(rule: &str, _syntax: RuleSyntax) -> Result<ParsedRule, RuleError> {
    let mut expr: Option<Expr> = None;
    for part in rule.split("&&") {
        let part = part.trim();
        let m = if let Some(v) = part
            .strip_prefix("Host(`")
            .and_then(|s| s.strip_suffix("`)"))
        {
            Matcher::Host(v.to_lowercase())
        } else if let Some(v) = part
            .strip_prefix("PathPrefix(`")
            .and_then(|s| s.strip_suffix("`)"))
        {
            Matcher::PathPrefix(v.to_string())
        } else {
            return Err(RuleError {
                rule: rule.into(),
                position: 0,
                message: "stub".into(),
            });
        };
        expr = Some(match expr {
            None => Expr::Match(m),
            Some(e) => Expr::And(Box::new(e), Box::new(Expr::Match(m))),
        });
    }
    Ok(ParsedRule {
        expr: expr.ok_or_else(|| RuleError {
            rule: rule.into(),
            position: 0,
            message: "empty".into(),
        })?,
        modifiers: vec![],
    })
}
pub fn default_priority(rule: &str) -> i64 {
    rule.len() as i64
}
