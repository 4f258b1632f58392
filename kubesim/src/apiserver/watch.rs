//! Watches: a chunked response of newline-separated `{"type":..,"object":..}` events, as the
//! apiserver's watch cache sends them.
//!
//! The stream starts with the current objects as ADDED (`resourceVersion` unset or `0`, or
//! `sendInitialEvents=true`, which ends them with the `k8s.io/initial-events-end` BOOKMARK), or
//! with the kept events after `resourceVersion=N` (a single 410 ERROR event when N is older than
//! the history), then follows the store's broadcast. Selectors are applied per event with the
//! object before it, as `cacheWatcher.convertToWatchEvent` does: an object that stops matching is
//! DELETED (with its previous content at the event's resourceVersion), one that starts matching is
//! ADDED. The stream ends at `timeoutSeconds`, or when the watcher falls too far behind.

use super::params::{Format, ListOptions, Version};
use super::resources::{ApiError, Filter, now_ms, wait_for_version};
use super::store::{Event, EventType, Kind, Store, Stored};
use super::table::{self, IncludeObject, TableMeta};
use crate::http::Body;
use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};
use tokio::time::{Instant, Interval, MissedTickBehavior};

/// How often a watch with `allowWatchBookmarks=true` gets a BOOKMARK.
pub const BOOKMARK_INTERVAL: Duration = Duration::from_secs(5);
/// How long a watch without `timeoutSeconds` lasts.
pub const MAX_WATCH_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// `timeoutSeconds` beyond this is cut to it (keeps deadlines representable).
const LONGEST_TIMEOUT: Duration = Duration::from_secs(365 * 24 * 3600);
/// Events are written in chunks of about this size.
const CHUNK_BYTES: usize = 256 * 1024;

/// What one store event means to a watch, from whether the object matched before and after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Emit {
    Skip,
    /// Send the event's object with this type.
    Send(EventType),
    /// Send DELETED with the previous object at the event's resourceVersion.
    DeletePrevious,
}

/// `cacheWatcher.convertToWatchEvent`: `before` is whether the previous object matched,
/// `after` whether the new one does (a deleted object never does).
pub fn transition(event_type: EventType, before: bool, after: bool) -> Emit {
    match (event_type, before, after) {
        (EventType::Deleted, true, _) => Emit::Send(EventType::Deleted),
        (EventType::Deleted, false, _) | (_, false, false) => Emit::Skip,
        (_, false, true) => Emit::Send(EventType::Added),
        (_, true, true) => Emit::Send(EventType::Modified),
        (_, true, false) => Emit::DeletePrevious,
    }
}

/// Serves a watch request (already validated).
pub(super) async fn watch(
    store: Arc<Store>,
    kind: Kind,
    filter: Filter,
    opts: &ListOptions,
    format: Format,
    include: IncludeObject,
) -> Result<Response<Body>, ApiError> {
    let version = Version::parse(opts.resource_version.as_deref())?;
    let initial = opts
        .send_initial_events
        .unwrap_or(matches!(version, Version::Unset | Version::Any));
    let timeout = match opts.timeout_seconds {
        Some(seconds) if seconds > 0 => Duration::from_secs(seconds.unsigned_abs()).min(LONGEST_TIMEOUT),
        _ => MAX_WATCH_TIMEOUT,
    };
    let mut stream = WatchStream::new(store.clone(), kind, filter, format, include, timeout);
    if opts.allow_watch_bookmarks {
        let mut interval = tokio::time::interval_at(Instant::now() + BOOKMARK_INTERVAL, BOOKMARK_INTERVAL);
        interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
        stream.bookmarks = Some(interval);
    }
    if initial {
        if let Version::At(rv) = version {
            wait_for_version(&store, rv).await?;
        }
        let (snapshot, receiver) = store.snapshot_and_watch(kind, stream.filter.namespace.as_deref());
        stream.last_rv = snapshot.resource_version;
        stream.initial = snapshot.objects.into_iter();
        let end_bookmark = opts.send_initial_events == Some(true) && opts.allow_watch_bookmarks;
        stream.end_bookmark = end_bookmark.then_some(snapshot.resource_version);
        stream.receiver = Some(receiver);
    } else {
        let from = if let Version::At(rv) = version { rv } else { 0 };
        match store.watch_from(kind, from) {
            Ok((replay, receiver)) => {
                stream.last_rv = from;
                stream.replay = replay.into_iter();
                stream.receiver = Some(receiver);
            }
            Err(too_old) => {
                let status = ApiError::Expired {
                    message: too_old.to_string(),
                    continue_token: None,
                }
                .status_body();
                let mut line = Vec::new();
                write_line(
                    &mut line,
                    "ERROR",
                    &serde_json::to_vec(&status).expect("a Value serialises"),
                );
                stream.error = Some(line.into());
            }
        }
    }
    let chunks = futures::stream::unfold(stream, |mut stream| async move {
        let chunk = stream.next_chunk().await?;
        Some((Ok::<_, std::io::Error>(Frame::data(chunk)), stream))
    });
    let mut response = Response::new(StreamBody::new(chunks).boxed_unsync());
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache, private"));
    Ok(response)
}

fn write_line(out: &mut Vec<u8>, event_type: &str, object: &[u8]) {
    out.extend_from_slice(b"{\"type\":\"");
    out.extend_from_slice(event_type.as_bytes());
    out.extend_from_slice(b"\",\"object\":");
    out.extend_from_slice(object);
    out.extend_from_slice(b"}\n");
}

/// `stored` with `metadata.resourceVersion` set to `rv` (for DELETED of an object that left
/// the selection: its previous content at the event's resourceVersion).
fn restamp(stored: &Stored, rv: u64) -> Stored {
    let with_rv = |bytes: &Bytes| -> Bytes {
        let mut value: Value = serde_json::from_slice(bytes).expect("stored JSON parses");
        value["metadata"]["resourceVersion"] = Value::String(rv.to_string());
        serde_json::to_vec(&value).expect("a Value serialises").into()
    };
    Stored {
        key: stored.key.clone(),
        resource_version: rv,
        labels: stored.labels.clone(),
        fields: stored.fields.clone(),
        json: with_rv(&stored.json),
        meta_json: with_rv(&stored.meta_json),
        cells: stored.cells.clone(),
        created_ms: stored.created_ms,
    }
}

/// Why the live phase woke up.
enum Wake {
    Deadline,
    Bookmark,
    Received(Result<Event, RecvError>),
}

struct WatchStream {
    store: Arc<Store>,
    kind: Kind,
    filter: Filter,
    format: Format,
    include: IncludeObject,
    /// Current objects still to send as ADDED.
    initial: std::vec::IntoIter<Arc<Stored>>,
    /// The initial-events-end BOOKMARK's resourceVersion, sent after `initial`.
    end_bookmark: Option<u64>,
    /// Kept events to send before live ones.
    replay: std::vec::IntoIter<Event>,
    /// Live events; `None` once the stream is over.
    receiver: Option<broadcast::Receiver<Event>>,
    /// Events at or below this resourceVersion were sent (or are in the snapshot sent).
    last_rv: u64,
    bookmarks: Option<Interval>,
    deadline: Instant,
    /// A final ERROR event.
    error: Option<Bytes>,
}

impl WatchStream {
    fn new(
        store: Arc<Store>,
        kind: Kind,
        filter: Filter,
        format: Format,
        include: IncludeObject,
        timeout: Duration,
    ) -> Self {
        WatchStream {
            store,
            kind,
            filter,
            format,
            include,
            initial: Vec::new().into_iter(),
            end_bookmark: None,
            replay: Vec::new().into_iter(),
            receiver: None,
            last_rv: 0,
            bookmarks: None,
            deadline: Instant::now() + timeout,
            error: None,
        }
    }

    /// The next chunk of event lines; `None` ends the response.
    async fn next_chunk(&mut self) -> Option<Bytes> {
        if let Some(error) = self.error.take() {
            return Some(error);
        }
        let mut out = Vec::new();
        while out.len() < CHUNK_BYTES {
            let Some(object) = self.initial.next() else { break };
            if self.filter.matches(&object) {
                self.write_event(&mut out, EventType::Added, &object);
            }
        }
        if out.is_empty()
            && let Some(rv) = self.end_bookmark.take()
        {
            self.write_bookmark(&mut out, rv, true);
        }
        while out.is_empty() {
            let Some(event) = self.replay.next() else { break };
            self.write_change(&mut out, &event);
        }
        while out.is_empty() {
            match self.wait().await? {
                Wake::Deadline => self.receiver = None,
                Wake::Bookmark => {
                    // Every event up to the store's resourceVersion is already in the channel:
                    // send them first so no event older than the bookmark follows it.
                    let current = self.store.resource_version();
                    self.drain(&mut out, usize::MAX);
                    self.write_bookmark(&mut out, current.max(self.last_rv), false);
                }
                Wake::Received(Ok(event)) => {
                    self.write_change(&mut out, &event);
                    self.drain(&mut out, CHUNK_BYTES);
                }
                // A slow watcher (lagged) or a dropped store: the client re-watches.
                Wake::Received(Err(_)) => self.receiver = None,
            }
        }
        Some(out.into())
    }

    /// Waits for the deadline, a bookmark tick or an event; `None` once the stream is over.
    async fn wait(&mut self) -> Option<Wake> {
        let receiver = self.receiver.as_mut()?;
        let bookmarks = &mut self.bookmarks;
        let tick = async {
            match bookmarks {
                Some(interval) => interval.tick().await,
                None => std::future::pending().await,
            }
        };
        Some(tokio::select! {
            _ = tokio::time::sleep_until(self.deadline) => Wake::Deadline,
            _ = tick => Wake::Bookmark,
            received = receiver.recv() => Wake::Received(received),
        })
    }

    /// Writes the events already received, up to about `limit` bytes.
    fn drain(&mut self, out: &mut Vec<u8>, limit: usize) {
        while out.len() < limit {
            let Some(receiver) = self.receiver.as_mut() else { return };
            match receiver.try_recv() {
                Ok(event) => self.write_change(out, &event),
                Err(TryRecvError::Empty) => return,
                Err(TryRecvError::Lagged(_) | TryRecvError::Closed) => self.receiver = None,
            }
        }
    }

    fn write_change(&mut self, out: &mut Vec<u8>, event: &Event) {
        if event.kind_rv <= self.last_rv {
            return;
        }
        self.last_rv = event.kind_rv;
        if !self.filter.in_namespace(&event.object) {
            return;
        }
        let before = event.previous.as_ref().is_some_and(|p| self.filter.matches(p));
        let after = event.event_type != EventType::Deleted && self.filter.matches(&event.object);
        match transition(event.event_type, before, after) {
            Emit::Skip => {}
            Emit::Send(event_type) => self.write_event(out, event_type, &event.object),
            Emit::DeletePrevious => {
                let previous = event.previous.as_ref().expect("only a previous match deletes");
                self.write_event(out, EventType::Deleted, &Arc::new(restamp(previous, event.kind_rv)));
            }
        }
    }

    fn write_event(&self, out: &mut Vec<u8>, event_type: EventType, object: &Arc<Stored>) {
        match self.format {
            Format::Json => write_line(out, event_type.as_str(), &object.json),
            Format::Metadata => write_line(out, event_type.as_str(), &object.meta_json),
            Format::Table => {
                let meta = TableMeta {
                    resource_version: object.resource_version,
                    ..TableMeta::default()
                };
                let table = table::table(self.kind, std::slice::from_ref(object), &meta, now_ms(), self.include);
                write_line(out, event_type.as_str(), &table);
            }
        }
    }

    fn write_bookmark(&self, out: &mut Vec<u8>, rv: u64, initial_events_end: bool) {
        let mut metadata = json!({"resourceVersion": rv.to_string()});
        if initial_events_end {
            metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let object = match self.format {
            Format::Json => json!({"kind": self.kind.kind(), "apiVersion": "v1", "metadata": metadata}),
            Format::Metadata => {
                json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": metadata})
            }
            Format::Table => {
                json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": metadata, "columnDefinitions": [], "rows": []})
            }
        };
        write_line(
            out,
            "BOOKMARK",
            &serde_json::to_vec(&object).expect("a Value serialises"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use apimachinery::selector::FieldSelector;

    #[test]
    fn selector_transitions() {
        use EventType::*;
        let cases = [
            (Added, false, true, Emit::Send(Added)),
            (Added, false, false, Emit::Skip),
            (Modified, true, true, Emit::Send(Modified)),
            (Modified, false, true, Emit::Send(Added)),
            (Modified, true, false, Emit::DeletePrevious),
            (Modified, false, false, Emit::Skip),
            (Deleted, true, false, Emit::Send(Deleted)),
            (Deleted, false, false, Emit::Skip),
        ];
        for (event_type, before, after, want) in cases {
            assert_eq!(
                transition(event_type, before, after),
                want,
                "{event_type:?} {before} {after}"
            );
        }
    }

    fn pod(node: &str) -> Value {
        json!({"metadata": {"name": "p", "namespace": "ns", "labels": {"app": "x"}}, "spec": {"nodeName": node, "containers": [{"name": "c"}]}})
    }

    fn lines(out: &[u8]) -> Vec<Value> {
        out.split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect()
    }

    #[tokio::test]
    async fn field_selector_moves_become_added_and_deleted() {
        let store = Store::new(100);
        let (_, receiver) = store.watch_from(Kind::Pods, 0).unwrap();
        let filter = Filter {
            fields: FieldSelector::parse("spec.nodeName=node-1").unwrap(),
            ..Filter::default()
        };
        let mut stream = WatchStream::new(
            store.clone(),
            Kind::Pods,
            filter,
            Format::Json,
            IncludeObject::Metadata,
            MAX_WATCH_TIMEOUT,
        );
        stream.receiver = Some(receiver);
        store.upsert(Kind::Pods, pod("node-2"));
        store.upsert(Kind::Pods, pod("node-1"));
        let moved = store.upsert(Kind::Pods, pod("node-3"));
        store.delete(Kind::Pods, "ns", "p");
        let mut out = Vec::new();
        stream.drain(&mut out, usize::MAX);
        let events = lines(&out);
        let types: Vec<_> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(types, ["ADDED", "DELETED"]);
        // The DELETED carries the last matching content at the move's resourceVersion.
        assert_eq!(events[1]["object"]["spec"]["nodeName"], "node-1");
        assert_eq!(events[1]["object"]["metadata"]["resourceVersion"], moved.to_string());
    }

    #[tokio::test]
    async fn initial_events_then_end_bookmark_then_live() {
        let store = Store::new(100);
        store.upsert(Kind::Pods, pod("node-1"));
        let (snapshot, receiver) = store.snapshot_and_watch(Kind::Pods, None);
        let mut stream = WatchStream::new(
            store.clone(),
            Kind::Pods,
            Filter::default(),
            Format::Metadata,
            IncludeObject::Metadata,
            MAX_WATCH_TIMEOUT,
        );
        stream.last_rv = snapshot.resource_version;
        stream.initial = snapshot.objects.into_iter();
        stream.end_bookmark = Some(snapshot.resource_version);
        stream.receiver = Some(receiver);
        let first = lines(&stream.next_chunk().await.unwrap());
        assert_eq!(first[0]["type"], "ADDED");
        assert_eq!(first[0]["object"]["kind"], "PartialObjectMetadata");
        let bookmark = lines(&stream.next_chunk().await.unwrap());
        assert_eq!(bookmark[0]["type"], "BOOKMARK");
        assert_eq!(
            bookmark[0]["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
            "true"
        );
        assert_eq!(
            bookmark[0]["object"]["metadata"]["resourceVersion"],
            snapshot.resource_version.to_string()
        );
        store.upsert(Kind::Pods, pod("node-2"));
        let live = lines(&stream.next_chunk().await.unwrap());
        assert_eq!(live[0]["type"], "MODIFIED");
    }

    #[tokio::test]
    async fn bookmarks_and_timeout() {
        let store = Store::new(100);
        let (_, receiver) = store.watch_from(Kind::Nodes, 0).unwrap();
        let every = Duration::from_millis(100);
        let timeout = every * 2 + every / 2;
        let mut stream = WatchStream::new(
            store.clone(),
            Kind::Nodes,
            Filter::default(),
            Format::Json,
            IncludeObject::Metadata,
            timeout,
        );
        stream.receiver = Some(receiver);
        stream.bookmarks = Some(tokio::time::interval_at(Instant::now() + every, every));
        store.upsert(Kind::Pods, pod("node-1"));
        let bookmark = lines(&stream.next_chunk().await.unwrap());
        assert_eq!(bookmark[0]["type"], "BOOKMARK");
        assert_eq!(
            bookmark[0]["object"],
            json!({"kind": "Node", "apiVersion": "v1", "metadata": {"resourceVersion": store.resource_version().to_string()}})
        );
        assert_eq!(lines(&stream.next_chunk().await.unwrap())[0]["type"], "BOOKMARK");
        assert!(stream.next_chunk().await.is_none());
    }
}
