//! `ipAllowList` (and Traefik 2's `ipWhiteList`): only clients whose
//! address is in `sourceRange` pass; the others get `rejectStatusCode`
//! (403 by default) with its status text, as Traefik answers. The address
//! is the TCP peer's, or taken from `X-Forwarded-For` by `ipStrategy`
//! (`depth` from the right, or the right-most outside `excludedIPs`).
//! `X-Forwarded-For` from an untrusted client has already been removed
//! (entrypoint `forwardedHeaders`), and the client is appended to it only
//! after the middlewares, as in Traefik.

use std::net::IpAddr;

use http::{StatusCode, request};
use ipnet::IpNet;

use super::source::{IpStrategy, parse_range};
use super::{Flow, Layer, MiddlewareError, RequestCtx};
use crate::config::dynamic;
use crate::proxy::body::untyped_text_response;

#[derive(Debug)]
pub struct IpAllowList {
    allowed: Vec<IpNet>,
    strategy: IpStrategy,
    reject: StatusCode,
}

impl IpAllowList {
    pub fn new(name: &str, config: &dynamic::IpAllowList) -> Result<Self, MiddlewareError> {
        let error = |why: String| MiddlewareError::new(name, why);
        if config.source_range.is_empty() {
            return Err(error(
                "sourceRange is empty: every request would be refused".into(),
            ));
        }
        let allowed = config
            .source_range
            .iter()
            .map(|r| {
                parse_range(r)
                    .ok_or_else(|| error(format!("invalid sourceRange entry {:?}", r.trim())))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let strategy = IpStrategy::from_config(config.ip_strategy.as_ref()).map_err(error)?;
        let reject = match config.reject_status_code {
            0 => StatusCode::FORBIDDEN,
            code => StatusCode::from_u16(code)
                .ok()
                .filter(|s| s.canonical_reason().is_some())
                .ok_or_else(|| error(format!("invalid rejectStatusCode {code}")))?,
        };
        Ok(IpAllowList {
            allowed,
            strategy,
            reject,
        })
    }

    fn allows(&self, client: &str) -> bool {
        client
            .parse::<IpAddr>()
            .is_ok_and(|ip| self.allowed.iter().any(|net| net.contains(&ip)))
    }
}

impl Layer for IpAllowList {
    fn on_request(&self, req: &mut request::Parts, ctx: &mut RequestCtx) -> Flow {
        let client = self.strategy.pick(req, ctx);
        if self.allows(&client) {
            return Flow::Continue;
        }
        tracing::debug!(client = %client, "refused by ipAllowList");
        // As Traefik 3: the status text alone, no newline, no `Content-Type`.
        let text = self.reject.canonical_reason().unwrap_or("Forbidden");
        Flow::Respond(untyped_text_response(self.reject, text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(
        ranges: &[&str],
        strategy: Option<dynamic::IpStrategy>,
        reject: u16,
    ) -> Result<IpAllowList, String> {
        let config = dynamic::IpAllowList {
            source_range: ranges.iter().map(|r| r.to_string()).collect(),
            ip_strategy: strategy,
            reject_status_code: reject,
        };
        IpAllowList::new("allow@file", &config).map_err(|e| e.to_string())
    }

    fn status(layer: &IpAllowList, peer: &str, xff: Option<&str>) -> u16 {
        let mut req = http::Request::builder().uri("/");
        if let Some(xff) = xff {
            req = req.header("x-forwarded-for", xff);
        }
        let mut parts = req.body(()).unwrap().into_parts().0;
        let mut ctx = RequestCtx::new(peer.parse().unwrap(), "http");
        match layer.on_request(&mut parts, &mut ctx) {
            Flow::Continue => 200,
            Flow::Respond(res) => res.status().as_u16(),
            Flow::Wait(_) => panic!("ipAllowList does not wait"),
        }
    }

    #[test]
    fn the_peer_address_must_be_in_a_range() {
        let l = layer(
            &[
                "127.0.0.1/32",
                "192.168.1.7",
                " 10.0.0.0/8 ",
                "2001:db8::/32",
            ],
            None,
            0,
        )
        .unwrap();
        assert_eq!(status(&l, "127.0.0.1", None), 200);
        assert_eq!(status(&l, "192.168.1.7", None), 200);
        assert_eq!(status(&l, "10.1.2.3", None), 200);
        assert_eq!(status(&l, "2001:db8::1", None), 200);
        assert_eq!(status(&l, "192.168.1.8", None), 403);
        // X-Forwarded-For is not looked at without a strategy.
        assert_eq!(status(&l, "192.168.1.8", Some("127.0.0.1")), 403);
        let l = layer(&["10.0.0.0/8"], None, 404).unwrap();
        assert_eq!(status(&l, "127.0.0.1", None), 404);
    }

    #[test]
    fn a_strategy_takes_the_address_from_x_forwarded_for() {
        let depth = |d| {
            Some(dynamic::IpStrategy {
                depth: d,
                excluded_ips: vec![],
            })
        };
        let l = layer(&["203.0.113.0/24"], depth(2), 0).unwrap();
        assert_eq!(status(&l, "127.0.0.1", Some("203.0.113.5, 10.0.0.1")), 200);
        assert_eq!(status(&l, "127.0.0.1", Some("10.0.0.1, 203.0.113.5")), 403);
        // Too short for the depth: no address, refused.
        assert_eq!(status(&l, "203.0.113.5", Some("203.0.113.5")), 403);
        let excluded = Some(dynamic::IpStrategy {
            depth: 0,
            excluded_ips: vec!["10.0.0.0/8".into()],
        });
        let l = layer(&["203.0.113.0/24"], excluded, 0).unwrap();
        assert_eq!(
            status(&l, "127.0.0.1", Some("203.0.113.5, 10.0.0.1, 10.0.0.2")),
            200
        );
        assert_eq!(status(&l, "127.0.0.1", Some("10.0.0.1")), 403);
    }

    #[test]
    fn bad_configurations_are_named() {
        assert_eq!(
            layer(&[], None, 0).unwrap_err(),
            "middleware `allow@file`: sourceRange is empty: every request would be refused"
        );
        assert_eq!(
            layer(&["10.0.0.0/33"], None, 0).unwrap_err(),
            "middleware `allow@file`: invalid sourceRange entry \"10.0.0.0/33\""
        );
        assert_eq!(
            layer(&["10.0.0.1"], None, 999).unwrap_err(),
            "middleware `allow@file`: invalid rejectStatusCode 999"
        );
    }
}
