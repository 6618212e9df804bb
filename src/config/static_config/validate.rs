//! Raw static configuration -> checked [`StaticConfig`], with Traefik's
//! defaults, reporting every problem found.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;

use crate::config::duration::GoDuration;
use crate::config::tree;
use crate::labels::DEFAULT_RULE;
use crate::provider::docker::DEFAULT_ENDPOINT;

use super::legacy::Legacy;
use super::raw::{self, RawStatic};
use super::{
    AccessLog, AccessLogFields, AccessLogFormat, Api, DockerProvider, EntryPoint,
    EntryPointRedirect, EntryPointTls, FieldMode, FileProvider, FileSource, Finding,
    ForwardedHeaders, Generation, INTERNAL_ENTRY_POINT, LifeCycle, Log, LogFormat, LogLevel, Ping,
    Prometheus, Providers, RedirectTarget, RespondingTimeouts, ServersTransport, StaticConfig,
};

const DEFAULT_BUCKETS: [f64; 4] = [0.1, 0.3, 1.2, 5.0];

fn keys(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| s.to_string()).collect()
}

fn dur(d: Option<GoDuration>, default: Duration) -> Duration {
    d.map_or(default, |g| g.0)
}

/// Traefik's `0` means "no limit".
fn limit(d: Option<GoDuration>, default: Duration) -> Option<Duration> {
    Some(dur(d, default)).filter(|d| !d.is_zero())
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.trim().is_empty())
}

struct Checker {
    findings: Vec<Finding>,
}

impl Checker {
    fn error(&mut self, keys: Vec<String>, message: String) {
        self.findings.push(Finding::error(keys, message));
    }

    fn warn(&mut self, keys: Vec<String>, message: String) {
        self.findings.push(Finding::warning(keys, message));
    }
}

pub(super) fn validate(raw: RawStatic, legacy: &Legacy) -> (StaticConfig, Vec<Finding>) {
    let mut c = Checker {
        findings: Vec::new(),
    };
    let v1 = legacy.generation == Generation::V1;

    let api = raw.api.map(|a| c.api(a));
    let ping = raw.ping.map(|p| c.ping(p));
    let metrics = raw
        .metrics
        .and_then(|m| m.prometheus)
        .map(|p| c.prometheus(p));

    // Names the user declared, even those that fail below, so that a bad
    // entry point is reported once, not again by everything naming it.
    let mut declared: Vec<String> = raw.entry_points.keys().cloned().collect();
    let mut raw_eps = raw.entry_points;
    if raw_eps.is_empty() {
        let ep = raw::RawEntryPoint {
            address: Some(":80".into()),
            forwarded_headers: v1.then(|| raw::RawForwardedHeaders {
                insecure: Some(true),
                ..Default::default()
            }),
            ..Default::default()
        };
        raw_eps.insert("http".into(), ep);
        declared.push("http".into());
    }
    let wants_internal = api.as_ref().is_some_and(|a| a.insecure)
        || ping
            .as_ref()
            .is_some_and(|p| !p.manual_routing && p.entry_point == INTERNAL_ENTRY_POINT)
        || metrics
            .as_ref()
            .is_some_and(|m| !m.manual_routing && m.entry_point == INTERNAL_ENTRY_POINT);
    if wants_internal && !raw_eps.contains_key(INTERNAL_ENTRY_POINT) {
        // Only `api.insecure` asks for a public admin endpoint; for ping and
        // metrics alone the implicit entrypoint stays on loopback. Declare
        // `entryPoints.traefik` to choose another address.
        let insecure = api.as_ref().is_some_and(|a| a.insecure);
        let ep = raw::RawEntryPoint {
            address: Some(if insecure { ":8080" } else { "127.0.0.1:8080" }.into()),
            ..Default::default()
        };
        raw_eps.insert(INTERNAL_ENTRY_POINT.into(), ep);
        declared.push(INTERNAL_ENTRY_POINT.into());
    }

    let mut entry_points = BTreeMap::new();
    for (name, rep) in raw_eps {
        if let Some(ep) = c.entry_point(&name, rep, &declared) {
            entry_points.insert(name, ep);
        }
    }
    c.check_addresses(&entry_points);
    if let Some((names, written)) = &legacy.v1_default_entry_points {
        for n in names {
            match (entry_points.get_mut(n), written) {
                (Some(ep), _) => ep.as_default = true,
                (None, Some(origin)) if !declared.contains(n) => c.findings.push(
                    Finding::error(
                        keys(&["defaultEntryPoints"]),
                        format!(
                            "`defaultEntryPoints` names entry point `{n}`, which is not defined"
                        ),
                    )
                    .from(origin),
                ),
                (None, _) => {}
            }
        }
    }
    if let Some(p) = &ping
        && !p.manual_routing
        && !declared.contains(&p.entry_point)
    {
        c.error(
            keys(&["ping", "entryPoint"]),
            format!(
                "`ping.entryPoint` names entry point `{}`, which is not defined",
                p.entry_point
            ),
        );
    }
    if let Some(m) = &metrics
        && !m.manual_routing
        && !declared.contains(&m.entry_point)
    {
        c.error(
            keys(&["metrics", "prometheus", "entryPoint"]),
            format!(
                "`metrics.prometheus.entryPoint` names entry point `{}`, which is not defined",
                m.entry_point
            ),
        );
    }

    let providers = c.providers(raw.providers.unwrap_or_default(), legacy);
    let log = c.log(raw.log.unwrap_or_default());
    let access_log = raw.access_log.map(|a| c.access_log(a));
    let servers_transport = c.servers_transport(raw.servers_transport.unwrap_or_default());

    let config = StaticConfig {
        entry_points,
        providers,
        api,
        ping,
        metrics,
        log,
        access_log,
        servers_transport,
        generation: legacy.generation,
    };
    (config, c.findings)
}

/// Parses Traefik's `[host]:port[/tcp]`; an empty host means every interface.
pub(super) fn parse_address(text: &str) -> Result<SocketAddr, String> {
    let (addr, proto) = text.split_once('/').unwrap_or((text, "tcp"));
    match proto.to_ascii_lowercase().as_str() {
        "tcp" => {}
        "udp" => return Err("UDP entry points are not supported by escale".into()),
        other => return Err(format!("unknown protocol `{other}` (use tcp)")),
    }
    let (host, port) = addr
        .rsplit_once(':')
        .ok_or_else(|| format!("{text:?} needs a port, as in \":80\""))?;
    let port: u16 = match port {
        "http" => 80,
        "https" => 443,
        p => p.parse().map_err(|_| format!("invalid port {p:?}"))?,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let ip: IpAddr = match host {
        "" => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        "localhost" => IpAddr::V4(Ipv4Addr::LOCALHOST),
        h => h
            .parse()
            .map_err(|_| format!("host `{h}` must be an IP address"))?,
    };
    Ok(SocketAddr::new(ip, port))
}

fn parse_net(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("{s:?} is neither an IP address nor a CIDR range"))
}

impl Checker {
    fn entry_point(
        &mut self,
        name: &str,
        raw: raw::RawEntryPoint,
        declared: &[String],
    ) -> Option<EntryPoint> {
        let at = |rest: &[&str]| {
            let mut k = keys(&["entryPoints", name]);
            k.extend(rest.iter().map(|s| s.to_string()));
            k
        };
        let mut ok = true;
        let address_text = raw.address.clone().unwrap_or_default();
        let address = if address_text.trim().is_empty() {
            self.error(
                at(&["address"]),
                format!("entry point `{name}` has no address"),
            );
            ok = false;
            None
        } else {
            match parse_address(address_text.trim()) {
                Ok(a) => Some(a),
                Err(why) => {
                    self.error(
                        at(&["address"]),
                        format!("`entryPoints.{name}.address`: {why}"),
                    );
                    ok = false;
                    None
                }
            }
        };

        let fh = raw.forwarded_headers.unwrap_or_default();
        let mut trusted_ips = Vec::new();
        for (i, ip) in fh.trusted_ips.unwrap_or_default().iter().enumerate() {
            match parse_net(ip) {
                Ok(net) => trusted_ips.push(net),
                Err(why) => {
                    let mut k = at(&["forwardedHeaders", "trustedIPs"]);
                    k.push(format!("[{i}]"));
                    self.error(
                        k,
                        format!("`entryPoints.{name}.forwardedHeaders.trustedIPs`: {why}"),
                    );
                    ok = false;
                }
            }
        }
        let forwarded_headers = ForwardedHeaders {
            insecure: fh.insecure.unwrap_or(false),
            trusted_ips,
        };

        let transport = raw.transport.unwrap_or_default();
        let rt = transport.responding_timeouts.unwrap_or_default();
        let timeouts = RespondingTimeouts {
            read: limit(rt.read_timeout, Duration::from_secs(60)),
            write: limit(rt.write_timeout, Duration::ZERO),
            idle: limit(rt.idle_timeout, Duration::from_secs(180)),
            read_header: limit(rt.read_header_timeout, Duration::ZERO),
        };
        let lc = transport.life_cycle.unwrap_or_default();
        let life_cycle = LifeCycle {
            request_accept_grace: dur(lc.request_accept_grace_timeout, Duration::ZERO),
            grace: dur(lc.grace_time_out, Duration::from_secs(10)),
        };

        let http = raw.http.unwrap_or_default();
        let tls = http.tls.map(|t| EntryPointTls {
            options: non_empty(t.options),
        });
        let mut redirect = None;
        if let Some(r) = http.redirections.and_then(|r| r.entry_point) {
            let to_key = at(&["http", "redirections", "entryPoint", "to"]);
            let to = match non_empty(r.to) {
                None => {
                    self.error(
                        to_key,
                        format!("entry point `{name}` redirects but has no `to`"),
                    );
                    None
                }
                Some(t) if t.starts_with(':') => match t[1..].parse::<u16>() {
                    Ok(p) => Some(RedirectTarget::Port(p)),
                    Err(_) => {
                        self.error(to_key, format!("`to` {t:?} is not a port such as \":443\""));
                        None
                    }
                },
                Some(t) if t == name => {
                    self.error(to_key, format!("entry point `{name}` redirects to itself"));
                    None
                }
                Some(t) if !declared.contains(&t) => {
                    self.error(
                        to_key,
                        format!("entry point `{name}` redirects to entry point `{t}`, which is not defined"),
                    );
                    None
                }
                Some(t) => Some(RedirectTarget::EntryPoint(t)),
            };
            match to {
                Some(to) => {
                    redirect = Some(EntryPointRedirect {
                        to,
                        scheme: non_empty(r.scheme).unwrap_or_else(|| "https".into()),
                        permanent: r.permanent.unwrap_or(true),
                        priority: r.priority.unwrap_or(i64::MAX - 1),
                    })
                }
                None => ok = false,
            }
        }

        let address = address.filter(|_| ok)?;
        Some(EntryPoint {
            address,
            address_text,
            as_default: raw.as_default.unwrap_or(false),
            forwarded_headers,
            timeouts,
            life_cycle,
            redirect,
            tls,
        })
    }

    fn check_addresses(&mut self, eps: &BTreeMap<String, EntryPoint>) {
        let mut seen: Vec<(&str, SocketAddr)> = Vec::new();
        for (name, ep) in eps {
            if ep.address.port() == 0 {
                continue;
            }
            if let Some((other, _)) = seen.iter().find(|(_, a)| *a == ep.address) {
                self.error(
                    keys(&["entryPoints", name, "address"]),
                    format!(
                        "entry points `{other}` and `{name}` both listen on {}",
                        ep.address
                    ),
                );
            }
            seen.push((name, ep.address));
        }
    }

    fn api(&mut self, raw: raw::RawApi) -> Api {
        let mut base_path = non_empty(raw.base_path).unwrap_or_else(|| "/".into());
        if !base_path.starts_with('/') {
            self.error(
                keys(&["api", "basePath"]),
                format!("`api.basePath` {base_path:?} must start with `/`"),
            );
            base_path = "/".into();
        }
        Api {
            insecure: raw.insecure.unwrap_or(false),
            dashboard: raw.dashboard.unwrap_or(true),
            debug: raw.debug.unwrap_or(false),
            base_path,
        }
    }

    fn ping(&mut self, raw: raw::RawPing) -> Ping {
        let code = raw.terminating_status_code.unwrap_or(503);
        let terminating_status_code = match u16::try_from(code) {
            Ok(c) if (100..=599).contains(&c) => c,
            _ => {
                self.error(
                    keys(&["ping", "terminatingStatusCode"]),
                    format!("`ping.terminatingStatusCode` {code} is not an HTTP status code"),
                );
                503
            }
        };
        Ping {
            entry_point: non_empty(raw.entry_point).unwrap_or_else(|| INTERNAL_ENTRY_POINT.into()),
            manual_routing: raw.manual_routing.unwrap_or(false),
            terminating_status_code,
        }
    }

    fn prometheus(&mut self, raw: raw::RawPrometheus) -> Prometheus {
        let mut buckets = raw.buckets.unwrap_or_else(|| DEFAULT_BUCKETS.to_vec());
        let sorted = buckets.windows(2).all(|w| w[0] < w[1]);
        if buckets.is_empty() || !sorted || buckets.iter().any(|b| !b.is_finite()) {
            self.error(
                keys(&["metrics", "prometheus", "buckets"]),
                "`metrics.prometheus.buckets` must be increasing numbers".to_string(),
            );
            buckets = DEFAULT_BUCKETS.to_vec();
        }
        Prometheus {
            buckets,
            add_entry_points_labels: raw.add_entry_points_labels.unwrap_or(true),
            add_routers_labels: raw.add_routers_labels.unwrap_or(false),
            add_services_labels: raw.add_services_labels.unwrap_or(true),
            entry_point: non_empty(raw.entry_point).unwrap_or_else(|| INTERNAL_ENTRY_POINT.into()),
            manual_routing: raw.manual_routing.unwrap_or(false),
        }
    }

    fn providers(&mut self, raw: raw::RawProviders, legacy: &Legacy) -> Providers {
        let file = raw.file.and_then(|f| self.file_provider(f));
        let mut swarm = raw.swarm.map(|s| {
            let refresh = s.refresh_seconds.map(|d| d.0).filter(|d| !d.is_zero());
            let common = raw::RawDocker {
                endpoint: s.endpoint,
                network: s.network,
                exposed_by_default: s.exposed_by_default,
                constraints: s.constraints,
                default_rule: s.default_rule,
                watch: s.watch,
                use_bind_port_ip: s.use_bind_port_ip,
                allow_empty_services: s.allow_empty_services,
                ..Default::default()
            };
            let mut p = self.docker("swarm", common);
            p.refresh = refresh.unwrap_or(Duration::from_secs(15));
            p
        });
        let mut docker = raw.docker.map(|d| self.docker("docker", d));
        if let Some(v1) = &legacy.v1_docker
            && let Some(p) = swarm.as_mut().or(docker.as_mut())
        {
            p.v1 = Some(v1.clone());
        }
        Providers {
            throttle_duration: dur(raw.providers_throttle_duration, Duration::from_secs(2)),
            file,
            swarm,
            docker,
        }
    }

    fn file_provider(&mut self, raw: raw::RawFile) -> Option<FileProvider> {
        let watch = raw.watch.unwrap_or(true);
        let source = match (non_empty(raw.directory), non_empty(raw.filename)) {
            (Some(d), Some(_)) => {
                self.warn(
                    keys(&["providers", "file", "filename"]),
                    "`providers.file` has both `directory` and `filename`; the directory is used, as in Traefik".to_string(),
                );
                FileSource::Directory(PathBuf::from(d))
            }
            (Some(d), None) => FileSource::Directory(PathBuf::from(d)),
            (None, Some(f)) => FileSource::Filename(PathBuf::from(f)),
            (None, None) => {
                self.error(
                    keys(&["providers", "file"]),
                    "`providers.file` needs a `filename` or a `directory`".to_string(),
                );
                return None;
            }
        };
        Some(FileProvider { source, watch })
    }

    fn docker(&mut self, section: &str, raw: raw::RawDocker) -> DockerProvider {
        let endpoint = non_empty(raw.endpoint).unwrap_or_else(|| DEFAULT_ENDPOINT.into());
        let scheme_ok = ["unix://", "tcp://", "http://", "https://"]
            .iter()
            .any(|s| endpoint.starts_with(s));
        if !scheme_ok {
            self.error(
                keys(&["providers", section, "endpoint"]),
                format!(
                    "`providers.{section}.endpoint` {endpoint:?} must start with unix://, tcp://, http:// or https://"
                ),
            );
        }
        DockerProvider {
            endpoint,
            network: non_empty(raw.network),
            exposed_by_default: raw.exposed_by_default.unwrap_or(true),
            constraints: non_empty(raw.constraints),
            default_rule: non_empty(raw.default_rule).unwrap_or_else(|| DEFAULT_RULE.into()),
            refresh: Duration::from_secs(15),
            watch: raw.watch.unwrap_or(true),
            use_bind_port_ip: raw.use_bind_port_ip.unwrap_or(false),
            allow_empty_services: raw.allow_empty_services.unwrap_or(false),
            v1: None,
        }
    }

    fn log(&mut self, raw: raw::RawLog) -> Log {
        const LEVELS: [(&str, LogLevel); 7] = [
            ("trace", LogLevel::Trace),
            ("debug", LogLevel::Debug),
            ("info", LogLevel::Info),
            ("warn", LogLevel::Warn),
            ("error", LogLevel::Error),
            ("fatal", LogLevel::Fatal),
            ("panic", LogLevel::Panic),
        ];
        let level = match non_empty(raw.level) {
            // Traefik defaults to ERROR; escale to INFO, so that configuration changes
            // and provider outages and recoveries are visible (they are rare lines,
            // never one per request).
            None => LogLevel::Info,
            Some(l) => {
                let lower = l.trim().to_ascii_lowercase();
                let lower = if lower == "warning" {
                    "warn".into()
                } else {
                    lower
                };
                match LEVELS.iter().find(|(n, _)| *n == lower) {
                    Some((_, lvl)) => *lvl,
                    None => {
                        self.error(
                            keys(&["log", "level"]),
                            format!(
                                "`log.level` {l:?} is not a level (trace, debug, info, warn, error, fatal, panic){}",
                                hint(&lower, LEVELS.iter().map(|(n, _)| *n))
                            ),
                        );
                        LogLevel::Error
                    }
                }
            }
        };
        let format = match non_empty(raw.format).map(|f| f.to_ascii_lowercase()) {
            None => LogFormat::Common,
            Some(f) if f == "common" => LogFormat::Common,
            Some(f) if f == "json" => LogFormat::Json,
            Some(f) => {
                self.error(
                    keys(&["log", "format"]),
                    format!("`log.format` {f:?} is not `common` or `json`"),
                );
                LogFormat::Common
            }
        };
        Log {
            level,
            format,
            file_path: non_empty(raw.file_path).map(PathBuf::from),
        }
    }

    fn access_log(&mut self, raw: raw::RawAccessLog) -> AccessLog {
        let format = match non_empty(raw.format).map(|f| f.to_ascii_lowercase()) {
            None => AccessLogFormat::Common,
            Some(f) if f == "common" => AccessLogFormat::Common,
            Some(f) if f == "genericclf" => AccessLogFormat::GenericClf,
            Some(f) if f == "json" => AccessLogFormat::Json,
            Some(f) => {
                self.error(
                    keys(&["accessLog", "format"]),
                    format!("`accessLog.format` {f:?} is not `common`, `genericCLF` or `json`"),
                );
                AccessLogFormat::Common
            }
        };
        let buffering_size = match raw.buffering_size.unwrap_or(0) {
            n if n >= 0 => n as u64,
            n => {
                self.error(
                    keys(&["accessLog", "bufferingSize"]),
                    format!("`accessLog.bufferingSize` {n} must not be negative"),
                );
                0
            }
        };
        let fields = raw.fields.unwrap_or_default();
        let headers = fields.headers.unwrap_or_default();
        let fields = AccessLogFields {
            default_mode: self.mode(
                &["accessLog", "fields", "defaultMode"],
                fields.default_mode,
                FieldMode::Keep,
            ),
            names: self.modes(&["accessLog", "fields", "names"], fields.names),
            headers_default_mode: self.mode(
                &["accessLog", "fields", "headers", "defaultMode"],
                headers.default_mode,
                FieldMode::Drop,
            ),
            header_names: self.modes(&["accessLog", "fields", "headers", "names"], headers.names),
        };
        AccessLog {
            file_path: non_empty(raw.file_path).map(PathBuf::from),
            format,
            buffering_size,
            fields,
        }
    }

    fn mode(&mut self, at: &[&str], raw: Option<String>, default: FieldMode) -> FieldMode {
        let Some(m) = non_empty(raw) else {
            return default;
        };
        match m.to_ascii_lowercase().as_str() {
            "keep" => FieldMode::Keep,
            "drop" => FieldMode::Drop,
            "redact" => FieldMode::Redact,
            _ => {
                let path = tree::render_path(&keys(at));
                self.error(
                    keys(at),
                    format!("`{path}` {m:?} is not `keep`, `drop` or `redact`"),
                );
                default
            }
        }
    }

    fn modes(&mut self, at: &[&str], raw: BTreeMap<String, String>) -> BTreeMap<String, FieldMode> {
        raw.into_iter()
            .map(|(name, m)| {
                let mut k: Vec<&str> = at.to_vec();
                k.push(&name);
                let mode = self.mode(&k, Some(m), FieldMode::Keep);
                (name, mode)
            })
            .collect()
    }

    fn servers_transport(&mut self, raw: raw::RawServersTransport) -> ServersTransport {
        // Go's http.Transport reads 0 as its own default of 2, and a
        // negative value as "keep no idle connection".
        let max_idle_conns_per_host = match raw.max_idle_conns_per_host.unwrap_or(200) {
            0 => 2,
            n if n < 0 => 0,
            n => usize::try_from(n).unwrap_or(usize::MAX),
        };
        let ft = raw.forwarding_timeouts.unwrap_or_default();
        ServersTransport {
            max_idle_conns_per_host,
            dial_timeout: limit(ft.dial_timeout, Duration::from_secs(30)),
            response_header_timeout: limit(ft.response_header_timeout, Duration::ZERO),
            idle_conn_timeout: limit(ft.idle_conn_timeout, Duration::from_secs(90)),
            insecure_skip_verify: raw.insecure_skip_verify.unwrap_or(false),
            root_cas: raw.root_cas.unwrap_or_default(),
        }
    }
}

fn hint<'a>(wrong: &str, valid: impl IntoIterator<Item = &'a str>) -> String {
    tree::nearest(wrong, valid)
        .map(|s| format!(", did you mean `{s}`?"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_as_traefik_writes_them() {
        let a = |s: &str| parse_address(s);
        assert_eq!(a(":80").unwrap(), "0.0.0.0:80".parse().unwrap());
        assert_eq!(a(":8080/tcp").unwrap(), "0.0.0.0:8080".parse().unwrap());
        assert_eq!(a("127.0.0.1:81").unwrap(), "127.0.0.1:81".parse().unwrap());
        assert_eq!(a("[::1]:82").unwrap(), "[::1]:82".parse().unwrap());
        assert_eq!(a("localhost:83").unwrap(), "127.0.0.1:83".parse().unwrap());
        assert_eq!(a(":https").unwrap().port(), 443);
        assert!(a(":53/udp").unwrap_err().contains("UDP"));
        assert!(a("80").unwrap_err().contains("port"));
        assert!(a("example.com:80").unwrap_err().contains("IP address"));
        assert!(a(":99999").is_err());
        assert!(a(":80/sctp").is_err());
    }

    #[test]
    fn networks_accept_cidrs_and_single_ips() {
        assert_eq!(parse_net("10.0.0.0/8").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(parse_net(" 1.2.3.4 ").unwrap().to_string(), "1.2.3.4/32");
        assert_eq!(parse_net("::1").unwrap().to_string(), "::1/128");
        assert!(parse_net("1.2.3").is_err());
    }
}
