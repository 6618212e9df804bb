//! The dashboard in real headless Chromium (Debian's `chromium`), driven by
//! `tests/dashboard/dashboard.mjs` with `playwright-core` (`npm ci` in
//! `tests/dashboard`; `scripts/browser-setup.sh` installs both). The page
//! loads from a running proxy, shows a router and its servers, updates by
//! itself when a route is added, shows the children of a weighted service,
//! and shows a configuration error.
//! Screenshots go to `target/dashboard-screenshots/`.

mod admin_support;
mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use admin_support::*;
use common::*;

fn routes(a: &Whoami, b: &Whoami, extra: &str) -> String {
    routes_yaml(
        &format!(
            "    web:\n      rule: \"Host(`a.test`)\"\n      service: app\n    broken:\n      rule: \"Hots(`x.test`)\"\n      service: app\n{extra}"
        ),
        &format!(
            "{}    canary:\n      weighted:\n        services:\n          - name: app\n            weight: 3\n",
            lb("app", &[a.url(), b.url()])
        ),
        "    {}",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_in_headless_chromium() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/dashboard");
    assert!(
        dir.join("node_modules/playwright-core").is_dir()
            && Path::new("/usr/bin/chromium").exists(),
        "run scripts/browser-setup.sh first (apt chromium, npm ci in tests/dashboard)"
    );
    let a = Whoami::start("alpha");
    let b = Whoami::start("beta");
    let p = AdminProxy::start(&routes(&a, &b, ""), &["--api.insecure=true"]);
    p.routed("a.test").await;
    for _ in 0..20 {
        get(&p.esc.url("/"), "a.test").await;
    }

    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/dashboard-screenshots");
    let servers = serde_json::json!([a.addr.to_string(), b.addr.to_string()]).to_string();
    let mut node = Command::new("node")
        .arg(dir.join("dashboard.mjs"))
        .current_dir(&dir)
        .env("DASHBOARD_URL", p.url("/dashboard/"))
        .env("SHOT_DIR", &shots)
        .env("SERVERS", servers)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run node");
    let mut stdin = node.stdin.take().expect("stdin");
    let stdout = node.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut node = ChildGuard(node);
    let mut transcript = Vec::new();
    let next_line = |transcript: &mut Vec<String>| -> Option<String> {
        let line = rx.recv_timeout(Duration::from_secs(60)).ok()?;
        transcript.push(line.clone());
        Some(line)
    };
    let fail = |transcript: &[String], node: &mut ChildGuard| -> ! {
        let _ = node.0.kill();
        let mut err = String::new();
        if let Some(mut e) = node.0.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut err);
        }
        panic!(
            "browser test failed\nstdout:\n{}\nstderr:\n{err}",
            transcript.join("\n")
        );
    };

    loop {
        match next_line(&mut transcript) {
            Some(l) if l == "STEP ready-for-route" => break,
            Some(_) => {}
            None => fail(&transcript, &mut node),
        }
    }
    p.esc.write_dynamic(&routes(
        &a,
        &b,
        "    fresh:\n      rule: \"Host(`fresh.test`)\"\n      service: app\n",
    ));
    writeln!(stdin, "route-added fresh@file").expect("write to node");
    loop {
        match next_line(&mut transcript) {
            Some(l) if l == "PASS" => break,
            Some(_) => {}
            None => fail(&transcript, &mut node),
        }
    }
    let status = node.wait_exit(Duration::from_secs(20)).expect("node exits");
    assert!(status.success(), "{}", transcript.join("\n"));
    for shot in [
        "dashboard-routers.png",
        "dashboard-services.png",
        "dashboard-issues.png",
        "dashboard-overview.png",
    ] {
        let meta = std::fs::metadata(shots.join(shot)).expect("screenshot saved");
        assert!(meta.len() > 10_000, "{shot} is a real picture");
    }
}
