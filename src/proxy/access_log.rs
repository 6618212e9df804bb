//! The access log, in Traefik's common log format or as JSON. Lines are
//! emitted as `tracing` events on the `escale::access` target, so the
//! subscriber decides where they go (stdout or `accessLog.filePath`).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use serde_json::json;

use super::observe::{Exchange, Observer};

pub const TARGET: &str = "escale::access";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Common,
    Json,
}

#[derive(Debug)]
pub struct AccessLog {
    format: Format,
    count: AtomicU64,
}

impl AccessLog {
    pub fn new(format: Format) -> Self {
        AccessLog {
            format,
            count: AtomicU64::new(0),
        }
    }

    /// The line of an exchange that started at `started`.
    pub fn line(&self, ex: &Exchange, started: SystemTime, count: u64) -> String {
        match self.format {
            Format::Common => common_line(ex, started, count),
            Format::Json => json_line(ex, started, count),
        }
    }
}

impl Observer for AccessLog {
    fn exchange(&self, ex: &Exchange) {
        let count = self.count.fetch_add(1, Ordering::Relaxed) + 1;
        // The request path reads only the monotonic clock; the wall clock
        // is read here, where it is needed.
        let started = SystemTime::now()
            .checked_sub(ex.duration)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let line = self.line(ex, started, count);
        tracing::info!(target: TARGET, "{line}");
    }
}

fn version_str(v: http::Version) -> &'static str {
    match v {
        http::Version::HTTP_09 => "HTTP/0.9",
        http::Version::HTTP_10 => "HTTP/1.0",
        http::Version::HTTP_2 => "HTTP/2.0",
        http::Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/1.1",
    }
}

/// Traefik's CLF: `ip - user [time] "METHOD path proto" status size "referer"
/// "agent" count "router" "server" Nms`.
fn common_line(ex: &Exchange, started: SystemTime, count: u64) -> String {
    let mut s = String::with_capacity(200);
    let _ = write!(
        s,
        "{} - - [{}] \"{} {} {}\" {} {} \"{}\" \"{}\" {} \"{}\" \"{}\" {}ms",
        ex.client_ip,
        clf_time(started),
        ex.method,
        ex.uri,
        version_str(ex.version),
        ex.status,
        ex.content_length
            .map_or_else(|| "-".to_string(), |n| n.to_string()),
        header_or_dash(ex.referer),
        header_or_dash(ex.user_agent),
        count,
        ex.router.unwrap_or("-"),
        ex.server.map(|s| s.url.as_str()).unwrap_or("-"),
        ex.duration.as_millis()
    );
    s
}

fn header_or_dash(v: Option<&http::HeaderValue>) -> &str {
    v.and_then(|v| v.to_str().ok())
        .filter(|s| !s.is_empty())
        .unwrap_or("-")
}

fn json_line(ex: &Exchange, started: SystemTime, count: u64) -> String {
    json!({
        "ClientHost": ex.client_ip.to_string(),
        "RequestMethod": ex.method.as_str(),
        "RequestPath": ex.uri.to_string(),
        "RequestProtocol": version_str(ex.version),
        "RequestHost": ex.host,
        "DownstreamStatus": ex.status,
        "DownstreamContentSize": ex.content_length,
        "RouterName": ex.router,
        "ServiceName": ex.service,
        "ServiceURL": ex.server.map(|s| s.url.as_str()),
        "entryPointName": ex.entrypoint,
        "RetryAttempts": ex.retries,
        "Duration": u64::try_from(ex.duration.as_nanos()).unwrap_or(u64::MAX),
        "StartUTC": crate::provider::rfc3339(started),
        "RequestCount": count,
        "request_User-Agent": ex.user_agent.and_then(|v| v.to_str().ok()),
        "request_Referer": ex.referer.and_then(|v| v.to_str().ok()),
    })
    .to_string()
}

/// `10/Oct/2000:13:55:36 +0000`.
fn clf_time(t: SystemTime) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let iso = crate::provider::rfc3339(t); // 2000-10-10T13:55:36Z
    let (date, time) = iso.split_once('T').unwrap_or((&iso, "00:00:00Z"));
    let mut parts = date.split('-');
    let (y, m, d) = (
        parts.next().unwrap_or("1970"),
        parts
            .next()
            .and_then(|m| m.parse::<usize>().ok())
            .unwrap_or(1),
        parts.next().unwrap_or("01"),
    );
    let month = MONTHS.get(m.saturating_sub(1)).copied().unwrap_or("Jan");
    format!("{d}/{month}/{y}:{} +0000", time.trim_end_matches('Z'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::observe::Protocol;
    use std::time::Duration;

    fn exchange<'a>(
        method: &'a http::Method,
        uri: &'a http::Uri,
        ua: &'a http::HeaderValue,
    ) -> Exchange<'a> {
        Exchange {
            entrypoint: "web",
            router: Some("r@file"),
            service: Some("s@file"),
            server: None,
            method,
            host: "a.test",
            uri,
            version: http::Version::HTTP_11,
            user_agent: Some(ua),
            referer: None,
            status: 200,
            content_length: Some(12),
            protocol: Protocol::Http,
            client_ip: "192.0.2.9".parse().unwrap(),
            duration: Duration::from_millis(7),
            retries: 0,
        }
    }

    fn started() -> SystemTime {
        std::time::UNIX_EPOCH + Duration::from_secs(971_185_336)
    }

    #[test]
    fn common_format_matches_traefik_layout() {
        let (m, u, ua) = (
            http::Method::GET,
            "/x?y=1".parse().unwrap(),
            http::HeaderValue::from_static("curl/8"),
        );
        let line = AccessLog::new(Format::Common).line(&exchange(&m, &u, &ua), started(), 3);
        assert_eq!(
            line,
            "192.0.2.9 - - [10/Oct/2000:13:42:16 +0000] \"GET /x?y=1 HTTP/1.1\" 200 12 \"-\" \"curl/8\" 3 \"r@file\" \"-\" 7ms"
        );
    }

    #[test]
    fn json_format_has_traefik_keys() {
        let (m, u, ua) = (
            http::Method::POST,
            "/x?y=1".parse().unwrap(),
            http::HeaderValue::from_static("curl/8"),
        );
        let line = AccessLog::new(Format::Json).line(&exchange(&m, &u, &ua), started(), 1);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["RequestMethod"], "POST");
        assert_eq!(v["DownstreamStatus"], 200);
        assert_eq!(v["RouterName"], "r@file");
        assert_eq!(v["Duration"], 7_000_000);
    }
}
