//! What an HTTP/1 request addresses, checked before routing as RFC 9112
//! asks and Go's server (so Traefik) does: exactly one valid `Host`, taken
//! from the target when the target is in absolute form, and a target of a
//! form a reverse proxy serves. A request that fails is answered 400 (501
//! for `CONNECT`, which escale does not tunnel; 417 for an `Expect` other
//! than `100-continue`) and never routed.

use http::header::{self, HeaderValue};
use http::{Method, Version, request};

use super::error::ProxyError;

/// Checks `parts` of an HTTP/1 request and, for an absolute-form target
/// (`GET http://host/path`), makes its authority the `Host` (RFC 9112
/// §3.2.2: the Host header is then ignored). HTTP/2 requests carry
/// `:authority` and pass untouched.
pub fn check(parts: &mut request::Parts) -> Result<(), ProxyError> {
    if parts.version >= Version::HTTP_2 {
        return Ok(());
    }
    if parts.method == Method::CONNECT {
        return Err(ProxyError::NotImplemented("CONNECT"));
    }
    if let Some(authority) = parts.uri.authority() {
        // `GET x`: http's parser takes a bare word for an authority.
        if parts.uri.scheme().is_none() {
            return Err(bad("invalid request target"));
        }
        let host = match authority.port() {
            Some(port) => HeaderValue::from_str(&format!("{}:{}", authority.host(), port)),
            None => HeaderValue::from_str(authority.host()),
        };
        let host = host.map_err(|_| bad("malformed host in request target"))?;
        parts.headers.insert(header::HOST, host);
    } else if !parts.uri.path().starts_with('/') && parts.method != Method::OPTIONS {
        // Only `OPTIONS *` has a target that is neither a path nor a URL.
        return Err(bad("invalid request target"));
    }
    // As Go's server: the only expectation HTTP defines is 100-continue.
    if let Some(expect) = parts.headers.get(header::EXPECT)
        && !expect.as_bytes().eq_ignore_ascii_case(b"100-continue")
    {
        return Err(ProxyError::ExpectationFailed);
    }
    let mut hosts = parts.headers.get_all(header::HOST).iter();
    match (hosts.next(), hosts.next()) {
        (None, _) if parts.version == Version::HTTP_11 => Err(bad("missing required Host header")),
        (Some(_), Some(_)) => Err(bad("too many Host headers")),
        (Some(host), None) if !valid_host(host.as_bytes()) => Err(bad("malformed Host header")),
        _ => Ok(()),
    }
}

fn bad(why: &'static str) -> ProxyError {
    ProxyError::BadRequest(why.into())
}

/// Whether a Host value holds only the bytes a host, an IP literal and a
/// port may be written with (Go's `httpguts.ValidHostHeader`): unreserved
/// characters, sub-delims, `%`, `:` and brackets.
pub(super) fn valid_host(host: &[u8]) -> bool {
    host.iter().all(|&b| HOST_BYTES[usize::from(b)])
}

/// The bytes a Host may hold, as a table: every relayed request's Host is
/// checked byte by byte.
static HOST_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'!' | b'$'
                    | b'%'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b'-'
                    | b'.'
                    | b':'
                    | b';'
                    | b'='
                    | b'['
                    | b']'
                    | b'_'
                    | b'~'
            );
        b += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(method: &str, target: &str, version: Version, hosts: &[&str]) -> request::Parts {
        let mut req = http::Request::builder()
            .method(method)
            .uri(target)
            .version(version);
        for h in hosts {
            req = req.header(header::HOST, *h);
        }
        req.body(()).unwrap().into_parts().0
    }

    fn checked(
        method: &str,
        target: &str,
        version: Version,
        hosts: &[&str],
    ) -> Result<Vec<String>, String> {
        let mut p = parts(method, target, version, hosts);
        check(&mut p).map_err(|e| e.to_string())?;
        Ok(p.headers
            .get_all(header::HOST)
            .iter()
            .map(|h| h.to_str().unwrap().to_owned())
            .collect())
    }

    #[test]
    fn one_valid_host_is_required_in_http_1_1() {
        let v11 = Version::HTTP_11;
        assert_eq!(
            checked("GET", "/", v11, &["a.test"]),
            Ok(vec!["a.test".into()])
        );
        assert_eq!(
            checked("GET", "/", v11, &["[::1]:8080"]),
            Ok(vec!["[::1]:8080".into()])
        );
        assert_eq!(
            checked("GET", "/", v11, &[]),
            Err("bad request: missing required Host header".into())
        );
        // HTTP/1.0 had no Host: routed as no host (a 404 without a catch-all).
        assert_eq!(checked("GET", "/", Version::HTTP_10, &[]), Ok(vec![]));
        assert_eq!(
            checked("GET", "/", v11, &["a.test", "b.test"]),
            Err("bad request: too many Host headers".into())
        );
        assert_eq!(
            checked("GET", "/", v11, &["a test"]),
            Err("bad request: malformed Host header".into())
        );
        assert_eq!(
            checked("GET", "/", v11, &["a.test/x"]),
            Err("bad request: malformed Host header".into())
        );
    }

    #[test]
    fn host_bytes_are_those_of_go_s_valid_host_header() {
        let allowed: Vec<u8> = (b'a'..=b'z')
            .chain(b'A'..=b'Z')
            .chain(b'0'..=b'9')
            .chain(*b"!$%&'()*+,-.:;=[]_~")
            .collect();
        for b in 0..=255u8 {
            assert_eq!(valid_host(&[b]), allowed.contains(&b), "byte {b:#04x}");
        }
        assert!(valid_host(b"[fe80::1%25eth0]:443"));
        assert!(!valid_host("é.test".as_bytes()));
    }

    #[test]
    fn an_absolute_target_gives_the_host() {
        let v11 = Version::HTTP_11;
        assert_eq!(
            checked("GET", "http://a.test/x", v11, &["other"]),
            Ok(vec!["a.test".into()])
        );
        assert_eq!(
            checked("GET", "https://user@a.test:8443/x", v11, &[]),
            Ok(vec!["a.test:8443".into()])
        );
    }

    #[test]
    fn targets_a_reverse_proxy_does_not_serve_are_refused() {
        let v11 = Version::HTTP_11;
        assert_eq!(
            checked("GET", "x", v11, &["a.test"]),
            Err("bad request: invalid request target".into())
        );
        assert_eq!(
            checked("GET", "*", v11, &["a.test"]),
            Err("bad request: invalid request target".into())
        );
        assert!(checked("OPTIONS", "*", v11, &["a.test"]).is_ok());
        let mut connect = parts("CONNECT", "a.test:443", v11, &["a.test:443"]);
        assert_eq!(
            check(&mut connect).map_err(|e| e.status()),
            Err(http::StatusCode::NOT_IMPLEMENTED)
        );
        let mut expecting = parts("PUT", "/", v11, &["a.test"]);
        expecting
            .headers
            .insert(header::EXPECT, HeaderValue::from_static("100-Continue"));
        assert!(check(&mut expecting).is_ok());
        expecting
            .headers
            .insert(header::EXPECT, HeaderValue::from_static("something"));
        assert_eq!(
            check(&mut expecting).map_err(|e| e.status()),
            Err(http::StatusCode::EXPECTATION_FAILED)
        );
        // HTTP/2 requests are left alone.
        assert!(checked("GET", "/", Version::HTTP_2, &[]).is_ok());
    }
}
