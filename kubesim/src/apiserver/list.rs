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
use super::store::{Kind, ObjectKey, Store, Stored};
use super::table::{self, IncludeObject, TableMeta};
use crate::http::{Body, respond};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{Response, StatusCode};
use serde_json::json;
use std::ops::{Bound, ControlFlow};
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
#[derive(Debug, Default)]
pub struct Page {
    pub items: Vec<Arc<Stored>>,
    /// The last returned key when more objects follow it.
    pub more_after: Option<ObjectKey>,
    /// Objects after the page, when the request had no selectors.
    pub remaining: Option<u64>,
}

/// Builds a page from objects visited in key order, as etcd3's `GetList`: up to `limit`
/// matching objects; there are more when any object, matching or not, follows the last
/// returned one; the remaining count is only given without selectors.
pub struct Pager<'a> {
    filter: &'a Filter,
    limit: Option<usize>,
    page: Page,
}

impl<'a> Pager<'a> {
    pub fn new(filter: &'a Filter, limit: Option<usize>) -> Self {
        Pager {
            filter,
            limit,
            page: Page::default(),
        }
    }

    pub fn visit(&mut self, object: &Arc<Stored>) -> ControlFlow<()> {
        let page = &mut self.page;
        if let Some(remaining) = &mut page.remaining {
            *remaining += 1;
        } else if self.limit.is_some_and(|limit| page.items.len() >= limit) {
            page.more_after = page.items.last().map(|o| o.key.clone());
            if self.filter.has_selectors() {
                return ControlFlow::Break(());
            }
            page.remaining = Some(1);
        } else if self.filter.matches(object) {
            page.items.push(object.clone());
        }
        ControlFlow::Continue(())
    }

    pub fn finish(self) -> Page {
        self.page
    }
}

/// Where a page of a list is read: the store's state at a resourceVersion (`None`: now),
/// after a key.
struct Read {
    at: Option<u64>,
    start: Option<Start>,
}

/// Decides the read from `continue`, `resourceVersion` and `resourceVersionMatch`.
async fn plan_read(store: &Store, opts: &ListOptions, prefix: Option<&str>) -> Result<Read, ApiError> {
    let version = Version::parse(opts.resource_version.as_deref())?;
    if let Some(token) = &opts.continue_token {
        if !matches!(version, Version::Unset | Version::Any) {
            let message = "specifying resource version is not allowed when using continue";
            return Err(ApiError::BadRequest(message.into()));
        }
        let next = decode_continue(token, prefix)?;
        return Ok(Read {
            at: next.resource_version,
            start: Some(next.start),
        });
    }
    if let Version::At(rv) = version {
        wait_for_version(store, rv).await?;
        if opts.resource_version_match.as_deref() == Some("Exact") {
            return Ok(Read {
                at: Some(rv),
                start: None,
            });
        }
    }
    Ok(Read { at: None, start: None })
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
    let read = plan_read(store, opts, prefix).await?;
    let from = match &read.start {
        None => Bound::Unbounded,
        Some(Start { key, inclusive: true }) => Bound::Included(key),
        Some(Start { key, inclusive: false }) => Bound::Excluded(key),
    };
    let mut pager = Pager::new(filter, opts.limit);
    let scanned = store.scan(kind, filter.namespace.as_deref(), read.at, from, |o| pager.visit(o));
    let resource_version = scanned.map_err(|_| match &read.start {
        // etcd after compaction: continue inconsistently at the latest state.
        Some(start) => {
            let token = encode_start(-1, start, prefix);
            ApiError::Expired {
                message: CONTINUE_TOO_OLD.into(),
                continue_token: Some(token),
            }
        }
        None => ApiError::Expired {
            message: LIST_TOO_OLD.into(),
            continue_token: None,
        },
    })?;
    let page = pager.finish();
    let rv = i64::try_from(resource_version).unwrap_or(i64::MAX);
    let continue_token = page.more_after.as_ref().map(|last| encode_continue(rv, last, prefix));
    let meta = TableMeta {
        resource_version,
        continue_token,
        remaining_item_count: page.remaining,
    };
    let body = match format {
        Format::Json => {
            let kind = format!("{}List", kind.kind());
            list_body(&kind, "v1", &meta, page.items.iter().map(|o| &o.json))
        }
        Format::Metadata => {
            let items = page.items.iter().map(|o| &o.meta_json);
            list_body("PartialObjectMetadataList", "meta.k8s.io/v1", &meta, items)
        }
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
    use apimachinery::selector::LabelSelector;

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
        let cluster = decode_continue(
            &encode_continue(-1, &(String::new(), "node-1".into()), Some("")),
            Some(""),
        )
        .unwrap();
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

    /// One page of `kind` objects read through `Store::scan`, as `list` does.
    fn page(store: &Store, at: Option<u64>, from: Bound<&ObjectKey>, limit: Option<usize>, filter: &Filter) -> Page {
        let mut pager = Pager::new(filter, limit);
        store
            .scan(Kind::Pods, filter.namespace.as_deref(), at, from, |o| pager.visit(o))
            .unwrap();
        pager.finish()
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
        let all = Filter::default();
        let first = page(&store, None, Bound::Unbounded, Some(2), &all);
        assert_eq!(names(&first.items), ["a/p1", "a/p2"]);
        assert_eq!(first.more_after, Some(("a".into(), "p2".into())));
        assert_eq!(first.remaining, Some(3));
        let second = page(
            &store,
            None,
            Bound::Excluded(first.more_after.as_ref().unwrap()),
            Some(2),
            &all,
        );
        assert_eq!(names(&second.items), ["b/p1", "b/p2"]);
        assert_eq!(second.remaining, Some(1));
        let last = page(
            &store,
            None,
            Bound::Excluded(second.more_after.as_ref().unwrap()),
            Some(2),
            &all,
        );
        assert_eq!(
            (names(&last.items), last.more_after, last.remaining),
            (vec!["c/p1".to_string()], None, None)
        );

        // With a selector: no remaining count, and "more" even if nothing after matches.
        let x = Filter {
            labels: LabelSelector::parse("app=x").unwrap(),
            ..Filter::default()
        };
        let three = page(&store, None, Bound::Unbounded, Some(3), &x);
        assert_eq!(names(&three.items), ["a/p1", "b/p1", "b/p2"]);
        assert_eq!(
            (three.more_after.clone(), three.remaining),
            (Some(("b".into(), "p2".into())), None)
        );
        assert!(
            page(&store, None, Bound::Excluded(&three.more_after.unwrap()), Some(3), &x)
                .items
                .is_empty()
        );
        // Exactly `limit` objects: no continue.
        assert!(page(&store, None, Bound::Unbounded, Some(5), &all).more_after.is_none());
        // Inclusive start (a token without the trailing NUL), and one namespace.
        let b = ("b".to_string(), String::new());
        assert_eq!(
            names(&page(&store, None, Bound::Included(&b), None, &all).items),
            ["b/p1", "b/p2", "c/p1"]
        );
        let in_b = Filter {
            namespace: Some("b".into()),
            ..Filter::default()
        };
        assert_eq!(
            names(&page(&store, None, Bound::Unbounded, None, &in_b).items),
            ["b/p1", "b/p2"]
        );
        let after_a = ("a".to_string(), "p9".to_string());
        assert_eq!(
            names(&page(&store, None, Bound::Excluded(&after_a), Some(1), &in_b).items),
            ["b/p1"]
        );
    }

    #[test]
    fn scan_rebuilds_an_old_state() {
        let store = Store::new(100);
        pod(&store, "a", "keep", "x");
        pod(&store, "a", "change", "x");
        let at = pod(&store, "a", "gone", "x");
        pod(&store, "a", "change", "y");
        store.delete(Kind::Pods, "a", "gone");
        pod(&store, "a", "new", "x");
        pod(&store, "b", "other", "x");
        let all = Filter::default();
        let then = page(&store, Some(at), Bound::Unbounded, None, &all);
        assert_eq!(names(&then.items), ["a/change", "a/gone", "a/keep"]);
        assert_eq!(then.items[0].labels["app"], "x");
        let in_a = Filter {
            namespace: Some("a".into()),
            ..Filter::default()
        };
        let later = page(&store, Some(at + 4), Bound::Unbounded, None, &in_a);
        assert_eq!(names(&later.items), ["a/change", "a/keep", "a/new"]);
        let from_change = ("a".to_string(), "change".to_string());
        let rest = page(&store, Some(at), Bound::Excluded(&from_change), Some(1), &all);
        assert_eq!(
            (names(&rest.items), rest.remaining),
            (vec!["a/gone".to_string()], Some(1))
        );
        let now = page(&store, None, Bound::Unbounded, None, &all);
        assert_eq!(names(&now.items), ["a/change", "a/keep", "a/new", "b/other"]);
    }

    #[test]
    fn scan_fails_past_the_history() {
        let store = Store::new(2);
        let first = pod(&store, "a", "p", "x");
        for app in ["y", "z", "w"] {
            pod(&store, "a", "p", app);
        }
        let result = store.scan(Kind::Pods, None, Some(first), Bound::Unbounded, |_| {
            ControlFlow::Continue(())
        });
        assert!(matches!(result, Err(super::super::store::WatchError::TooOld { .. })));
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
