//! Support for the end-to-end tests on a real local swarm.
//!
//! Everything goes through the docker CLI and the Docker socket, and HTTP
//! goes only to the proxy's host-mode published port on 127.0.0.1: the host
//! has no route to task IPs. Each test gets its own name prefix
//! (`esc-sw-<run>-<test>`), overlay network, proxy service and host port, and
//! removes them on drop; the first test of a run removes the leftovers of
//! earlier runs. Every wait and loop is bounded in count and time.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

pub const PREFIX_ROOT: &str = "esc-sw-";

pub fn escale_image() -> String {
    std::env::var("ESCALE_IMAGE").unwrap_or_else(|_| "escale:dev".into())
}

pub fn whoami_image() -> String {
    std::env::var("WHOAMI_IMAGE").unwrap_or_else(|_| "escale-whoami:dev".into())
}

fn docker_bin() -> &'static str {
    static BIN: OnceLock<String> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Ok(d) = std::env::var("DOCKER") {
            return d;
        }
        if std::path::Path::new("/usr/bin/docker").exists() {
            return "/usr/bin/docker".into();
        }
        "docker".into()
    })
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs the docker CLI; `Err` carries stderr.
pub fn docker(args: &[&str]) -> Result<String, String> {
    let out: Output = Command::new(docker_bin())
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", docker_bin()))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(format!(
            "docker {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

pub fn docker_ok(args: &[&str]) -> String {
    match docker(args) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    }
}

/// The swarm must be there: a missing engine fails the suite, never skips it.
fn preflight() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let state =
            docker(&["info", "--format", "{{.Swarm.LocalNodeState}}"]).unwrap_or_else(|e| {
                panic!("docker is not available ({e}); run scripts/e2e-swarm.sh, which sets it up")
            });
        assert_eq!(
            state, "active",
            "this engine is not in a swarm; run scripts/swarm-setup.sh"
        );
        for image in [escale_image(), whoami_image()] {
            docker(&["image", "inspect", "--format", "{{.Id}}", &image]).unwrap_or_else(|_| {
                panic!("image {image} is missing; run scripts/build-images.sh")
            });
        }
        // Leftovers of earlier runs (this run has created nothing yet).
        let script = repo_root().join("scripts/swarm-clean.sh");
        let status = Command::new("bash")
            .arg(&script)
            .arg(PREFIX_ROOT)
            .status()
            .expect("run swarm-clean.sh");
        assert!(status.success(), "swarm-clean.sh {PREFIX_ROOT} failed");
    });
}

/// This process's run id, shared by all its tests.
pub fn run_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        format!("{:x}{:04x}", std::process::id() % 0xffff, nanos % 0xffff)
    })
}

/// A free TCP port on the host, for the proxy's host-mode publish.
pub fn free_port() -> u16 {
    let seed = u32::from(std::process::id() as u16) * 7 + Instant::now().elapsed().subsec_nanos();
    for i in 0..2000u32 {
        let port = 20000 + ((seed + i * 37) % 9000) as u16;
        if TcpListener::bind(("0.0.0.0", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in 20000..29000");
}

/// Polls `f` every `every` until it returns `Some`, or `within` passes.
pub fn wait_for<T>(
    within: Duration,
    every: Duration,
    mut f: impl FnMut() -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(every);
    }
}

// ---------------------------------------------------------------- HTTP

#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Resp {
    /// whoami's `Name:` line.
    pub fn name(&self) -> Option<&str> {
        self.line("Name: ")
    }

    pub fn line(&self, prefix: &str) -> Option<&str> {
        self.body.lines().find_map(|l| l.strip_prefix(prefix))
    }

    pub fn ips(&self) -> Vec<String> {
        self.body
            .lines()
            .filter_map(|l| l.strip_prefix("IP: "))
            .map(str::to_string)
            .collect()
    }

    /// The request line whoami received (`GET /x HTTP/1.1`).
    pub fn request_line(&self) -> Option<&str> {
        self.body
            .lines()
            .find(|l| l.starts_with("GET ") || l.starts_with("POST ") || l.starts_with("HEAD "))
    }
}

/// One HTTP/1.1 GET to 127.0.0.1:port, on a fresh connection.
pub fn get(port: u16, host: &str, path: &str) -> Result<Resp, String> {
    get_timeout(port, host, path, Duration::from_secs(5))
}

pub fn get_timeout(port: u16, host: &str, path: &str, timeout: Duration) -> Result<Resp, String> {
    let mut s = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), timeout)
        .map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(timeout)).ok();
    s.set_write_timeout(Some(timeout)).ok();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes())
        .map_err(|e| format!("write: {e}"))?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).map_err(|e| format!("read: {e}"))?;
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> Result<Resp, String> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("no header end in {} bytes", raw.len()))?;
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut body = raw[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    if chunked {
        body = dechunk(&body)?;
    }
    Ok(Resp {
        status,
        headers,
        body: String::from_utf8_lossy(&body).to_string(),
    })
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let eol = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("bad chunk header")?;
        let size_text = String::from_utf8_lossy(&data[..eol]).to_string();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| format!("bad chunk size {size_text:?}"))?;
        data = &data[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        if data.len() < size + 2 {
            return Err("truncated chunk".into());
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

// ---------------------------------------------------------------- Docker API

/// GET on the Docker API over its unix socket (for fast polling).
pub fn api(path: &str) -> Result<serde_json::Value, String> {
    let mut s = UnixStream::connect("/var/run/docker.sock").map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let req = format!("GET /v1.41{path} HTTP/1.0\r\nHost: localhost\r\n\r\n");
    s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).map_err(|e| e.to_string())?;
    let resp = parse_response(&raw)?;
    if resp.status != 200 {
        return Err(format!("docker api {path}: {} {}", resp.status, resp.body));
    }
    serde_json::from_str(&resp.body).map_err(|e| format!("docker api {path}: {e}"))
}

fn url_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The overlay IPs (on `network`) of a service's tasks that are running and
/// meant to run.
pub fn running_task_ips(service: &str, network: &str) -> Result<BTreeSet<String>, String> {
    let filters = format!(r#"{{"service":["{service}"],"desired-state":["running"]}}"#);
    let tasks = api(&format!("/tasks?filters={}", url_escape(&filters)))?;
    let mut ips = BTreeSet::new();
    for t in tasks.as_array().into_iter().flatten() {
        if t["Status"]["State"] != "running" || t["DesiredState"] != "running" {
            continue;
        }
        for a in t["NetworksAttachments"].as_array().into_iter().flatten() {
            if a["Network"]["Spec"]["Name"] != network {
                continue;
            }
            for addr in a["Addresses"].as_array().into_iter().flatten() {
                if let Some(ip) = addr.as_str().and_then(|s| s.split('/').next()) {
                    ips.insert(ip.to_string());
                }
            }
        }
    }
    Ok(ips)
}

// ---------------------------------------------------------------- Environment

/// Serializes the tests of this binary even when the harness runs them in
/// parallel (`cargo test --all-targets`): timings are part of what they check.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// One test's swarm objects; removed on drop.
pub struct Env {
    pub prefix: String,
    pub network: String,
    pub port: u16,
    pub proxy: String,
    services: Vec<String>,
}

impl Env {
    /// A fresh prefix and overlay network.
    pub fn new(test: &str) -> Env {
        preflight();
        let prefix = format!("{PREFIX_ROOT}{}-{test}", run_id());
        let network = format!("{prefix}-net");
        docker_ok(&[
            "network",
            "create",
            "--driver",
            "overlay",
            "--attachable",
            &network,
        ]);
        Env {
            proxy: format!("{prefix}-proxy"),
            prefix,
            network,
            port: 0,
            services: Vec::new(),
        }
    }

    pub fn name(&self, short: &str) -> String {
        format!("{}-{short}", self.prefix)
    }

    /// Starts escale as a swarm service, as a production setup would, and
    /// waits until its published port answers.
    pub fn start_proxy(&mut self, args: &[&str]) {
        self.start_proxy_with(&[], args);
    }

    /// Like [`Env::start_proxy`], with extra `docker service create` options.
    pub fn start_proxy_with(&mut self, options: &[&str], args: &[&str]) {
        self.port = free_port();
        let image = escale_image();
        let publish = format!("mode=host,published={},target=80", self.port);
        let mut cmd: Vec<String> = [
            "service",
            "create",
            "--detach",
            "--name",
            &self.proxy,
            "--constraint",
            "node.role==manager",
            "--mount",
            "type=bind,src=/var/run/docker.sock,dst=/var/run/docker.sock",
            "--publish",
            &publish,
            "--network",
            &self.network,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        cmd.extend(options.iter().map(|s| s.to_string()));
        cmd.push(image);
        cmd.extend(args.iter().map(|s| s.to_string()));
        let refs: Vec<&str> = cmd.iter().map(String::as_str).collect();
        docker_ok(&refs);
        self.services.push(self.proxy.clone());
        let port = self.port;
        let up = wait_for(Duration::from_secs(90), Duration::from_millis(200), || {
            get_timeout(port, "readiness.invalid", "/", Duration::from_secs(2)).ok()
        });
        if up.is_none() {
            panic!(
                "proxy did not answer on 127.0.0.1:{port} within 90s; logs:\n{}",
                self.proxy_logs()
            );
        }
    }

    /// Creates a whoami service on the test network; returns its full name.
    pub fn create_service(
        &mut self,
        short: &str,
        replicas: u32,
        labels: &[(&str, &str)],
        extra: &[&str],
    ) -> String {
        let name = self.name(short);
        let replicas = replicas.to_string();
        let env_name = format!("WHOAMI_NAME={short}");
        let mut cmd: Vec<String> = [
            "service",
            "create",
            "--detach",
            "--name",
            &name,
            "--network",
            &self.network,
            "--replicas",
            &replicas,
            "--env",
            &env_name,
            "--stop-grace-period",
            "10s",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for (k, v) in labels {
            cmd.push("--label".into());
            cmd.push(format!("{k}={v}"));
        }
        cmd.extend(extra.iter().map(|s| s.to_string()));
        cmd.push(whoami_image());
        let refs: Vec<&str> = cmd.iter().map(String::as_str).collect();
        docker_ok(&refs);
        self.services.push(name.clone());
        name
    }

    /// Waits until exactly `n` tasks run; returns their IPs.
    pub fn wait_running(&self, service: &str, n: usize) -> BTreeSet<String> {
        wait_for(Duration::from_secs(90), Duration::from_millis(50), || {
            running_task_ips(service, &self.network)
                .ok()
                .filter(|ips| ips.len() == n)
        })
        .unwrap_or_else(|| {
            panic!(
                "{service}: {n} running tasks not reached in 90s ({:?})",
                docker(&["service", "ps", "--no-trunc", service])
            )
        })
    }

    pub fn remove_service(&mut self, name: &str) {
        docker_ok(&["service", "rm", name]);
        self.services.retain(|s| s != name);
    }

    pub fn get(&self, host: &str, path: &str) -> Result<Resp, String> {
        get(self.port, host, path)
    }

    /// Sends up to `max` requests until every IP of `want` answered; returns
    /// the IPs seen (any IP outside `want` is kept, for the caller to judge).
    pub fn sample_ips(
        &self,
        host: &str,
        path: &str,
        want: &BTreeSet<String>,
        max: usize,
    ) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        for _ in 0..max {
            if let Ok(r) = self.get(host, path)
                && r.status == 200
            {
                for ip in r.ips() {
                    if want.contains(&ip) || ip.starts_with("10.") {
                        seen.insert(ip);
                    }
                }
            }
            if want.is_subset(&seen) {
                break;
            }
        }
        seen
    }

    pub fn proxy_logs(&self) -> String {
        let out = Command::new(docker_bin())
            .args(["service", "logs", "--raw", "--no-task-ids", &self.proxy])
            .output();
        match out {
            Ok(o) => format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => format!("(no logs: {e})"),
        }
    }

    /// Waits until the proxy's log has a line containing every needle.
    pub fn wait_log(&self, needles: &[&str], within: Duration) -> Option<String> {
        wait_for(within, Duration::from_millis(500), || {
            self.proxy_logs()
                .lines()
                .find(|l| needles.iter().all(|n| l.contains(n)))
                .map(str::to_string)
        })
    }

    /// Polls until `host path` answers `status` (and `check` holds); returns
    /// the time it took.
    pub fn wait_status(
        &self,
        host: &str,
        path: &str,
        status: u16,
        within: Duration,
    ) -> Option<Duration> {
        let start = Instant::now();
        wait_for(within, Duration::from_millis(10), || {
            self.get(host, path)
                .ok()
                .filter(|r| r.status == status)
                .map(|_| start.elapsed())
        })
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let script = repo_root().join("scripts/swarm-clean.sh");
        let _ = Command::new("bash").arg(&script).arg(&self.prefix).status();
    }
}

/// Labels by name, for tests that build them in a loop.
pub fn labels_of(pairs: &[(String, String)]) -> Vec<(&str, &str)> {
    pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

pub fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

pub fn fmt_ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

pub type Labels = BTreeMap<String, String>;

// ---------------------------------------------------------------- Load

/// A bounded background load: `workers` threads sending sequential GETs
/// until stopped, `max_time` passes or `max_requests` were sent.
pub struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    errors: Arc<Mutex<Vec<String>>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

#[derive(Debug)]
pub struct LoadResult {
    pub ok: u64,
    pub failed: u64,
    /// The first failures, for the assertion message.
    pub errors: Vec<String>,
}

impl Load {
    pub fn start(port: u16, host: &str, path: &str, workers: usize, max_time: Duration) -> Load {
        const MAX_REQUESTS_PER_WORKER: u64 = 200_000;
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let errors = Arc::new(Mutex::new(Vec::new()));
        let threads = (0..workers)
            .map(|_| {
                let (stop, ok, failed, errors) =
                    (stop.clone(), ok.clone(), failed.clone(), errors.clone());
                let (host, path) = (host.to_string(), path.to_string());
                std::thread::spawn(move || {
                    let deadline = Instant::now() + max_time;
                    for _ in 0..MAX_REQUESTS_PER_WORKER {
                        if stop.load(Ordering::Relaxed) || Instant::now() >= deadline {
                            break;
                        }
                        match get(port, &host, &path) {
                            Ok(r) if r.status == 200 => {
                                ok.fetch_add(1, Ordering::Relaxed);
                            }
                            other => {
                                failed.fetch_add(1, Ordering::Relaxed);
                                let mut e = errors.lock().unwrap_or_else(|e| e.into_inner());
                                if e.len() < 20 {
                                    e.push(match other {
                                        Ok(r) => format!("status {}: {}", r.status, r.body.trim()),
                                        Err(err) => err,
                                    });
                                }
                            }
                        }
                    }
                })
            })
            .collect();
        Load {
            stop,
            ok,
            failed,
            errors,
            threads,
        }
    }

    pub fn ok(&self) -> u64 {
        self.ok.load(Ordering::Relaxed)
    }

    pub fn stop(self) -> LoadResult {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            let _ = t.join();
        }
        LoadResult {
            ok: self.ok.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            errors: self
                .errors
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        }
    }
}

/// Waits for a service's rolling update to complete.
pub fn wait_update_completed(service: &str, within: Duration) -> bool {
    wait_for(within, Duration::from_millis(250), || {
        let s = api(&format!("/services/{service}")).ok()?;
        (s["UpdateStatus"]["State"] == "completed").then_some(())
    })
    .is_some()
}

// ---------------------------------------------------------------- Socket relay

/// A relay from `<dir>/docker.sock` to the real Docker socket. Stopping it
/// cuts every connection through it (the event stream included) and removes
/// the socket: to the proxy behind it, Docker is unreachable, while the
/// daemon and every container go on running.
pub struct SocketRelay {
    pub dir: PathBuf,
    stop: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<UnixStream>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SocketRelay {
    pub fn start(dir: PathBuf) -> SocketRelay {
        std::fs::create_dir_all(&dir).expect("relay dir");
        let path = dir.join("docker.sock");
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).expect("bind relay socket");
        listener.set_nonblocking(true).expect("nonblocking");
        let stop = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<UnixStream>>> = Arc::new(Mutex::new(Vec::new()));
        let (stop2, conns2) = (stop.clone(), conns.clone());
        let thread = std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                let Ok((client, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                let _ = client.set_nonblocking(false);
                let Ok(upstream) = UnixStream::connect("/var/run/docker.sock") else {
                    continue;
                };
                let mut list = conns2.lock().unwrap_or_else(|e| e.into_inner());
                for (from, to) in [(&client, &upstream), (&upstream, &client)] {
                    let (Ok(mut from), Ok(mut to)) = (from.try_clone(), to.try_clone()) else {
                        continue;
                    };
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
                list.push(client);
                list.push(upstream);
            }
        });
        SocketRelay {
            dir,
            stop,
            conns,
            thread: Some(thread),
        }
    }

    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(self.dir.join("docker.sock"));
        for c in self
            .conns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
    }
}

impl Drop for SocketRelay {
    fn drop(&mut self) {
        self.stop();
    }
}
