//! The file provider: Traefik dynamic configuration files (TOML or YAML),
//! one file or a directory of them, reloaded when they change.
//!
//! Each file keeps its last good content: a file that stops parsing keeps
//! serving what it had, and the error is reported with file, line and key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

use super::{ConfigIssue, ProviderHandle, Snapshot};
use crate::config::dynamic::DynamicConfig;
use crate::config::file_format;

pub const PROVIDER: &str = "file";

#[derive(Debug, Clone)]
pub enum FileSource {
    File(PathBuf),
    Directory(PathBuf),
}

impl FileSource {
    fn watch_root(&self) -> PathBuf {
        match self {
            // Editors replace files by renaming over them: watch the parent.
            FileSource::File(p) => p
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from(".")),
            FileSource::Directory(d) => d.clone(),
        }
    }

    fn files(&self) -> Result<Vec<PathBuf>, std::io::Error> {
        match self {
            FileSource::File(p) => Ok(vec![p.clone()]),
            FileSource::Directory(d) => {
                let mut files: Vec<PathBuf> = std::fs::read_dir(d)?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| is_config_file(p))
                    .collect();
                files.sort();
                Ok(files)
            }
        }
    }
}

fn is_config_file(p: &Path) -> bool {
    matches!(
        p.extension().and_then(|e| e.to_str()),
        Some("toml" | "yml" | "yaml")
    )
}

/// Reads every file once: the merged configuration and the issues, keeping
/// each broken file's last good content from `last_good`.
pub fn load(source: &FileSource, last_good: &mut BTreeMap<PathBuf, DynamicConfig>) -> Snapshot {
    let mut issues = Vec::new();
    let files = match source.files() {
        Ok(f) => f,
        Err(e) => {
            let dir = match source {
                FileSource::Directory(d) | FileSource::File(d) => d.display().to_string(),
            };
            issues.push(ConfigIssue::error(
                PROVIDER,
                format!("file {dir}"),
                format!("cannot read: {e}"),
            ));
            return merge(last_good, issues);
        }
    };
    last_good.retain(|p, _| files.contains(p));
    for path in &files {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                issues.push(ConfigIssue::error(
                    PROVIDER,
                    format!("file {}", path.display()),
                    format!("cannot read: {e}"),
                ));
                continue;
            }
        };
        match file_format::parse_dynamic_file(path, &text) {
            Ok((config, warnings)) => {
                issues.extend(warnings);
                last_good.insert(path.clone(), config);
            }
            Err(errors) => {
                let kept = last_good.contains_key(path);
                for mut e in errors {
                    if kept {
                        e.message
                            .push_str(" (keeping the last good version of this file)");
                    }
                    issues.push(e);
                }
            }
        }
    }
    merge(last_good, issues)
}

fn merge(files: &BTreeMap<PathBuf, DynamicConfig>, mut issues: Vec<ConfigIssue>) -> Snapshot {
    let mut config = DynamicConfig::default();
    let mut owner: BTreeMap<(u8, String), PathBuf> = BTreeMap::new();
    for (path, c) in files {
        let mut claim = |kind: u8, label: &str, name: &String| -> bool {
            match owner.get(&(kind, name.clone())) {
                Some(first) => {
                    issues.push(
                        ConfigIssue::error(
                            PROVIDER,
                            format!("file {}", path.display()),
                            format!("{label} \"{name}\" is also defined in {}; the first definition is used", first.display()),
                        )
                        .with_object(format!("{name}@file")),
                    );
                    false
                }
                None => {
                    owner.insert((kind, name.clone()), path.clone());
                    true
                }
            }
        };
        for (name, v) in &c.http.routers {
            if claim(0, "router", name) {
                config.http.routers.insert(name.clone(), v.clone());
            }
        }
        for (name, v) in &c.http.services {
            if claim(1, "service", name) {
                config.http.services.insert(name.clone(), v.clone());
            }
        }
        for (name, v) in &c.http.middlewares {
            if claim(2, "middleware", name) {
                config.http.middlewares.insert(name.clone(), v.clone());
            }
        }
        for (name, v) in &c.http.servers_transports {
            if claim(3, "serversTransport", name) {
                config
                    .http
                    .servers_transports
                    .insert(name.clone(), v.clone());
            }
        }
    }
    Snapshot { config, issues }
}

/// Publishes the files' content now and, when `watch` is set, after every
/// change (debounced), until the handle's consumers go away.
pub async fn run(source: FileSource, watch: bool, handle: ProviderHandle) {
    let mut last_good = BTreeMap::new();
    handle.publish(load(&source, &mut last_good));
    if !watch {
        return;
    }
    let (tx, mut rx) = mpsc::unbounded_channel();
    let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok() {
            let _ = tx.send(());
        }
    });
    let mut watcher = match watcher {
        Ok(w) => w,
        Err(e) => {
            handle.status.failed(format!("cannot watch files: {e}"));
            tracing::error!(error = %e, "file provider cannot watch; changes need a restart");
            return;
        }
    };
    let root = source.watch_root();
    if let Err(e) = watcher.watch(&root, RecursiveMode::NonRecursive) {
        handle
            .status
            .failed(format!("cannot watch {}: {e}", root.display()));
        tracing::error!(path = %root.display(), error = %e, "file provider cannot watch");
        return;
    }
    while rx.recv().await.is_some() {
        handle.status.event();
        // Writers often emit several events per save: let them settle.
        tokio::time::sleep(Duration::from_millis(20)).await;
        while rx.try_recv().is_ok() {}
        let snapshot = load(&source, &mut last_good);
        for issue in &snapshot.issues {
            tracing::warn!(%issue, "file provider");
        }
        handle.publish(snapshot);
    }
}
