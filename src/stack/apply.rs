//! The commands: plan, up, ps, scale, down. Each loads and validates the
//! whole file before it touches anything, and prints what it does as it goes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bollard::models::{Service, ServiceUpdateStatusStateEnum, Task, TaskState};

use super::diff::{self, Change, Current, Plan};
use super::engine::{Engine, EngineError};
use super::file::{self, StackDef};
use super::model::{self, Desired, OWNER_LABEL, RouteProbe};
use super::probe;
use super::source::{self, Problems};

/// How a command ended; the CLI maps it to an exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Done,
    /// The file has problems, or a name is held by another owner: nothing was changed.
    Invalid,
    /// The engine refused, or services did not converge, or routes did not answer.
    Failed,
}

#[derive(Debug, Clone)]
pub struct Options {
    /// Replaces the file's `prefix` (tests isolate runs with it).
    pub prefix: Option<String>,
    pub prune: bool,
    /// Images may be missing locally: the nodes will pull them.
    pub pull: bool,
    /// Bound on waiting for convergence, and again for route checks.
    pub timeout: Duration,
    pub check_routes: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            prefix: None,
            prune: false,
            pull: false,
            timeout: Duration::from_secs(120),
            check_routes: true,
        }
    }
}

/// A stack file, read and decoded, with the problems found so far.
pub struct Loaded {
    pub path: String,
    pub def: StackDef,
    pub problems: Problems,
}

impl Loaded {
    pub fn owner(&self, prefix: Option<&str>) -> String {
        let p = prefix.unwrap_or(&self.def.prefix);
        let name = self
            .def
            .name
            .as_ref()
            .map(|n| n.value.as_str())
            .unwrap_or("");
        format!("{p}{name}")
    }
}

/// Reads and decodes the file; `Err` only when it cannot be read at all.
pub fn load(path: &Path) -> Result<Loaded, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let base: PathBuf = path
        .canonicalize()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("."));
    let mut problems = Problems::for_text(&text);
    let def = match source::parse(&text, &mut problems) {
        Some(root) => file::read(&root, &base, &mut problems),
        None => StackDef::default(),
    };
    Ok(Loaded {
        path: path.display().to_string(),
        def,
        problems,
    })
}

/// [`load`], saying why on stderr when the file cannot be read.
fn load_or_report(path: &Path) -> Option<Loaded> {
    load(path).map_err(|e| eprintln!("escale stack: {e}")).ok()
}

fn report(l: &Loaded, problems: &Problems) {
    eprint!("{}", problems.render(&l.path));
    eprintln!(
        "{}: {} problem(s); nothing was changed",
        l.path,
        problems.sorted().len()
    );
}

async fn connect() -> Option<Engine> {
    match Engine::connect().await {
        Ok(e) => Some(e),
        Err(e) => {
            eprintln!("escale stack: {e}");
            None
        }
    }
}

/// Connects; without an engine, the file's own problems are still shown, so
/// that they can be fixed meanwhile.
async fn connect_or_report(l: &Loaded) -> Option<Engine> {
    let engine = connect().await;
    if engine.is_none() && !l.problems.is_empty() {
        eprint!("{}", l.problems.render(&l.path));
        eprintln!(
            "{}: {} problem(s) found without the engine; its checks (images, mounts, ports) did not run",
            l.path,
            l.problems.sorted().len()
        );
    }
    engine
}

/// Validates everything (file, then engine facts) and computes the plan.
async fn prepare(
    engine: &Engine,
    l: &mut Loaded,
    opts: &Options,
) -> Result<(Desired, Current, Plan), Outcome> {
    let owner = l.owner(opts.prefix.as_deref());
    let wants = model::wants(&l.def);
    let facts = engine
        .facts(&wants, &owner, !opts.pull)
        .await
        .map_err(|e| fail(&e))?;
    let mut problems = l.problems.clone();
    let desired = model::compile(&l.def, opts.prefix.as_deref(), &facts, &mut problems);
    let desired = match desired {
        Some(d) if problems.is_empty() => d,
        _ => {
            report(l, &problems);
            return Err(Outcome::Invalid);
        }
    };
    let current = engine.current(&desired).await.map_err(|e| fail(&e))?;
    let plan = diff::plan(&current, &desired, opts.prune);
    Ok((desired, current, plan))
}

fn fail(e: &EngineError) -> Outcome {
    eprintln!("escale stack: {e}");
    Outcome::Failed
}

pub async fn plan(path: &Path, opts: &Options) -> Outcome {
    let Some(mut l) = load_or_report(path) else {
        return Outcome::Invalid;
    };
    let Some(engine) = connect_or_report(&l).await else {
        return Outcome::Failed;
    };
    match prepare(&engine, &mut l, opts).await {
        Ok((_, _, plan)) => {
            print!("{}", diff::render(&plan));
            if plan.conflicts.is_empty() {
                Outcome::Done
            } else {
                Outcome::Invalid
            }
        }
        Err(o) => o,
    }
}

pub async fn up(path: &Path, opts: &Options) -> Outcome {
    let Some(mut l) = load_or_report(path) else {
        return Outcome::Invalid;
    };
    let Some(engine) = connect_or_report(&l).await else {
        return Outcome::Failed;
    };
    let (desired, _current, plan) = match prepare(&engine, &mut l, opts).await {
        Ok(x) => x,
        Err(o) => return o,
    };
    print!("{}", diff::render(&plan));
    if !plan.conflicts.is_empty() {
        eprintln!(
            "{}: names are held by objects this stack does not own; nothing was changed",
            l.path
        );
        return Outcome::Invalid;
    }

    let mut touched = Vec::new();
    for c in &plan.changes {
        if let Change::CreateNetwork(n) = c {
            match engine.create_network(n).await {
                Ok(_) => println!("created network {}", n.name),
                Err(e) => return fail(&e),
            }
        }
    }
    for c in &plan.changes {
        match c {
            Change::CreateService { desired, .. } => {
                match engine.create_service(desired.spec.clone()).await {
                    Ok(_) => {
                        println!("created service {}", desired.name);
                        touched.push(desired.name.clone());
                    }
                    Err(e) => return fail(&e),
                }
            }
            Change::UpdateService {
                desired,
                current_id,
                version,
                ..
            } => match engine
                .update_service(current_id, *version, desired.spec.clone())
                .await
            {
                Ok(warnings) => {
                    println!("updated service {}", desired.name);
                    for w in warnings {
                        println!("  warning: {w}");
                    }
                    touched.push(desired.name.clone());
                }
                Err(e) => return fail(&e),
            },
            Change::RemoveService { name, .. } => match engine.remove_service(name).await {
                Ok(()) => println!("removed service {name}"),
                Err(e) => return fail(&e),
            },
            _ => {}
        }
    }
    let removed_nets: Vec<&str> = plan
        .changes
        .iter()
        .filter_map(|c| match c {
            Change::RemoveNetwork { name, .. } => Some(name.as_str()),
            _ => None,
        })
        .collect();
    if !removed_nets.is_empty() {
        let deadline = Instant::now() + opts.timeout;
        for n in removed_nets {
            if !remove_network_until(&engine, n, deadline).await {
                return Outcome::Failed;
            }
        }
    }

    let mut outcome = Outcome::Done;
    // Unchanged services are waited for too: a stack that was left half-up
    // still reports it. They converge at once when nothing is pending.
    let all: Vec<String> = desired.services.iter().map(|s| s.name.clone()).collect();
    if !touched.is_empty() {
        println!(
            "waiting for {} service(s) to converge (at most {:?})",
            touched.len(),
            opts.timeout
        );
    }
    if !wait_converged(&engine, &all, opts.timeout, &touched).await {
        outcome = Outcome::Failed;
    }
    if opts.check_routes
        && !desired.probes.is_empty()
        && outcome == Outcome::Done
        && !check_routes(&desired.probes, opts.timeout).await
    {
        outcome = Outcome::Failed;
    }
    outcome
}

/// A service's progress towards its spec.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    pub running: usize,
    pub desired: usize,
    pub updating: bool,
    /// The update stopped (paused or rolled back): waiting longer will not help.
    pub stuck: Option<String>,
    pub last_error: Option<String>,
}

impl Progress {
    pub fn done(&self) -> bool {
        self.running == self.desired && !self.updating && self.stuck.is_none()
    }
}

/// Counts the tasks that run the service's current spec. A task is counted
/// only when its container spec is the service's: during a rolling update the
/// old tasks still run, and must not make the update look finished.
pub fn progress(svc: &Service, tasks: &[Task]) -> Progress {
    let spec = svc.spec.clone().unwrap_or_default();
    let want_cs = spec
        .task_template
        .as_ref()
        .and_then(|t| t.container_spec.as_ref())
        .and_then(|c| serde_json::to_value(c).ok());
    let desired_running = |t: &&Task| t.desired_state == Some(TaskState::RUNNING);
    let desired = match spec.mode.as_ref().and_then(|m| m.replicated.as_ref()) {
        Some(r) => r.replicas.unwrap_or(1).max(0) as usize,
        None if spec.mode.as_ref().is_some_and(|m| m.global.is_some()) => {
            tasks.iter().filter(desired_running).count().max(1)
        }
        None => 1,
    };
    let running = tasks
        .iter()
        .filter(desired_running)
        .filter(|t| t.status.as_ref().and_then(|s| s.state) == Some(TaskState::RUNNING))
        .filter(|t| {
            let cs = t
                .spec
                .as_ref()
                .and_then(|s| s.container_spec.as_ref())
                .and_then(|c| serde_json::to_value(c).ok());
            cs == want_cs
        })
        .count();
    let state = svc.update_status.as_ref().and_then(|u| u.state);
    let message = svc
        .update_status
        .as_ref()
        .and_then(|u| u.message.clone())
        .unwrap_or_default();
    let updating = matches!(
        state,
        Some(
            ServiceUpdateStatusStateEnum::UPDATING | ServiceUpdateStatusStateEnum::ROLLBACK_STARTED
        )
    );
    let stuck = match state {
        Some(
            s @ (ServiceUpdateStatusStateEnum::PAUSED
            | ServiceUpdateStatusStateEnum::ROLLBACK_PAUSED
            | ServiceUpdateStatusStateEnum::ROLLBACK_COMPLETED),
        ) => Some(format!("update {s}: {message}")),
        _ => None,
    };
    let mut failed: Vec<&Task> = tasks
        .iter()
        .filter(|t| {
            matches!(
                t.status.as_ref().and_then(|s| s.state),
                Some(TaskState::FAILED | TaskState::REJECTED)
            )
        })
        .collect();
    failed.sort_by_key(|t| t.updated_at.clone().unwrap_or_default());
    let last_error = failed.last().and_then(|t| {
        let s = t.status.as_ref()?;
        s.err.clone().or_else(|| s.message.clone())
    });
    Progress {
        running,
        desired,
        updating,
        stuck,
        last_error,
    }
}

fn describe(p: &Progress) -> String {
    let mut s = format!("{}/{} running", p.running, p.desired);
    if p.updating {
        s.push_str(", updating");
    }
    if let Some(x) = &p.stuck {
        s.push_str(&format!(", {x}"));
    }
    if let Some(e) = &p.last_error
        && !p.done()
    {
        s.push_str(&format!(" (last task error: {e})"));
    }
    s
}

/// How long a service must keep running the same tasks to count as
/// converged: a task that crashes at start is "running" for a moment.
const SETTLE: Duration = Duration::from_secs(3);

/// Waits until every service runs its spec, printing each change of state.
/// Services in `names` that are not in `watched` are only reported while
/// they are not running as they should.
async fn wait_converged(
    engine: &Engine,
    names: &[String],
    timeout: Duration,
    watched: &[String],
) -> bool {
    let verbose = !watched.is_empty();
    let deadline = Instant::now() + timeout;
    let mut last: BTreeMap<String, String> = BTreeMap::new();
    // Per service: since when it has looked done, with which running tasks.
    let mut done_since: BTreeMap<String, (Instant, Vec<String>)> = BTreeMap::new();
    let mut pending: Vec<String> = names.to_vec();
    loop {
        let mut still = Vec::new();
        for name in &pending {
            let svc = match engine.inspect_service(name).await {
                Ok(Some(s)) => s,
                Ok(None) => {
                    println!("  {name}: gone");
                    continue;
                }
                Err(e) => {
                    eprintln!("escale stack: {e}");
                    return false;
                }
            };
            let tasks = match engine.tasks(name).await {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("escale stack: {e}");
                    return false;
                }
            };
            let p = progress(&svc, &tasks);
            let line = describe(&p);
            let changed = last.get(name) != Some(&line);
            if changed && (watched.contains(name) || !p.done()) {
                println!("  {name}: {line}");
            }
            last.insert(name.clone(), line);
            if let Some(s) = &p.stuck {
                eprintln!("escale stack: {name}: {s}");
                return false;
            }
            let settled = if p.done() {
                let ids = running_ids(&tasks);
                match done_since.get(name) {
                    Some((since, prev)) if *prev == ids => since.elapsed() >= SETTLE,
                    _ => {
                        done_since.insert(name.clone(), (Instant::now(), ids));
                        false
                    }
                }
            } else {
                done_since.remove(name);
                false
            };
            if !settled {
                still.push(name.clone());
            }
        }
        pending = still;
        if pending.is_empty() {
            if verbose {
                println!("all services converged");
            }
            return true;
        }
        if Instant::now() >= deadline {
            eprintln!(
                "escale stack: not converged after {timeout:?}: {}",
                pending.join(", ")
            );
            return false;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn running_ids(tasks: &[Task]) -> Vec<String> {
    let mut ids: Vec<String> = tasks
        .iter()
        .filter(|t| t.status.as_ref().and_then(|s| s.state) == Some(TaskState::RUNNING))
        .filter_map(|t| t.id.clone())
        .collect();
    ids.sort();
    ids
}

/// Asks the proxy for each route until it answers or the time is up, and
/// reports each answer as it comes.
async fn check_routes(probes: &[RouteProbe], timeout: Duration) -> bool {
    println!(
        "checking {} route(s) through the proxy on 127.0.0.1:{}",
        probes.len(),
        probes[0].port
    );
    let deadline = Instant::now() + timeout;
    let mut ok = true;
    for p in probes {
        let mut last;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let attempt = probe::get(
                p.port,
                p.host.as_deref(),
                &p.path,
                left.min(Duration::from_secs(5)),
            )
            .await;
            match attempt {
                Ok(a) if a.routed() => {
                    println!(
                        "  ✓ {} → {}: {} in {} ms",
                        p.rule,
                        p.service,
                        a.status,
                        a.elapsed.as_millis()
                    );
                    break;
                }
                Ok(a) => last = format!("HTTP {}", a.status),
                Err(e) => last = e,
            }
            if Instant::now() >= deadline {
                println!("  ✗ {} → {}: {last}", p.rule, p.service);
                ok = false;
                break;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
    ok
}

async fn remove_network_until(engine: &Engine, name: &str, deadline: Instant) -> bool {
    loop {
        match engine.remove_network(name).await {
            // The manager acknowledges before the network is gone from its
            // lists: wait for that, so `down` returns on a clean slate.
            Ok(()) if matches!(engine.network_exists(name).await, Ok(true)) => {
                if Instant::now() >= deadline {
                    eprintln!("escale stack: network {name} is still listed after removal");
                    return false;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Ok(()) => {
                println!("removed network {name}");
                return true;
            }
            // Task containers release their endpoints a little after the service goes.
            Err(e) if Instant::now() >= deadline => {
                eprintln!("escale stack: {e}");
                return false;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

pub async fn ps(path: &Path, opts: &Options) -> Outcome {
    let Some(l) = load_or_report(path) else {
        return Outcome::Invalid;
    };
    if !l.problems.is_empty() {
        report(&l, &l.problems);
        return Outcome::Invalid;
    }
    let Some(engine) = connect().await else {
        return Outcome::Failed;
    };
    let owner = l.owner(opts.prefix.as_deref());
    let prefix = opts.prefix.clone().unwrap_or_else(|| l.def.prefix.clone());
    let names: Vec<String> = l
        .def
        .proxy
        .iter()
        .map(|p| &p.service)
        .chain(l.def.services.iter())
        .map(|s| format!("{prefix}{}", s.name.value))
        .collect();
    let current = match engine
        .current_for(&owner, names.iter().map(String::as_str))
        .await
    {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    let mut all = names.clone();
    for s in &current.services {
        if s.owner() == Some(owner.as_str()) && !all.contains(&s.name) {
            all.push(s.name.clone());
        }
    }
    println!("{:<40} {:<10} {:<9} ROUTES", "SERVICE", "MODE", "REPLICAS");
    for name in &all {
        let Some(cur) = current.services.iter().find(|s| &s.name == name) else {
            println!("{name:<40} {:<10} {:<9} -", "missing", "0/0");
            continue;
        };
        if cur.owner() != Some(owner.as_str()) {
            println!("{name:<40} (exists, but does not belong to stack `{owner}`)");
            continue;
        }
        let (svc, tasks) = match (engine.inspect_service(name).await, engine.tasks(name).await) {
            (Ok(Some(s)), Ok(t)) => (s, t),
            (Err(e), _) | (_, Err(e)) => return fail(&e),
            (Ok(None), _) => continue,
        };
        let p = progress(&svc, &tasks);
        let mode = if cur.spec.mode.as_ref().is_some_and(|m| m.global.is_some()) {
            "global"
        } else {
            "replicated"
        };
        let routes: Vec<String> = cur
            .labels
            .iter()
            .filter(|(k, _)| k.starts_with("traefik.http.routers.") && k.ends_with(".rule"))
            .map(|(_, v)| v.clone())
            .collect();
        let proxy_name = l
            .def
            .proxy
            .as_ref()
            .map(|p| format!("{prefix}{}", p.service.name.value));
        let extra = if proxy_name.as_ref() == Some(name) {
            "(proxy)".to_string()
        } else if routes.is_empty() {
            "-".to_string()
        } else {
            routes.join(" | ")
        };
        let stray = if names.contains(name) {
            ""
        } else {
            " (not in the file)"
        };
        println!(
            "{name:<40} {mode:<10} {:<9} {extra}{stray}",
            format!("{}/{}", p.running, p.desired)
        );
        let mut tasks = tasks;
        tasks.sort_by_key(|t| {
            (
                t.slot.unwrap_or(0),
                t.created_at.clone().unwrap_or_default(),
            )
        });
        for t in tasks.iter().rev().take(12).rev() {
            let st = t.status.as_ref();
            let state = st
                .and_then(|s| s.state)
                .map(|s| s.to_string())
                .unwrap_or_default();
            let want = t.desired_state.map(|s| s.to_string()).unwrap_or_default();
            let err = st
                .and_then(|s| s.err.clone())
                .map(|e| format!("  error: {e}"))
                .unwrap_or_default();
            println!(
                "    {}.{} {:<10} (desired {want}){err}",
                name,
                t.slot.unwrap_or(0),
                state
            );
        }
    }
    Outcome::Done
}

pub async fn scale(path: &Path, pairs: &[String], opts: &Options) -> Outcome {
    let Some(mut l) = load_or_report(path) else {
        return Outcome::Invalid;
    };
    let mut wanted = Vec::new();
    for p in pairs {
        match p.split_once('=').map(|(s, n)| (s, n.parse::<u64>())) {
            Some((s, Ok(n))) => wanted.push((s.to_string(), n)),
            _ => {
                eprintln!("escale stack: `{p}`: expected SERVICE=REPLICAS");
                return Outcome::Invalid;
            }
        }
    }
    let Some(engine) = connect().await else {
        return Outcome::Failed;
    };
    let desired = match prepare(
        &engine,
        &mut l,
        &Options {
            pull: true,
            ..opts.clone()
        },
    )
    .await
    {
        Ok((d, _, _)) => d,
        Err(o) => return o,
    };
    let mut names = Vec::new();
    for (svc, n) in wanted {
        let Some(d) = desired.service(&svc) else {
            let all: Vec<&str> = desired
                .services
                .iter()
                .map(|s| s.logical.as_str())
                .collect();
            let hint = crate::config::tree::nearest(&svc, all.iter().copied())
                .map(|x| format!("; did you mean `{x}`?"))
                .unwrap_or_default();
            eprintln!("escale stack: no service `{svc}` in {}{hint}", l.path);
            return Outcome::Invalid;
        };
        let cur = match engine.inspect_service(&d.name).await {
            Ok(Some(s)) => s,
            Ok(None) => {
                eprintln!(
                    "escale stack: service {} is not running; run `up` first",
                    d.name
                );
                return Outcome::Invalid;
            }
            Err(e) => return fail(&e),
        };
        let mut spec = cur.spec.clone().unwrap_or_default();
        let owned = spec
            .labels
            .as_ref()
            .and_then(|l| l.get(OWNER_LABEL))
            .is_some_and(|o| *o == desired.owner);
        if !owned {
            eprintln!(
                "escale stack: service {} does not belong to stack `{}`",
                d.name, desired.owner
            );
            return Outcome::Invalid;
        }
        let Some(rep) = spec.mode.as_mut().and_then(|m| m.replicated.as_mut()) else {
            eprintln!(
                "escale stack: service {} is global; it cannot be scaled",
                d.name
            );
            return Outcome::Invalid;
        };
        let before = rep.replicas.unwrap_or(1);
        rep.replicas = Some(n as i64);
        let version = cur.version.and_then(|v| v.index).unwrap_or(0);
        if before == n as i64 {
            println!("{}: already {n} replica(s)", d.name);
        } else {
            match engine
                .update_service(cur.id.as_deref().unwrap_or(&d.name), version, spec)
                .await
            {
                Ok(_) => println!("{}: replicas {before} → {n}", d.name),
                Err(e) => return fail(&e),
            }
        }
        names.push(d.name.clone());
    }
    println!("note: the next `up` restores the replicas written in the file");
    if wait_converged(&engine, &names, opts.timeout, &names).await {
        Outcome::Done
    } else {
        Outcome::Failed
    }
}

pub async fn down(path: &Path, opts: &Options) -> Outcome {
    let Some(l) = load_or_report(path) else {
        return Outcome::Invalid;
    };
    // The owner label is all `down` goes by: without a name there is none.
    if l.def.name.is_none() {
        report(&l, &l.problems);
        return Outcome::Invalid;
    }
    let Some(engine) = connect().await else {
        return Outcome::Failed;
    };
    let owner = l.owner(opts.prefix.as_deref());
    let current = match engine.current_for(&owner, std::iter::empty()).await {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    let services: Vec<String> = current
        .services
        .iter()
        .filter(|s| s.owner() == Some(owner.as_str()))
        .map(|s| s.name.clone())
        .collect();
    let networks: Vec<String> = current
        .networks
        .iter()
        .filter(|n| n.labels.get(OWNER_LABEL) == Some(&owner))
        .map(|n| n.name.clone())
        .collect();
    if services.is_empty() && networks.is_empty() {
        println!("nothing to remove: no object belongs to stack `{owner}`");
        return Outcome::Done;
    }
    for s in &services {
        match engine.remove_service(s).await {
            Ok(()) => println!("removed service {s}"),
            Err(e) => return fail(&e),
        }
    }
    let deadline = Instant::now() + opts.timeout;
    // Networks can go only once the task containers have released them.
    for s in &services {
        loop {
            match engine.service_containers(s).await {
                Ok(0) => break,
                Ok(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(500)).await
                }
                Ok(n) => {
                    eprintln!(
                        "escale stack: {n} container(s) of {s} still present after {:?}",
                        opts.timeout
                    );
                    break;
                }
                Err(e) => return fail(&e),
            }
        }
    }
    let mut outcome = Outcome::Done;
    for n in &networks {
        if !remove_network_until(&engine, n, deadline).await {
            outcome = Outcome::Failed;
        }
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{
        ServiceSpec, ServiceSpecMode, ServiceSpecModeReplicated, ServiceUpdateStatus, TaskSpec,
        TaskSpecContainerSpec, TaskStatus,
    };

    fn cs(image: &str) -> TaskSpecContainerSpec {
        TaskSpecContainerSpec {
            image: Some(image.into()),
            ..Default::default()
        }
    }

    fn service(image: &str, replicas: i64) -> Service {
        Service {
            spec: Some(ServiceSpec {
                task_template: Some(TaskSpec {
                    container_spec: Some(cs(image)),
                    ..Default::default()
                }),
                mode: Some(ServiceSpecMode {
                    replicated: Some(ServiceSpecModeReplicated {
                        replicas: Some(replicas),
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn task(
        id: &str,
        image: &str,
        desired: TaskState,
        state: TaskState,
        err: Option<&str>,
    ) -> Task {
        Task {
            id: Some(id.into()),
            spec: Some(TaskSpec {
                container_spec: Some(cs(image)),
                ..Default::default()
            }),
            desired_state: Some(desired),
            status: Some(TaskStatus {
                state: Some(state),
                err: err.map(String::from),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn old_tasks_do_not_count_during_an_update() {
        let svc = service("app:2", 2);
        let tasks = [
            task("a", "app:1", TaskState::RUNNING, TaskState::RUNNING, None),
            task("b", "app:2", TaskState::RUNNING, TaskState::RUNNING, None),
            task("c", "app:2", TaskState::RUNNING, TaskState::STARTING, None),
        ];
        let p = progress(&svc, &tasks);
        assert_eq!((p.running, p.desired), (1, 2));
        assert!(!p.done());
        assert_eq!(describe(&p), "1/2 running");
    }

    #[test]
    fn converged_when_every_replica_runs_the_spec() {
        let svc = service("app:2", 2);
        let tasks = [
            task("a", "app:1", TaskState::SHUTDOWN, TaskState::SHUTDOWN, None),
            task("b", "app:2", TaskState::RUNNING, TaskState::RUNNING, None),
            task("c", "app:2", TaskState::RUNNING, TaskState::RUNNING, None),
        ];
        let p = progress(&svc, &tasks);
        assert!(p.done(), "{p:?}");
        assert_eq!(running_ids(&tasks), ["b", "c"]);
    }

    #[test]
    fn an_update_in_progress_or_paused() {
        let mut svc = service("app:2", 1);
        let tasks = [task(
            "b",
            "app:2",
            TaskState::RUNNING,
            TaskState::RUNNING,
            None,
        )];
        svc.update_status = Some(ServiceUpdateStatus {
            state: Some(ServiceUpdateStatusStateEnum::UPDATING),
            ..Default::default()
        });
        assert!(!progress(&svc, &tasks).done());
        svc.update_status = Some(ServiceUpdateStatus {
            state: Some(ServiceUpdateStatusStateEnum::PAUSED),
            message: Some("update paused due to failure".into()),
            ..Default::default()
        });
        let p = progress(&svc, &tasks);
        assert_eq!(
            p.stuck.as_deref(),
            Some("update paused: update paused due to failure")
        );
    }

    #[test]
    fn task_errors_are_shown_until_converged() {
        let svc = service("app:1", 1);
        let tasks = [task(
            "a",
            "app:1",
            TaskState::SHUTDOWN,
            TaskState::REJECTED,
            Some("No such image: app:1"),
        )];
        let p = progress(&svc, &tasks);
        assert_eq!(
            describe(&p),
            "0/1 running (last task error: No such image: app:1)"
        );
    }
}
