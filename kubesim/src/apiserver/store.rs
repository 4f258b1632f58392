//! The fake apiserver's object store: current objects per kind with resourceVersions (one
//! counter for all kinds, as etcd has), a bounded history of watch events for resuming
//! watches, and a broadcast of new events to open watches.
//!
//! Objects are kept serialised (full JSON and metadata-only JSON) so lists and watch events of
//! 150,000 pods are byte copies, not re-serialisations.

use bytes::Bytes;
use serde_json::Value;
use std::collections::{BTreeMap, VecDeque};
use std::ops::{Bound, ControlFlow};
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// Watch events kept for resuming watches from an older resourceVersion.
pub const DEFAULT_HISTORY: usize = 200_000;
/// Events buffered per open watch before a slow watcher is dropped (it re-watches).
pub const WATCH_BUFFER: usize = 100_000;

/// The kinds the fake apiserver stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Nodes,
    Pods,
    Namespaces,
    ConfigMaps,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Nodes, Kind::Pods, Kind::Namespaces, Kind::ConfigMaps];

    /// The plural resource name in paths.
    pub fn resource(self) -> &'static str {
        match self {
            Kind::Nodes => "nodes",
            Kind::Pods => "pods",
            Kind::Namespaces => "namespaces",
            Kind::ConfigMaps => "configmaps",
        }
    }

    pub fn kind(self) -> &'static str {
        match self {
            Kind::Nodes => "Node",
            Kind::Pods => "Pod",
            Kind::Namespaces => "Namespace",
            Kind::ConfigMaps => "ConfigMap",
        }
    }

    pub fn namespaced(self) -> bool {
        matches!(self, Kind::Pods | Kind::ConfigMaps)
    }

    /// Field selector fields this kind supports besides `metadata.name` and `metadata.namespace`.
    pub fn extra_fields(self) -> &'static [&'static str] {
        match self {
            Kind::Pods => &[
                "status.phase",
                "spec.nodeName",
                "spec.restartPolicy",
                "spec.schedulerName",
                "spec.serviceAccountName",
                "status.podIP",
                "status.nominatedNodeName",
            ],
            Kind::Nodes => &["spec.unschedulable"],
            Kind::Namespaces => &["status.phase"],
            Kind::ConfigMaps => &[],
        }
    }
}

/// `(namespace or "", name)`: the store's order, which is also list order.
pub type ObjectKey = (String, String);

/// One stored object version.
#[derive(Debug)]
pub struct Stored {
    pub key: ObjectKey,
    pub resource_version: u64,
    pub labels: BTreeMap<String, String>,
    /// Field-selector values: `metadata.name`, `metadata.namespace` and the kind's extras.
    pub fields: Vec<(&'static str, String)>,
    /// The whole object as JSON, `metadata.resourceVersion` set.
    pub json: Bytes,
    /// The object as `PartialObjectMetadata` JSON.
    pub meta_json: Bytes,
    /// Table cells after Name, except Age (see [`super::table`]).
    pub cells: Vec<Value>,
    /// `metadata.creationTimestamp` in Unix ms, for the Age column.
    pub created_ms: Option<i64>,
}

impl Stored {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.iter().find(|(f, _)| *f == name).map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change, with the object before it (for field-selector transitions).
#[derive(Debug, Clone)]
pub struct Event {
    pub kind: Kind,
    pub kind_rv: u64,
    pub event_type: EventType,
    pub object: Arc<Stored>,
    pub previous: Option<Arc<Stored>>,
}

struct KindState {
    objects: BTreeMap<ObjectKey, Arc<Stored>>,
    history: VecDeque<Event>,
    /// Events with resourceVersion <= this are no longer in `history`.
    compacted: u64,
    sender: broadcast::Sender<Event>,
}

struct Inner {
    kinds: BTreeMap<Kind, KindState>,
    resource_version: u64,
    history_limit: usize,
}

/// Thread-safe object store. Cheap to share as `Arc<Store>`.
pub struct Store {
    inner: Mutex<Inner>,
}

/// A consistent view for a list: objects at `resource_version`.
pub struct Snapshot {
    pub resource_version: u64,
    pub objects: Vec<Arc<Stored>>,
}

/// Why a watch cannot start where it asked to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WatchError {
    /// The requested resourceVersion is older than the kept history (HTTP 410, reason Expired).
    #[error("too old resource version: {requested} ({oldest})")]
    TooOld { requested: u64, oldest: u64 },
}

impl Store {
    pub fn new(history_limit: usize) -> Arc<Store> {
        let kinds = Kind::ALL
            .into_iter()
            .map(|k| {
                let state = KindState {
                    objects: BTreeMap::new(),
                    history: VecDeque::new(),
                    compacted: 0,
                    sender: broadcast::channel(WATCH_BUFFER).0,
                };
                (k, state)
            })
            .collect();
        Arc::new(Store {
            inner: Mutex::new(Inner {
                kinds,
                resource_version: 1,
                history_limit,
            }),
        })
    }

    /// Ends every open watch, as an apiserver restart or a dropped connection does: each
    /// kind gets a new broadcast channel, so the old receivers see it closed and their streams
    /// end. Clients re-watch from their last resourceVersion.
    pub fn drop_watches(&self) {
        let mut inner = self.inner.lock().expect("store lock");
        for state in inner.kinds.values_mut() {
            state.sender = broadcast::channel(WATCH_BUFFER).0;
        }
    }

    /// The newest resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.inner.lock().expect("store lock").resource_version
    }

    /// Creates or replaces an object; returns its new resourceVersion. The object must have
    /// `metadata.name` (and `metadata.namespace` for namespaced kinds).
    pub fn upsert(&self, kind: Kind, mut object: Value) -> u64 {
        let mut inner = self.inner.lock().expect("store lock");
        inner.resource_version += 1;
        let rv = inner.resource_version;
        object["metadata"]["resourceVersion"] = Value::String(rv.to_string());
        let stored = Arc::new(stored(kind, rv, object));
        let limit = inner.history_limit;
        let state = inner.kinds.get_mut(&kind).expect("every kind has state");
        let previous = state.objects.insert(stored.key.clone(), stored.clone());
        let event_type = if previous.is_some() {
            EventType::Modified
        } else {
            EventType::Added
        };
        state.record(
            Event {
                kind,
                kind_rv: rv,
                event_type,
                object: stored,
                previous,
            },
            limit,
        );
        rv
    }

    /// Deletes an object; returns the deletion's resourceVersion, `None` if it was not there.
    pub fn delete(&self, kind: Kind, namespace: &str, name: &str) -> Option<u64> {
        let mut inner = self.inner.lock().expect("store lock");
        let key = (namespace.to_string(), name.to_string());
        if !inner.kinds[&kind].objects.contains_key(&key) {
            return None;
        }
        inner.resource_version += 1;
        let rv = inner.resource_version;
        let limit = inner.history_limit;
        let state = inner.kinds.get_mut(&kind).expect("every kind has state");
        let previous = state.objects.remove(&key).expect("checked above");
        let mut last: Value = serde_json::from_slice(&previous.json).expect("stored JSON parses");
        last["metadata"]["resourceVersion"] = Value::String(rv.to_string());
        let object = Arc::new(stored(kind, rv, last));
        state.record(
            Event {
                kind,
                kind_rv: rv,
                event_type: EventType::Deleted,
                object,
                previous: Some(previous),
            },
            limit,
        );
        Some(rv)
    }

    pub fn get(&self, kind: Kind, namespace: &str, name: &str) -> Option<Arc<Stored>> {
        let inner = self.inner.lock().expect("store lock");
        inner.kinds[&kind]
            .objects
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }

    /// All objects of a kind (in one namespace when given), in key order.
    pub fn snapshot(&self, kind: Kind, namespace: Option<&str>) -> Snapshot {
        let inner = self.inner.lock().expect("store lock");
        let objects = &inner.kinds[&kind].objects;
        let objects = match namespace {
            Some(ns) => objects
                .range((ns.to_string(), String::new())..)
                .take_while(|(k, _)| k.0 == ns)
                .map(|(_, v)| v.clone())
                .collect(),
            None => objects.values().cloned().collect(),
        };
        Snapshot {
            resource_version: inner.resource_version,
            objects,
        }
    }

    /// Starts a watch after `from`: the kept events newer than `from`, and a receiver for the
    /// events after them. `from == 0` means "now" with no replay.
    pub fn watch_from(&self, kind: Kind, from: u64) -> Result<(Vec<Event>, broadcast::Receiver<Event>), WatchError> {
        let inner = self.inner.lock().expect("store lock");
        let state = &inner.kinds[&kind];
        let receiver = state.sender.subscribe();
        if from == 0 {
            return Ok((Vec::new(), receiver));
        }
        if from < state.compacted {
            return Err(WatchError::TooOld {
                requested: from,
                oldest: state.compacted,
            });
        }
        let replay = state.history.iter().filter(|e| e.kind_rv > from).cloned().collect();
        Ok((replay, receiver))
    }

    /// A snapshot and a receiver for every event after it, atomically (for watches that start
    /// with the current state: `resourceVersion=0` or `sendInitialEvents=true`).
    pub fn snapshot_and_watch(&self, kind: Kind, namespace: Option<&str>) -> (Snapshot, broadcast::Receiver<Event>) {
        let inner = self.inner.lock().expect("store lock");
        let receiver = inner.kinds[&kind].sender.subscribe();
        drop(inner);
        // Events between subscribe and snapshot are delivered again by the receiver; callers
        // skip events whose resourceVersion is not newer than the snapshot's.
        (self.snapshot(kind, namespace), receiver)
    }

    /// Visits the objects of `kind` (in one namespace when given) in key order from `from`,
    /// as they were at resourceVersion `at` (`None`: now), until `visit` breaks; returns the
    /// resourceVersion read at. An older state is rebuilt from the kept history (`TooOld` when
    /// it does not reach back to `at`), so paginated lists read every page at the first page's
    /// resourceVersion, as etcd does. Runs under the store lock: `visit` must be quick.
    pub fn scan(
        &self,
        kind: Kind,
        namespace: Option<&str>,
        at: Option<u64>,
        from: Bound<&ObjectKey>,
        mut visit: impl FnMut(&Arc<Stored>) -> ControlFlow<()>,
    ) -> Result<u64, WatchError> {
        let inner = self.inner.lock().expect("store lock");
        let state = &inner.kinds[&kind];
        if let Some(at) = at
            && at < state.compacted
        {
            return Err(WatchError::TooOld {
                requested: at,
                oldest: state.compacted,
            });
        }
        let first_of_namespace = namespace.map(|ns| (ns.to_string(), String::new()));
        let lower = match (from, &first_of_namespace) {
            (Bound::Unbounded, Some(first)) => Bound::Included(first),
            (Bound::Included(key) | Bound::Excluded(key), Some(first)) if key < first => Bound::Included(first),
            (from, _) => from,
        };
        let wanted = |key: &ObjectKey| namespace.is_none_or(|ns| key.0 == ns) && bound_allows(lower, key);
        // The state at `at` of every key changed since: its first later event tells it.
        let mut then: BTreeMap<&ObjectKey, Option<&Arc<Stored>>> = BTreeMap::new();
        if let Some(at) = at {
            let newer = state.history.partition_point(|e| e.kind_rv <= at);
            for event in state.history.range(newer..).filter(|e| wanted(&e.object.key)) {
                then.entry(&event.object.key).or_insert(match event.event_type {
                    EventType::Added => None,
                    EventType::Modified | EventType::Deleted => event.previous.as_ref(),
                });
            }
        }
        let mut then = then.into_iter().peekable();
        let now = state.objects.range::<ObjectKey, _>((lower, Bound::Unbounded));
        let mut now = now
            .take_while(|(key, _)| namespace.is_none_or(|ns| key.0 == ns))
            .peekable();
        loop {
            // Merge the two ordered sequences; an old state replaces the current object.
            let next = match (now.peek(), then.peek()) {
                (None, None) => break,
                (Some((key, _)), Some((old_key, _))) if *old_key <= *key => {
                    if *old_key == *key {
                        now.next();
                    }
                    then.next().and_then(|(_, old)| old)
                }
                (Some(_), _) => now.next().map(|(_, object)| object),
                (None, Some(_)) => then.next().and_then(|(_, old)| old),
            };
            if let Some(object) = next
                && visit(object).is_break()
            {
                break;
            }
        }
        Ok(at.unwrap_or(inner.resource_version))
    }
}

fn bound_allows(lower: Bound<&ObjectKey>, key: &ObjectKey) -> bool {
    match lower {
        Bound::Unbounded => true,
        Bound::Included(from) => key >= from,
        Bound::Excluded(from) => key > from,
    }
}

impl KindState {
    fn record(&mut self, event: Event, limit: usize) {
        let _ = self.sender.send(event.clone());
        self.history.push_back(event);
        while self.history.len() > limit {
            if let Some(old) = self.history.pop_front() {
                self.compacted = old.kind_rv;
            }
        }
    }
}

fn stored(kind: Kind, rv: u64, object: Value) -> Stored {
    let meta = &object["metadata"];
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let namespace = text(&meta["namespace"]);
    let name = text(&meta["name"]);
    let labels = meta["labels"]
        .as_object()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), text(v))).collect())
        .unwrap_or_default();
    let mut fields = vec![
        ("metadata.name", name.clone()),
        ("metadata.namespace", namespace.clone()),
    ];
    for &field in kind.extra_fields() {
        let mut v = &object;
        for part in field.split('.') {
            v = &v[part];
        }
        let value = match v {
            Value::String(s) => s.clone(),
            Value::Bool(b) => b.to_string(),
            Value::Null if field == "spec.unschedulable" => "false".to_string(),
            other if other.is_null() => String::new(),
            other => other.to_string(),
        };
        fields.push((field, value));
    }
    let meta_json = serde_json::to_vec(&serde_json::json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": meta,
    }))
    .expect("a Value serialises");
    let created_ms = meta["creationTimestamp"]
        .as_str()
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        .map(|t| t.as_millisecond());
    let json = serde_json::to_vec(&object).expect("a Value serialises");
    Stored {
        key: (namespace, name),
        resource_version: rv,
        labels,
        fields,
        // Exact-size copies: a serializer's buffer grows by doubling and would keep up to twice
        // the object's size for as long as the object is stored.
        json: Bytes::copy_from_slice(&json),
        meta_json: Bytes::copy_from_slice(&meta_json),
        cells: super::table::cells(kind, &object),
        created_ms,
    }
}
