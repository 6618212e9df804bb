//! `stripPrefix`: removes the first configured prefix the path starts with
//! and reports it in `X-Forwarded-Prefix`.
//!
//! As in Traefik, the match is on the decoded path and is not bound to
//! segments (`/stat` strips `/status` to `/us`); the client's encoding of the
//! remainder is kept; a remainder that path cleaning would change
//! (`/api./x` minus `/api`) is refused with a 400.

use http::{HeaderName, HeaderValue, request};

use super::gourl::{GoPath, encoded_prefix_len, ensure_leading_slash, ensure_leading_slash_bytes};
use super::reqhead::{bad_request, parse_path, set_path};
use super::{Flow, Layer, MiddlewareError, RequestCtx};
use crate::config::dynamic;

pub(super) static X_FORWARDED_PREFIX: HeaderName = HeaderName::from_static("x-forwarded-prefix");

#[derive(Debug)]
pub struct StripPrefix {
    name: String,
    prefixes: Vec<(String, HeaderValue)>,
    force_slash: bool,
}

impl StripPrefix {
    /// The qualified name this layer was built for.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn new(name: &str, cfg: &dynamic::StripPrefix) -> Result<Self, MiddlewareError> {
        let prefixes = cfg
            .prefixes
            .iter()
            .map(|p| {
                let p = p.trim();
                HeaderValue::from_str(p)
                    .map(|v| (p.to_owned(), v))
                    .map_err(|_| {
                        MiddlewareError::new(
                            name,
                            format!("stripPrefix.prefixes: `{p}` is not a valid header value"),
                        )
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(StripPrefix {
            name: name.to_owned(),
            prefixes,
            force_slash: cfg.force_slash.unwrap_or(false),
        })
    }

    fn strip(&self, rest: &str) -> String {
        if self.force_slash {
            format!("/{}", rest.strip_prefix('/').unwrap_or(rest))
        } else {
            ensure_leading_slash(rest).into_owned()
        }
    }

    fn strip_bytes(&self, rest: &[u8]) -> Vec<u8> {
        if self.force_slash {
            let rest = rest.strip_prefix(b"/").unwrap_or(rest);
            let mut out = Vec::with_capacity(rest.len() + 1);
            out.push(b'/');
            out.extend_from_slice(rest);
            out
        } else {
            ensure_leading_slash_bytes(rest)
        }
    }
}

impl Layer for StripPrefix {
    fn on_request(&self, req: &mut request::Parts, _ctx: &mut RequestCtx) -> Flow {
        let url = match parse_path(req) {
            Ok(u) => u,
            Err(e) => return e.into(),
        };
        let Some((prefix, header)) = self
            .prefixes
            .iter()
            .find(|(p, _)| url.path.starts_with(p.as_bytes()))
        else {
            return Flow::Continue;
        };
        let mut stripped = GoPath {
            path: self.strip_bytes(&url.path[prefix.len()..]),
            raw_path: String::new(),
        };
        if !url.raw_path.is_empty() {
            let at = encoded_prefix_len(&url.raw_path, prefix.len());
            let Some(rest) = url.raw_path.get(at..) else {
                return Flow::Respond(bad_request());
            };
            stripped.raw_path = self.strip(rest);
        }
        if !stripped.is_clean() {
            return Flow::Respond(bad_request());
        }
        req.headers
            .append(X_FORWARDED_PREFIX.clone(), header.clone());
        match set_path(req, &stripped.request_uri_path()) {
            Ok(()) => Flow::Continue,
            Err(e) => e.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::middleware::reqhead::tests::{parts, run_layer};
    use std::net::Ipv4Addr;

    fn run(prefixes: &[&str], force_slash: bool, uri: &str) -> (u16, String, Vec<String>) {
        let mw = StripPrefix::new(
            "strip@file",
            &dynamic::StripPrefix {
                prefixes: prefixes.iter().map(|s| s.to_string()).collect(),
                force_slash: Some(force_slash),
            },
        )
        .unwrap();
        let (status, req) = run_layer(&mw, uri);
        let headers = req
            .headers
            .get_all(&X_FORWARDED_PREFIX)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect();
        (status, req.uri.to_string(), headers)
    }

    #[test]
    #[allow(clippy::type_complexity)]
    fn traefik_cases() {
        // (prefixes, request path, status, forwarded URI, X-Forwarded-Prefix)
        let cases: &[(&[&str], &str, u16, &str, &[&str])] = &[
            (&[], "/noprefixes", 200, "/noprefixes", &[]),
            (&["/"], "/", 200, "/", &["/"]),
            (&["/stat"], "/stat", 200, "/", &["/stat"]),
            (&["/stat/"], "/stat/", 200, "/", &["/stat/"]),
            (&["/stat/"], "/stat/us", 200, "/us", &["/stat/"]),
            (&["/stat/"], "/status", 200, "/status", &[]),
            (&["/stat"], "/stat/", 200, "/", &["/stat"]),
            (&["/stat", "/stat/us"], "/stat/us", 200, "/us", &["/stat"]),
            (&["/mismatch", "/stat"], "/stat", 200, "/", &["/stat"]),
            (&["/stat"], "/status", 200, "/us", &["/stat"]),
            (&["/stat"], "/stat/a%2Fb", 200, "/a%2Fb", &["/stat"]),
            (&["/api/"], "/ap%69/a%2Fb", 200, "/a%2Fb", &["/api/"]),
            (&["/api"], "/api./foo", 400, "", &[]),
            (&["/api"], "/api../foo", 400, "", &[]),
        ];
        for (prefixes, path, status, uri, header) in cases {
            let (got_status, got_uri, got_header) = run(prefixes, false, path);
            assert_eq!(got_status, *status, "{prefixes:?} {path}");
            if *status == 200 {
                assert_eq!(got_uri, *uri, "{prefixes:?} {path}");
                assert_eq!(got_header, *header, "{prefixes:?} {path}");
            }
        }
    }

    #[test]
    fn force_slash_still_refuses_dot_segments() {
        assert_eq!(run(&["/api"], true, "/api../foo").0, 400);
        let (status, uri, _) = run(&["/api/"], true, "/api/");
        assert_eq!((status, uri.as_str()), (200, "/"));
        let (status, uri, _) = run(&["/api"], true, "/api/x");
        assert_eq!((status, uri.as_str()), (200, "/x"));
    }

    #[test]
    fn query_is_kept_and_prefix_is_trimmed() {
        let (status, uri, header) = run(
            &[" /ludotm/ludotheque "],
            false,
            "/ludotm/ludotheque/index.php?a=1&b",
        );
        assert_eq!(status, 200);
        assert_eq!(uri, "/index.php?a=1&b");
        assert_eq!(header, ["/ludotm/ludotheque"]);
    }

    #[test]
    fn traversal_after_strip_is_refused() {
        assert_eq!(run(&["/api"], false, "/api/../admin").0, 400);
        assert_eq!(run(&["/api"], false, "/api//etc").0, 400);
        // Only the prefix goes: `/api/` leaves `/etc`, which is clean.
        assert_eq!(run(&["/api/"], false, "/api//etc").1, "/etc");
        // Encoded dots are data for Go and stay encoded.
        let (status, uri, _) = run(&["/api"], false, "/api/%2e%2e/x");
        assert_eq!((status, uri.as_str()), (200, "/%2e%2e/x"));
    }

    #[test]
    fn bad_escapes_and_odd_targets_do_not_panic() {
        assert_eq!(run(&["/a"], false, "/a%zz").0, 400);
        assert_eq!(run(&["/a"], false, "/a%").0, 400);
        assert_eq!(run(&["/"], false, "*").0, 200);
        // A prefix ending inside a multi-byte character of the path.
        let (status, _, _) = run(&["/\u{e9}"], false, "/%C3%A9t%C3%A9");
        assert_eq!(status, 200);
        let (status, uri, _) = run(&["/caf"], false, "/caf%C3%A9");
        assert_eq!((status, uri.as_str()), (200, "/%C3%A9"));
    }

    #[test]
    fn second_strip_appends_header() {
        let first = StripPrefix::new(
            "a",
            &dynamic::StripPrefix {
                prefixes: vec!["/a".into()],
                force_slash: None,
            },
        )
        .unwrap();
        let second = StripPrefix::new(
            "b",
            &dynamic::StripPrefix {
                prefixes: vec!["/b".into()],
                force_slash: None,
            },
        )
        .unwrap();
        let mut req = parts("/a/b/c");
        let mut ctx = RequestCtx::new(Ipv4Addr::LOCALHOST.into(), "http");
        assert!(matches!(
            first.on_request(&mut req, &mut ctx),
            Flow::Continue
        ));
        assert!(matches!(
            second.on_request(&mut req, &mut ctx),
            Flow::Continue
        ));
        assert_eq!(req.uri, "/c");
        let all: Vec<_> = req.headers.get_all(&X_FORWARDED_PREFIX).iter().collect();
        assert_eq!(all, ["/a", "/b"]);
    }

    #[test]
    fn invalid_prefix_is_a_build_error() {
        let err = StripPrefix::new(
            "s@file",
            &dynamic::StripPrefix {
                prefixes: vec!["/a\u{7f}".into()],
                force_slash: None,
            },
        )
        .unwrap_err();
        assert_eq!(err.middleware, "s@file");
        assert!(err.message.contains("stripPrefix.prefixes"), "{err}");
    }
}
