//! Prometheus metrics with Traefik's names and labels, so existing
//! dashboards and alerts work unchanged; escale's extras are `escale_*`.
//!
//! The request path never takes a lock: series live in copy-on-write maps
//! (`ArcSwap<HashMap>`) that requests only read, and each series is a set of
//! atomics. Only the first request of a new label set takes the writers'
//! mutex to add it. Exposition goes through `prometheus-client`'s encoder
//! with a collector that reads those atomics at scrape time.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use http::{HeaderValue, Method, Response, StatusCode, header};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use super::{AdminContext, PrometheusConfig};
use crate::provider::{ProviderStatus, Severity};
use crate::proxy::body::{Body, text_response};
use crate::proxy::observe::Exchange;
use crate::routing::RouteTable;

/// A map that readers consult without locking; writers copy it.
#[derive(Debug)]
struct CowMap<K, V> {
    map: ArcSwap<HashMap<K, Arc<V>>>,
    writer: Mutex<()>,
}

impl<K: Hash + Eq + Clone, V> Default for CowMap<K, V> {
    fn default() -> Self {
        CowMap {
            map: ArcSwap::from_pointee(HashMap::new()),
            writer: Mutex::new(()),
        }
    }
}

impl<K: Hash + Eq + Clone, V> CowMap<K, V> {
    fn get_or_insert<Q>(
        &self,
        key: &Q,
        owned: impl FnOnce() -> K,
        make: impl FnOnce() -> V,
    ) -> Arc<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if let Some(v) = self.map.load().get(key) {
            return v.clone();
        }
        let _w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let current = self.map.load_full();
        if let Some(v) = current.get(key) {
            return v.clone();
        }
        let mut next = HashMap::clone(&current);
        let v = Arc::new(make());
        next.insert(owned(), v.clone());
        self.map.store(Arc::new(next));
        v
    }

    /// As `get_or_insert`, but inserts only if `allowed()`, asked under the
    /// writer lock (so a concurrent `retain` sees the insert or prevents it).
    fn get_or_insert_if<Q>(
        &self,
        key: &Q,
        owned: impl FnOnce() -> K,
        make: impl FnOnce() -> V,
        allowed: impl FnOnce() -> bool,
    ) -> Option<Arc<V>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if let Some(v) = self.map.load().get(key) {
            return Some(v.clone());
        }
        let _w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let current = self.map.load_full();
        if let Some(v) = current.get(key) {
            return Some(v.clone());
        }
        if !allowed() {
            return None;
        }
        let mut next = HashMap::clone(&current);
        let v = Arc::new(make());
        next.insert(owned(), v.clone());
        self.map.store(Arc::new(next));
        Some(v)
    }

    fn retain(&self, keep: impl Fn(&K) -> bool) {
        let _w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let current = self.map.load_full();
        if current.keys().all(&keep) {
            return;
        }
        let next = current
            .iter()
            .filter(|(k, _)| keep(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        self.map.store(Arc::new(next));
    }

    fn snapshot(&self) -> Vec<(K, Arc<V>)> {
        self.map
            .load()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

/// A counter and histogram pair for one label set.
#[derive(Debug)]
struct Series {
    count: AtomicU64,
    sum_nanos: AtomicU64,
    buckets: Box<[AtomicU64]>,
}

impl Series {
    fn new(bounds: usize) -> Self {
        Series {
            count: AtomicU64::new(0),
            sum_nanos: AtomicU64::new(0),
            // One extra for +Inf.
            buckets: (0..=bounds).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn observe(&self, bounds: &[f64], d: Duration) {
        let secs = d.as_secs_f64();
        let i = bounds
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(bounds.len());
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add(
            u64::try_from(d.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        if let Some(b) = self.buckets.get(i) {
            b.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn histogram(&self, bounds: &[f64]) -> Hist {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let mut buckets: Vec<(f64, u64)> =
            bounds.iter().copied().zip(counts.iter().copied()).collect();
        buckets.push((f64::INFINITY, counts.last().copied().unwrap_or(0)));
        // Derive the count from the buckets so `_count` always equals the
        // `+Inf` bucket, even mid-update.
        let count = counts.iter().sum();
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        (sum, count, buckets)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct SeriesKey {
    code: u16,
    method: Method,
    protocol: &'static str,
}

type SeriesSet = CowMap<SeriesKey, Series>;

#[derive(Debug, Default)]
struct ServiceSeries {
    requests: SeriesSet,
    retries: AtomicU64,
}

#[derive(Debug)]
struct Store {
    config: PrometheusConfig,
    bounds: Arc<[f64]>,
    entrypoints: CowMap<Arc<str>, SeriesSet>,
    services: CowMap<Arc<str>, ServiceSeries>,
    /// router -> service -> series.
    routers: CowMap<Arc<str>, CowMap<Arc<str>, SeriesSet>>,
    open_connections: Vec<(Arc<str>, AtomicI64)>,
    reloads: AtomicU64,
    last_reload_success: AtomicU64,
    compile: Series,
    /// The table of the last reload: a request routed by an older one that
    /// ends after the reload must not bring back the series it removed.
    live: arc_swap::ArcSwapOption<RouteTable>,
}

const COMPILE_BOUNDS: &[f64] = &[0.001, 0.005, 0.025, 0.1, 0.5, 2.5];

/// Metrics of a running proxy; a no-op unless Prometheus is configured.
pub struct Metrics {
    store: Option<Arc<Store>>,
    providers: Vec<Arc<ProviderStatus>>,
    draining: Arc<std::sync::atomic::AtomicBool>,
}

impl Metrics {
    pub fn new(config: Option<PrometheusConfig>, ctx: &AdminContext) -> Metrics {
        let store = config.map(|config| {
            let mut bounds = config.buckets.clone();
            bounds.retain(|b| b.is_finite());
            bounds.sort_by(|a, b| a.total_cmp(b));
            bounds.dedup();
            Arc::new(Store {
                bounds: bounds.into(),
                config,
                entrypoints: CowMap::default(),
                services: CowMap::default(),
                routers: CowMap::default(),
                open_connections: ctx
                    .entrypoints
                    .iter()
                    .map(|e| (Arc::from(e.name.as_str()), AtomicI64::new(0)))
                    .collect(),
                reloads: AtomicU64::new(0),
                last_reload_success: AtomicU64::new(0),
                compile: Series::new(COMPILE_BOUNDS.len()),
                live: arc_swap::ArcSwapOption::empty(),
            })
        });
        Metrics {
            store,
            providers: ctx.providers.clone(),
            draining: ctx.draining.clone(),
        }
    }

    pub fn enabled(&self) -> bool {
        self.store.is_some()
    }

    /// Records one exchange (request path).
    pub fn exchange(&self, ex: &Exchange) {
        let Some(store) = &self.store else { return };
        // Traefik keeps its own internal routers out of the metrics.
        if ex.service.is_some_and(|s| s.ends_with("@internal")) {
            return;
        }
        let key = || SeriesKey {
            code: ex.status,
            method: ex.method.clone(),
            protocol: ex.protocol.as_str(),
        };
        let bounds = &store.bounds;
        let observe = |set: &SeriesSet| {
            let k = key();
            set.get_or_insert(&k, || k.clone(), || Series::new(bounds.len()))
                .observe(bounds, ex.duration);
        };
        if store.config.add_entry_points_labels {
            let set = store.entrypoints.get_or_insert(
                ex.entrypoint,
                || ex.entrypoint.into(),
                SeriesSet::default,
            );
            observe(&set);
        }
        if let Some(service) = ex.service {
            let live = |has: fn(&RouteTable, &str) -> bool, name: &str| {
                store.live.load().as_ref().is_none_or(|t| has(t, name))
            };
            if store.config.add_services_labels
                && let Some(s) = store.services.get_or_insert_if(
                    service,
                    || service.into(),
                    ServiceSeries::default,
                    || live(|t, n| t.service_views.contains_key(n), service),
                )
            {
                observe(&s.requests);
                if ex.retries > 0 {
                    s.retries
                        .fetch_add(u64::from(ex.retries), Ordering::Relaxed);
                }
            }
            if store.config.add_routers_labels
                && let Some(router) = ex.router
                && let Some(by_service) = store.routers.get_or_insert_if(
                    router,
                    || router.into(),
                    CowMap::default,
                    || live(|t, n| t.routers.contains_key(n), router),
                )
            {
                let set = by_service.get_or_insert(service, || service.into(), SeriesSet::default);
                observe(&set);
            }
        }
    }

    pub fn connection(&self, entrypoint: &str, delta: i64) {
        let Some(store) = &self.store else { return };
        if let Some((_, n)) = store
            .open_connections
            .iter()
            .find(|(name, _)| &**name == entrypoint)
        {
            n.fetch_add(delta, Ordering::Relaxed);
        }
    }

    /// Counts a reload and forgets series of routers and services that are
    /// gone, as Traefik does.
    pub fn reloaded(&self, table: &Arc<RouteTable>, compile_time: Duration) {
        let Some(store) = &self.store else { return };
        store.reloads.fetch_add(1, Ordering::Relaxed);
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        store.last_reload_success.store(now, Ordering::Relaxed);
        store.compile.observe(COMPILE_BOUNDS, compile_time);
        // Before the removals below: see `get_or_insert_if`.
        store.live.store(Some(table.clone()));
        store
            .services
            .retain(|s| table.service_views.contains_key(&**s));
        store.routers.retain(|r| table.routers.contains_key(&**r));
    }

    /// The `/metrics` answer.
    pub fn response(&self, table: &Arc<RouteTable>) -> Response<Body> {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(Scrape {
            store: self.store.clone(),
            table: table.clone(),
            providers: self.providers.clone(),
            draining: self.draining.load(Ordering::Relaxed),
        }));
        let mut text = String::new();
        if let Err(e) = prometheus_client::encoding::prometheus_text::encode(&mut text, &registry) {
            return text_response(StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
        }
        let mut res = Response::new(Body::full(text));
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(prometheus_client::encoding::prometheus_text::CONTENT_TYPE),
        );
        res
    }
}

/// What one scrape reads.
#[derive(Debug)]
struct Scrape {
    store: Option<Arc<Store>>,
    table: Arc<RouteTable>,
    providers: Vec<Arc<ProviderStatus>>,
    draining: bool,
}

type Labels<'a> = Vec<(&'static str, &'a str)>;

fn counter(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: &[(Labels, u64)],
) -> Result<(), std::fmt::Error> {
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, v) in rows {
        encode_labeled(&mut m, labels, |m| {
            m.encode_counter::<NoLabelSet, _, u64>(v, None)
        })?;
    }
    Ok(())
}

fn gauge<V: prometheus_client::encoding::EncodeGaugeValue>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: &[(Labels, V)],
) -> Result<(), std::fmt::Error> {
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, v) in rows {
        encode_labeled(&mut m, labels, |m| m.encode_gauge(v))?;
    }
    Ok(())
}

fn histogram(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: &[(Labels, Hist)],
) -> Result<(), std::fmt::Error> {
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Histogram)?;
    for (labels, (sum, count, buckets)) in rows {
        encode_labeled(&mut m, labels, |m| {
            m.encode_histogram::<NoLabelSet>(*sum, *count, buckets, None)
        })?;
    }
    Ok(())
}

fn encode_labeled(
    m: &mut prometheus_client::encoding::MetricEncoder,
    labels: &Labels,
    f: impl FnOnce(&mut prometheus_client::encoding::MetricEncoder) -> Result<(), std::fmt::Error>,
) -> Result<(), std::fmt::Error> {
    if labels.is_empty() {
        f(m)
    } else {
        let set = labels.as_slice();
        f(&mut m.encode_family(&set)?)
    }
}

fn series_rows(fixed: Labels, set: &SeriesSet, bounds: &[f64]) -> OwnedRows {
    let mut out: OwnedRows = set
        .snapshot()
        .into_iter()
        .map(|(k, s)| {
            let mut labels: Vec<(&'static str, String)> =
                fixed.iter().map(|(n, v)| (*n, v.to_string())).collect();
            labels.push(("code", k.code.to_string()));
            labels.push(("method", k.method.to_string()));
            labels.push(("protocol", k.protocol.to_string()));
            labels.sort_by(|a, b| a.0.cmp(b.0));
            let h = s.histogram(bounds);
            (labels, s.count.load(Ordering::Relaxed), h)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// A histogram's sum, count and per-bucket counts.
type Hist = (f64, u64, Vec<(f64, u64)>);
type OwnedRows = Vec<(Vec<(&'static str, String)>, u64, Hist)>;

fn borrow<'a>(labels: &'a [(&'static str, String)]) -> Labels<'a> {
    labels.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

fn emit_request_metrics(
    enc: &mut DescriptorEncoder,
    prefix: &str,
    what: &str,
    rows: &OwnedRows,
) -> Result<(), std::fmt::Error> {
    let counts: Vec<(Labels, u64)> = rows.iter().map(|(l, c, _)| (borrow(l), *c)).collect();
    counter(
        enc,
        &format!("{prefix}_requests"),
        &format!(
            "How many HTTP requests processed on {what}, partitioned by status code, protocol, and method."
        ),
        &counts,
    )?;
    let hists: Vec<(Labels, Hist)> = rows
        .iter()
        .map(|(l, _, h)| (borrow(l), h.clone()))
        .collect();
    histogram(
        enc,
        &format!("{prefix}_request_duration_seconds"),
        &format!(
            "How long it took to process the request on {what}, partitioned by status code, protocol, and method."
        ),
        &hists,
    )
}

impl Collector for Scrape {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let table = &self.table;
        if let Some(store) = &self.store {
            let bounds = &store.bounds;

            counter(
                &mut enc,
                "traefik_config_reloads",
                "Config reloads",
                &[(vec![], store.reloads.load(Ordering::Relaxed))],
            )?;
            gauge(
                &mut enc,
                "traefik_config_last_reload_success",
                "Last config reload success",
                &[(
                    vec![],
                    store.last_reload_success.load(Ordering::Relaxed) as f64,
                )],
            )?;
            let open: Vec<(Labels, i64)> = store
                .open_connections
                .iter()
                .map(|(ep, n)| {
                    (
                        vec![("entrypoint", &**ep), ("protocol", "TCP")],
                        n.load(Ordering::Relaxed),
                    )
                })
                .collect();
            gauge(
                &mut enc,
                "traefik_open_connections",
                "How many open connections exist, by entryPoint and protocol",
                &open,
            )?;

            if store.config.add_entry_points_labels {
                let mut rows = OwnedRows::new();
                for (ep, set) in store.entrypoints.snapshot() {
                    rows.extend(series_rows(vec![("entrypoint", &ep)], &set, bounds));
                }
                rows.sort_by(|a, b| a.0.cmp(&b.0));
                emit_request_metrics(&mut enc, "traefik_entrypoint", "an entrypoint", &rows)?;
            }

            if store.config.add_routers_labels {
                let mut rows = OwnedRows::new();
                for (router, by_service) in store.routers.snapshot() {
                    for (service, set) in by_service.snapshot() {
                        rows.extend(series_rows(
                            vec![("router", &router), ("service", &service)],
                            &set,
                            bounds,
                        ));
                    }
                }
                rows.sort_by(|a, b| a.0.cmp(&b.0));
                emit_request_metrics(&mut enc, "traefik_router", "a router", &rows)?;
            }

            if store.config.add_services_labels {
                let services = store.services.snapshot();
                let mut rows = OwnedRows::new();
                for (service, s) in &services {
                    rows.extend(series_rows(vec![("service", service)], &s.requests, bounds));
                }
                rows.sort_by(|a, b| a.0.cmp(&b.0));
                emit_request_metrics(&mut enc, "traefik_service", "a service", &rows)?;
                let mut retries: Vec<(Labels, u64)> = services
                    .iter()
                    .map(|(name, s)| {
                        (
                            vec![("service", &**name)],
                            s.retries.load(Ordering::Relaxed),
                        )
                    })
                    .collect();
                retries.sort_by(|a, b| a.0.cmp(&b.0));
                counter(
                    &mut enc,
                    "traefik_service_retries",
                    "How many request retries happened on a service.",
                    &retries,
                )?;
                let mut up: Vec<(Labels, i64)> = Vec::new();
                for (name, rt) in &table.services {
                    for server in rt.balancer.servers() {
                        up.push((
                            vec![("service", name.as_str()), ("url", server.url.as_str())],
                            i64::from(server.is_available()),
                        ));
                    }
                }
                gauge(
                    &mut enc,
                    "traefik_service_server_up",
                    "service server is up, described by gauge value of 0 or 1.",
                    &up,
                )?;
            }

            let (sum, count, buckets) = store.compile.histogram(COMPILE_BOUNDS);
            histogram(
                &mut enc,
                "escale_config_compile_duration_seconds",
                "Time to compile providers' snapshots into a route table.",
                &[(vec![], (sum, count, buckets))],
            )?;
        }

        gauge(
            &mut enc,
            "escale_config_generation",
            "Generation of the route table in use.",
            &[(vec![], table.generation as i64)],
        )?;
        let servers: usize = table
            .services
            .values()
            .map(|s| s.balancer.servers().len())
            .sum();
        gauge(
            &mut enc,
            "escale_route_table_size",
            "Size of the route table in use, by kind of object.",
            &[
                (vec![("kind", "routes")], table.route_count() as i64),
                (vec![("kind", "routers")], table.routers.len() as i64),
                (vec![("kind", "services")], table.services.len() as i64),
                (vec![("kind", "servers")], servers as i64),
                (
                    vec![("kind", "middlewares")],
                    table.middlewares.len() as i64,
                ),
            ],
        )?;
        let mut issues: HashMap<(String, &'static str), i64> = HashMap::new();
        for i in &table.issues {
            let sev = match i.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            };
            *issues.entry((i.provider.clone(), sev)).or_default() += 1;
        }
        let mut issue_rows: Vec<(Labels, i64)> = issues
            .iter()
            .map(|((p, s), n)| (vec![("provider", p.as_str()), ("severity", *s)], *n))
            .collect();
        issue_rows.sort_by(|a, b| a.0.cmp(&b.0));
        gauge(
            &mut enc,
            "escale_config_issues",
            "Configuration errors and warnings in the table in use.",
            &issue_rows,
        )?;
        let mut in_flight: Vec<(Labels, i64)> = Vec::new();
        for (name, rt) in &table.services {
            for server in rt.balancer.servers() {
                in_flight.push((
                    vec![("service", name.as_str()), ("url", server.url.as_str())],
                    server.in_flight() as i64,
                ));
            }
        }
        gauge(
            &mut enc,
            "escale_server_in_flight_requests",
            "Requests in flight to each server.",
            &in_flight,
        )?;
        let views: Vec<_> = self
            .providers
            .iter()
            .filter(|p| p.name != super::INTERNAL_PROVIDER)
            .map(|p| p.view())
            .collect();
        let rows = |f: fn(&crate::provider::ProviderStatusView) -> u64| -> Vec<(Labels, u64)> {
            views
                .iter()
                .map(|v| (vec![("provider", v.name.as_str())], f(v)))
                .collect()
        };
        counter(
            &mut enc,
            "escale_provider_events",
            "Change events a provider has seen.",
            &rows(|v| v.events),
        )?;
        counter(
            &mut enc,
            "escale_provider_syncs",
            "Snapshots a provider has published.",
            &rows(|v| v.syncs),
        )?;
        counter(
            &mut enc,
            "escale_provider_reconnects",
            "Times a provider reconnected to its source.",
            &rows(|v| v.reconnects),
        )?;
        gauge(
            &mut enc,
            "escale_provider_connected",
            "Whether a provider's last sync succeeded (1) or failed (0).",
            &rows(|v| u64::from(v.connected)),
        )?;
        gauge(
            &mut enc,
            "escale_draining",
            "1 while the proxy drains before stopping.",
            &[(vec![], i64::from(self.draining))],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_buckets_and_sum() {
        let bounds = [0.1, 0.3];
        let s = Series::new(bounds.len());
        s.observe(&bounds, Duration::from_millis(50));
        s.observe(&bounds, Duration::from_millis(200));
        s.observe(&bounds, Duration::from_secs(1));
        let (sum, count, buckets) = s.histogram(&bounds);
        assert_eq!(count, 3);
        assert!((sum - 1.25).abs() < 1e-9);
        assert_eq!(buckets, vec![(0.1, 1), (0.3, 1), (f64::INFINITY, 1)]);
    }

    #[test]
    fn cow_map_inserts_once_and_prunes() {
        let m: CowMap<Arc<str>, AtomicU64> = CowMap::default();
        let a = m.get_or_insert("a", || "a".into(), || AtomicU64::new(0));
        a.fetch_add(1, Ordering::Relaxed);
        let again = m.get_or_insert("a", || "a".into(), || AtomicU64::new(99));
        assert_eq!(again.load(Ordering::Relaxed), 1);
        m.get_or_insert("b", || "b".into(), || AtomicU64::new(0));
        m.retain(|k| &**k == "b");
        let names: Vec<_> = m.snapshot().into_iter().map(|(k, _)| k).collect();
        assert_eq!(names, vec![Arc::<str>::from("b")]);
    }
}
