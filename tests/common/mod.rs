//! Black-box test harness: the real escale binary and real whoami backends,
//! all on 127.0.0.1, as child processes that are killed on drop.
#![allow(dead_code)]

pub mod ws;

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// The directory holding the built binaries (`target/debug`).
pub fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_escale"))
        .parent()
        .expect("binary has a parent dir")
        .to_path_buf()
}

/// The whoami example binary, built on first use.
///
/// Cargo gives integration tests no path to example binaries (`CARGO_BIN_EXE_*`
/// covers `[[bin]]` only), and `cargo test --test x` does not build examples.
/// So the first caller runs `$CARGO build --example whoami` with the same
/// profile (a no-op when fresh) and takes the path from cargo's JSON output.
pub fn whoami_bin() -> &'static PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        // target/<profile>/deps/whoami-<hash>: build the example for the same profile.
        let exe = std::env::current_exe().expect("current exe");
        let profile_dir = exe
            .parent()
            .and_then(|deps| deps.parent())
            .and_then(|p| p.file_name())
            .and_then(|n| n.to_str())
            .unwrap_or("debug");
        let profile = if profile_dir == "debug" {
            "dev"
        } else {
            profile_dir
        };
        let mut cmd = Command::new(env!("CARGO"));
        // Drop what cargo set for this test process: some build scripts (ring) rerun when
        // e.g. CARGO_MANIFEST_DIR changes, and the next plain `cargo build` would redo them.
        for (key, _) in std::env::vars_os() {
            let Some(key) = key.to_str() else { continue };
            if key == "OUT_DIR"
                || key == "CARGO_MANIFEST_DIR"
                || key == "CARGO_MANIFEST_PATH"
                || key == "CARGO_CRATE_NAME"
                || key == "CARGO_PRIMARY_PACKAGE"
                || key == "CARGO_TARGET_TMPDIR"
                || key.starts_with("CARGO_PKG_")
                || key.starts_with("CARGO_BIN_")
            {
                cmd.env_remove(key);
            }
        }
        let out = cmd
            .args(["build", "--example", "whoami", "--profile", profile])
            .args(["--message-format", "json-render-diagnostics"])
            .arg("--manifest-path")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
            .stderr(Stdio::inherit())
            .output()
            .expect("run cargo build --example whoami");
        assert!(out.status.success(), "cargo build --example whoami failed");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "whoami")
            .find_map(|m| m["executable"].as_str().map(PathBuf::from))
            .expect("whoami executable in cargo output")
    })
}

/// A free loopback port (bound then released; fine for tests).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Kills the child process when dropped.
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl ChildGuard {
    pub fn pid(&self) -> u32 {
        self.0.id()
    }

    /// Sends SIGTERM (graceful stop).
    pub fn terminate(&self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
    }

    /// Waits for exit, bounded.
    pub fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.0.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Resident set size in KiB, from /proc.
    pub fn rss_kib(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.0.id())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }
}

/// A whoami backend on an ephemeral loopback port.
/// Spawns a whoami command and waits for its first line, `listening on ADDR`.
pub fn spawn_listening(mut cmd: Command) -> (Child, SocketAddr) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn whoami");
    let stdout = child.stdout.take().expect("whoami stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("whoami prints its address");
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("unexpected whoami first line: {line:?}"));
    (child, addr)
}

pub struct Whoami {
    pub proc: ChildGuard,
    pub addr: SocketAddr,
    pub name: String,
}

impl Whoami {
    pub fn start(name: &str) -> Whoami {
        Whoami::start_on(name, 0)
    }

    pub fn start_on(name: &str, port: u16) -> Whoami {
        Whoami::start_with(name, port, &[])
    }

    /// A whoami with extra flags (`--delay-ms`), on `port` (0: any).
    pub fn start_with(name: &str, port: u16, extra: &[&str]) -> Whoami {
        let mut cmd = Command::new(whoami_bin());
        cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--name", name])
            .args(extra);
        let (child, addr) = spawn_listening(cmd);
        Whoami {
            proc: ChildGuard(child),
            addr,
            name: name.to_string(),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// A running escale with a file provider watching `dir/dynamic.yml`.
pub struct Escale {
    pub proc: ChildGuard,
    pub web: SocketAddr,
    pub dir: tempfile::TempDir,
    pub log: PathBuf,
}

impl Escale {
    /// Starts escale with one entrypoint `web` and the given dynamic file.
    pub fn start(dynamic_yaml: &str, extra_args: &[&str]) -> Escale {
        Escale::start_with_file("dynamic.yml", dynamic_yaml, extra_args)
    }

    pub fn start_with_file(file_name: &str, content: &str, extra_args: &[&str]) -> Escale {
        Escale::start_with_env(file_name, content, extra_args, &[])
    }

    /// As [`Escale::start_with_file`], with extra environment variables.
    pub fn start_with_env(
        file_name: &str,
        content: &str,
        extra_args: &[&str],
        env: &[(&str, &str)],
    ) -> Escale {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join(file_name);
        std::fs::write(&file, content).expect("write dynamic file");
        let port = free_port();
        let log = dir.path().join("escale.log");
        let mut args = vec![
            format!("--entrypoints.web.address=127.0.0.1:{port}"),
            format!("--providers.file.filename={}", file.display()),
            "--providers.file.watch=true".to_string(),
        ];
        args.extend(extra_args.iter().map(|s| s.to_string()));
        let child = Command::new(env!("CARGO_BIN_EXE_escale"))
            .args(&args)
            .env("ESCALE_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::from(std::fs::File::create(&log).expect("log file")))
            .stderr(Stdio::from(
                std::fs::OpenOptions::new()
                    .append(true)
                    .open(&log)
                    .expect("log file"),
            ))
            .spawn()
            .expect("spawn escale");
        let escale = Escale {
            proc: ChildGuard(child),
            web: SocketAddr::from(([127, 0, 0, 1], port)),
            dir,
            log,
        };
        escale.wait_listening(escale.web);
        escale
    }

    pub fn wait_listening(&self, addr: SocketAddr) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(addr).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("escale did not listen on {addr}; log:\n{}", self.log_text());
    }

    pub fn dynamic_path(&self) -> PathBuf {
        self.dir.path().join("dynamic.yml")
    }

    /// Rewrites the dynamic file atomically (write + rename), as editors do.
    pub fn write_dynamic(&self, content: &str) {
        let tmp = self.dir.path().join(".dynamic.yml.tmp");
        std::fs::write(&tmp, content).expect("write tmp");
        std::fs::rename(&tmp, self.dynamic_path()).expect("rename");
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until `/` answers 200 for `host`: its routes are applied.
    pub async fn routed(&self, host: &str, within: Duration) {
        let what = format!("routes for {host} applied");
        wait_status(&what, &self.url("/"), host, 200, within).await;
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.web, path)
    }
}

/// A simple HTTP/1.1 answer, body collected.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: String,
}

impl Answer {
    /// A line `Key: value` of whoami's echo output.
    pub fn echo(&self, key: &str) -> Option<String> {
        let prefix = format!("{key}: ");
        self.body
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .map(str::to_string)
    }

    /// Every value of a `Key: value` line of whoami's echo output.
    pub fn echo_all(&self, key: &str) -> Vec<String> {
        let prefix = format!("{key}: ");
        self.body
            .lines()
            .filter_map(|l| l.strip_prefix(&prefix))
            .map(str::to_string)
            .collect()
    }

    /// The request line whoami saw, e.g. `GET /x HTTP/1.1`.
    pub fn request_line(&self) -> Option<String> {
        self.body
            .lines()
            .find(|l| l.starts_with(|c: char| c.is_ascii_uppercase()) && l.contains(" HTTP/"))
            .map(str::to_string)
    }
}

/// A dynamic file with the given routers, services and middlewares YAML blocks
/// (each already indented for its section).
pub fn routes_yaml(routers: &str, services: &str, middlewares: &str) -> String {
    format!(
        "http:\n  routers:\n{routers}\n  services:\n{services}\n  middlewares:\n{middlewares}\n"
    )
}

/// A `services` entry: a load balancer over `urls`.
pub fn lb(name: &str, urls: &[String]) -> String {
    let mut s = format!("    {name}:\n      loadBalancer:\n        servers:\n");
    for u in urls {
        s.push_str(&format!("          - url: \"{u}\"\n"));
    }
    s
}

pub fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// Sends a request; `headers` are `(name, value)` pairs.
pub async fn request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Result<Answer, String> {
    let mut builder = http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    let req = builder
        .body(Full::new(Bytes::from(body.to_string())))
        .map_err(|e| e.to_string())?;
    let res = tokio::time::timeout(Duration::from_secs(10), client().request(req))
        .await
        .map_err(|_| "timeout".to_string())?
        .map_err(|e| format!("{e:?}"))?;
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let body = res
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok(Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

pub async fn get(url: &str, host: &str) -> Answer {
    request("GET", url, &[("host", host)], "")
        .await
        .unwrap_or_else(|e| panic!("GET {url} (Host {host}) failed: {e}"))
}

/// Waits (bounded) until `GET url` with that Host (none when empty)
/// answers `status`: the usual way to know a configuration was applied.
pub async fn wait_status(what: &str, url: &str, host: &str, status: u16, within: Duration) {
    let headers: Vec<(&str, &str)> = if host.is_empty() {
        vec![]
    } else {
        vec![("host", host)]
    };
    eventually(what, within, || async {
        request("GET", url, &headers, "")
            .await
            .map(|r| r.status == status)
            .unwrap_or(false)
    })
    .await;
}

/// Polls `check` until it is true, bounded; panics with `what` otherwise.
pub async fn eventually<F, Fut>(what: &str, within: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    loop {
        if check().await {
            return;
        }
        if Instant::now() > deadline {
            panic!("timed out waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// POSTs `len` bytes of body on `s` as fast as it takes them, then reads
/// everything the server sends until it closes. A body far larger than the
/// socket buffers mostly leaves after an early answer. Panics when a write
/// or the read fails, or when either takes more than 10 s.
pub async fn upload_until_close<S>(s: &mut S, host: &str, path: &str, len: usize) -> String
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let head = format!("POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {len}\r\n\r\n");
    s.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b'x'; 64 << 10];
    let mut sent = 0;
    while sent < len {
        let next = &chunk[..(len - sent).min(chunk.len())];
        sent += tokio::time::timeout(Duration::from_secs(10), s.write(next))
            .await
            .expect("body accepted in time")
            .unwrap_or_else(|e| panic!("{host}: body write failed after {sent} bytes: {e}"));
    }
    s.flush().await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut answer))
        .await
        .expect("answer in time")
        .unwrap_or_else(|e| panic!("{host}: the answer, then a clean close: {e}"));
    String::from_utf8_lossy(&answer).into_owned()
}

/// A server on 127.0.0.1 that reads each connection's request head, writes
/// what `answer` makes of it, then closes the connection.
pub async fn raw_server<F>(answer: F) -> SocketAddr
where
    F: Fn(&str) -> Vec<u8> + Send + Sync + 'static,
{
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let answer = std::sync::Arc::new(answer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let answer = answer.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let bytes = answer(&String::from_utf8_lossy(&head));
                let _ = s.write_all(&bytes).await;
            });
        }
    });
    addr
}
