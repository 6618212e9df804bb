//! The web dashboard: a few static files compiled into the binary, so it
//! works offline and needs no build step. It reads the API and follows
//! `/api/events` for live updates.

use http::{HeaderValue, Request, Response, StatusCode, header};

use crate::proxy::body::{Body, text_response};

const INDEX: &str = include_str!("dashboard/index.html");
const APP_JS: &str = include_str!("dashboard/app.js");
const STYLE: &str = include_str!("dashboard/style.css");
const ICON: &str = include_str!("dashboard/icon.svg");

/// Nothing but our own origin: no CDN, no inline script.
const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; connect-src 'self'; base-uri 'none'; frame-ancestors 'none'";

fn asset(path: &str) -> Option<(&'static str, &'static str)> {
    Some(match path {
        "" | "index.html" => (INDEX, "text/html; charset=utf-8"),
        "app.js" => (APP_JS, "text/javascript; charset=utf-8"),
        "style.css" => (STYLE, "text/css; charset=utf-8"),
        "icon.svg" => (ICON, "image/svg+xml"),
        _ => return None,
    })
}

fn redirect(to: &str) -> Response<Body> {
    let mut res = Response::new(Body::empty());
    *res.status_mut() = StatusCode::MOVED_PERMANENTLY;
    if let Ok(v) = HeaderValue::from_str(to) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    res
}

/// Serves `/dashboard/…`; `/` and `/dashboard` redirect there, as
/// Traefik's dashboard router does.
pub fn handle(req: &Request<Body>) -> Response<Body> {
    let path = req.uri().path();
    if path == "/" || path == "/dashboard" {
        return redirect("/dashboard/");
    }
    let Some(file) = path.strip_prefix("/dashboard/") else {
        return text_response(StatusCode::NOT_FOUND, "404 page not found\n");
    };
    let Some((body, content_type)) = asset(file) else {
        return text_response(StatusCode::NOT_FOUND, "404 page not found\n");
    };
    let mut res = Response::new(Body::full(body));
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(path: &str) -> Response<Body> {
        handle(&Request::get(path).body(Body::empty()).unwrap())
    }

    #[test]
    fn serves_embedded_assets_and_redirects() {
        assert_eq!(get("/dashboard/").status(), 200);
        assert_eq!(get("/dashboard/app.js").status(), 200);
        assert_eq!(get("/dashboard/nope.js").status(), 404);
        let r = get("/");
        assert_eq!(r.status(), 301);
        assert_eq!(r.headers()[header::LOCATION], "/dashboard/");
    }

    #[test]
    fn assets_reference_nothing_remote() {
        for (name, text) in [("index", INDEX), ("app", APP_JS), ("style", STYLE)] {
            assert!(
                !text.contains("http://") && !text.contains("https://") && !text.contains("//cdn"),
                "{name} must not load anything remote"
            );
        }
    }
}
