//! Lists: selectors, `limit`/`continue` pagination and `resourceVersion` semantics as the real
//! apiserver (etcd3 store) has them, answered as a `<Kind>List`, a `PartialObjectMetadataList` or
//! a Table built by concatenating the stored JSON bytes.
//!
//! A continue token is the apiserver's own: base64url (no padding) of
//! `{"v":"meta.k8s.io/v1","rv":<list rv>,"start":"<last key>\u0000"}`. Later pages are read at
//! the first page's resourceVersion (rebuilt from the store's event history, as etcd reads at a
//! revision); if that history is gone the answer is 410 with a token that continues at the latest
//! state, like etcd after compaction. `resourceVersionMatch=Exact` reads the same way.

use super::params::{self, Format, ListOptions, Shape, Version};
use super::resources::{ApiError, Filter, now_ms, wait_for_version};
use super::store::{Event, EventType, Kind, ObjectKey, Store, Stored, WatchError};
use super::table::{self, IncludeObject, TableMeta};
use crate::http::{Body, respond};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{Response, StatusCode};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;

const CONTINUE_TOO_OLD: &str = "The provided continue parameter is too old to display a consistent list result. \
You can start a new list without the continue parameter, or use the continue token in this response to retrieve \
the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that \
were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.";
const LIST_TOO_OLD: &str = "The resourceVersion for the provided list is too old.";

/// Where a page starts: after (or at) a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Start {
    pub key: ObjectKey,
    pub inclusive: bool,
}

/// A decoded continue token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Continue {
    /// The first page's resourceVersion; `None` (encoded `-1`) continues at the latest state.
    pub resource_version: Option<u64>,
    pub start: Start,
}

/// The namespace token keys are relative to: `None` when they carry it (`ns/name`, lists of a
/// namespaced kind across namespaces), else the list's namespace (`""` for cluster-scoped kinds).
fn token_prefix(kind: Kind, filter: &Filter) -> Option<&str> {
    match filter.namespace.as_deref() {
        None if kind.namespaced() => None,
        namespace => Some(namespace.unwrap_or_default()),
    }
}

/// A token continuing after `last` at `resource_version` (`-1`: at the latest state).
pub fn encode_continue(resource_version: i64, last: &ObjectKey, prefix: Option<&str>) -> String {
    encode_start(
        resource_version,
        &Start {
            key: last.clone(),
            inclusive: false,
        },
        prefix,
    )
}

/// etcd3 `EncodeContinue`, fields in Go's order; an exclusive start ends in NUL.
fn encode_start(resource_version: i64, start: &Start, prefix: Option<&str>) -> String {
    let (ns, name) = &start.key;
    let mut key = if prefix.is_none() {
        format!("{ns}/{name}")
    } else {
        name.clone()
    };
    if !start.inclusive {
        key.push('\0');
    }
    let key = serde_json::to_string(&key).expect("a string serialises");
    let token = format!(r#"{{"v":"meta.k8s.io/v1","rv":{resource_version},"start":{key}}}"#);
    URL_SAFE_NO_PAD.encode(token)
}

/// Decodes a token as etcd3 `DecodeContinue` does, with its error texts.
pub fn decode_continue(token: &str, prefix: Option<&str>) -> Result<Continue, ApiError> {
    let invalid =
        |why: String| ApiError::BadRequest(format!("invalid continue token: continue key is not valid: {why}"));
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|e| invalid(e.to_string()))?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string()))?;
    if value["v"] != "meta.k8s.io/v1" {
        return Err(invalid(format!(
            "server does not recognize this encoded version {}",
            value["v"]
        )));
    }
    let rv = value["rv"].as_i64().unwrap_or(0);
    if rv == 0 {
        return Err(invalid(
            "incorrect encoded start resourceVersion (version meta.k8s.io/v1)".to_string(),
        ));
    }
    let start = value["start"].as_str().unwrap_or_default();
    if start.is_empty() {
        return Err(invalid("encoded start key empty (version meta.k8s.io/v1)".to_string()));
    }
    // etcd3 rejects keys that `path.Clean` would change (no `..` escapes from the prefix).
    let trimmed = start.strip_prefix('/').unwrap_or(start);
    if trimmed
        .split('/')
        .any(|part| part.is_empty() || part == "." || part == "..")
    {
        return Err(invalid(start.to_string()));
    }
    let (key, inclusive) = match trimmed.strip_suffix('\0') {
        Some(key) => (key, false),
        None => (trimmed, true),
    };
    let key = match (prefix, key.split_once('/')) {
        (Some(namespace), _) => (namespace.to_string(), key.to_string()),
        (None, Some((namespace, name))) => (namespace.to_string(), name.to_string()),
        (None, None) => (key.to_string(), String::new()),
    };
    let resource_version = u64::try_from(rv).ok();
    Ok(Continue {
        resource_version,
        start: Start { key, inclusive },
    })
}

/// One page of a list.
#[derive(Debug)]
pub struct Page {
    pub items: Vec<Arc<Stored>>,
    /// The last returned key when more objects follow it.
    pub more_after: Option<ObjectKey>,
    /// Objects after the page, when the request had no selectors.
    pub remaining: Option<u64>,
}

/// Takes up to `limit` matching objects from `objects` (in key order) after `start`. As etcd3's
/// `GetList`: there are more when any object, matching or not, follows the last returned one;
/// the remaining count is only given without selectors.
pub fn paginate(objects: &[Arc<Stored>], start: Option<&Start>, limit: Option<usize>, filter: &Filter) -> Page {
    let from = start.map_or(0, |s| {
        objects.partition_point(|o| if s.inclusive { o.key < s.key } else { o.key <= s.key })
    });
    let mut items = Vec::new();
    for (i, object) in objects.iter().enumerate().skip(from) {
        if limit.is_some_and(|limit| items.len() >= limit) {
            let rest = (objects.len() - i) as u64;
            let more_after = items.last().map(|o: &Arc<Stored>| o.key.clone());
            return Page {
                items,
                more_after,
                remaining: (!filter.has_selectors()).then_some(rest),
            };
        }
        if filter.matches(object) {
            items.push(object.clone());
        }
    }
    Page {
        items,
        more_after: None,
        remaining: None,
    }
}

/// The objects as they were at `at`, from the objects now and the events after `at` (oldest
/// first): the first event after `at` of each key tells its state then.
pub fn rewind(current: Vec<Arc<Stored>>, newer: &[Event], namespace: Option<&str>, at: u64) -> Vec<Arc<Stored>> {
    let mut then: BTreeMap<ObjectKey, Option<Arc<Stored>>> = BTreeMap::new();
    for event in newer.iter().filter(|e| e.kind_rv > at) {
        if namespace.is_some_and(|ns| event.object.key.0 != ns) {
            continue;
        }
        then.entry(event.object.key.clone())
            .or_insert_with(|| match event.event_type {
                EventType::Added => None,
                EventType::Modified | EventType::Deleted => event.previous.clone(),
            });
    }
    if then.is_empty() {
        return current;
    }
    let mut out = Vec::with_capacity(current.len() + then.len());
    let mut restored = then.into_iter().peekable();
    for object in current {
        while let Some((_, old)) = restored.next_if(|(key, _)| *key < object.key) {
            out.extend(old);
        }
        match restored.next_if(|(key, _)| *key == object.key) {
            Some((_, old)) => out.extend(old),
            None => out.push(object),
        }
    }
    out.extend(restored.filter_map(|(_, old)| old));
    out
}

/// The objects of `kind` (in `namespace`) at resourceVersion `at`, or `TooOld` when the kept
/// history no longer reaches back to it.
pub fn objects_at(store: &Store, kind: Kind, namespace: Option<&str>, at: u64) -> Result<Vec<Arc<Stored>>, WatchError> {
    let (mut newer, mut receiver) = store.watch_from(kind, at)?;
    let snapshot = store.snapshot(kind, namespace);
    // Every event up to the snapshot was sent before the snapshot's lock was taken.
    loop {
        match receiver.try_recv() {
            Ok(event) if event.kind_rv <= snapshot.resource_version => newer.push(event),
            Ok(_)
            | Err(
                tokio::sync::broadcast::error::TryRecvError::Empty
                | tokio::sync::broadcast::error::TryRecvError::Closed,
            ) => break,
            Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) => {
                return Err(WatchError::TooOld {
                    requested: at,
                    oldest: snapshot.resource_version,
                });
            }
        }
    }
    Ok(rewind(snapshot.objects, &newer, namespace, at))
}

/// Serves a list request (already validated).
pub(super) async fn list(
    store: &Store,
    kind: Kind,
    filter: &Filter,
    opts: &ListOptions,
    format: Format,
    include: IncludeObject,
) -> Result<Response<Body>, ApiError> {
    let prefix = token_prefix(kind, filter);
    let namespace = filter.namespace.as_deref();
    let version = Version::parse(opts.resource_version.as_deref())?;
    let (resource_version, objects, start) = if let Some(token) = &opts.continue_token {
        if !matches!(version, Version::Unset | Version::Any) {
            return Err(ApiError::BadRequest(
                "specifying resource version is not allowed when using continue".into(),
            ));
        }
        let next = decode_continue(token, prefix)?;
        match next.resource_version {
            Some(rv) => match objects_at(store, kind, namespace, rv) {
                Ok(objects) => (rv, objects, Some(next.start)),
                Err(WatchError::TooOld { .. }) => {
                    let token = encode_start(-1, &next.start, prefix);
                    return Err(ApiError::Expired {
                        message: CONTINUE_TOO_OLD.into(),
                        continue_token: Some(token),
                    });
                }
            },
            None => {
                let snapshot = store.snapshot(kind, namespace);
                (snapshot.resource_version, snapshot.objects, Some(next.start))
            }
        }
    } else {
        match (version, opts.resource_version_match.as_deref()) {
            (Version::At(rv), Some("Exact")) => {
                wait_for_version(store, rv).await?;
                let objects = objects_at(store, kind, namespace, rv).map_err(|_| ApiError::Expired {
                    message: LIST_TOO_OLD.into(),
                    continue_token: None,
                })?;
                (rv, objects, None)
            }
            (version, _) => {
                if let Version::At(rv) = version {
                    wait_for_version(store, rv).await?;
                }
                let snapshot = store.snapshot(kind, namespace);
                (snapshot.resource_version, snapshot.objects, None)
            }
        }
    };
    let page = paginate(&objects, start.as_ref(), opts.limit, filter);
    let continue_token = page
        .more_after
        .as_ref()
        .map(|last| encode_continue(resource_version as i64, last, prefix));
    let meta = TableMeta {
        resource_version,
        continue_token,
        remaining_item_count: page.remaining.filter(|_| page.more_after.is_some()),
    };
    let body = match format {
        Format::Json => list_body(
            &format!("{}List", kind.kind()),
            "v1",
            &meta,
            page.items.iter().map(|o| &o.json),
        ),
        Format::Metadata => list_body(
            "PartialObjectMetadataList",
            "meta.k8s.io/v1",
            &meta,
            page.items.iter().map(|o| &o.meta_json),
        ),
        Format::Table => table::table(kind, &page.items, &meta, now_ms(), include),
    };
    Ok(respond(StatusCode::OK, params::content_type(format, Shape::List), body))
}

/// `{"kind":..,"apiVersion":..,"metadata":{..},"items":[<item bytes>,...]}`.
fn list_body<'a>(
    kind: &str,
    api_version: &str,
    meta: &TableMeta,
    items: impl Iterator<Item = &'a bytes::Bytes> + Clone,
) -> Vec<u8> {
    let size: usize = items.clone().map(|i| i.len() + 1).sum();
    let mut out = Vec::with_capacity(size + 256);
    let mut metadata = json!({"resourceVersion": meta.resource_version.to_string()});
    if let Some(token) = &meta.continue_token {
        metadata["continue"] = json!(token);
    }
    if let Some(remaining) = meta.remaining_item_count {
        metadata["remainingItemCount"] = json!(remaining);
    }
    let head = json!({"kind": kind, "apiVersion": api_version, "metadata": metadata});
    let head = serde_json::to_vec(&head).expect("a Value serialises");
    out.extend_from_slice(&head[..head.len() - 1]);
    out.extend_from_slice(b",\"items\":[");
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(item);
    }
    out.extend_from_slice(b"]}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use shard::selector::LabelSelector;

    fn pod(store: &Store, ns: &str, name: &str, app: &str) -> u64 {
        let object = json!({"metadata": {"name": name, "namespace": ns, "labels": {"app": app}}, "spec": {"containers": [{"name": "c"}]}});
        store.upsert(Kind::Pods, object)
    }

    fn names(items: &[Arc<Stored>]) -> Vec<String> {
        items.iter().map(|o| format!("{}/{}", o.key.0, o.key.1)).collect()
    }

    #[test]
    fn continue_tokens_round_trip() {
        let key = ("default".to_string(), "web-0".to_string());
        let token = encode_continue(42, &key, None);
        let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(&token).unwrap()).unwrap();
        assert_eq!(raw, r#"{"v":"meta.k8s.io/v1","rv":42,"start":"default/web-0\u0000"}"#);
        let decoded = decode_continue(&token, None).unwrap();
        assert_eq!(
            decoded,
            Continue {
                resource_version: Some(42),
                start: Start {
                    key: key.clone(),
                    inclusive: false
                }
            }
        );
        let cluster = decode_continue(&encode_continue(-1, &(String::new(), "node-1".into()), Some("")), Some("")).unwrap();
        assert_eq!(cluster.resource_version, None);
        assert_eq!(cluster.start.key, (String::new(), "node-1".to_string()));
        // Within one namespace the key is the name alone, relative to that namespace.
        let in_ns = encode_continue(5, &key, Some("default"));
        let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(&in_ns).unwrap()).unwrap();
        assert_eq!(raw, r#"{"v":"meta.k8s.io/v1","rv":5,"start":"web-0\u0000"}"#);
        assert_eq!(decode_continue(&in_ns, Some("default")).unwrap().start.key, key);
        for bad in [
            "!!",
            "e30",
            &URL_SAFE_NO_PAD.encode(r#"{"v":"meta.k8s.io/v1","rv":0,"start":"a"}"#),
            &URL_SAFE_NO_PAD.encode(r#"{"v":"meta.k8s.io/v1","rv":3,"start":""}"#),
            &URL_SAFE_NO_PAD.encode(r#"{"v":"meta.k8s.io/v1","rv":3,"start":"../x"}"#),
            &URL_SAFE_NO_PAD.encode(r#"{"v":"v9","rv":3,"start":"a"}"#),
        ] {
            let Err(ApiError::BadRequest(message)) = decode_continue(bad, None) else {
                panic!("{bad} decoded")
            };
            assert!(
                message.starts_with("invalid continue token: continue key is not valid"),
                "{message}"
            );
        }
    }

    #[test]
    fn pages_follow_etcd() {
        let store = Store::new(100);
        for (ns, name, app) in [
            ("a", "p1", "x"),
            ("a", "p2", "y"),
            ("b", "p1", "x"),
            ("b", "p2", "x"),
            ("c", "p1", "y"),
        ] {
            pod(&store, ns, name, app);
        }
        let objects = store.snapshot(Kind::Pods, None).objects;
        let all = Filter::default();
        let first = paginate(&objects, None, Some(2), &all);
        assert_eq!(names(&first.items), ["a/p1", "a/p2"]);
        assert_eq!(first.more_after, Some(("a".into(), "p2".into())));
        assert_eq!(first.remaining, Some(3));
        let start = Start {
            key: first.more_after.unwrap(),
            inclusive: false,
        };
        let second = paginate(&objects, Some(&start), Some(2), &all);
        assert_eq!(names(&second.items), ["b/p1", "b/p2"]);
        assert_eq!(second.remaining, Some(1));
        let start = Start {
            key: second.more_after.unwrap(),
            inclusive: false,
        };
        let last = paginate(&objects, Some(&start), Some(2), &all);
        assert_eq!(
            (names(&last.items), last.more_after, last.remaining),
            (vec!["c/p1".to_string()], None, None)
        );

        // With a selector: no remaining count, and "more" even if nothing after matches.
        let x = Filter {
            labels: LabelSelector::parse("app=x").unwrap(),
            ..Filter::default()
        };
        let page = paginate(&objects, None, Some(3), &x);
        assert_eq!(names(&page.items), ["a/p1", "b/p1", "b/p2"]);
        assert_eq!(
            (page.more_after, page.remaining),
            (Some(("b".into(), "p2".into())), None)
        );
        let start = Start {
            key: ("b".into(), "p2".into()),
            inclusive: false,
        };
        assert!(paginate(&objects, Some(&start), Some(3), &x).items.is_empty());
        // Exactly `limit` objects: no continue.
        assert!(paginate(&objects, None, Some(5), &all).more_after.is_none());
        // Inclusive start (a token without the trailing NUL).
        let start = Start {
            key: ("b".into(), String::new()),
            inclusive: true,
        };
        assert_eq!(
            names(&paginate(&objects, Some(&start), None, &all).items),
            ["b/p1", "b/p2", "c/p1"]
        );
    }

    #[test]
    fn rewind_restores_an_old_state() {
        let store = Store::new(100);
        pod(&store, "a", "keep", "x");
        pod(&store, "a", "change", "x");
        let at = pod(&store, "a", "gone", "x");
        pod(&store, "a", "change", "y");
        store.delete(Kind::Pods, "a", "gone");
        pod(&store, "a", "new", "x");
        pod(&store, "b", "other", "x");
        let then = objects_at(&store, Kind::Pods, None, at).unwrap();
        assert_eq!(names(&then), ["a/change", "a/gone", "a/keep"]);
        assert_eq!(then[0].labels["app"], "x");
        let in_a = objects_at(&store, Kind::Pods, Some("a"), at + 4).unwrap();
        assert_eq!(names(&in_a), ["a/change", "a/keep", "a/new"]);
        let now = objects_at(&store, Kind::Pods, None, store.resource_version()).unwrap();
        assert_eq!(names(&now), ["a/change", "a/keep", "a/new", "b/other"]);
    }

    #[test]
    fn rewind_fails_past_the_history() {
        let store = Store::new(2);
        let first = pod(&store, "a", "p", "x");
        for app in ["y", "z", "w"] {
            pod(&store, "a", "p", app);
        }
        assert!(matches!(
            objects_at(&store, Kind::Pods, None, first),
            Err(WatchError::TooOld { .. })
        ));
    }

    #[test]
    fn list_body_concatenates_items() {
        let items = [
            bytes::Bytes::from_static(b"{\"a\":1}"),
            bytes::Bytes::from_static(b"{\"b\":2}"),
        ];
        let meta = TableMeta {
            resource_version: 7,
            continue_token: Some("t".into()),
            remaining_item_count: Some(4),
        };
        let body: serde_json::Value = serde_json::from_slice(&list_body("PodList", "v1", &meta, items.iter())).unwrap();
        let want = json!({"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "7", "continue": "t", "remainingItemCount": 4}, "items": [{"a": 1}, {"b": 2}]});
        assert_eq!(body, want);
        let empty: serde_json::Value =
            serde_json::from_slice(&list_body("NodeList", "v1", &TableMeta::default(), [].iter())).unwrap();
        assert_eq!(empty["items"], json!([]));
    }
}
