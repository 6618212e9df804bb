//! Header rewriting between client and backend: hop-by-hop removal and the
//! `X-Forwarded-*` family, following Traefik's forwarded-headers rules.

use std::net::IpAddr;

use http::header::{self, Entry, HeaderMap, HeaderName, HeaderValue};
use ipnet::IpNet;

pub static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
pub static X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");
pub static X_FORWARDED_SERVER: HeaderName = HeaderName::from_static("x-forwarded-server");
pub static X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

pub static X_FORWARDED_URI: HeaderName = HeaderName::from_static("x-forwarded-uri");
pub static X_FORWARDED_METHOD: HeaderName = HeaderName::from_static("x-forwarded-method");
static X_FORWARDED_PREFIX: HeaderName = HeaderName::from_static("x-forwarded-prefix");
static X_FORWARDED_TLS_CLIENT_CERT: HeaderName =
    HeaderName::from_static("x-forwarded-tls-client-cert");
static X_FORWARDED_TLS_CLIENT_CERT_INFO: HeaderName =
    HeaderName::from_static("x-forwarded-tls-client-cert-info");

/// Headers only a trusted proxy in front of us may set (Traefik's
/// `XHeadersSet`).
pub static FORWARDED_FAMILY: [&HeaderName; 11] = [
    &X_FORWARDED_FOR,
    &X_FORWARDED_PROTO,
    &X_FORWARDED_HOST,
    &X_FORWARDED_PORT,
    &X_FORWARDED_SERVER,
    &X_FORWARDED_URI,
    &X_FORWARDED_METHOD,
    &X_FORWARDED_PREFIX,
    &X_FORWARDED_TLS_CLIENT_CERT,
    &X_FORWARDED_TLS_CLIENT_CERT_INFO,
    &X_REAL_IP,
];

static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// The hop-by-hop header (RFC 9110's, or a legacy one proxies drop) that
/// the raw name (any case) is. Every name of every head goes through it:
/// the length picks the one candidate.
#[inline]
pub fn hop_by_hop(name: &[u8]) -> Option<&'static HeaderName> {
    let first = name.first().map(u8::to_ascii_lowercase);
    let candidate = match name.len() {
        2 => &header::TE,
        7 if first == Some(b't') => &header::TRAILER,
        7 => &header::UPGRADE,
        10 if first == Some(b'c') => &header::CONNECTION,
        10 => &KEEP_ALIVE,
        16 => &PROXY_CONNECTION,
        17 => &header::TRANSFER_ENCODING,
        18 => &header::PROXY_AUTHENTICATE,
        19 => &header::PROXY_AUTHORIZATION,
        _ => return None,
    };
    name.eq_ignore_ascii_case(candidate.as_str().as_bytes())
        .then_some(candidate)
}

/// The tokens a `Connection` header carries that name no header to remove.
pub fn is_connection_option(token: &[u8]) -> bool {
    token.eq_ignore_ascii_case(b"close")
        || token.eq_ignore_ascii_case(b"keep-alive")
        || token.eq_ignore_ascii_case(b"upgrade")
}

/// Is `name` one of the forwarded family? A cheap test on the name's text
/// (most names are standard ones, which do not start with `x-`).
fn is_forwarded_family(name: &HeaderName) -> bool {
    let s = name.as_str();
    s.starts_with("x-") && FORWARDED_FAMILY.iter().any(|f| f.as_str() == s)
}

/// Removes every header of the forwarded family (Traefik's
/// `DeleteXForwardedHeaders`).
pub fn remove_forwarded_family(headers: &mut HeaderMap) {
    for name in FORWARDED_FAMILY {
        headers.remove(name);
    }
}

/// Who may set forwarded headers on an entrypoint.
#[derive(Debug, Clone, Default)]
pub struct ForwardedPolicy {
    pub insecure: bool,
    pub trusted: Vec<IpNet>,
}

impl ForwardedPolicy {
    pub fn trusts(&self, ip: IpAddr) -> bool {
        self.insecure || self.trusted.iter().any(|net| net.contains(&ip))
    }
}

/// Is this an `Upgrade` request (WebSocket and the like)? Returns the
/// upgrade protocol, lowercased comparison left to the caller.
pub fn upgrade_protocol(headers: &HeaderMap) -> Option<&HeaderValue> {
    let connection_has_upgrade = headers.get_all(header::CONNECTION).iter().any(|v| {
        v.to_str()
            .map(|s| {
                s.split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
            })
            .unwrap_or(false)
    });
    if connection_has_upgrade {
        headers.get(header::UPGRADE)
    } else {
        None
    }
}

/// Removes hop-by-hop headers, including those the `Connection` header names.
/// Most messages carry one or two of them at most: one pass over the names
/// present finds them, and only those are removed (each removal hashes).
pub fn remove_hop_by_hop(headers: &mut HeaderMap) {
    let mut present: [Option<&'static HeaderName>; 9] = [None; 9];
    let mut count = 0;
    let mut connection = false;
    for name in headers.keys() {
        if let Some(hop) = hop_by_hop(name.as_str().as_bytes()) {
            connection |= *hop == header::CONNECTION;
            present[count] = Some(hop);
            count += 1;
        }
    }
    if count == 0 {
        return;
    }
    if connection {
        // Names listed in Connection, other than its usual tokens.
        let mut named: Vec<HeaderName> = Vec::new();
        for value in headers.get_all(header::CONNECTION) {
            for token in value.as_bytes().split(|&b| b == b',') {
                let token = token.trim_ascii();
                if is_connection_option(token) {
                    continue;
                }
                if hop_by_hop(token).is_none()
                    && let Ok(name) = HeaderName::from_bytes(token)
                {
                    named.push(name);
                }
            }
        }
        for name in named {
            headers.remove(name);
        }
    }
    for name in present.into_iter().flatten() {
        headers.remove(name);
    }
}

/// What the forwarded headers describe about the incoming exchange.
pub struct ForwardedFacts<'a> {
    pub client_ip: IpAddr,
    /// `client_ip` as a header value, formatted once per connection.
    pub client_ip_value: &'a HeaderValue,
    /// `http` or `https`.
    pub scheme: &'static str,
    pub websocket: bool,
    /// The Host the client asked for (with port if it gave one).
    pub host: Option<&'a HeaderValue>,
    pub default_port: u16,
    pub server_name: &'a HeaderValue,
}

/// Sets the `X-Forwarded-*` headers at the entrypoint, before routing and
/// middlewares (as Traefik does). Values from an untrusted client are dropped
/// first, so a visitor cannot forge its address or scheme.
/// `X-Forwarded-For` gets the client appended later, when forwarding.
pub fn apply_forwarded(headers: &mut HeaderMap, policy: &ForwardedPolicy, facts: &ForwardedFacts) {
    if !policy.trusts(facts.client_ip) && headers.keys().any(is_forwarded_family) {
        for name in FORWARDED_FAMILY {
            headers.remove(name);
        }
    }
    // Room for the headers added below, in one step.
    headers.reserve(6);
    if let Entry::Vacant(e) = headers.entry(X_FORWARDED_PROTO.clone()) {
        let proto = match (facts.websocket, facts.scheme) {
            (true, "https") => "wss",
            (true, _) => "ws",
            (false, "https") => "https",
            (false, _) => "http",
        };
        e.insert(HeaderValue::from_static(proto));
    }
    if let Some(host) = facts.host
        && let Ok(host_str) = host.to_str()
    {
        if let Entry::Vacant(e) = headers.entry(X_FORWARDED_HOST.clone()) {
            e.insert(host.clone());
        }
        if let Entry::Vacant(e) = headers.entry(X_FORWARDED_PORT.clone()) {
            e.insert(match port_of(host_str).unwrap_or(facts.default_port) {
                80 => HeaderValue::from_static("80"),
                443 => HeaderValue::from_static("443"),
                port => HeaderValue::from(port),
            });
        }
    }
    headers.insert(X_FORWARDED_SERVER.clone(), facts.server_name.clone());
    if let Entry::Vacant(e) = headers.entry(X_REAL_IP.clone()) {
        e.insert(facts.client_ip_value.clone());
    }
}

/// Appends the client to `X-Forwarded-For`, as Go's ReverseProxy does.
/// `client_ip` is the client's address as a header value.
pub fn append_forwarded_for(headers: &mut HeaderMap, client_ip: &HeaderValue) {
    let mut joined: Vec<u8> = Vec::new();
    for prior in headers.get_all(&X_FORWARDED_FOR) {
        if prior.is_empty() {
            continue;
        }
        if !joined.is_empty() {
            joined.extend_from_slice(b", ");
        }
        joined.extend_from_slice(prior.as_bytes());
    }
    let value = if joined.is_empty() {
        client_ip.clone()
    } else {
        joined.extend_from_slice(b", ");
        joined.extend_from_slice(client_ip.as_bytes());
        match HeaderValue::from_maybe_shared(bytes::Bytes::from(joined)) {
            Ok(v) => v,
            Err(_) => return,
        }
    };
    headers.insert(X_FORWARDED_FOR.clone(), value);
}

/// An address as a header value (`192.0.2.7`, `2001:db8::1`).
pub fn ip_header_value(ip: IpAddr) -> HeaderValue {
    let formatted = match ip {
        // `Display` (with its padding support) costs more than a thousand
        // instructions, paid by every new connection.
        IpAddr::V4(v4) => {
            let mut text = [0u8; 15];
            let len = ipv4_text(v4.octets(), &mut text);
            HeaderValue::from_bytes(&text[..len])
        }
        // An address formats to ASCII digits, colons, dots and hex letters only.
        IpAddr::V6(_) => HeaderValue::from_str(&ip.to_string()),
    };
    formatted.unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Writes `a.b.c.d` in decimal, without leading zeros; returns its length.
fn ipv4_text(octets: [u8; 4], text: &mut [u8; 15]) -> usize {
    let mut len = 0;
    let mut push = |byte: u8| {
        text[len] = byte;
        len += 1;
    };
    for (i, octet) in octets.into_iter().enumerate() {
        if i > 0 {
            push(b'.');
        }
        if octet >= 100 {
            push(b'0' + octet / 100);
        }
        if octet >= 10 {
            push(b'0' + octet / 10 % 10);
        }
        push(b'0' + octet % 10);
    }
    len
}

/// The explicit port of a `host[:port]` or `[v6]:port` authority.
pub fn port_of(host: &str) -> Option<u16> {
    let colon = host.bytes().rposition(|b| b == b':')?;
    if host.starts_with('[') && !host[..colon].ends_with(']') {
        return None;
    }
    host[colon + 1..].parse().ok()
}

/// The host part of a `host[:port]` authority, without brackets' port.
pub fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        // IPv6 literal: keep the brackets' content.
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.bytes().rposition(|b| b == b':') {
        Some(colon) if host[colon + 1..].bytes().all(|b| b.is_ascii_digit()) => &host[..colon],
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_format_as_display_does() {
        for ip in [
            "0.0.0.0",
            "127.0.0.1",
            "10.0.9.255",
            "192.168.100.7",
            "255.255.255.255",
            "2001:db8::1",
            "::ffff:10.0.0.1",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(ip_header_value(ip).to_str().unwrap(), ip.to_string());
        }
    }

    fn facts(ip: &str) -> (IpAddr, HeaderValue, HeaderValue) {
        let ip: IpAddr = ip.parse().unwrap();
        (ip, ip_header_value(ip), HeaderValue::from_static("edge-1"))
    }

    #[test]
    fn every_hop_by_hop_header_is_removed() {
        let mut h = HeaderMap::new();
        for name in [
            "connection",
            "proxy-authenticate",
            "proxy-authorization",
            "te",
            "trailer",
            "transfer-encoding",
            "upgrade",
            "keep-alive",
            "proxy-connection",
        ] {
            h.insert(HeaderName::from_static(name), HeaderValue::from_static("x"));
        }
        h.insert("x-kept", HeaderValue::from_static("1"));
        h.insert(header::TRAILER, HeaderValue::from_static("x"));
        remove_hop_by_hop(&mut h);
        assert_eq!(h.keys().collect::<Vec<_>>(), ["x-kept"]);
    }

    #[test]
    fn strips_connection_named_headers() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, X-Secret"),
        );
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(header::TE, HeaderValue::from_static("gzip"));
        h.insert("x-kept", HeaderValue::from_static("1"));
        remove_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("x-kept"));
    }

    #[test]
    fn untrusted_client_cannot_forge() {
        let mut h = HeaderMap::new();
        h.insert(X_FORWARDED_FOR.clone(), HeaderValue::from_static("6.6.6.6"));
        h.insert(X_REAL_IP.clone(), HeaderValue::from_static("6.6.6.6"));
        h.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static("https"));
        let (ip, ip_value, server) = facts("192.0.2.7");
        let f = ForwardedFacts {
            client_ip: ip,
            client_ip_value: &ip_value,
            scheme: "http",
            websocket: false,
            host: Some(&HeaderValue::from_static("example.com:8000")),
            default_port: 80,
            server_name: &server,
        };
        apply_forwarded(&mut h, &ForwardedPolicy::default(), &f);
        assert!(!h.contains_key(&X_FORWARDED_FOR));
        append_forwarded_for(&mut h, f.client_ip_value);
        assert_eq!(h[&X_FORWARDED_FOR], "192.0.2.7");
        assert_eq!(h[&X_REAL_IP], "192.0.2.7");
        assert_eq!(h[&X_FORWARDED_PROTO], "http");
        assert_eq!(h[&X_FORWARDED_HOST], "example.com:8000");
        assert_eq!(h[&X_FORWARDED_PORT], "8000");
        assert_eq!(h[&X_FORWARDED_SERVER], "edge-1");
    }

    #[test]
    fn untrusted_client_loses_every_forwarded_header() {
        let mut h = HeaderMap::new();
        for name in FORWARDED_FAMILY {
            h.insert(name.clone(), HeaderValue::from_static("forged"));
        }
        h.insert("x-forwarded-other", HeaderValue::from_static("kept"));
        let (ip, ip_value, server) = facts("2001:db8::7");
        let f = ForwardedFacts {
            client_ip: ip,
            client_ip_value: &ip_value,
            scheme: "https",
            websocket: true,
            host: None,
            default_port: 443,
            server_name: &server,
        };
        apply_forwarded(&mut h, &ForwardedPolicy::default(), &f);
        for name in FORWARDED_FAMILY {
            let fresh = h.get(name).is_none_or(|v| v != "forged");
            assert!(fresh, "{name} was kept");
        }
        assert_eq!(h["x-forwarded-other"], "kept");
        assert_eq!(h[&X_REAL_IP], "2001:db8::7");
        assert_eq!(h[&X_FORWARDED_PROTO], "wss");
    }

    #[test]
    fn forwarded_for_joins_every_prior_value() {
        let mut h = HeaderMap::new();
        h.append(
            X_FORWARDED_FOR.clone(),
            HeaderValue::from_static("203.0.113.9"),
        );
        h.append(X_FORWARDED_FOR.clone(), HeaderValue::from_static(""));
        h.append(
            X_FORWARDED_FOR.clone(),
            HeaderValue::from_static("198.51.100.1"),
        );
        append_forwarded_for(&mut h, &HeaderValue::from_static("10.0.0.2"));
        let all: Vec<_> = h.get_all(&X_FORWARDED_FOR).iter().collect();
        assert_eq!(all, ["203.0.113.9, 198.51.100.1, 10.0.0.2"]);
    }

    #[test]
    fn messages_without_hop_by_hop_headers_are_untouched() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("a"));
        h.insert("x-kept", HeaderValue::from_static("1"));
        let before = h.clone();
        remove_hop_by_hop(&mut h);
        assert_eq!(h, before);
        h.insert("proxy-connection", HeaderValue::from_static("keep-alive"));
        h.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        remove_hop_by_hop(&mut h);
        assert_eq!(h, before);
    }

    #[test]
    fn trusted_client_chain_is_kept() {
        let mut h = HeaderMap::new();
        h.insert(
            X_FORWARDED_FOR.clone(),
            HeaderValue::from_static("203.0.113.9"),
        );
        h.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static("https"));
        let (ip, ip_value, server) = facts("10.0.0.2");
        let policy = ForwardedPolicy {
            insecure: false,
            trusted: vec!["10.0.0.0/8".parse().unwrap()],
        };
        let f = ForwardedFacts {
            client_ip: ip,
            client_ip_value: &ip_value,
            scheme: "http",
            websocket: false,
            host: Some(&HeaderValue::from_static("example.com")),
            default_port: 80,
            server_name: &server,
        };
        apply_forwarded(&mut h, &policy, &f);
        append_forwarded_for(&mut h, f.client_ip_value);
        assert_eq!(h[&X_FORWARDED_FOR], "203.0.113.9, 10.0.0.2");
        assert_eq!(h[&X_FORWARDED_PROTO], "https");
        assert_eq!(h[&X_FORWARDED_PORT], "80");
    }

    #[test]
    fn websocket_proto_and_upgrade_detection() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, Upgrade"),
        );
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        assert_eq!(upgrade_protocol(&h).unwrap(), "websocket");
        h.insert(header::CONNECTION, HeaderValue::from_static("close"));
        assert!(upgrade_protocol(&h).is_none());
    }

    #[test]
    fn host_port_helpers() {
        assert_eq!(strip_port("Example.com:80"), "Example.com");
        assert_eq!(strip_port("example.com"), "example.com");
        assert_eq!(strip_port("[::1]:8080"), "::1");
        assert_eq!(port_of("a:81"), Some(81));
        assert_eq!(port_of("[::1]"), None);
        assert_eq!(port_of("[::1]:9"), Some(9));
    }
}
