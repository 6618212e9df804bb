//! Configuration change events, and `/api/events`: a Server-Sent Events
//! stream of them, interleaved with live server figures every few seconds.
//!
//! Changes are found by comparing a fingerprint of each published table
//! with the previous one, so events name exactly what was added, removed or
//! changed, whichever provider caused it.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{HeaderValue, Response, header};
use http_body::Frame;
use serde::Serialize;
use tokio::sync::{broadcast, mpsc};

use super::Admin;
use crate::provider::{Severity, rfc3339};
use crate::proxy::body::{Body, BoxError};
use crate::routing::RouteTable;

/// How often the stream carries live server figures.
pub const STATS_INTERVAL: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    /// `router`, `service`, `middleware`, `server` or `issue`.
    pub kind: &'static str,
    pub name: String,
    /// `added`, `removed` or `changed`.
    pub action: &'static str,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigEvent {
    pub generation: u64,
    pub time: String,
    pub changes: Vec<Change>,
    pub routers: usize,
    pub services: usize,
    pub middlewares: usize,
    pub errors: usize,
    pub warnings: usize,
}

type Fingerprint = BTreeMap<(&'static str, String), String>;

fn fingerprint(table: &RouteTable) -> Fingerprint {
    let mut fp = Fingerprint::new();
    for (name, view) in &table.routers {
        let model = table.model.router(name);
        fp.insert(("router", name.clone()), json(&(view, model)));
    }
    for (name, view) in &table.service_views {
        let model = table.model.service(name);
        fp.insert(("service", name.clone()), json(&(view, model)));
    }
    for (name, view) in &table.middlewares {
        let model = table.model.middleware(name);
        fp.insert(("middleware", name.clone()), json(&(view, model)));
    }
    for (name, rt) in &table.services {
        for s in rt.balancer.servers() {
            fp.insert(("server", format!("{name} {}", s.url)), String::new());
        }
    }
    for issue in &table.issues {
        fp.insert(("issue", issue.to_string()), String::new());
    }
    fp
}

fn json(v: &impl Serialize) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// What changed from `old` to `new`, in a stable order.
pub fn diff_tables(old: &RouteTable, new: &RouteTable) -> Vec<Change> {
    diff(&fingerprint(old), &fingerprint(new))
}

fn diff(old: &Fingerprint, new: &Fingerprint) -> Vec<Change> {
    let mut out = Vec::new();
    for (key, value) in new {
        match old.get(key) {
            None => out.push(change(key, "added")),
            Some(v) if v != value => out.push(change(key, "changed")),
            Some(_) => {}
        }
    }
    for key in old.keys() {
        if !new.contains_key(key) {
            out.push(change(key, "removed"));
        }
    }
    out
}

fn change(key: &(&'static str, String), action: &'static str) -> Change {
    Change {
        kind: key.0,
        name: key.1.clone(),
        action,
    }
}

/// Publishes configuration events to stream subscribers.
pub struct Events {
    tx: broadcast::Sender<Arc<ConfigEvent>>,
    previous: Mutex<Fingerprint>,
}

impl Default for Events {
    fn default() -> Self {
        Events::new()
    }
}

impl Events {
    pub fn new() -> Events {
        let (tx, _) = broadcast::channel(64);
        Events {
            tx,
            previous: Mutex::new(Fingerprint::new()),
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<ConfigEvent>> {
        self.tx.subscribe()
    }

    /// Called by the pipeline (never on the request path).
    pub fn published(&self, table: &RouteTable) {
        let fp = fingerprint(table);
        let changes = {
            let mut prev = self.previous.lock().unwrap_or_else(|e| e.into_inner());
            let changes = diff(&prev, &fp);
            *prev = fp;
            changes
        };
        if changes.is_empty() {
            return;
        }
        let errors = table
            .issues
            .iter()
            .filter(|i| i.severity == Severity::Error)
            .count();
        let event = ConfigEvent {
            generation: table.generation,
            time: rfc3339(SystemTime::now()),
            changes,
            routers: table.routers.len(),
            services: table.service_views.len(),
            middlewares: table.middlewares.len(),
            errors,
            warnings: table.issues.len() - errors,
        };
        // No subscriber is fine: nobody is watching.
        let _ = self.tx.send(Arc::new(event));
    }
}

fn sse(event: &str, data: &impl Serialize) -> Bytes {
    let data = serde_json::to_string(data).unwrap_or_else(|_| "{}".into());
    Bytes::from(format!("event: {event}\ndata: {data}\n\n"))
}

/// The `/api/events` answer: a stream that ends when the client leaves or
/// the proxy drains.
pub fn stream(admin: Arc<Admin>) -> Response<Body> {
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    let mut events = admin.events.subscribe();
    tokio::spawn(async move {
        let hello = serde_json::json!({ "generation": admin.table().generation });
        if tx
            .send(Bytes::from_static(b"retry: 2000\n\n"))
            .await
            .is_err()
            || tx.send(sse("hello", &hello)).await.is_err()
        {
            return;
        }
        let mut tick = tokio::time::interval(STATS_INTERVAL);
        loop {
            let frame = tokio::select! {
                ev = events.recv() => match ev {
                    Ok(ev) => sse("config", &*ev),
                    // Missed some: tell the client to refetch everything.
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        sse("config", &serde_json::json!({ "generation": admin.table().generation, "changes": [] }))
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                _ = tick.tick() => {
                    if admin.is_draining() {
                        break;
                    }
                    sse("stats", &super::api::live_stats(&admin.table()))
                }
                _ = tx.closed() => break,
            };
            if tx.send(frame).await.is_err() {
                break;
            }
        }
    });
    let mut res = Response::new(Body::boxed(ChannelBody(rx)));
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    res
}

/// A body fed by a channel; ends when the sender is dropped.
struct ChannelBody(mpsc::Receiver<Bytes>);

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.0.poll_recv(cx).map(|b| b.map(|b| Ok(Frame::data(b))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_names_each_change() {
        let mut old = Fingerprint::new();
        old.insert(("router", "a@file".into()), "1".into());
        old.insert(("router", "b@file".into()), "1".into());
        let mut new = old.clone();
        new.remove(&("router", "b@file".into()));
        new.insert(("router", "a@file".into()), "2".into());
        new.insert(("service", "s@file".into()), "1".into());
        let changes = diff(&old, &new);
        let got: Vec<_> = changes
            .iter()
            .map(|c| (c.kind, c.name.as_str(), c.action))
            .collect();
        assert_eq!(
            got,
            vec![
                ("router", "a@file", "changed"),
                ("service", "s@file", "added"),
                ("router", "b@file", "removed"),
            ]
        );
        assert!(diff(&new, &new).is_empty());
    }

    #[test]
    fn sse_frames_are_well_formed() {
        let b = sse("config", &serde_json::json!({"a": 1}));
        assert_eq!(&b[..], b"event: config\ndata: {\"a\":1}\n\n");
    }
}
