//! The merged dynamic model the admin API shows: every provider's objects
//! under qualified names (`name@provider`), with qualified references.
//!
//! It is a view over the providers' snapshots, not a copy: with 10k routers
//! and 10k services a copy costs about 15 MB and a quarter of a compile.
//! Objects are qualified when asked for, one at a time.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use crate::config::dynamic::{DynamicConfig, Middleware, Router, Service, TlsConfig};
use crate::middleware::qualify;

/// The providers' configurations, in registration order, and their merged TLS
/// section (small: certificates, options and stores).
#[derive(Debug, Default)]
pub struct Model {
    sources: Vec<(String, Arc<DynamicConfig>)>,
    pub tls: Option<TlsConfig>,
}

/// Which object of which provider a qualified name stands for.
pub struct Entry<'m, T> {
    pub provider: &'m str,
    pub object: &'m T,
}

impl<T> Clone for Entry<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Entry<'_, T> {}

/// Qualified name -> the object it names. A later provider, and within one
/// provider a later name, replaces an earlier one with the same qualified
/// name, as inserting into one merged map did.
pub type Index<'m, T> = BTreeMap<String, Entry<'m, T>>;

impl Model {
    pub fn new(sources: Vec<(String, Arc<DynamicConfig>)>) -> Model {
        let mut tls: Option<TlsConfig> = None;
        for (_, config) in &sources {
            if let Some(t) = &config.tls {
                let merged = tls.get_or_insert_with(Default::default);
                merged.certificates.extend(t.certificates.iter().cloned());
                for (k, v) in &t.options {
                    merged.options.entry(k.clone()).or_insert_with(|| v.clone());
                }
                for (k, v) in &t.stores {
                    merged.stores.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
        }
        Model { sources, tls }
    }

    /// The configurations this model views, shared with the providers.
    pub fn sources(&self) -> &[(String, Arc<DynamicConfig>)] {
        &self.sources
    }

    pub fn routers(&self) -> Index<'_, Router> {
        self.index(|c| &c.http.routers)
    }

    pub fn services(&self) -> Index<'_, Service> {
        self.index(|c| &c.http.services)
    }

    pub fn middlewares(&self) -> Index<'_, Middleware> {
        self.index(|c| &c.http.middlewares)
    }

    fn index<'m, T>(
        &'m self,
        section: impl Fn(&'m DynamicConfig) -> &'m BTreeMap<String, T>,
    ) -> Index<'m, T> {
        let mut all = Vec::new();
        for (provider, config) in &self.sources {
            for (name, object) in section(config) {
                let entry = Entry {
                    provider: provider.as_str(),
                    object,
                };
                all.push((qualify(name, provider), entry));
            }
        }
        // Sorted, then built in one pass: cheaper than inserting one by one,
        // which searches the tree each time (10k routers: ~300k comparisons).
        // The sort is stable, so of equal names the last one pushed wins.
        all.sort_by(|(a, _), (b, _)| a.cmp(b));
        all.dedup_by(|later, kept| {
            let same = later.0 == kept.0;
            if same {
                std::mem::swap(later, kept);
            }
            same
        });
        BTreeMap::from_iter(all)
    }

    /// The object a qualified name stands for, without building an index.
    fn find<'m, T>(
        &'m self,
        qualified: &str,
        section: impl Fn(&'m DynamicConfig) -> &'m BTreeMap<String, T>,
    ) -> Option<Entry<'m, T>> {
        // The last writer wins: later providers first, and within one
        // provider the greater of the two names that qualify the same way
        // (`a@p` itself, then `a`).
        self.sources.iter().rev().find_map(|(provider, config)| {
            let map = section(config);
            let local = if qualified.contains('@') || provider.is_empty() {
                map.get(qualified).or_else(|| {
                    qualified
                        .strip_suffix(provider.as_str())
                        .and_then(|s| s.strip_suffix('@'))
                        .filter(|s| !provider.is_empty() && !s.contains('@'))
                        .and_then(|s| map.get(s))
                })
            } else {
                None
            };
            local.map(|object| Entry {
                provider: provider.as_str(),
                object,
            })
        })
    }

    /// The router named `qualified`, its references qualified.
    pub fn router(&self, qualified: &str) -> Option<Cow<'_, Router>> {
        self.find(qualified, |c| &c.http.routers)
            .map(qualified_router)
    }

    pub fn service(&self, qualified: &str) -> Option<Cow<'_, Service>> {
        self.find(qualified, |c| &c.http.services)
            .map(qualified_service)
    }

    pub fn middleware(&self, qualified: &str) -> Option<Cow<'_, Middleware>> {
        self.find(qualified, |c| &c.http.middlewares)
            .map(qualified_middleware)
    }
}

fn needs(name: &str, provider: &str) -> bool {
    !name.contains('@') && !provider.is_empty()
}

/// A router as the merged model has it: service and middlewares qualified
/// with its provider.
pub fn qualified_router<'m>(e: Entry<'m, Router>) -> Cow<'m, Router> {
    let r = e.object;
    if !needs(&r.service, e.provider) && !r.middlewares.iter().any(|m| needs(m, e.provider)) {
        return Cow::Borrowed(r);
    }
    let mut r = r.clone();
    r.service = qualify(&r.service, e.provider);
    r.middlewares = r
        .middlewares
        .iter()
        .map(|m| qualify(m, e.provider))
        .collect();
    Cow::Owned(r)
}

/// A service with its `serversTransport` qualified.
pub fn qualified_service<'m>(e: Entry<'m, Service>) -> Cow<'m, Service> {
    let s = e.object;
    match s
        .load_balancer
        .as_ref()
        .and_then(|lb| lb.servers_transport.as_deref())
    {
        Some(t) if needs(t, e.provider) => {
            let mut s = s.clone();
            if let Some(t) = s
                .load_balancer
                .as_mut()
                .and_then(|lb| lb.servers_transport.as_mut())
            {
                *t = qualify(t, e.provider);
            }
            Cow::Owned(s)
        }
        _ => Cow::Borrowed(s),
    }
}

/// A middleware with the members of its chain qualified.
pub fn qualified_middleware<'m>(e: Entry<'m, Middleware>) -> Cow<'m, Middleware> {
    let m = e.object;
    match &m.chain {
        Some(chain) if chain.middlewares.iter().any(|n| needs(n, e.provider)) => {
            let mut m = m.clone();
            if let Some(chain) = &mut m.chain {
                chain.middlewares = chain
                    .middlewares
                    .iter()
                    .map(|n| qualify(n, e.provider))
                    .collect();
            }
            Cow::Owned(m)
        }
        _ => Cow::Borrowed(m),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::Snapshot;
    use crate::routing::compile::compile_yaml;

    #[test]
    fn the_table_views_the_snapshot_and_qualifies_on_demand() {
        let yaml = "http:\n  routers:\n    r:\n      rule: Host(`a.test`)\n      service: s\n      middlewares: [m, other@swarm]\n  middlewares:\n    m:\n      chain:\n        middlewares: [n]\n    n:\n      addPrefix:\n        prefix: /x\n  services:\n    s:\n      loadBalancer:\n        serversTransport: t\n        servers:\n          - url: http://127.0.0.1:1\n";
        let table = compile_yaml(yaml, None);
        let router = table.model.router("r@file").unwrap();
        assert_eq!(router.service, "s@file");
        assert_eq!(router.middlewares, vec!["m@file", "other@swarm"]);
        let chain = table.model.middleware("m@file").unwrap();
        assert_eq!(chain.chain.as_ref().unwrap().middlewares, vec!["n@file"]);
        let lb = table.model.service("s@file").unwrap().load_balancer.clone();
        assert_eq!(lb.unwrap().servers_transport.as_deref(), Some("t@file"));
        // Nothing to qualify: the snapshot's own object, not a copy.
        assert!(matches!(
            table.model.middleware("n@file"),
            Some(Cow::Borrowed(_))
        ));
        assert!(table.model.router("r").is_none());
        assert!(table.model.router("r@swarm").is_none());
    }

    #[test]
    fn the_compiled_table_shares_the_providers_model() {
        let (config, _): (DynamicConfig, _) = crate::config::file_format::parse_dynamic_file(
            std::path::Path::new("test.yml"),
            "http:\n  routers:\n    r:\n      rule: Host(`a.test`)\n      service: s\n",
        )
        .unwrap();
        let snap = Arc::new(Snapshot {
            config: Arc::new(config),
            issues: Vec::new(),
        });
        let eps = vec!["web".to_string()];
        let table = crate::routing::compile(crate::routing::CompileInput {
            snapshots: &[("file".to_string(), snap.clone())],
            entrypoints: &eps,
            default_entrypoints: &eps,
            tls_entrypoints: &[],
            default_transport: Default::default(),
            previous: None,
            generation: 1,
        });
        assert!(Arc::ptr_eq(&table.model.sources()[0].1, &snap.config));
    }

    #[test]
    fn a_later_provider_wins_a_name_as_a_merged_map_did() {
        let mk = |service: &str| {
            let mut c = DynamicConfig::default();
            c.http.routers.insert(
                "x@swarm".into(),
                Router {
                    service: service.into(),
                    ..Router::default()
                },
            );
            Arc::new(c)
        };
        let mut swarm = DynamicConfig::default();
        swarm.http.routers.insert(
            "x".into(),
            Router {
                service: "from-swarm".into(),
                ..Router::default()
            },
        );
        let model = Model::new(vec![
            ("file".into(), mk("from-file")),
            ("swarm".into(), Arc::new(swarm)),
        ]);
        assert_eq!(model.router("x@swarm").unwrap().service, "from-swarm@swarm");
        let routers = model.routers();
        assert_eq!(routers.len(), 1);
        assert_eq!(routers["x@swarm"].provider, "swarm");
        let model = Model::new(vec![("file".into(), mk("from-file"))]);
        assert_eq!(model.router("x@swarm").unwrap().service, "from-file@file");
    }
}
