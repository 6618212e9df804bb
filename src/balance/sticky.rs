//! Sticky sessions by cookie, with Traefik v3's names and values.
//!
//! - The default cookie name is `_` and 5 hex digits of
//!   SHA-1(`_TRAEFIK_BACKEND_` + qualified service name); a configured name
//!   is sanitized as Go's `cookie.GetName` does.
//! - The value is the first 16 hex digits of SHA-256 of the server URL, so
//!   it never shows the backend's address, and a cookie set by Traefik for
//!   the same server URL keeps working after a switch to escale.
//! - Values Traefik accepts for compatibility (the raw URL, and one or two
//!   rounds of FNV-1 64) are accepted too, and the cookie is rewritten.

use std::sync::Arc;

use http::HeaderMap;
use http::header::HeaderValue;
use sha1::{Digest, Sha1};

use super::ServerState;
use crate::config::dynamic;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StickyCookie {
    name: String,
    path: String,
    domain: Option<String>,
    max_age: i64,
    http_only: bool,
    secure: bool,
    same_site: Option<&'static str>,
}

/// The server a request's cookie points to.
#[derive(Debug, Clone)]
pub struct Stuck {
    pub server: Arc<ServerState>,
    /// The cookie used a legacy value and must be rewritten.
    pub rewrite: bool,
}

/// Traefik's default cookie name for a (qualified) service name.
pub fn default_name(service: &str) -> String {
    let digest = Sha1::digest(format!("_TRAEFIK_BACKEND_{service}").as_bytes());
    let hex = hex(&digest);
    format!("_{}", &hex[..5])
}

/// The cookie value that identifies a server (Traefik's `sha256Hash`).
pub fn server_id(url: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, url.as_bytes());
    let hex = hex(digest.as_ref());
    hex[..16].to_string()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Go's `hash/fnv` New64 (FNV-1, not 1a), formatted as Traefik does.
fn fnv1_hex(input: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in input.as_bytes() {
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        hash ^= u64::from(*b);
    }
    format!("{hash:x}")
}

/// RFC 2616 token characters are kept, anything else becomes `_`.
fn sanitize_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "!#$%&'*+-.^`|~".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

impl StickyCookie {
    pub fn new(service: &str, c: &dynamic::StickyCookie) -> Self {
        let name = match c.name.as_deref() {
            Some(n) if !n.is_empty() => sanitize_name(n),
            _ => default_name(service),
        };
        let same_site = match c
            .same_site
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("none") => Some("None"),
            Some("lax") => Some("Lax"),
            Some("strict") => Some("Strict"),
            _ => None,
        };
        StickyCookie {
            name,
            path: c.path.clone().unwrap_or_else(|| "/".to_string()),
            domain: c
                .domain
                .as_deref()
                .map(|d| d.trim_start_matches('.').to_string())
                .filter(|d| !d.is_empty()),
            max_age: c.max_age.unwrap_or(0),
            http_only: c.http_only,
            secure: c.secure,
            same_site,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The request's cookie value, if it sent one (surrounding quotes
    /// removed, as Go does).
    fn value<'h>(&self, headers: &'h HeaderMap) -> Option<&'h str> {
        super::cookie(headers, &self.name).map(|v| {
            v.strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(v)
        })
    }

    /// The server the request's cookie names, whatever its health.
    pub fn find(&self, headers: &HeaderMap, servers: &[Arc<ServerState>]) -> Option<Stuck> {
        self.find_by(headers, servers, |s| &s.url)
            .map(|(i, rewrite)| Stuck {
                server: servers[i].clone(),
                rewrite,
            })
    }

    /// Which of `items` the request's cookie names (by the name `key`
    /// gives: a server's URL, a child service's name), and whether the
    /// cookie used a legacy value and must be rewritten.
    pub fn find_by<T>(
        &self,
        headers: &HeaderMap,
        items: &[T],
        key: impl Fn(&T) -> &str,
    ) -> Option<(usize, bool)> {
        let value = self.value(headers)?;
        if let Some(i) = items.iter().position(|t| server_id(key(t)) == value) {
            return Some((i, false));
        }
        items
            .iter()
            .position(|t| {
                let name = key(t);
                name == value || {
                    let once = fnv1_hex(name);
                    once == value || fnv1_hex(&once) == value
                }
            })
            .map(|i| (i, true))
    }

    /// The `Set-Cookie` value pinning the client to `server`.
    pub fn set_cookie(&self, server: &ServerState) -> Option<HeaderValue> {
        self.set_cookie_for(&server.url)
    }

    /// The `Set-Cookie` value pinning the client to what `name` names.
    pub fn set_cookie_for(&self, name: &str) -> Option<HeaderValue> {
        let mut cookie = format!("{}={}", self.name, server_id(name));
        let path: String = self
            .path
            .chars()
            .filter(|c| *c != ';' && !c.is_control())
            .collect();
        if !path.is_empty() {
            cookie.push_str("; Path=");
            cookie.push_str(&path);
        }
        if let Some(domain) = &self.domain {
            cookie.push_str("; Domain=");
            cookie.push_str(domain);
        }
        // Go: a negative MaxAge means "expire now", zero means no attribute.
        if self.max_age > 0 {
            cookie.push_str(&format!("; Max-Age={}", self.max_age));
        } else if self.max_age < 0 {
            cookie.push_str("; Max-Age=0");
        }
        if self.http_only {
            cookie.push_str("; HttpOnly");
        }
        if self.secure {
            cookie.push_str("; Secure");
        }
        if let Some(same_site) = self.same_site {
            cookie.push_str("; SameSite=");
            cookie.push_str(same_site);
        }
        HeaderValue::from_str(&cookie).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(url: &str) -> Arc<ServerState> {
        Arc::new(ServerState::new(url, 1, None).unwrap())
    }

    fn cookie_header(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(http::header::COOKIE, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn same_cookie_as_traefik_3_7() {
        // `Set-Cookie: _b2112=10d8eb39449320b2; Path=/`, answered by Traefik
        // 3.7.9 for service `svc@file` with server `http://127.0.0.1:1`.
        let sticky = StickyCookie::new("svc@file", &dynamic::StickyCookie::default());
        let v = sticky.set_cookie(&server("http://127.0.0.1:1")).unwrap();
        assert_eq!(v, "_b2112=10d8eb39449320b2; Path=/");
    }

    #[test]
    fn names_and_values_match_traefik() {
        // Go: fmt.Sprintf("_%x", sha1.Sum([]byte("_TRAEFIK_BACKEND_"+name)))[:6]
        let name = default_name("whoami@docker");
        assert_eq!(name.len(), 6);
        assert!(name.starts_with('_'));
        let digest = hex(&Sha1::digest(b"_TRAEFIK_BACKEND_whoami@docker"));
        assert_eq!(&name[1..], &digest[..5]);
        assert_eq!(server_id("http://127.0.0.1:8081").len(), 16);
        assert_eq!(
            server_id("abc"),
            "ba7816bf8f01cfea",
            "SHA-256 of `abc` starts with ba7816bf8f01cfea"
        );
        assert_eq!(sanitize_name("my cookie;é"), "my_cookie__");
        assert_eq!(fnv1_hex(""), "cbf29ce484222325");
    }

    #[test]
    fn cookie_attributes_and_hidden_address() {
        let s = server("http://10.0.1.5:8080");
        let cfg = dynamic::StickyCookie {
            http_only: true,
            secure: true,
            same_site: Some("LAX".into()),
            max_age: Some(-1),
            domain: Some(".example.org".into()),
            ..Default::default()
        };
        let sticky = StickyCookie::new("web@docker", &cfg);
        let v = sticky.set_cookie(&s).unwrap();
        let v = v.to_str().unwrap();
        assert!(!v.contains("10.0.1.5"), "{v}");
        assert_eq!(
            v,
            format!(
                "{}={}; Path=/; Domain=example.org; Max-Age=0; HttpOnly; Secure; SameSite=Lax",
                default_name("web@docker"),
                server_id("http://10.0.1.5:8080")
            )
        );
        let plain = StickyCookie::new(
            "web@docker",
            &dynamic::StickyCookie {
                name: Some("sticky".into()),
                max_age: Some(60),
                path: Some("/app".into()),
                ..Default::default()
            },
        );
        let v = plain.set_cookie(&s).unwrap();
        assert!(
            v.to_str().unwrap().ends_with("; Path=/app; Max-Age=60"),
            "{v:?}"
        );
    }

    #[test]
    fn finds_current_and_legacy_values() {
        let servers = vec![server("http://10.0.0.1:80"), server("http://10.0.0.2:80")];
        let sticky = StickyCookie::new(
            "s@file",
            &dynamic::StickyCookie {
                name: Some("lb".into()),
                ..Default::default()
            },
        );
        let id = server_id("http://10.0.0.2:80");
        let found = sticky
            .find(&cookie_header(&format!("a=b; lb={id}")), &servers)
            .unwrap();
        assert_eq!(
            (found.server.url.as_str(), found.rewrite),
            ("http://10.0.0.2:80", false)
        );
        let found = sticky
            .find(&cookie_header(&format!("lb=\"{id}\"")), &servers)
            .unwrap();
        assert!(!found.rewrite, "quoted values are unquoted");
        for legacy in [
            "http://10.0.0.1:80".to_string(),
            fnv1_hex("http://10.0.0.1:80"),
            fnv1_hex(&fnv1_hex("http://10.0.0.1:80")),
        ] {
            let found = sticky
                .find(&cookie_header(&format!("lb={legacy}")), &servers)
                .unwrap();
            assert_eq!(found.server.url, "http://10.0.0.1:80");
            assert!(found.rewrite);
        }
        assert!(sticky.find(&cookie_header("lb=nope"), &servers).is_none());
        assert!(sticky.find(&cookie_header("other=x"), &servers).is_none());
    }
}
