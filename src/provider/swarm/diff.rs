//! What changed between two snapshots: for the log, and to tell a re-list
//! that found nothing new (the common case) from one that did.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::provider::Snapshot;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    RouterAdded(String),
    RouterRemoved(String),
    RouterChanged(String),
    ServiceAdded(String),
    ServiceRemoved(String),
    /// Only the servers of a service changed (scale, update, drain).
    ServersChanged {
        service: String,
        added: Vec<String>,
        removed: Vec<String>,
    },
    /// Its settings changed (and maybe its servers too).
    ServiceChanged(String),
    MiddlewareAdded(String),
    MiddlewareRemoved(String),
    MiddlewareChanged(String),
    TransportChanged(String),
    IssuesChanged {
        added: usize,
        resolved: usize,
    },
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::RouterAdded(n) => write!(f, "router {n} added"),
            Change::RouterRemoved(n) => write!(f, "router {n} removed"),
            Change::RouterChanged(n) => write!(f, "router {n} changed"),
            Change::ServiceAdded(n) => write!(f, "service {n} added"),
            Change::ServiceRemoved(n) => write!(f, "service {n} removed"),
            Change::ServersChanged {
                service,
                added,
                removed,
            } => {
                write!(f, "service {service} servers")?;
                for a in added {
                    write!(f, " +{a}")?;
                }
                for r in removed {
                    write!(f, " -{r}")?;
                }
                Ok(())
            }
            Change::ServiceChanged(n) => write!(f, "service {n} changed"),
            Change::MiddlewareAdded(n) => write!(f, "middleware {n} added"),
            Change::MiddlewareRemoved(n) => write!(f, "middleware {n} removed"),
            Change::MiddlewareChanged(n) => write!(f, "middleware {n} changed"),
            Change::TransportChanged(n) => write!(f, "serversTransport {n} changed"),
            Change::IssuesChanged { added, resolved } => {
                write!(f, "{added} new issue(s), {resolved} resolved")
            }
        }
    }
}

/// The changes from `old` to `new`; empty means nothing changed.
pub fn diff(old: &Snapshot, new: &Snapshot) -> Vec<Change> {
    let mut out = Vec::new();
    let (o, n) = (&old.config.http, &new.config.http);
    map_diff(
        &o.routers,
        &n.routers,
        &mut out,
        Change::RouterAdded,
        Change::RouterRemoved,
        |name, _, _| Change::RouterChanged(name),
    );
    map_diff(
        &o.services,
        &n.services,
        &mut out,
        Change::ServiceAdded,
        Change::ServiceRemoved,
        |name, a, b| {
            let urls = |s: &crate::config::dynamic::Service| -> BTreeSet<String> {
                s.load_balancer
                    .iter()
                    .flat_map(|lb| lb.servers.iter().map(|s| s.url.clone()))
                    .collect()
            };
            let (mut a2, mut b2) = (a.clone(), b.clone());
            for lb in [&mut a2.load_balancer, &mut b2.load_balancer]
                .into_iter()
                .flatten()
            {
                lb.servers.clear();
            }
            if a2 != b2 {
                return Change::ServiceChanged(name);
            }
            let (ua, ub) = (urls(a), urls(b));
            Change::ServersChanged {
                service: name,
                added: ub.difference(&ua).cloned().collect(),
                removed: ua.difference(&ub).cloned().collect(),
            }
        },
    );
    map_diff(
        &o.middlewares,
        &n.middlewares,
        &mut out,
        Change::MiddlewareAdded,
        Change::MiddlewareRemoved,
        |name, _, _| Change::MiddlewareChanged(name),
    );
    map_diff(
        &o.servers_transports,
        &n.servers_transports,
        &mut out,
        Change::TransportChanged,
        Change::TransportChanged,
        |name, _, _| Change::TransportChanged(name),
    );
    let added = new
        .issues
        .iter()
        .filter(|i| !old.issues.contains(i))
        .count();
    let resolved = old
        .issues
        .iter()
        .filter(|i| !new.issues.contains(i))
        .count();
    if added > 0 || resolved > 0 {
        out.push(Change::IssuesChanged { added, resolved });
    }
    out
}

fn map_diff<T: PartialEq>(
    old: &BTreeMap<String, T>,
    new: &BTreeMap<String, T>,
    out: &mut Vec<Change>,
    added: impl Fn(String) -> Change,
    removed: impl Fn(String) -> Change,
    changed: impl Fn(String, &T, &T) -> Change,
) {
    for (name, value) in new {
        match old.get(name) {
            None => out.push(added(name.clone())),
            Some(prev) if prev != value => out.push(changed(name.clone(), prev, value)),
            Some(_) => {}
        }
    }
    for name in old.keys().filter(|k| !new.contains_key(*k)) {
        out.push(removed(name.clone()));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::config::dynamic::{LoadBalancer, Router, Server, Service};
    use crate::provider::ConfigIssue;

    fn snap(servers: &[&str], rule: &str) -> Snapshot {
        let mut s = Snapshot::default();
        Arc::make_mut(&mut s.config).http.routers.insert(
            "web".into(),
            Router {
                rule: rule.into(),
                service: "web".into(),
                ..Router::default()
            },
        );
        Arc::make_mut(&mut s.config).http.services.insert(
            "web".into(),
            Service {
                load_balancer: Some(LoadBalancer {
                    servers: servers
                        .iter()
                        .map(|u| Server {
                            url: u.to_string(),
                            ..Server::default()
                        })
                        .collect(),
                    ..LoadBalancer::default()
                }),
                ..Service::default()
            },
        );
        s
    }

    #[test]
    fn no_change() {
        let a = snap(&["http://10.201.1.5:80"], "Host(`a`)");
        assert!(diff(&a, &a.clone()).is_empty());
        assert!(diff(&Snapshot::default(), &Snapshot::default()).is_empty());
    }

    #[test]
    fn servers_only() {
        let a = snap(
            &["http://10.201.1.5:80", "http://10.201.1.6:80"],
            "Host(`a`)",
        );
        let b = snap(
            &["http://10.201.1.6:80", "http://10.201.1.7:80"],
            "Host(`a`)",
        );
        assert_eq!(
            diff(&a, &b),
            vec![Change::ServersChanged {
                service: "web".into(),
                added: vec!["http://10.201.1.7:80".into()],
                removed: vec!["http://10.201.1.5:80".into()],
            }]
        );
        let text = diff(&a, &b)[0].to_string();
        assert_eq!(
            text,
            "service web servers +http://10.201.1.7:80 -http://10.201.1.5:80"
        );
    }

    #[test]
    fn routers_services_and_issues() {
        let a = snap(&["http://10.201.1.5:80"], "Host(`a`)");
        let mut b = snap(&["http://10.201.1.5:80"], "Host(`b`)");
        Arc::make_mut(&mut b.config)
            .http
            .services
            .get_mut("web")
            .unwrap()
            .load_balancer
            .as_mut()
            .unwrap()
            .pass_host_header = Some(false);
        b.issues
            .push(ConfigIssue::error("swarm", "swarm service x", "bad"));
        let d = diff(&a, &b);
        assert_eq!(
            d,
            vec![
                Change::RouterChanged("web".into()),
                Change::ServiceChanged("web".into()),
                Change::IssuesChanged {
                    added: 1,
                    resolved: 0
                },
            ]
        );
        let d = diff(&b, &Snapshot::default());
        assert!(d.contains(&Change::RouterRemoved("web".into())));
        assert!(d.contains(&Change::ServiceRemoved("web".into())));
        assert!(d.contains(&Change::IssuesChanged {
            added: 0,
            resolved: 1
        }));
        let d = diff(&Snapshot::default(), &a);
        assert_eq!(
            d,
            vec![
                Change::RouterAdded("web".into()),
                Change::ServiceAdded("web".into())
            ]
        );
    }
}
