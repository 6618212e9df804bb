//! Validation of matcher values shared by the three syntaxes. Each function returns the
//! message of the problem; the caller adds the rule and position.

use std::net::IpAddr;

use http::{HeaderName, Method};
use ipnet::IpNet;
use regex::Regex;

use super::compile_go_regex;
use super::matcher::Matcher;
use super::template::{self, Kind};

/// A literal host. With `wildcards` (v3 only), `*` matches any host and `*.example.com` any
/// single-label subdomain.
pub(super) fn host(value: &str, wildcards: bool) -> Result<Matcher, String> {
    if !value.is_ascii() {
        return Err(format!(
            "non-ASCII host `{value}`; write it in punycode (xn--...)"
        ));
    }
    let mut lower = value.to_ascii_lowercase();
    if wildcards {
        if lower == "*" {
            return Ok(Matcher::Any);
        }
        if let Some(domain) = lower.strip_prefix("*.") {
            let domain = plain_host(value, domain, wildcards)?;
            return Ok(Matcher::HostWildcard(format!(".{domain}")));
        }
    }
    // `plain_host` returns a prefix of `lower`: keep that, without a copy.
    let len = plain_host(value, &lower, wildcards)?.len();
    lower.truncate(len);
    Ok(Matcher::Host(lower))
}

fn plain_host<'h>(value: &str, host: &'h str, wildcards: bool) -> Result<&'h str, String> {
    if host.contains('*') {
        return Err(if wildcards {
            "`*` is only allowed as the whole first label of a host, as in `*.example.com`"
                .to_string()
        } else {
            "wildcard hosts need the v3 rule syntax; use HostRegexp".to_string()
        });
    }
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.is_empty() {
        return Err(format!("invalid host `{value}`"));
    }
    let has_port = if host.starts_with('[') {
        host.contains("]:")
    } else {
        host.contains(':')
    };
    if has_port {
        return Err(format!(
            "unexpected port in host `{value}`; hosts are matched without their port"
        ));
    }
    Ok(host)
}

/// A v1/v2 `HostRegexp` template; a template without variables is a plain host.
pub(super) fn host_template(value: &str) -> Result<Matcher, String> {
    if !value.is_ascii() {
        return Err(format!(
            "non-ASCII host `{value}`; write it in punycode (xn--...)"
        ));
    }
    if !template::is_template(value) {
        if value.contains('*') {
            return Err(
                "`*` is not a wildcard in HostRegexp templates; write `{sub:[a-z0-9-]+}.example.com`"
                    .to_string(),
            );
        }
        return host(value, false);
    }
    Ok(Matcher::HostRegexp(template::compile(value, Kind::Host)?))
}

pub(super) fn path(value: &str) -> Result<String, String> {
    if !value.starts_with('/') {
        return Err(format!("path `{value}` must start with `/`"));
    }
    Ok(value.to_string())
}

/// A v1/v2 path or path prefix template.
pub(super) fn path_template(value: &str, kind: Kind) -> Result<Matcher, String> {
    let literal = path(value)?;
    if template::is_template(value) {
        return Ok(Matcher::PathRegexp(template::compile(value, kind)?));
    }
    Ok(match kind {
        Kind::PathPrefix => Matcher::PathPrefix(literal),
        Kind::Path { strict_slash: true } => {
            let base = literal.strip_suffix('/').unwrap_or(&literal);
            Matcher::PathOptionalSlash(base.to_string())
        }
        _ => Matcher::Path(literal),
    })
}

pub(super) fn regex(value: &str) -> Result<Regex, String> {
    compile_go_regex(value)
        .map_err(|e| format!("invalid regex `{value}`: {}", short_regex_error(&e)))
}

/// The regex crate's syntax errors span several lines with an ASCII diagram; keep the reason.
pub(super) fn short_regex_error(e: &regex::Error) -> String {
    let text = e.to_string();
    match text
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("error: "))
    {
        Some(reason) => reason.to_string(),
        None => text.lines().map(str::trim).collect::<Vec<_>>().join(" "),
    }
}

/// Traefik uppercases the method, then compares exactly.
pub(super) fn method(value: &str) -> Result<Method, String> {
    Method::from_bytes(value.to_ascii_uppercase().as_bytes())
        .map_err(|_| format!("invalid method `{value}`"))
}

pub(super) fn header_name(value: &str) -> Result<HeaderName, String> {
    HeaderName::from_bytes(value.as_bytes()).map_err(|_| format!("invalid header name `{value}`"))
}

pub(super) fn client_ip(value: &str) -> Result<IpNet, String> {
    if let Ok(ip) = value.parse::<IpAddr>() {
        // Go compares an IPv4-mapped IPv6 address equal to its IPv4 form.
        return Ok(IpNet::from(ip.to_canonical()));
    }
    value
        .parse::<IpNet>()
        .map(|net| net.trunc())
        .map_err(|_| format!("invalid IP or CIDR `{value}`"))
}
