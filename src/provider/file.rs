//! The file provider: Traefik dynamic configuration files (TOML or YAML),
//! one file or a directory of them, reloaded when they change.
//!
//! Each file keeps its last good content: a file that stops parsing keeps
//! serving what it had, and the error is reported with file, line and key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
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
/// that no longer parses keeps its last good content from `last_good`; a
/// file whose text did not change is not parsed again.
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
                if let Some(known) = last_good.get(&path).filter(|k| k.text == text) {
                    issues.extend(known.issues.iter().cloned().map(ConfigIssue::from));
                    continue;
                }
                match file_format::parse_dynamic_file(&path, &text) {
                    Ok((config, file_issues)) => {
                        issues.extend(file_issues.iter().cloned().map(ConfigIssue::from));
                        last_good.insert(
                            path.clone(),
                            ParsedFile {
                                path,
                                text,
                                config: Arc::new(config),
                                issues: file_issues,
                            },
                        );
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

/// What a watch event says about the files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    /// A file is complete: renamed into place (how editors and tools
    /// replace a file atomically), closed by its writer, or removed.
    Complete,
    /// A file is being written, or was created: more may follow.
    Partial,
}

/// How long writes must pause before a file that was not closed nor
/// renamed is read anyway (a writer that keeps it open).
const QUIET: Duration = Duration::from_millis(20);

/// Whether a watch event can change the configuration, and how. Reading
/// the files raises access events (reacting to those would reload forever),
/// and a watched file's directory sees events for unrelated files.
fn classify(source: &FileSource, event: &notify::Event) -> Option<Change> {
    use notify::EventKind;
    use notify::event::{AccessKind, AccessMode, ModifyKind};
    let change = match event.kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => Change::Complete,
        EventKind::Access(_) => return None,
        EventKind::Modify(ModifyKind::Name(_)) | EventKind::Remove(_) => Change::Complete,
        _ => Change::Partial,
    };
    let relevant = match source {
        FileSource::Filename(f) => event.paths.iter().any(|p| p.file_name() == f.file_name()),
        FileSource::Directory(_) => event.paths.iter().any(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| !n.starts_with('.'))
        }),
    };
    relevant.then_some(change)
}

/// Waits until the files can be read: at once when the latest event says a
/// file is complete, otherwise once events pause for [`QUIET`]. A file read
/// half-written and broken keeps the last good configuration anyway.
async fn settle(rx: &mut mpsc::UnboundedReceiver<Change>, first: Change) {
    let mut latest = first;
    loop {
        while let Ok(c) = rx.try_recv() {
            latest = c;
        }
        if latest == Change::Complete {
            return;
        }
        match tokio::time::timeout(QUIET, rx.recv()).await {
            Ok(Some(c)) => latest = c,
            Ok(None) | Err(_) => return,
        }
    }
}

/// Loads and publishes on a blocking thread: parsing 10k routes takes tens
/// of milliseconds, which must not hold a worker that serves requests.
async fn reload(
    source: &FileSource,
    last_good: BTreeMap<PathBuf, ParsedFile>,
    handle: &ProviderHandle,
) -> BTreeMap<PathBuf, ParsedFile> {
    let (source, handle) = (source.clone(), handle.clone());
    let job = tokio::task::spawn_blocking(move || {
        let mut last_good = last_good;
        let started = std::time::Instant::now();
        let snapshot = load(&source, &mut last_good);
        tracing::debug!(
            load_ms = started.elapsed().as_secs_f64() * 1000.0,
            "file provider: files read and parsed"
        );
        for issue in &snapshot.issues {
            tracing::warn!(%issue, "file provider");
        }
        handle.publish(snapshot);
        last_good
    });
    job.await.unwrap_or_else(|e| {
        tracing::error!(error = %e, "file provider: loading failed");
        BTreeMap::new()
    })
}

/// Publishes the files' content now and, when `watch` is set, after every
/// change, until the handle's consumers go away.
pub async fn run(source: FileSource, watch: bool, handle: ProviderHandle) {
    let mut last_good = reload(&source, BTreeMap::new(), &handle).await;
    if !watch {
        return;
    }
    let (tx, mut rx) = mpsc::unbounded_channel();
    let wanted = source.clone();
    let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event
            && let Some(change) = classify(&wanted, &event)
        {
            let _ = tx.send(change);
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
    while let Some(first) = rx.recv().await {
        handle.status.event();
        settle(&mut rx, first).await;
        last_good = reload(&source, last_good, &handle).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{AccessKind, AccessMode, CreateKind, DataChange, ModifyKind, RenameMode};
    use notify::{Event, EventKind};

    const GOOD: &str = "http:\n  routers:\n    r:\n      rule: Host(`a.test`)\n      service: s\n  services:\n    s:\n      loadBalancer:\n        servers:\n          - url: http://127.0.0.1:1\n";

    fn source(dir: &Path) -> FileSource {
        FileSource::Filename(dir.join("dyn.yml"))
    }

    #[test]
    fn the_model_is_shared_not_copied_and_unchanged_text_is_not_parsed_again() {
        let dir = tempfile::tempdir().unwrap();
        let src = source(dir.path());
        std::fs::write(dir.path().join("dyn.yml"), GOOD).unwrap();
        let mut last_good = BTreeMap::new();
        let first = load(&src, &mut last_good);
        assert!(first.issues.is_empty(), "{:?}", first.issues);
        // The snapshot holds the provider's own parse, not a copy of it.
        assert!(Arc::ptr_eq(
            &first.config,
            &last_good[&src.path().to_path_buf()].config
        ));
        let again = load(&src, &mut last_good);
        assert!(Arc::ptr_eq(&first.config, &again.config));
        std::fs::write(dir.path().join("dyn.yml"), GOOD.replace("a.test", "b.test")).unwrap();
        let changed = load(&src, &mut last_good);
        assert!(!Arc::ptr_eq(&first.config, &changed.config));
        assert_eq!(changed.config.http.routers["r"].rule, "Host(`b.test`)");
    }

    #[test]
    fn a_broken_file_keeps_the_last_good_configuration() {
        let dir = tempfile::tempdir().unwrap();
        let src = source(dir.path());
        std::fs::write(dir.path().join("dyn.yml"), GOOD).unwrap();
        let mut last_good = BTreeMap::new();
        let good = load(&src, &mut last_good);
        std::fs::write(dir.path().join("dyn.yml"), "http:\n  routers: [oops\n").unwrap();
        let broken = load(&src, &mut last_good);
        assert!(Arc::ptr_eq(&good.config, &broken.config));
        assert_eq!(broken.issues.len(), 1);
        assert!(
            broken.issues[0]
                .message
                .contains("keeping the last good version"),
            "{}",
            broken.issues[0]
        );
        assert!(
            broken.issues[0].source.contains("dyn.yml:"),
            "names the line"
        );
    }

    fn event(kind: EventKind, name: &str) -> Event {
        Event::new(kind).add_path(PathBuf::from("/etc/escale").join(name))
    }

    #[test]
    fn renames_and_closes_complete_a_file_writes_do_not() {
        let src = FileSource::Filename(PathBuf::from("/etc/escale/dyn.yml"));
        let renamed = EventKind::Modify(ModifyKind::Name(RenameMode::To));
        let closed = EventKind::Access(AccessKind::Close(AccessMode::Write));
        let written = EventKind::Modify(ModifyKind::Data(DataChange::Content));
        let created = EventKind::Create(CreateKind::File);
        let read = EventKind::Access(AccessKind::Close(AccessMode::Read));
        assert_eq!(
            classify(&src, &event(renamed, "dyn.yml")),
            Some(Change::Complete)
        );
        assert_eq!(
            classify(&src, &event(closed, "dyn.yml")),
            Some(Change::Complete)
        );
        assert_eq!(
            classify(&src, &event(written, "dyn.yml")),
            Some(Change::Partial)
        );
        assert_eq!(
            classify(&src, &event(created, "dyn.yml")),
            Some(Change::Partial)
        );
        assert_eq!(classify(&src, &event(read, "dyn.yml")), None);
        assert_eq!(classify(&src, &event(renamed, ".dyn.yml.tmp")), None);
    }

    #[tokio::test]
    async fn settles_at_once_when_complete_and_after_a_pause_otherwise() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let at_once = Duration::from_millis(15);
        let start = std::time::Instant::now();
        settle(&mut rx, Change::Complete).await;
        assert!(start.elapsed() < at_once);
        // Writes, then the writer closes the file: read at the close.
        tx.send(Change::Partial).unwrap();
        tx.send(Change::Complete).unwrap();
        let start = std::time::Instant::now();
        settle(&mut rx, Change::Partial).await;
        assert!(start.elapsed() < at_once);
        // Writes and nothing else: read once they pause.
        tx.send(Change::Partial).unwrap();
        let start = std::time::Instant::now();
        settle(&mut rx, Change::Partial).await;
        assert!(start.elapsed() >= QUIET);
    }
}
