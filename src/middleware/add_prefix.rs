//! `addPrefix`: prepends a fixed prefix to the path. The prefix is taken as
//! decoded text, as in Traefik, so it is escaped where Go would escape it.

use http::request;

use super::gourl::{ensure_leading_slash, ensure_leading_slash_bytes};
use super::reqhead::{parse_path, set_path};
use super::{Flow, Layer, MiddlewareError, RequestCtx};
use crate::config::dynamic;

#[derive(Debug)]
pub struct AddPrefix {
    name: String,
    prefix: String,
}

impl AddPrefix {
    /// The qualified name this layer was built for.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn new(name: &str, cfg: &dynamic::AddPrefix) -> Result<Self, MiddlewareError> {
        if cfg.prefix.is_empty() {
            return Err(MiddlewareError::new(
                name,
                "addPrefix.prefix: prefix cannot be empty",
            ));
        }
        Ok(AddPrefix {
            name: name.to_owned(),
            prefix: cfg.prefix.clone(),
        })
    }
}

impl Layer for AddPrefix {
    fn on_request(&self, req: &mut request::Parts, _ctx: &mut RequestCtx) -> Flow {
        let mut url = match parse_path(req) {
            Ok(u) => u,
            Err(e) => return e.into(),
        };
        let mut path = Vec::with_capacity(self.prefix.len() + url.path.len());
        path.extend_from_slice(self.prefix.as_bytes());
        path.extend_from_slice(&url.path);
        url.path = ensure_leading_slash_bytes(&path);
        if !url.raw_path.is_empty() {
            let raw = format!("{}{}", self.prefix, url.raw_path);
            url.raw_path = ensure_leading_slash(&raw).into_owned();
        }
        match set_path(req, &url.request_uri_path()) {
            Ok(()) => Flow::Continue,
            Err(e) => e.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::middleware::reqhead::tests::run_layer;

    fn run(prefix: &str, uri: &str) -> (u16, String) {
        let mw = AddPrefix::new(
            "add@file",
            &dynamic::AddPrefix {
                prefix: prefix.into(),
            },
        )
        .unwrap();
        let (status, req) = run_layer(&mw, uri);
        (status, req.uri.to_string())
    }

    #[test]
    fn traefik_cases() {
        assert_eq!(run("/a", "/b"), (200, "/a/b".into()));
        assert_eq!(run("a", "/"), (200, "/a/".into()));
        assert_eq!(run("/a", "/b%2Fc"), (200, "/a/b%2Fc".into()));
    }

    #[test]
    fn query_and_encoding() {
        assert_eq!(run("/api", "/x?y=1"), (200, "/api/x?y=1".into()));
        // The prefix is decoded text: Go escapes its space.
        assert_eq!(run("/my app", "/x"), (200, "/my%20app/x".into()));
        assert_eq!(run("/a", "/b%zz").0, 400);
    }

    #[test]
    fn empty_prefix_is_refused() {
        let err = AddPrefix::new("add@file", &dynamic::AddPrefix::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "middleware `add@file`: addPrefix.prefix: prefix cannot be empty"
        );
    }
}
