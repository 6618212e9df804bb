//! Every Traefik v3 static configuration key, so that escale can tell a real
//! Traefik option it does not implement (a warning) from a typo (an error),
//! and can read `--key value` the way Traefik does (a boolean flag never takes
//! the next argument as its value).
//!
//! The list is Traefik v3.7's generated reference
//! (`docs/content/reference/install-configuration/configuration-options.md`),
//! lowercased as Traefik matches keys; `<name>` stands for a user-chosen name
//! and `[n]` for a list index. Keys whose default is `true` or `false` are
//! booleans or optional sections that a bare flag turns on.

use KeyKind::{Bool as B, Value as V};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// A boolean, or a section a bare flag enables (`--ping`).
    Bool,
    Value,
}

/// How a path (user spelling, any case) relates to Traefik's keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyMatch {
    /// A Traefik key.
    Exact(KeyKind),
    /// A section above Traefik keys (`entryPoints.web.http`).
    Section,
    Unknown,
}

/// List-valued keys among those escale implements: Traefik joins repeated
/// flags for them with commas instead of keeping the last one.
pub const LIST_KEYS: &[&str] = &[
    "entrypoints.<name>.forwardedheaders.trustedips",
    "entrypoints.<name>.proxyprotocol.trustedips",
    "entrypoints.<name>.http.middlewares",
    "metrics.prometheus.buckets",
    "providers.precedence",
];

fn pattern_segments(pattern: &str) -> impl Iterator<Item = &str> {
    pattern
        .split('.')
        .map(|s| s.strip_suffix("[n]").unwrap_or(s))
}

fn is_index(seg: &str) -> bool {
    let inner = seg
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(seg);
    !inner.is_empty() && inner.bytes().all(|b| b.is_ascii_digit())
}

/// The path without list indexes, lowercased, as patterns are written.
fn normalize(keys: &[String]) -> Vec<String> {
    keys.iter()
        .filter(|k| !is_index(k))
        .map(|k| k.to_ascii_lowercase())
        .collect()
}

fn seg_matches(pattern: &str, seg: &str) -> bool {
    pattern == "<name>" || pattern == seg
}

/// Whether `pattern` starts with `path`: `Some(true)` when equal.
fn match_pattern(pattern: &str, path: &[String]) -> Option<bool> {
    let mut pat = pattern_segments(pattern);
    for seg in path {
        if !seg_matches(pat.next()?, seg) {
            return None;
        }
    }
    Some(pat.next().is_none())
}

/// Looks a path up among Traefik's static keys.
pub fn lookup(keys: &[String]) -> KeyMatch {
    let path = normalize(keys);
    let mut section = false;
    for (pattern, kind) in STATIC_KEYS {
        match match_pattern(pattern, &path) {
            Some(true) => return KeyMatch::Exact(*kind),
            Some(false) => section = true,
            None => {}
        }
    }
    if section {
        KeyMatch::Section
    } else {
        KeyMatch::Unknown
    }
}

/// Whether a flat key (`ping`, `api.insecure`) is a boolean flag that never
/// takes the next argument as its value.
pub fn is_bool_flag(keys: &[String]) -> bool {
    lookup(keys) == KeyMatch::Exact(KeyKind::Bool)
}

/// Whether repeated flags for this key are joined with commas.
pub fn is_list_key(keys: &[String]) -> bool {
    let path = normalize(keys);
    LIST_KEYS
        .iter()
        .any(|p| match_pattern(p, &path) == Some(true))
}

/// The Traefik root sections (`entrypoints`, `providers`, ...), lowercased.
pub fn roots() -> Vec<&'static str> {
    let mut roots: Vec<&str> = STATIC_KEYS
        .iter()
        .filter_map(|(p, _)| pattern_segments(p).next())
        .collect();
    roots.dedup();
    roots
}

/// For a path that is not a Traefik key: how many of its segments are valid,
/// and the nearest valid name for the next one.
pub fn suggest(keys: &[String]) -> (usize, Option<String>) {
    let path = normalize(keys);
    let mut depth = path.len();
    while depth > 0 && lookup(&path[..depth]) == KeyMatch::Unknown {
        depth -= 1;
    }
    let Some(wrong) = path.get(depth) else {
        return (depth, None);
    };
    let mut next: Vec<&str> = STATIC_KEYS
        .iter()
        .filter(|(p, _)| match_pattern(p, &path[..depth]) == Some(false))
        .filter_map(|(p, _)| pattern_segments(p).nth(depth))
        .filter(|s| *s != "<name>")
        .collect();
    next.dedup();
    let suggestion = super::tree::nearest(wrong, next).map(str::to_string);
    (depth, suggestion)
}

pub const STATIC_KEYS: &[(&str, KeyKind)] = &[
    ("accesslog", B),
    ("accesslog.addinternals", B),
    ("accesslog.bufferingsize", V),
    ("accesslog.dualoutput", B),
    ("accesslog.fields.defaultmode", V),
    ("accesslog.fields.headers.defaultmode", V),
    ("accesslog.fields.headers.names.<name>", V),
    ("accesslog.fields.names.<name>", V),
    ("accesslog.fields.queryparameters.defaultmode", V),
    ("accesslog.filepath", V),
    ("accesslog.filters.minduration", V),
    ("accesslog.filters.retryattempts", B),
    ("accesslog.filters.statuscodes", V),
    ("accesslog.format", V),
    ("accesslog.otlp", B),
    ("accesslog.otlp.grpc", B),
    ("accesslog.otlp.grpc.endpoint", V),
    ("accesslog.otlp.grpc.headers.<name>", V),
    ("accesslog.otlp.grpc.insecure", B),
    ("accesslog.otlp.grpc.tls.ca", V),
    ("accesslog.otlp.grpc.tls.cert", V),
    ("accesslog.otlp.grpc.tls.insecureskipverify", B),
    ("accesslog.otlp.grpc.tls.key", V),
    ("accesslog.otlp.http", B),
    ("accesslog.otlp.http.endpoint", V),
    ("accesslog.otlp.http.headers.<name>", V),
    ("accesslog.otlp.http.tls.ca", V),
    ("accesslog.otlp.http.tls.cert", V),
    ("accesslog.otlp.http.tls.insecureskipverify", B),
    ("accesslog.otlp.http.tls.key", V),
    ("accesslog.otlp.resourceattributes.<name>", V),
    ("accesslog.otlp.servicename", V),
    ("api", B),
    ("api.basepath", V),
    ("api.dashboard", B),
    ("api.dashboardname", V),
    ("api.debug", B),
    ("api.disabledashboardad", B),
    ("api.insecure", B),
    ("certificatesresolvers.<name>", B),
    ("certificatesresolvers.<name>.acme.cacertificates", V),
    ("certificatesresolvers.<name>.acme.caserver", V),
    ("certificatesresolvers.<name>.acme.caservername", V),
    ("certificatesresolvers.<name>.acme.casystemcertpool", B),
    ("certificatesresolvers.<name>.acme.certificatesduration", V),
    ("certificatesresolvers.<name>.acme.certificatetimeout", V),
    (
        "certificatesresolvers.<name>.acme.clientresponseheadertimeout",
        V,
    ),
    ("certificatesresolvers.<name>.acme.clienttimeout", V),
    ("certificatesresolvers.<name>.acme.disablecommonname", B),
    ("certificatesresolvers.<name>.acme.dnschallenge", B),
    (
        "certificatesresolvers.<name>.acme.dnschallenge.delaybeforecheck",
        V,
    ),
    (
        "certificatesresolvers.<name>.acme.dnschallenge.disablepropagationcheck",
        B,
    ),
    (
        "certificatesresolvers.<name>.acme.dnschallenge.propagation",
        B,
    ),
    (
        "certificatesresolvers.<name>.acme.dnschallenge.propagation.delaybeforechecks",
        V,
    ),
    (
        "certificatesresolvers.<name>.acme.dnschallenge.propagation.disableanschecks",
        B,
    ),
    (
        "certificatesresolvers.<name>.acme.dnschallenge.propagation.disablechecks",
        B,
    ),
    (
        "certificatesresolvers.<name>.acme.dnschallenge.propagation.requireallrns",
        B,
    ),
    ("certificatesresolvers.<name>.acme.dnschallenge.provider", V),
    (
        "certificatesresolvers.<name>.acme.dnschallenge.resolvers",
        V,
    ),
    ("certificatesresolvers.<name>.acme.eab.hmacencoded", V),
    ("certificatesresolvers.<name>.acme.eab.kid", V),
    ("certificatesresolvers.<name>.acme.email", V),
    ("certificatesresolvers.<name>.acme.emailaddresses", V),
    ("certificatesresolvers.<name>.acme.httpchallenge", B),
    ("certificatesresolvers.<name>.acme.httpchallenge.delay", V),
    (
        "certificatesresolvers.<name>.acme.httpchallenge.entrypoint",
        V,
    ),
    ("certificatesresolvers.<name>.acme.keytype", V),
    ("certificatesresolvers.<name>.acme.preferredchain", V),
    ("certificatesresolvers.<name>.acme.profile", V),
    ("certificatesresolvers.<name>.acme.storage", V),
    ("certificatesresolvers.<name>.acme.tlschallenge", B),
    ("certificatesresolvers.<name>.acme.tlschallenge.delay", V),
    ("certificatesresolvers.<name>.tailscale", B),
    ("core.defaultrulesyntax", V),
    ("entrypoints.<name>", B),
    ("entrypoints.<name>.address", V),
    ("entrypoints.<name>.allowacmebypass", B),
    ("entrypoints.<name>.asdefault", B),
    (
        "entrypoints.<name>.forwardedheaders.addxforwardedschemeheaders",
        B,
    ),
    ("entrypoints.<name>.forwardedheaders.connection", V),
    ("entrypoints.<name>.forwardedheaders.insecure", B),
    (
        "entrypoints.<name>.forwardedheaders.notappendxforwardedfor",
        B,
    ),
    ("entrypoints.<name>.forwardedheaders.trustedips", V),
    ("entrypoints.<name>.http", V),
    (
        "entrypoints.<name>.http.encodedcharacters.allowencodedbackslash",
        B,
    ),
    (
        "entrypoints.<name>.http.encodedcharacters.allowencodedhash",
        B,
    ),
    (
        "entrypoints.<name>.http.encodedcharacters.allowencodednullcharacter",
        B,
    ),
    (
        "entrypoints.<name>.http.encodedcharacters.allowencodedpercent",
        B,
    ),
    (
        "entrypoints.<name>.http.encodedcharacters.allowencodedquestionmark",
        B,
    ),
    (
        "entrypoints.<name>.http.encodedcharacters.allowencodedsemicolon",
        B,
    ),
    (
        "entrypoints.<name>.http.encodedcharacters.allowencodedslash",
        B,
    ),
    ("entrypoints.<name>.http.encodequerysemicolons", B),
    ("entrypoints.<name>.http.maxheaderbytes", V),
    ("entrypoints.<name>.http.middlewares", V),
    (
        "entrypoints.<name>.http.redirections.entrypoint.permanent",
        B,
    ),
    (
        "entrypoints.<name>.http.redirections.entrypoint.priority",
        V,
    ),
    ("entrypoints.<name>.http.redirections.entrypoint.scheme", V),
    ("entrypoints.<name>.http.redirections.entrypoint.to", V),
    ("entrypoints.<name>.http.sanitizepath", B),
    ("entrypoints.<name>.http.tls", B),
    ("entrypoints.<name>.http.tls.certresolver", V),
    ("entrypoints.<name>.http.tls.domains", V),
    ("entrypoints.<name>.http.tls.domains[n].main", V),
    ("entrypoints.<name>.http.tls.domains[n].sans", V),
    ("entrypoints.<name>.http.tls.options", V),
    ("entrypoints.<name>.http.underscoreheadersstrategy", V),
    ("entrypoints.<name>.http2.maxconcurrentstreams", V),
    ("entrypoints.<name>.http2.maxdecoderheadertablesize", V),
    ("entrypoints.<name>.http2.maxencoderheadertablesize", V),
    ("entrypoints.<name>.http3", B),
    ("entrypoints.<name>.http3.advertisedport", V),
    ("entrypoints.<name>.observability.accesslogs", B),
    ("entrypoints.<name>.observability.metrics", B),
    ("entrypoints.<name>.observability.traceverbosity", V),
    ("entrypoints.<name>.observability.tracing", B),
    ("entrypoints.<name>.proxyprotocol", B),
    ("entrypoints.<name>.proxyprotocol.insecure", B),
    ("entrypoints.<name>.proxyprotocol.trustedips", V),
    ("entrypoints.<name>.reuseport", B),
    ("entrypoints.<name>.transport.keepalivemaxrequests", V),
    ("entrypoints.<name>.transport.keepalivemaxtime", V),
    ("entrypoints.<name>.transport.lifecycle.gracetimeout", V),
    (
        "entrypoints.<name>.transport.lifecycle.requestacceptgracetimeout",
        V,
    ),
    (
        "entrypoints.<name>.transport.respondingtimeouts.idletimeout",
        V,
    ),
    (
        "entrypoints.<name>.transport.respondingtimeouts.readtimeout",
        V,
    ),
    (
        "entrypoints.<name>.transport.respondingtimeouts.writetimeout",
        V,
    ),
    ("entrypoints.<name>.udp.timeout", V),
    ("experimental.abortonpluginfailure", B),
    ("experimental.fastproxy", B),
    ("experimental.fastproxy.debug", B),
    ("experimental.knative", B),
    ("experimental.kubernetesgateway", B),
    ("experimental.kubernetesingressnginx", B),
    ("experimental.localplugins.<name>", B),
    ("experimental.localplugins.<name>.modulename", V),
    ("experimental.localplugins.<name>.settings", V),
    ("experimental.localplugins.<name>.settings.envs", V),
    ("experimental.localplugins.<name>.settings.mounts", V),
    ("experimental.localplugins.<name>.settings.useunsafe", B),
    ("experimental.otlplogs", B),
    ("experimental.plugins.<name>.hash", V),
    ("experimental.plugins.<name>.modulename", V),
    ("experimental.plugins.<name>.settings", V),
    ("experimental.plugins.<name>.settings.envs", V),
    ("experimental.plugins.<name>.settings.mounts", V),
    ("experimental.plugins.<name>.settings.useunsafe", B),
    ("experimental.plugins.<name>.version", V),
    ("global.checknewversion", B),
    ("global.notappendxforwardedfor", B),
    ("global.sendanonymoususage", B),
    ("hostresolver", B),
    ("hostresolver.cnameflattening", B),
    ("hostresolver.resolvconfig", V),
    ("hostresolver.resolvdepth", V),
    ("log", B),
    ("log.compress", B),
    ("log.filepath", V),
    ("log.format", V),
    ("log.level", V),
    ("log.maxage", V),
    ("log.maxbackups", V),
    ("log.maxsize", V),
    ("log.nocolor", B),
    ("log.otlp", B),
    ("log.otlp.grpc", B),
    ("log.otlp.grpc.endpoint", V),
    ("log.otlp.grpc.headers.<name>", V),
    ("log.otlp.grpc.insecure", B),
    ("log.otlp.grpc.tls.ca", V),
    ("log.otlp.grpc.tls.cert", V),
    ("log.otlp.grpc.tls.insecureskipverify", B),
    ("log.otlp.grpc.tls.key", V),
    ("log.otlp.http", B),
    ("log.otlp.http.endpoint", V),
    ("log.otlp.http.headers.<name>", V),
    ("log.otlp.http.tls.ca", V),
    ("log.otlp.http.tls.cert", V),
    ("log.otlp.http.tls.insecureskipverify", B),
    ("log.otlp.http.tls.key", V),
    ("log.otlp.resourceattributes.<name>", V),
    ("log.otlp.servicename", V),
    ("metrics.addinternals", B),
    ("metrics.datadog", B),
    ("metrics.datadog.addentrypointslabels", B),
    ("metrics.datadog.address", V),
    ("metrics.datadog.addrouterslabels", B),
    ("metrics.datadog.addserviceslabels", B),
    ("metrics.datadog.prefix", V),
    ("metrics.datadog.pushinterval", V),
    ("metrics.influxdb2", B),
    ("metrics.influxdb2.addentrypointslabels", B),
    ("metrics.influxdb2.additionallabels.<name>", V),
    ("metrics.influxdb2.address", V),
    ("metrics.influxdb2.addrouterslabels", B),
    ("metrics.influxdb2.addserviceslabels", B),
    ("metrics.influxdb2.bucket", V),
    ("metrics.influxdb2.org", V),
    ("metrics.influxdb2.pushinterval", V),
    ("metrics.influxdb2.token", V),
    ("metrics.otlp", B),
    ("metrics.otlp.addentrypointslabels", B),
    ("metrics.otlp.addrouterslabels", B),
    ("metrics.otlp.addserviceslabels", B),
    ("metrics.otlp.explicitboundaries", V),
    ("metrics.otlp.grpc", B),
    ("metrics.otlp.grpc.endpoint", V),
    ("metrics.otlp.grpc.headers.<name>", V),
    ("metrics.otlp.grpc.insecure", B),
    ("metrics.otlp.grpc.tls.ca", V),
    ("metrics.otlp.grpc.tls.cert", V),
    ("metrics.otlp.grpc.tls.insecureskipverify", B),
    ("metrics.otlp.grpc.tls.key", V),
    ("metrics.otlp.http", B),
    ("metrics.otlp.http.endpoint", V),
    ("metrics.otlp.http.headers.<name>", V),
    ("metrics.otlp.http.tls.ca", V),
    ("metrics.otlp.http.tls.cert", V),
    ("metrics.otlp.http.tls.insecureskipverify", B),
    ("metrics.otlp.http.tls.key", V),
    ("metrics.otlp.pushinterval", V),
    ("metrics.otlp.resourceattributes.<name>", V),
    ("metrics.otlp.servicename", V),
    ("metrics.prometheus", B),
    ("metrics.prometheus.addentrypointslabels", B),
    ("metrics.prometheus.addrouterslabels", B),
    ("metrics.prometheus.addserviceslabels", B),
    ("metrics.prometheus.buckets", V),
    ("metrics.prometheus.entrypoint", V),
    ("metrics.prometheus.headerlabels.<name>", V),
    ("metrics.prometheus.manualrouting", B),
    ("metrics.statsd", B),
    ("metrics.statsd.addentrypointslabels", B),
    ("metrics.statsd.address", V),
    ("metrics.statsd.addrouterslabels", B),
    ("metrics.statsd.addserviceslabels", B),
    ("metrics.statsd.prefix", V),
    ("metrics.statsd.pushinterval", V),
    ("ocsp", B),
    ("ocsp.responderoverrides.<name>", V),
    ("ping", B),
    ("ping.entrypoint", V),
    ("ping.manualrouting", B),
    ("ping.terminatingstatuscode", V),
    ("providers.consul", B),
    ("providers.consul.endpoints", V),
    ("providers.consul.namespaces", V),
    ("providers.consul.rootkey", V),
    ("providers.consul.tls.ca", V),
    ("providers.consul.tls.cert", V),
    ("providers.consul.tls.insecureskipverify", B),
    ("providers.consul.tls.key", V),
    ("providers.consul.token", V),
    ("providers.consulcatalog", B),
    ("providers.consulcatalog.cache", B),
    ("providers.consulcatalog.connectaware", B),
    ("providers.consulcatalog.connectbydefault", B),
    ("providers.consulcatalog.constraints", V),
    ("providers.consulcatalog.defaultrule", V),
    ("providers.consulcatalog.endpoint.address", V),
    ("providers.consulcatalog.endpoint.datacenter", V),
    ("providers.consulcatalog.endpoint.endpointwaittime", V),
    ("providers.consulcatalog.endpoint.httpauth.password", V),
    ("providers.consulcatalog.endpoint.httpauth.username", V),
    ("providers.consulcatalog.endpoint.scheme", V),
    ("providers.consulcatalog.endpoint.tls.ca", V),
    ("providers.consulcatalog.endpoint.tls.cert", V),
    ("providers.consulcatalog.endpoint.tls.insecureskipverify", B),
    ("providers.consulcatalog.endpoint.tls.key", V),
    ("providers.consulcatalog.endpoint.token", V),
    ("providers.consulcatalog.exposedbydefault", B),
    ("providers.consulcatalog.namespaces", V),
    ("providers.consulcatalog.prefix", V),
    ("providers.consulcatalog.refreshinterval", V),
    ("providers.consulcatalog.requireconsistent", B),
    ("providers.consulcatalog.servicename", V),
    ("providers.consulcatalog.stale", B),
    ("providers.consulcatalog.strictchecks", V),
    ("providers.consulcatalog.watch", B),
    ("providers.docker", B),
    ("providers.docker.allowemptyservices", B),
    ("providers.docker.constraints", V),
    ("providers.docker.defaultrule", V),
    ("providers.docker.endpoint", V),
    ("providers.docker.exposedbydefault", B),
    ("providers.docker.httpclienttimeout", V),
    ("providers.docker.network", V),
    ("providers.docker.password", V),
    ("providers.docker.tls.ca", V),
    ("providers.docker.tls.cert", V),
    ("providers.docker.tls.insecureskipverify", B),
    ("providers.docker.tls.key", V),
    ("providers.docker.usebindportip", B),
    ("providers.docker.username", V),
    ("providers.docker.watch", B),
    ("providers.ecs", B),
    ("providers.ecs.accesskeyid", V),
    ("providers.ecs.autodiscoverclusters", B),
    ("providers.ecs.clusters", V),
    ("providers.ecs.constraints", V),
    ("providers.ecs.defaultrule", V),
    ("providers.ecs.ecsanywhere", B),
    ("providers.ecs.exposedbydefault", B),
    ("providers.ecs.healthytasksonly", B),
    ("providers.ecs.refreshseconds", V),
    ("providers.ecs.region", V),
    ("providers.ecs.secretaccesskey", V),
    ("providers.etcd", B),
    ("providers.etcd.endpoints", V),
    ("providers.etcd.password", V),
    ("providers.etcd.rootkey", V),
    ("providers.etcd.tls.ca", V),
    ("providers.etcd.tls.cert", V),
    ("providers.etcd.tls.insecureskipverify", B),
    ("providers.etcd.tls.key", V),
    ("providers.etcd.username", V),
    ("providers.file.debugloggeneratedtemplate", B),
    ("providers.file.directory", V),
    ("providers.file.filename", V),
    ("providers.file.watch", B),
    ("providers.http", B),
    ("providers.http.endpoint", V),
    ("providers.http.headers.<name>", V),
    ("providers.http.maxresponsebodysize", V),
    ("providers.http.pollinterval", V),
    ("providers.http.polltimeout", V),
    ("providers.http.tls.ca", V),
    ("providers.http.tls.cert", V),
    ("providers.http.tls.insecureskipverify", B),
    ("providers.http.tls.key", V),
    ("providers.knative", B),
    ("providers.knative.certauthfilepath", V),
    ("providers.knative.endpoint", V),
    ("providers.knative.labelselector", V),
    ("providers.knative.namespaces", V),
    ("providers.knative.privateentrypoints", V),
    ("providers.knative.privateservice", V),
    ("providers.knative.privateservice.name", V),
    ("providers.knative.privateservice.namespace", V),
    ("providers.knative.publicentrypoints", V),
    ("providers.knative.publicservice", V),
    ("providers.knative.publicservice.name", V),
    ("providers.knative.publicservice.namespace", V),
    ("providers.knative.throttleduration", V),
    ("providers.knative.token", V),
    ("providers.kubernetescrd", B),
    ("providers.kubernetescrd.allowcrossnamespace", B),
    ("providers.kubernetescrd.allowemptyservices", B),
    ("providers.kubernetescrd.allowexternalnameservices", B),
    ("providers.kubernetescrd.certauthfilepath", V),
    ("providers.kubernetescrd.crossprovidernamespaces", V),
    ("providers.kubernetescrd.disableclusterscoperesources", B),
    ("providers.kubernetescrd.endpoint", V),
    ("providers.kubernetescrd.ingressclass", V),
    ("providers.kubernetescrd.labelselector", V),
    ("providers.kubernetescrd.namespaces", V),
    ("providers.kubernetescrd.nativelbbydefault", B),
    ("providers.kubernetescrd.throttleduration", V),
    ("providers.kubernetescrd.token", V),
    ("providers.kubernetesgateway", B),
    ("providers.kubernetesgateway.burst", V),
    ("providers.kubernetesgateway.certauthfilepath", V),
    ("providers.kubernetesgateway.crossprovidernamespaces", V),
    ("providers.kubernetesgateway.endpoint", V),
    ("providers.kubernetesgateway.experimentalchannel", B),
    ("providers.kubernetesgateway.labelselector", V),
    ("providers.kubernetesgateway.namespaces", V),
    ("providers.kubernetesgateway.nativelbbydefault", B),
    ("providers.kubernetesgateway.qps", V),
    ("providers.kubernetesgateway.statusaddress.hostname", V),
    ("providers.kubernetesgateway.statusaddress.ip", V),
    ("providers.kubernetesgateway.statusaddress.service", V),
    ("providers.kubernetesgateway.statusaddress.service.name", V),
    (
        "providers.kubernetesgateway.statusaddress.service.namespace",
        V,
    ),
    ("providers.kubernetesgateway.throttleduration", V),
    ("providers.kubernetesgateway.token", V),
    ("providers.kubernetesingress", B),
    ("providers.kubernetesingress.allowemptyservices", B),
    ("providers.kubernetesingress.allowexternalnameservices", B),
    ("providers.kubernetesingress.certauthfilepath", V),
    ("providers.kubernetesingress.crossprovidernamespaces", V),
    (
        "providers.kubernetesingress.disableclusterscoperesources",
        B,
    ),
    ("providers.kubernetesingress.disableingressclasslookup", B),
    ("providers.kubernetesingress.endpoint", V),
    ("providers.kubernetesingress.ingressclass", V),
    ("providers.kubernetesingress.ingressendpoint.hostname", V),
    ("providers.kubernetesingress.ingressendpoint.ip", V),
    (
        "providers.kubernetesingress.ingressendpoint.publishedservice",
        V,
    ),
    ("providers.kubernetesingress.labelselector", V),
    ("providers.kubernetesingress.namespaces", V),
    ("providers.kubernetesingress.nativelbbydefault", B),
    ("providers.kubernetesingress.reportnodeinternalips", B),
    ("providers.kubernetesingress.strictprefixmatching", B),
    ("providers.kubernetesingress.throttleduration", V),
    ("providers.kubernetesingress.token", V),
    ("providers.kubernetesingressnginx", B),
    (
        "providers.kubernetesingressnginx.allowcrossnamespaceresources",
        B,
    ),
    (
        "providers.kubernetesingressnginx.allowsnippetannotations",
        B,
    ),
    ("providers.kubernetesingressnginx.certauthfilepath", V),
    ("providers.kubernetesingressnginx.clientbodybuffersize", V),
    ("providers.kubernetesingressnginx.controllerclass", V),
    ("providers.kubernetesingressnginx.customhttperrors", V),
    ("providers.kubernetesingressnginx.defaultbackendservice", V),
    ("providers.kubernetesingressnginx.disablesvcexternalname", B),
    ("providers.kubernetesingressnginx.endpoint", V),
    (
        "providers.kubernetesingressnginx.globalallowedresponseheaders",
        V,
    ),
    ("providers.kubernetesingressnginx.globalauthurl", V),
    ("providers.kubernetesingressnginx.httpentrypoint", V),
    ("providers.kubernetesingressnginx.httpsentrypoint", V),
    ("providers.kubernetesingressnginx.ingressclass", V),
    ("providers.kubernetesingressnginx.ingressclassbyname", B),
    (
        "providers.kubernetesingressnginx.ipallowliststrategy.depth",
        V,
    ),
    (
        "providers.kubernetesingressnginx.ipallowliststrategy.excludedips",
        V,
    ),
    (
        "providers.kubernetesingressnginx.ipallowliststrategy.ipv6subnet",
        V,
    ),
    ("providers.kubernetesingressnginx.proxybodysize", V),
    ("providers.kubernetesingressnginx.proxybuffering", B),
    ("providers.kubernetesingressnginx.proxybuffersize", V),
    ("providers.kubernetesingressnginx.proxybuffersnumber", V),
    ("providers.kubernetesingressnginx.proxyconnecttimeout", V),
    ("providers.kubernetesingressnginx.proxynextupstream", V),
    (
        "providers.kubernetesingressnginx.proxynextupstreamtimeout",
        V,
    ),
    ("providers.kubernetesingressnginx.proxynextupstreamtries", V),
    ("providers.kubernetesingressnginx.proxyreadtimeout", V),
    ("providers.kubernetesingressnginx.proxyrequestbuffering", B),
    ("providers.kubernetesingressnginx.proxysendtimeout", V),
    ("providers.kubernetesingressnginx.publishservice", V),
    ("providers.kubernetesingressnginx.publishstatusaddress", V),
    ("providers.kubernetesingressnginx.strictvalidatepathtype", B),
    ("providers.kubernetesingressnginx.throttleduration", V),
    ("providers.kubernetesingressnginx.token", V),
    (
        "providers.kubernetesingressnginx.upstreamkeepalivetimeout",
        V,
    ),
    (
        "providers.kubernetesingressnginx.watchingresswithoutclass",
        B,
    ),
    ("providers.kubernetesingressnginx.watchnamespace", V),
    ("providers.kubernetesingressnginx.watchnamespaceselector", V),
    ("providers.nomad", B),
    ("providers.nomad.allowemptyservices", B),
    ("providers.nomad.constraints", V),
    ("providers.nomad.defaultrule", V),
    ("providers.nomad.endpoint.address", V),
    ("providers.nomad.endpoint.endpointwaittime", V),
    ("providers.nomad.endpoint.region", V),
    ("providers.nomad.endpoint.tls.ca", V),
    ("providers.nomad.endpoint.tls.cert", V),
    ("providers.nomad.endpoint.tls.insecureskipverify", B),
    ("providers.nomad.endpoint.tls.key", V),
    ("providers.nomad.endpoint.token", V),
    ("providers.nomad.exposedbydefault", B),
    ("providers.nomad.namespaces", V),
    ("providers.nomad.prefix", V),
    ("providers.nomad.refreshinterval", V),
    ("providers.nomad.stale", B),
    ("providers.nomad.throttleduration", V),
    ("providers.nomad.watch", B),
    ("providers.plugin.<name>", V),
    ("providers.precedence", V),
    ("providers.providersthrottleduration", V),
    ("providers.redis", B),
    ("providers.redis.db", V),
    ("providers.redis.endpoints", V),
    ("providers.redis.password", V),
    ("providers.redis.rootkey", V),
    ("providers.redis.sentinel.latencystrategy", B),
    ("providers.redis.sentinel.mastername", V),
    ("providers.redis.sentinel.password", V),
    ("providers.redis.sentinel.randomstrategy", B),
    ("providers.redis.sentinel.replicastrategy", B),
    ("providers.redis.sentinel.usedisconnectedreplicas", B),
    ("providers.redis.sentinel.username", V),
    ("providers.redis.tls.ca", V),
    ("providers.redis.tls.cert", V),
    ("providers.redis.tls.insecureskipverify", B),
    ("providers.redis.tls.key", V),
    ("providers.redis.username", V),
    ("providers.rest", B),
    ("providers.rest.insecure", B),
    ("providers.swarm", B),
    ("providers.swarm.allowemptyservices", B),
    ("providers.swarm.constraints", V),
    ("providers.swarm.defaultrule", V),
    ("providers.swarm.endpoint", V),
    ("providers.swarm.exposedbydefault", B),
    ("providers.swarm.httpclienttimeout", V),
    ("providers.swarm.network", V),
    ("providers.swarm.password", V),
    ("providers.swarm.refreshseconds", V),
    ("providers.swarm.tls.ca", V),
    ("providers.swarm.tls.cert", V),
    ("providers.swarm.tls.insecureskipverify", B),
    ("providers.swarm.tls.key", V),
    ("providers.swarm.usebindportip", B),
    ("providers.swarm.username", V),
    ("providers.swarm.watch", B),
    ("providers.zookeeper", B),
    ("providers.zookeeper.endpoints", V),
    ("providers.zookeeper.password", V),
    ("providers.zookeeper.rootkey", V),
    ("providers.zookeeper.username", V),
    ("serverstransport.forwardingtimeouts.dialtimeout", V),
    ("serverstransport.forwardingtimeouts.idleconntimeout", V),
    (
        "serverstransport.forwardingtimeouts.responseheadertimeout",
        V,
    ),
    ("serverstransport.insecureskipverify", B),
    ("serverstransport.maxidleconnsperhost", V),
    ("serverstransport.rootcas", V),
    ("serverstransport.spiffe", B),
    ("serverstransport.spiffe.ids", V),
    ("serverstransport.spiffe.trustdomain", V),
    ("spiffe.workloadapiaddr", V),
    ("tcpserverstransport.dialkeepalive", V),
    ("tcpserverstransport.dialtimeout", V),
    ("tcpserverstransport.terminationdelay", V),
    ("tcpserverstransport.tls", B),
    ("tcpserverstransport.tls.insecureskipverify", B),
    ("tcpserverstransport.tls.rootcas", V),
    ("tcpserverstransport.tls.spiffe", B),
    ("tcpserverstransport.tls.spiffe.ids", V),
    ("tcpserverstransport.tls.spiffe.trustdomain", V),
    ("tracing", B),
    ("tracing.addinternals", B),
    ("tracing.capturedrequestheaders", V),
    ("tracing.capturedresponseheaders", V),
    ("tracing.globalattributes.<name>", V),
    ("tracing.otlp", B),
    ("tracing.otlp.grpc", B),
    ("tracing.otlp.grpc.endpoint", V),
    ("tracing.otlp.grpc.headers.<name>", V),
    ("tracing.otlp.grpc.insecure", B),
    ("tracing.otlp.grpc.tls.ca", V),
    ("tracing.otlp.grpc.tls.cert", V),
    ("tracing.otlp.grpc.tls.insecureskipverify", B),
    ("tracing.otlp.grpc.tls.key", V),
    ("tracing.otlp.http", B),
    ("tracing.otlp.http.endpoint", V),
    ("tracing.otlp.http.headers.<name>", V),
    ("tracing.otlp.http.tls.ca", V),
    ("tracing.otlp.http.tls.cert", V),
    ("tracing.otlp.http.tls.insecureskipverify", B),
    ("tracing.otlp.http.tls.key", V),
    ("tracing.resourceattributes.<name>", V),
    ("tracing.safequeryparams", V),
    ("tracing.samplerate", V),
    ("tracing.servicename", V),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(s: &str) -> Vec<String> {
        super::super::tree::split_flat_key(s).unwrap()
    }

    #[test]
    fn looks_up_keys_any_case_with_names_and_indexes() {
        assert_eq!(
            lookup(&keys("api.insecure")),
            KeyMatch::Exact(KeyKind::Bool)
        );
        assert_eq!(lookup(&keys("ping")), KeyMatch::Exact(KeyKind::Bool));
        assert_eq!(
            lookup(&keys("entryPoints.web.address")),
            KeyMatch::Exact(KeyKind::Value)
        );
        assert_eq!(
            lookup(&keys("entryPoints.web.http.tls.domains[2].main")),
            KeyMatch::Exact(KeyKind::Value)
        );
        assert_eq!(
            lookup(&keys("tracing.otlp.grpc")),
            KeyMatch::Exact(KeyKind::Bool)
        );
        assert_eq!(
            lookup(&keys("entrypoints.web.http")),
            KeyMatch::Exact(KeyKind::Value)
        );
        assert_eq!(
            lookup(&keys("certificatesResolvers.le.acme")),
            KeyMatch::Section
        );
        assert_eq!(lookup(&keys("entrypoints.web.adress")), KeyMatch::Unknown);
        assert_eq!(lookup(&keys("docker.swarmmode")), KeyMatch::Unknown);
    }

    #[test]
    fn knows_bool_flags_and_list_keys() {
        assert!(is_bool_flag(&keys("providers.swarm")));
        assert!(is_bool_flag(&keys("metrics.prometheus")));
        assert!(!is_bool_flag(&keys("log.level")));
        assert!(is_list_key(&keys(
            "entrypoints.web.forwardedHeaders.trustedIPs"
        )));
        assert!(!is_list_key(&keys("entrypoints.web.address")));
    }

    #[test]
    fn suggests_the_nearest_key_at_the_first_wrong_segment() {
        assert_eq!(
            suggest(&keys("tracing.otlp.grcp.endpoint")),
            (2, Some("grpc".to_string()))
        );
        assert_eq!(suggest(&keys("tracnig")), (0, Some("tracing".to_string())));
        assert_eq!(suggest(&keys("hostresolver.zzzzzzz")).1, None);
    }

    #[test]
    fn roots_are_the_top_level_sections() {
        let r = roots();
        for root in [
            "entrypoints",
            "providers",
            "api",
            "ping",
            "accesslog",
            "tracing",
        ] {
            assert!(r.contains(&root), "{root}");
        }
        assert!(!r.contains(&"docker"));
    }
}
