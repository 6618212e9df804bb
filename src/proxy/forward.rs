//! Forwarding one request to a service: pick a server, rewrite the head,
//! send over a pooled connection, relay the response (or the upgraded
//! connection) back.

use std::net::IpAddr;
use std::sync::Arc;

use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode, Version, request};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

use super::body::{Body, ExchangeGuard};
use super::error::ProxyError;
use super::headers;
use super::pool::Sender;
use crate::balance::ServerState;
use crate::middleware::NoXForwardedFor;
use crate::routing::ServiceRuntime;

/// Facts about the client side the forwarder needs.
pub struct ClientSide {
    pub client_ip: IpAddr,
}

/// The outcome of a forward attempt, with the server it went to (if any),
/// for logs and metrics.
pub struct Forwarded {
    pub result: Result<Response<Body>, ProxyError>,
    pub server: Option<Arc<ServerState>>,
}

pub async fn forward(
    service: &ServiceRuntime,
    mut parts: request::Parts,
    body: Body,
    client: &ClientSide,
) -> Forwarded {
    let upgrade = headers::upgrade_protocol(&parts.headers).cloned();
    let client_upgrade = upgrade
        .as_ref()
        .and_then(|_| parts.extensions.remove::<OnUpgrade>());
    let original_host = request_host(&parts);

    let sticky = service
        .sticky
        .as_ref()
        .map(|c| sticky::Sticky::new(&service.name, c));
    let sticky_server = sticky
        .as_ref()
        .and_then(|s| s.find(&parts.headers, service.balancer.servers()));

    headers::remove_hop_by_hop(&mut parts.headers);
    // A headers middleware may ask for no X-Forwarded-For at all.
    if parts.extensions.get::<NoXForwardedFor>().is_none() {
        headers::append_forwarded_for(&mut parts.headers, client.client_ip);
    }
    if let Some(proto) = &upgrade {
        parts
            .headers
            .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        parts.headers.insert(header::UPGRADE, proto.clone());
    }

    // Servers already attempted, by address (raw pointers are not Send).
    let mut tried: Vec<usize> = Vec::new();
    let mut request_body = Some(body);
    let mut last_error = ProxyError::NoServer;
    let mut last_server = None;
    loop {
        let server = match &sticky_server {
            Some(s) if tried.is_empty() => Some(s.clone()),
            _ => service
                .balancer
                .pick_where(|s| {
                    s.is_available() && !tried.contains(&(s as *const ServerState as usize))
                })
                .or_else(|| {
                    // Fail open, but never retry the same server.
                    service
                        .balancer
                        .pick_where(|s| !tried.contains(&(s as *const ServerState as usize)))
                })
                .cloned(),
        };
        let Some(server) = server else {
            return Forwarded {
                result: Err(last_error),
                server: last_server,
            };
        };
        tried.push(Arc::as_ptr(&server) as usize);
        let config = &service.transport.config;
        let mut sender = match server
            .pool
            .checkout(&server.upstream.authority, server.h2c, config)
            .await
        {
            Ok(s) => s,
            Err(e) => {
                // Nothing was sent: the request can safely go elsewhere.
                server.record_failure();
                tracing::warn!(service = %service.name, server = %server.url, error = %e, "connect failed, trying another server");
                last_error = ProxyError::Connect(e);
                last_server = Some(server);
                continue;
            }
        };

        let Some(body) = request_body.take() else {
            return Forwarded {
                result: Err(ProxyError::Internal("request body already consumed".into())),
                server: Some(server),
            };
        };
        let req =
            match build_upstream_request(&parts, &server, service, original_host.as_ref(), body) {
                Ok(r) => r,
                Err(e) => {
                    return Forwarded {
                        result: Err(e),
                        server: Some(server),
                    };
                }
            };

        let in_flight = server.start_request();
        let sent = send(&mut sender, req, config.response_header_timeout).await;
        let response = match sent {
            SendOutcome::Response(r) => r,
            SendOutcome::NotSent(req) => {
                // The pooled connection closed under us before the request
                // left: retry it on a fresh connection.
                request_body = Some(req.into_body());
                tried.pop();
                continue;
            }
            SendOutcome::Failed(e) => {
                server.record_failure();
                return Forwarded {
                    result: Err(e),
                    server: Some(server),
                };
            }
        };

        let (mut res_parts, res_body) = response.into_parts();
        let switching = res_parts.status == StatusCode::SWITCHING_PROTOCOLS;
        if switching && let Some(client_upgrade) = client_upgrade {
            let upstream_upgrade = res_parts.extensions.remove::<OnUpgrade>();
            spawn_tunnel(client_upgrade, upstream_upgrade, in_flight);
            let res = Response::from_parts(res_parts, Body::empty());
            return finish(res, sticky.as_ref(), &server, sticky_server.as_ref());
        }
        headers::remove_hop_by_hop(&mut res_parts.headers);

        let mut guard = ExchangeGuard {
            in_flight: Some(in_flight),
            conn: None,
            extra: Vec::new(),
        };
        if let Sender::Http1(s) = sender {
            guard.conn = Some((s, config.max_idle_conns_per_host));
        }
        let body = if http_body::Body::is_end_stream(&res_body) {
            guard.complete();
            Body::Upstream(res_body, ExchangeGuard::default())
        } else {
            Body::Upstream(res_body, guard)
        };
        let res = Response::from_parts(res_parts, body);
        return finish(res, sticky.as_ref(), &server, sticky_server.as_ref());
    }
}

fn finish(
    mut res: Response<Body>,
    sticky: Option<&sticky::Sticky>,
    server: &Arc<ServerState>,
    sticky_server: Option<&Arc<ServerState>>,
) -> Forwarded {
    if let Some(sticky) = sticky
        && sticky_server.is_none_or(|s| !Arc::ptr_eq(s, server))
        && let Some(cookie) = sticky.set_cookie(server)
    {
        res.headers_mut().append(header::SET_COOKIE, cookie);
    }
    Forwarded {
        result: Ok(res),
        server: Some(server.clone()),
    }
}

/// The Host the client asked for: the Host header, or the HTTP/2 authority.
pub fn request_host(parts: &request::Parts) -> Option<HeaderValue> {
    if let Some(h) = parts.headers.get(header::HOST) {
        return Some(h.clone());
    }
    parts
        .uri
        .authority()
        .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
}

fn build_upstream_request(
    parts: &request::Parts,
    server: &ServerState,
    service: &ServiceRuntime,
    original_host: Option<&HeaderValue>,
    body: Body,
) -> Result<Request<Body>, ProxyError> {
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let base = server.upstream.base_path.as_str();
    let uri = if server.h2c {
        format!("http://{}{base}{path_and_query}", server.upstream.authority)
    } else if base.is_empty() {
        path_and_query.to_string()
    } else {
        format!("{base}{path_and_query}")
    };
    let mut builder = Request::builder()
        .method(parts.method.clone())
        .uri(uri)
        .version(if server.h2c {
            Version::HTTP_2
        } else {
            Version::HTTP_11
        });
    if let Some(headers) = builder.headers_mut() {
        *headers = parts.headers.clone();
        let host = if service.pass_host_header {
            original_host.cloned()
        } else {
            HeaderValue::from_str(server.upstream.authority.as_str()).ok()
        };
        match host {
            // HTTP/2 carries the host in :authority, from the URI.
            Some(_) if server.h2c => {
                headers.remove(header::HOST);
            }
            Some(h) => {
                headers.insert(header::HOST, h);
            }
            None => {}
        }
    }
    builder
        .body(body)
        .map_err(|e| ProxyError::BadRequest(format!("cannot rewrite request: {e}")))
}

enum SendOutcome {
    Response(Response<hyper::body::Incoming>),
    NotSent(Request<Body>),
    Failed(ProxyError),
}

async fn send(
    sender: &mut Sender,
    req: Request<Body>,
    header_timeout: Option<std::time::Duration>,
) -> SendOutcome {
    let exchange = async {
        match sender {
            Sender::Http1(s) => s.try_send_request(req).await,
            Sender::Http2(s) => s.try_send_request(req).await,
        }
    };
    let result = match header_timeout {
        Some(t) => match tokio::time::timeout(t, exchange).await {
            Ok(r) => r,
            Err(_) => return SendOutcome::Failed(ProxyError::ResponseTimeout(t)),
        },
        None => exchange.await,
    };
    match result {
        Ok(res) => SendOutcome::Response(res),
        Err(mut e) => match e.take_message() {
            Some(req) => SendOutcome::NotSent(req),
            None => SendOutcome::Failed(ProxyError::Upstream(e.into_error())),
        },
    }
}

/// Relays bytes both ways once client and backend both switched protocols.
fn spawn_tunnel(
    client: OnUpgrade,
    upstream: Option<OnUpgrade>,
    in_flight: crate::balance::server::InFlight,
) {
    tokio::spawn(async move {
        let _in_flight = in_flight;
        let Some(upstream) = upstream else { return };
        let (client, upstream) = match tokio::try_join!(client, upstream) {
            Ok(pair) => pair,
            Err(e) => {
                tracing::debug!(error = %e, "upgrade failed");
                return;
            }
        };
        let mut client = TokioIo::new(client);
        let mut upstream = TokioIo::new(upstream);
        if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
            tracing::debug!(error = %e, "upgraded connection ended with an error");
        }
    });
}

pub mod sticky {
    //! Sticky sessions by cookie, with Traefik's keys. The cookie value is a
    //! hash of the server URL, so it never reveals the backend's address.

    use std::sync::Arc;

    use http::HeaderMap;
    use http::header::{self, HeaderValue};
    use sha1::{Digest, Sha1};

    use crate::balance::ServerState;
    use crate::config::dynamic::StickyCookie;

    pub struct Sticky<'a> {
        name: String,
        config: &'a StickyCookie,
    }

    /// Traefik's default cookie name: `_` and 6 hex digits of SHA-1 of the service name.
    pub fn default_name(service: &str) -> String {
        let digest = Sha1::digest(service.as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        format!("_{}", &hex[..6])
    }

    /// The cookie value identifying a server.
    pub fn server_id(url: &str) -> String {
        let digest = Sha1::digest(format!("escale-sticky:{url}").as_bytes());
        digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
    }

    impl<'a> Sticky<'a> {
        pub fn new(service: &str, config: &'a StickyCookie) -> Self {
            let name = config
                .name
                .clone()
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| default_name(service));
            Sticky { name, config }
        }

        /// The live server the request's cookie points to, if any.
        pub fn find(
            &self,
            headers: &HeaderMap,
            servers: &[Arc<ServerState>],
        ) -> Option<Arc<ServerState>> {
            let value = headers
                .get_all(header::COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(';'))
                .filter_map(|kv| kv.trim().split_once('='))
                .find(|(k, _)| *k == self.name)
                .map(|(_, v)| v.to_string())?;
            servers
                .iter()
                .find(|s| s.is_available() && server_id(&s.url) == value)
                .cloned()
        }

        pub fn set_cookie(&self, server: &ServerState) -> Option<HeaderValue> {
            let c = self.config;
            let mut cookie = format!(
                "{}={}; Path={}",
                self.name,
                server_id(&server.url),
                c.path.as_deref().unwrap_or("/")
            );
            if let Some(domain) = &c.domain {
                cookie.push_str(&format!("; Domain={domain}"));
            }
            if let Some(max_age) = c.max_age
                && max_age != 0
            {
                cookie.push_str(&format!("; Max-Age={}", max_age.max(0)));
            }
            if c.http_only {
                cookie.push_str("; HttpOnly");
            }
            if c.secure {
                cookie.push_str("; Secure");
            }
            match c
                .same_site
                .as_deref()
                .map(str::to_ascii_lowercase)
                .as_deref()
            {
                Some("none") => cookie.push_str("; SameSite=None"),
                Some("lax") => cookie.push_str("; SameSite=Lax"),
                Some("strict") => cookie.push_str("; SameSite=Strict"),
                _ => {}
            }
            HeaderValue::from_str(&cookie).ok()
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn cookie_hides_address() {
            let s = ServerState::new("http://10.0.1.5:8080", 1, None).unwrap();
            let cfg = StickyCookie {
                http_only: true,
                same_site: Some("lax".into()),
                ..StickyCookie::default()
            };
            let sticky = Sticky::new("web@docker", &cfg);
            let v = sticky.set_cookie(&s).unwrap();
            let v = v.to_str().unwrap();
            assert!(!v.contains("10.0.1.5"), "{v}");
            assert!(v.starts_with('_'));
            assert!(v.contains("; HttpOnly") && v.contains("SameSite=Lax"));
        }
    }
}
