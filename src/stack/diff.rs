//! What must change: desired objects against what runs.
//!
//! Docker fills defaults into the specs it stores (`Isolation`, `Runtime`,
//! empty `Labels`...), and stores network IDs where names were sent. So specs
//! are never compared directly: both sides go through [`view`], a flat map of
//! the fields the stack manages, with empty and zero values left out and
//! networks named. Equal views mean "no change", which makes a second `up` a
//! no-op: no update call, no version bump, no task restart.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::Duration;

use bollard::models::ServiceSpec;

use super::labels::go_duration;
use super::model::{Desired, DesiredNetwork, DesiredService, OWNER_LABEL};

/// Field name → rendered value, for the fields the stack manages.
pub type View = BTreeMap<String, String>;

/// A service as it runs.
#[derive(Debug, Clone, PartialEq)]
pub struct CurrentService {
    pub id: String,
    pub name: String,
    pub version: u64,
    pub labels: BTreeMap<String, String>,
    pub spec: ServiceSpec,
}

impl CurrentService {
    pub fn owner(&self) -> Option<&str> {
        self.labels.get(OWNER_LABEL).map(String::as_str)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct CurrentNetwork {
    pub id: String,
    pub name: String,
    pub attachable: bool,
    pub internal: bool,
    pub labels: BTreeMap<String, String>,
}

/// The engine's state that matters to one stack: objects it owns, and any
/// object that has one of its names.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Current {
    pub services: Vec<CurrentService>,
    pub networks: Vec<CurrentNetwork>,
}

impl Current {
    /// Network ID → name, for reading stored specs.
    pub fn network_names(&self) -> BTreeMap<String, String> {
        self.networks
            .iter()
            .map(|n| (n.id.clone(), n.name.clone()))
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldChange {
    pub field: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    CreateNetwork(DesiredNetwork),
    CreateService {
        desired: DesiredService,
        fields: View,
    },
    UpdateService {
        desired: DesiredService,
        current_id: String,
        version: u64,
        fields: Vec<FieldChange>,
    },
    /// Owned, no longer in the file, and `--prune` was given.
    RemoveService {
        name: String,
        id: String,
    },
    /// Owned, no longer in the file; removed after the services, with `--prune`.
    RemoveNetwork {
        name: String,
        id: String,
    },
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    pub changes: Vec<Change>,
    pub unchanged: Vec<String>,
    /// Things `up` will not do, said once: a name held by an object the stack
    /// does not own, a network whose settings differ (networks cannot be
    /// updated in place), owned services left in place without `--prune`.
    pub notes: Vec<String>,
    /// Names held by objects this stack does not own: `up` refuses.
    pub conflicts: Vec<String>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}

/// The managed fields of a spec. `net` names a network from what the spec
/// holds (an ID once stored, a name when sent).
pub fn view(spec: &ServiceSpec, net: &dyn Fn(&str) -> String) -> View {
    let mut v = View::new();
    let mut put = |k: &str, val: String| {
        if !val.is_empty() {
            v.insert(k.to_string(), val);
        }
    };
    let task = spec.task_template.clone().unwrap_or_default();
    let c = task.container_spec.clone().unwrap_or_default();
    put("image", c.image.clone().unwrap_or_default());
    match &spec.mode {
        Some(m) if m.global.is_some() => put("mode", "global".into()),
        Some(m) => put(
            "replicas",
            m.replicated
                .as_ref()
                .and_then(|r| r.replicas)
                .unwrap_or(1)
                .to_string(),
        ),
        None => put("replicas", "1".into()),
    }
    put("command", list(c.command.as_deref()));
    put("args", list(c.args.as_deref()));
    for e in c.env.iter().flatten() {
        let (k, val) = e.split_once('=').unwrap_or((e, ""));
        v.insert(format!("env.{k}"), quote(val));
    }
    for (k, val) in spec.labels.iter().flatten() {
        v.insert(format!("labels.{k}"), quote(val));
    }
    let mut put = |k: &str, val: String| {
        if !val.is_empty() {
            v.insert(k.to_string(), val);
        }
    };
    put("hostname", c.hostname.clone().unwrap_or_default());
    put("user", c.user.clone().unwrap_or_default());
    put("workdir", c.dir.clone().unwrap_or_default());
    for n in task
        .networks
        .iter()
        .flatten()
        .chain(spec.networks.iter().flatten())
    {
        let name = net(n.target.as_deref().unwrap_or(""));
        let mut aliases = n.aliases.clone().unwrap_or_default();
        aliases.sort();
        let val = if aliases.is_empty() {
            "attached".to_string()
        } else {
            format!("aliases {}", aliases.join(", "))
        };
        v.insert(format!("networks.{name}"), val);
    }
    let endpoint = spec.endpoint_spec.clone().unwrap_or_default();
    let mode = endpoint
        .mode
        .map(|m| m.to_string())
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| "vip".into());
    if mode != "vip" {
        v.insert("endpoint_mode".into(), mode);
    }
    for p in endpoint.ports.iter().flatten() {
        let proto = p
            .protocol
            .map(|x| x.to_string())
            .filter(|x| !x.is_empty())
            .unwrap_or_else(|| "tcp".into());
        let pmode = p
            .publish_mode
            .map(|x| x.to_string())
            .filter(|x| !x.is_empty())
            .unwrap_or_else(|| "ingress".into());
        v.insert(
            format!("publish.{}/{proto}", p.published_port.unwrap_or_default()),
            format!("target {}, mode {pmode}", p.target_port.unwrap_or_default()),
        );
    }
    for m in c.mounts.iter().flatten() {
        let kind = m
            .typ
            .map(|t| t.to_string())
            .unwrap_or_else(|| "volume".into());
        let ro = if m.read_only == Some(true) {
            " (ro)"
        } else {
            ""
        };
        v.insert(
            format!("mounts.{}", m.target.clone().unwrap_or_default()),
            format!("{kind} {}{ro}", m.source.clone().unwrap_or_default()),
        );
    }
    for s in c.secrets.iter().flatten() {
        let target = s
            .file
            .as_ref()
            .and_then(|f| f.name.clone())
            .unwrap_or_default();
        v.insert(
            format!("secrets.{}", s.secret_name.clone().unwrap_or_default()),
            format!("file {target}"),
        );
    }
    for s in c.configs.iter().flatten() {
        let target = s
            .file
            .as_ref()
            .and_then(|f| f.name.clone())
            .unwrap_or_default();
        v.insert(
            format!("configs.{}", s.config_name.clone().unwrap_or_default()),
            format!("file {target}"),
        );
    }
    let mut constraints = task
        .placement
        .as_ref()
        .and_then(|p| p.constraints.clone())
        .unwrap_or_default();
    constraints.sort();
    if !constraints.is_empty() {
        v.insert("constraints".into(), constraints.join("; "));
    }
    if let Some(r) = &task.resources {
        if let Some(l) = &r.limits {
            nonzero(&mut v, "resources.cpus", l.nano_cpus.map(cpus));
            nonzero(&mut v, "resources.memory", l.memory_bytes.map(bytes));
        }
        if let Some(l) = &r.reservations {
            nonzero(&mut v, "resources.reserve_cpus", l.nano_cpus.map(cpus));
            nonzero(
                &mut v,
                "resources.reserve_memory",
                l.memory_bytes.map(bytes),
            );
        }
    }
    let update = spec.update_config.as_ref().map(|u| Policy {
        parallelism: u.parallelism,
        delay: u.delay,
        action: u.failure_action.map(|x| x.to_string()),
        monitor: u.monitor,
        ratio: u.max_failure_ratio,
        order: u.order.map(|x| x.to_string()),
    });
    let rollback = spec.rollback_config.as_ref().map(|u| Policy {
        parallelism: u.parallelism,
        delay: u.delay,
        action: u.failure_action.map(|x| x.to_string()),
        monitor: u.monitor,
        ratio: u.max_failure_ratio,
        order: u.order.map(|x| x.to_string()),
    });
    policy(&mut v, "update", update);
    policy(&mut v, "rollback", rollback);
    if let Some(h) = &c.health_check {
        nonzero(&mut v, "healthcheck.test", Some(list(h.test.as_deref())));
        nonzero(&mut v, "healthcheck.interval", h.interval.map(dur));
        nonzero(&mut v, "healthcheck.timeout", h.timeout.map(dur));
        nonzero(
            &mut v,
            "healthcheck.retries",
            h.retries.filter(|r| *r != 0).map(|r| r.to_string()),
        );
        nonzero(&mut v, "healthcheck.start_period", h.start_period.map(dur));
    }
    nonzero(&mut v, "stop_grace_period", c.stop_grace_period.map(dur));
    if let Some(r) = &task.restart_policy {
        nonzero(
            &mut v,
            "restart.condition",
            r.condition.map(|x| x.to_string()),
        );
        nonzero(&mut v, "restart.delay", r.delay.map(dur));
        nonzero(
            &mut v,
            "restart.max_attempts",
            r.max_attempts.filter(|x| *x != 0).map(|x| x.to_string()),
        );
    }
    v
}

/// An update or rollback policy as stored.
struct Policy {
    parallelism: Option<i64>,
    delay: Option<i64>,
    action: Option<String>,
    monitor: Option<i64>,
    ratio: Option<f64>,
    order: Option<String>,
}

/// Swarm's defaults for an update or rollback policy. The engine fills them
/// in (sometimes only on the first update), and a missing policy means them.
const DEFAULT_PARALLELISM: i64 = 1;
const DEFAULT_MONITOR_NS: i64 = 5_000_000_000;

/// Adds the fields of a policy that differ from swarm's defaults.
fn policy(v: &mut View, prefix: &str, p: Option<Policy>) {
    let Some(p) = p else {
        return;
    };
    let parallelism = p.parallelism.unwrap_or(0);
    if parallelism != DEFAULT_PARALLELISM {
        // 0 is swarm's "all at once".
        let shown = if parallelism == 0 {
            "0 (all at once)".to_string()
        } else {
            parallelism.to_string()
        };
        v.insert(format!("{prefix}.parallelism"), shown);
    }
    nonzero(v, &format!("{prefix}.delay"), p.delay.map(dur));
    let action = p.action.filter(|a| !a.is_empty() && a != "pause");
    nonzero(v, &format!("{prefix}.failure_action"), action);
    let monitor = p.monitor.filter(|m| *m != 0 && *m != DEFAULT_MONITOR_NS);
    nonzero(v, &format!("{prefix}.monitor"), monitor.map(dur));
    nonzero(
        v,
        &format!("{prefix}.max_failure_ratio"),
        p.ratio.filter(|r| *r != 0.0).map(|r| r.to_string()),
    );
    let order = p.order.filter(|o| !o.is_empty() && o != "stop-first");
    nonzero(v, &format!("{prefix}.order"), order);
}

/// Adds a field unless it is absent, empty or zero: Docker and the stack
/// disagree on how to spell "not set", never on a real value.
fn nonzero(v: &mut View, k: &str, val: Option<String>) {
    if let Some(s) = val
        && !s.is_empty()
        && s != "0"
        && s != "0s"
    {
        v.insert(k.to_string(), s);
    }
}

fn dur(n: i64) -> String {
    go_duration(Duration::from_nanos(n.max(0) as u64))
}

fn cpus(n: i64) -> String {
    let c = n as f64 / 1e9;
    if c == 0.0 {
        String::new()
    } else {
        format!("{c}")
    }
}

fn bytes(b: i64) -> String {
    match b {
        0 => String::new(),
        b if b % (1 << 30) == 0 => format!("{}G", b >> 30),
        b if b % (1 << 20) == 0 => format!("{}M", b >> 20),
        b if b % (1 << 10) == 0 => format!("{}k", b >> 10),
        b => b.to_string(),
    }
}

fn list(items: Option<&[String]>) -> String {
    match items {
        Some(l) if !l.is_empty() => {
            let items: Vec<String> = l.iter().map(|i| format!("{i:?}")).collect();
            format!("[{}]", items.join(", "))
        }
        _ => String::new(),
    }
}

fn quote(s: &str) -> String {
    // Quoted so that an empty value still shows, and spaces are visible.
    format!("{s:?}")
}

/// Field-by-field changes between two views, in field order.
pub fn diff_views(current: &View, desired: &View) -> Vec<FieldChange> {
    let keys: BTreeSet<&String> = current.keys().chain(desired.keys()).collect();
    keys.into_iter()
        .filter_map(|k| {
            let (b, a) = (current.get(k), desired.get(k));
            (b != a).then(|| FieldChange {
                field: k.clone(),
                before: b.cloned(),
                after: a.cloned(),
            })
        })
        .collect()
}

/// What `up` would do to reach `desired` from `current`.
pub fn plan(current: &Current, desired: &Desired, prune: bool) -> Plan {
    let mut plan = Plan::default();
    let ids = current.network_names();
    let net = |t: &str| ids.get(t).cloned().unwrap_or_else(|| t.to_string());
    let same = |t: &str| t.to_string();
    let owned = |labels: &BTreeMap<String, String>| labels.get(OWNER_LABEL) == Some(&desired.owner);

    for n in &desired.networks {
        match current.networks.iter().find(|c| c.name == n.name) {
            None => plan.changes.push(Change::CreateNetwork(n.clone())),
            Some(c) if !owned(&c.labels) => plan.conflicts.push(format!(
                "network `{}` already exists and does not belong to stack `{}`",
                n.name, desired.owner
            )),
            Some(c) => {
                if c.attachable != n.attachable || c.internal != n.internal || c.labels != n.labels
                {
                    plan.notes.push(format!(
                        "network `{}` differs from the file (attachable {} → {}, internal {} → {}); networks cannot be updated in place: remove the stack with `down` to recreate it",
                        n.name, c.attachable, n.attachable, c.internal, n.internal
                    ));
                }
            }
        }
    }

    for d in &desired.services {
        let want = view(&d.spec, &same);
        match current.services.iter().find(|c| c.name == d.name) {
            None => plan.changes.push(Change::CreateService {
                desired: d.clone(),
                fields: want,
            }),
            Some(c) if !owned(&c.labels) => plan.conflicts.push(format!(
                "service `{}` already exists and does not belong to stack `{}`",
                d.name, desired.owner
            )),
            Some(c) => {
                let fields = diff_views(&view(&c.spec, &net), &want);
                if fields.is_empty() {
                    plan.unchanged.push(d.name.clone());
                } else {
                    plan.changes.push(Change::UpdateService {
                        desired: d.clone(),
                        current_id: c.id.clone(),
                        version: c.version,
                        fields,
                    });
                }
            }
        }
    }

    let wanted: BTreeSet<&str> = desired.services.iter().map(|s| s.name.as_str()).collect();
    for c in &current.services {
        if owned(&c.labels) && !wanted.contains(c.name.as_str()) {
            if prune {
                plan.changes.push(Change::RemoveService {
                    name: c.name.clone(),
                    id: c.id.clone(),
                });
            } else {
                plan.notes.push(format!(
                    "service `{}` belongs to the stack but is not in the file: kept (pass --prune to remove it)",
                    c.name
                ));
            }
        }
    }
    let wanted: BTreeSet<&str> = desired.networks.iter().map(|n| n.name.as_str()).collect();
    for c in &current.networks {
        if owned(&c.labels) && !wanted.contains(c.name.as_str()) && prune {
            plan.changes.push(Change::RemoveNetwork {
                name: c.name.clone(),
                id: c.id.clone(),
            });
        }
    }
    plan
}

/// The plan as a readable diff: `+` create, `~` update, `-` remove, one line
/// per field.
pub fn render(plan: &Plan) -> String {
    let mut out = String::new();
    for c in &plan.changes {
        match c {
            Change::CreateNetwork(n) => {
                let mut opts = vec!["overlay"];
                if n.attachable {
                    opts.push("attachable");
                }
                if n.internal {
                    opts.push("internal");
                }
                let _ = writeln!(out, "+ network {} ({})", n.name, opts.join(", "));
            }
            Change::CreateService { desired, fields } => {
                let _ = writeln!(out, "+ service {}", desired.name);
                for (k, v) in fields {
                    let _ = writeln!(out, "    + {k}: {v}");
                }
            }
            Change::UpdateService {
                desired, fields, ..
            } => {
                let _ = writeln!(out, "~ service {}", desired.name);
                for f in fields {
                    let _ = match (&f.before, &f.after) {
                        (Some(b), Some(a)) => writeln!(out, "    ~ {}: {b} → {a}", f.field),
                        (None, Some(a)) => writeln!(out, "    + {}: {a}", f.field),
                        (Some(b), None) => writeln!(out, "    - {}: {b}", f.field),
                        (None, None) => Ok(()),
                    };
                }
            }
            Change::RemoveService { name, .. } => {
                let _ = writeln!(out, "- service {name} (not in the file)");
            }
            Change::RemoveNetwork { name, .. } => {
                let _ = writeln!(out, "- network {name} (not in the file)");
            }
        }
    }
    for n in &plan.notes {
        let _ = writeln!(out, "! {n}");
    }
    for n in &plan.conflicts {
        let _ = writeln!(out, "✗ {n}");
    }
    if plan.changes.is_empty() && plan.conflicts.is_empty() {
        let _ = writeln!(
            out,
            "no changes ({} services up to date)",
            plan.unchanged.len()
        );
    } else if !plan.unchanged.is_empty() {
        let _ = writeln!(
            out,
            "= {} unchanged: {}",
            plan.unchanged.len(),
            plan.unchanged.join(", ")
        );
    }
    out
}

#[cfg(test)]
mod tests;
