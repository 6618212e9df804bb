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
use crate::config::file_format::{self, ParsedFile};

pub const PROVIDER: &str = "file";

pub use crate::config::static_config::FileSource;

impl FileSource {
    fn watch_root(&self) -> PathBuf {
        match self {
            // Editors replace files by renaming over them: watch the parent.
            FileSource::Filename(p) => p
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from(".")),
            FileSource::Directory(d) => d.clone(),
        }
    }

    fn files(&self) -> Result<Vec<PathBuf>, std::io::Error> {
        match self {
            FileSource::Filename(p) => Ok(vec![p.clone()]),
            FileSource::Directory(d) => {
                let mut files = Vec::new();
                file_format::collect_files(d, &mut files)?;
                Ok(files)
            }
        }
    }

    fn path(&self) -> &Path {
        match self {
            FileSource::Filename(p) | FileSource::Directory(p) => p,
        }
    }
}

impl From<file_format::Issue> for ConfigIssue {
    fn from(i: file_format::Issue) -> Self {
        let mut source = format!("file {}", i.file.display());
        if let Some(line) = i.line {
            source.push_str(&format!(":{line}"));
        }
        ConfigIssue {
            severity: i.severity,
            provider: PROVIDER.to_string(),
            source,
            object: None,
            key: i.key,
            message: i.message,
        }
    }
}

/// Reads every file once: the merged configuration and the issues. A file
/// that no longer parses keeps its last good content from `last_good`.
pub fn load(source: &FileSource, last_good: &mut BTreeMap<PathBuf, ParsedFile>) -> Snapshot {
    let mut issues: Vec<ConfigIssue> = Vec::new();
    match source.files() {
        Ok(files) => {
            last_good.retain(|p, _| files.contains(p));
            for path in files {
                let text = match std::fs::read_to_string(&path) {
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
                match file_format::parse_dynamic_file(&path, &text) {
                    Ok((config, file_issues)) => {
                        issues.extend(file_issues.into_iter().map(ConfigIssue::from));
                        last_good.insert(path.clone(), ParsedFile { path, text, config });
                    }
                    Err(errors) => {
                        let kept = last_good.contains_key(&path);
                        for e in errors {
                            let mut e = ConfigIssue::from(e);
                            if kept {
                                e.message
                                    .push_str(" (keeping the last good version of this file)");
                            }
                            issues.push(e);
                        }
                    }
                }
            }
        }
        Err(e) => issues.push(ConfigIssue::error(
            PROVIDER,
            format!("file {}", source.path().display()),
            format!("cannot read: {e}"),
        )),
    }
    let (config, merge_issues) = file_format::merge_files(last_good.values());
    issues.extend(merge_issues.into_iter().map(ConfigIssue::from));
    Snapshot { config, issues }
}

/// Whether a watch event can change the configuration. Reading the files
/// raises access events (reacting to those would reload forever), and a
/// watched file's directory sees events for unrelated files.
fn is_relevant(source: &FileSource, event: &notify::Event) -> bool {
    if matches!(event.kind, notify::EventKind::Access(_)) {
        return false;
    }
    match source {
        FileSource::Filename(f) => event.paths.iter().any(|p| p.file_name() == f.file_name()),
        FileSource::Directory(_) => event.paths.iter().any(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| !n.starts_with('.'))
        }),
    }
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
    let wanted = source.clone();
    let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event
            && is_relevant(&wanted, &event)
        {
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
