//! `sourceCriterion`: what groups requests for `inFlightReq` and
//! `rateLimit`, as Traefik (and oxy) extract it: the client IP (possibly
//! taken from `X-Forwarded-For` by depth or by excluding known proxies), a
//! request header, or the request host.

use std::borrow::Cow;

use http::header::{self, HeaderName};
use http::request;
use ipnet::IpNet;

use super::RequestCtx;
use crate::config::dynamic::{self, SourceCriterion};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IpStrategy {
    /// The TCP peer's address.
    Remote,
    /// The `depth`-th address of `X-Forwarded-For`, from the right.
    Depth(usize),
    /// The right-most `X-Forwarded-For` address outside these networks.
    Excluded(Vec<IpNet>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Ip(IpStrategy),
    Header(HeaderName),
    Host,
}

impl Source {
    /// Reads the criterion; `default` applies when none is set (Traefik:
    /// the client IP for `rateLimit`, the host for `inFlightReq`).
    pub fn from_config(c: Option<&SourceCriterion>, default: Source) -> Result<Source, String> {
        let Some(c) = c else { return Ok(default) };
        let header = c.request_header_name.as_deref().filter(|h| !h.is_empty());
        match (&c.ip_strategy, header, c.request_host) {
            (Some(_), Some(_), _) => {
                Err("iPStrategy and RequestHeaderName are mutually exclusive".into())
            }
            (Some(_), _, true) => Err("iPStrategy and RequestHost are mutually exclusive".into()),
            (_, Some(_), true) => {
                Err("requestHost and RequestHeaderName are mutually exclusive".into())
            }
            (Some(ip), None, false) => IpStrategy::from_config(Some(ip)).map(Source::Ip),
            (None, Some(h), false) => HeaderName::try_from(h)
                .map(Source::Header)
                .map_err(|_| format!("invalid requestHeaderName {h:?}")),
            (None, None, true) => Ok(Source::Host),
            (None, None, false) => Ok(default),
        }
    }

    /// The request's group key; may be empty (Traefik then groups all such
    /// requests together).
    pub fn extract(&self, req: &request::Parts, ctx: &RequestCtx) -> String {
        match self {
            Source::Ip(strategy) => strategy.pick(req, ctx).into_owned(),
            Source::Header(name) => req
                .headers
                .get(name)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .unwrap_or_default(),
            Source::Host => req
                .headers
                .get(header::HOST)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .or_else(|| req.uri.authority().map(|a| a.to_string()))
                .unwrap_or_default(),
        }
    }
}

impl IpStrategy {
    /// Reads `ipStrategy`: `depth` wins over `excludedIPs`; neither, or no
    /// strategy at all, is the TCP peer.
    pub fn from_config(c: Option<&dynamic::IpStrategy>) -> Result<IpStrategy, String> {
        let Some(ip) = c else {
            return Ok(IpStrategy::Remote);
        };
        if ip.depth > 0 {
            return Ok(IpStrategy::Depth(ip.depth as usize));
        }
        if ip.excluded_ips.is_empty() {
            return Ok(IpStrategy::Remote);
        }
        let nets = ip
            .excluded_ips
            .iter()
            .map(|s| parse_net(s))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(IpStrategy::Excluded(nets))
    }

    /// The client address this strategy picks, as written; empty when the
    /// header does not have it.
    pub fn pick<'r>(&self, req: &'r request::Parts, ctx: &RequestCtx) -> Cow<'r, str> {
        match self {
            IpStrategy::Remote => Cow::Owned(ctx.client_ip.to_string()),
            IpStrategy::Depth(depth) => {
                let parts: Vec<&str> = first_xff(req).split(',').collect();
                if parts.len() < *depth {
                    return Cow::Borrowed("");
                }
                Cow::Borrowed(parts[parts.len() - depth].trim())
            }
            IpStrategy::Excluded(nets) => Cow::Borrowed(
                first_xff(req)
                    .split(',')
                    .rev()
                    .map(str::trim)
                    .filter(|ip| !ip.is_empty())
                    .find(|ip| {
                        ip.parse::<std::net::IpAddr>()
                            .map(|ip| !nets.iter().any(|n| n.contains(&ip)))
                            .unwrap_or(true)
                    })
                    .unwrap_or(""),
            ),
        }
    }
}

/// Go's `Header.Get`: the first `X-Forwarded-For` line only.
fn first_xff(req: &request::Parts) -> &str {
    req.headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

fn parse_net(s: &str) -> Result<IpNet, String> {
    parse_range(s).ok_or_else(|| format!("invalid excludedIPs entry {:?}", s.trim()))
}

/// An address or a CIDR range, as Traefik's lists take them.
pub fn parse_range(s: &str) -> Option<IpNet> {
    let s = s.trim();
    s.parse::<IpNet>()
        .ok()
        .or_else(|| s.parse::<std::net::IpAddr>().ok().map(IpNet::from))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::dynamic::IpStrategy as IpConfig;

    fn req(headers: &[(&str, &str)]) -> request::Parts {
        let mut b = http::Request::builder().uri("/");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    fn ctx() -> RequestCtx {
        RequestCtx::new("192.0.2.1".parse().unwrap(), "http")
    }

    fn criterion(ip: Option<IpConfig>, header: Option<&str>, host: bool) -> SourceCriterion {
        SourceCriterion {
            ip_strategy: ip,
            request_header_name: header.map(str::to_string),
            request_host: host,
        }
    }

    #[test]
    fn exclusive_criteria_are_rejected() {
        let ip = || Some(IpConfig::default());
        for c in [
            criterion(ip(), Some("X"), false),
            criterion(ip(), None, true),
            criterion(None, Some("X"), true),
        ] {
            assert!(Source::from_config(Some(&c), Source::Host).is_err());
        }
        assert_eq!(
            Source::from_config(Some(&criterion(None, None, false)), Source::Host),
            Ok(Source::Host)
        );
        assert_eq!(
            Source::from_config(None, Source::Ip(IpStrategy::Remote)),
            Ok(Source::Ip(IpStrategy::Remote))
        );
    }

    #[test]
    fn ip_strategies_follow_traefik() {
        let xff = [("x-forwarded-for", "1.1.1.1, 10.0.0.1 ,10.0.0.2")];
        let depth = |d| {
            Source::from_config(
                Some(&criterion(
                    Some(IpConfig {
                        depth: d,
                        excluded_ips: vec![],
                    }),
                    None,
                    false,
                )),
                Source::Host,
            )
            .unwrap()
        };
        assert_eq!(depth(1).extract(&req(&xff), &ctx()), "10.0.0.2");
        assert_eq!(depth(3).extract(&req(&xff), &ctx()), "1.1.1.1");
        assert_eq!(depth(4).extract(&req(&xff), &ctx()), "");
        assert_eq!(depth(0).extract(&req(&xff), &ctx()), "192.0.2.1");
        let excluded = Source::from_config(
            Some(&criterion(
                Some(IpConfig {
                    depth: 0,
                    excluded_ips: vec!["10.0.0.0/8".into(), "1.1.1.1".into()],
                }),
                None,
                false,
            )),
            Source::Host,
        )
        .unwrap();
        assert_eq!(excluded.extract(&req(&xff), &ctx()), "");
        assert_eq!(
            excluded.extract(&req(&[("x-forwarded-for", "8.8.8.8, 10.1.2.3")]), &ctx()),
            "8.8.8.8"
        );
        assert!(
            Source::from_config(
                Some(&criterion(
                    Some(IpConfig {
                        depth: 0,
                        excluded_ips: vec!["nope".into()],
                    }),
                    None,
                    false,
                )),
                Source::Host,
            )
            .is_err()
        );
    }

    #[test]
    fn header_and_host() {
        let h = Source::from_config(Some(&criterion(None, Some("X-User"), false)), Source::Host)
            .unwrap();
        assert_eq!(h.extract(&req(&[("x-user", "bob")]), &ctx()), "bob");
        assert_eq!(h.extract(&req(&[]), &ctx()), "");
        assert_eq!(
            Source::Host.extract(&req(&[("host", "a.test:8080")]), &ctx()),
            "a.test:8080"
        );
    }
}
