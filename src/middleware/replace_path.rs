//! `replacePath`: replaces the whole path, keeping the original (as sent)
//! in `X-Replaced-Path`.

use http::{HeaderName, HeaderValue, request};

use super::gourl::{GoPath, unescape_path};
use super::reqhead::{BadRequest, parse_path, set_path};
use super::{Flow, Layer, MiddlewareError, RequestCtx};
use crate::config::dynamic;

pub(super) static X_REPLACED_PATH: HeaderName = HeaderName::from_static("x-replaced-path");

#[derive(Debug)]
pub struct ReplacePath {
    name: String,
    path: GoPath,
}

impl ReplacePath {
    /// The qualified name this layer was built for.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn new(name: &str, cfg: &dynamic::ReplacePath) -> Result<Self, MiddlewareError> {
        // Traefik finds a bad escape on every request (and answers 500);
        // the configuration is the same each time, so say it once here.
        let decoded = unescape_path(&cfg.path).map_err(|e| {
            MiddlewareError::new(name, format!("replacePath.path: `{}`: {e}", cfg.path))
        })?;
        Ok(ReplacePath {
            name: name.to_owned(),
            path: GoPath {
                path: decoded.into_owned(),
                raw_path: cfg.path.clone(),
            },
        })
    }
}

/// Records the path being replaced, as Traefik's path rewriters do.
pub(super) fn add_replaced_path(req: &mut request::Parts, current: &str) -> Result<(), BadRequest> {
    let value = HeaderValue::from_str(current).map_err(|_| BadRequest)?;
    req.headers.append(X_REPLACED_PATH.clone(), value);
    Ok(())
}

impl Layer for ReplacePath {
    fn on_request(&self, req: &mut request::Parts, _ctx: &mut RequestCtx) -> Flow {
        let url = match parse_path(req) {
            Ok(u) => u,
            Err(e) => return e.into(),
        };
        if let Err(e) = add_replaced_path(req, &url.current()) {
            return e.into();
        }
        match set_path(req, &self.path.request_uri_path()) {
            Ok(()) => Flow::Continue,
            Err(e) => e.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::middleware::reqhead::tests::run_layer;

    fn run(path: &str, uri: &str) -> (u16, String, Vec<String>) {
        let mw = ReplacePath::new("rp@file", &dynamic::ReplacePath { path: path.into() }).unwrap();
        let (status, req) = run_layer(&mw, uri);
        let headers = req
            .headers
            .get_all(&X_REPLACED_PATH)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        (status, req.uri.to_string(), headers)
    }

    #[test]
    fn traefik_cases() {
        let cases = [
            (
                "/example",
                "/replacement-path",
                "/replacement-path",
                "/example",
            ),
            (
                "/some/really/long/path",
                "/replacement-path",
                "/replacement-path",
                "/some/really/long/path",
            ),
            (
                "/foo%2Fbar",
                "/replacement-path",
                "/replacement-path",
                "/foo%2Fbar",
            ),
            ("/path", "/foo%2Fbar", "/foo%2Fbar", "/path"),
            (
                "/path/%08bar",
                "/path/%08bar",
                "/path/%08bar",
                "/path/%08bar",
            ),
        ];
        for (uri, replacement, want_uri, want_header) in cases {
            let (status, got_uri, headers) = run(replacement, uri);
            assert_eq!(status, 200);
            assert_eq!(got_uri, want_uri, "{uri}");
            assert_eq!(headers, [want_header], "{uri}");
        }
    }

    #[test]
    fn query_kept_and_odd_replacements() {
        assert_eq!(run("/new", "/old?a=b").1, "/new?a=b");
        assert_eq!(run("", "/old").1, "/");
        assert_eq!(run("/a b", "/old").1, "/a%20b");
        assert_eq!(run("/new", "/old%zz").0, 400);
    }

    #[test]
    fn bad_escape_is_a_build_error() {
        let err = ReplacePath::new(
            "rp@file",
            &dynamic::ReplacePath {
                path: "/a%zz".into(),
            },
        )
        .unwrap_err();
        assert_eq!(
            err.message,
            r#"replacePath.path: `/a%zz`: invalid URL escape "%zz""#
        );
    }
}
