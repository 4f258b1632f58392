//! Pagination of Metrics API lists (`limit` / `continue`; metrics-server ignores both and always
//! returns the whole list).
//!
//! A continue token names a position in the list's order, not a snapshot: the key of the last
//! item returned (`namespace/name` for pods, the name for nodes) and when the first page was
//! asked for. Any replica of the set continues from it by answering the items after that key,
//! whatever its shard map or epoch, because every replica sorts the same way and the owners'
//! rows are the same. Like the apiserver's tokens after an etcd compaction, a token expires: one
//! older than `--continue-token-lifetime` gets `410 Gone`, reason `Expired`, with a fresh token at
//! the same position in the Status' list metadata (the apiserver's "inconsistent continue").
//!
//! The token is base64url (no padding) of a small JSON object, `{"v":1,"list":"pods",
//! "issued":<Unix ms>,"ns":"...","name":"..."}`; it is opaque to clients, who must send it back
//! with the same query.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::api::error::{ApiError, MetricsResource};

/// The format version written into tokens.
const TOKEN_VERSION: u32 = 1;
/// Longest token accepted, in bytes (two Kubernetes names and a little JSON, encoded).
pub const MAX_TOKEN_LEN: usize = 2048;

/// A decoded continue token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContinueToken {
    v: u32,
    list: String,
    /// When the first page of the list was asked for (Unix ms); pages after it keep it.
    pub issued: i64,
    /// The last item returned: its namespace (empty for nodes) and name.
    pub ns: String,
    pub name: String,
}

impl ContinueToken {
    /// A token for the position after `(ns, name)` in a `resource` list first asked for at
    /// `issued` (Unix ms).
    pub fn new(resource: MetricsResource, issued: i64, ns: &str, name: &str) -> Self {
        ContinueToken {
            v: TOKEN_VERSION,
            list: resource.as_str().to_string(),
            issued,
            ns: ns.to_string(),
            name: name.to_string(),
        }
    }

    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).expect("a token serialises"))
    }

    /// Parses a token sent back for a `resource` list; a 400 for anything we did not write.
    pub fn decode(text: &str, resource: MetricsResource) -> Result<Self, ApiError> {
        let invalid = |why: &str| ApiError::BadRequest {
            message: format!("invalid continue token: {why}"),
        };
        if text.len() > MAX_TOKEN_LEN {
            return Err(invalid("too long"));
        }
        let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| invalid("not base64url"))?;
        let token: ContinueToken = serde_json::from_slice(&bytes).map_err(|_| invalid("not a continue token"))?;
        if token.v != TOKEN_VERSION {
            return Err(invalid("unknown version"));
        }
        if token.list != resource.as_str() {
            return Err(invalid("issued for another resource"));
        }
        Ok(token)
    }

    /// The key of the last item returned, in list order.
    pub fn after(&self) -> (&str, &str) {
        (&self.ns, &self.name)
    }

    /// `410 Expired` if the token is older than `lifetime_ms` at `now_ms`, carrying a fresh
    /// token at the same position.
    pub fn check_fresh(&self, now_ms: i64, lifetime_ms: i64) -> Result<(), ApiError> {
        if now_ms.saturating_sub(self.issued) <= lifetime_ms {
            return Ok(());
        }
        let fresh = ContinueToken {
            issued: now_ms,
            ..self.clone()
        };
        Err(ApiError::ContinueExpired {
            continue_token: fresh.encode(),
        })
    }
}

/// A list cut at `limit`: the items, and the key of the last one when more follow.
pub struct Page<T> {
    pub items: Vec<T>,
    /// `(namespace, name)` of the last item when the list goes on.
    pub next: Option<(String, String)>,
}

/// The first `limit` of `sorted` (all of them without a limit); `key` gives an item's
/// `(namespace, name)`.
pub fn cut<T>(mut sorted: Vec<T>, limit: Option<usize>, key: impl Fn(&T) -> (&str, &str)) -> Page<T> {
    let Some(limit) = limit.filter(|&l| sorted.len() > l) else {
        return Page {
            items: sorted,
            next: None,
        };
    };
    sorted.truncate(limit);
    let next = sorted.last().map(|t| {
        let (ns, name) = key(t);
        (ns.to_string(), name.to_string())
    });
    Page { items: sorted, next }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_reject_what_we_did_not_write() {
        let token = ContinueToken::new(MetricsResource::Pods, 1_700_000_000_000, "ns", "web-1");
        let text = token.encode();
        assert!(
            text.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(ContinueToken::decode(&text, MetricsResource::Pods).unwrap(), token);
        let wrong_list = ContinueToken::decode(&text, MetricsResource::Nodes).unwrap_err();
        assert_eq!(wrong_list.status_code(), 400);
        for bad in ["", "!!!", "e30", &"a".repeat(MAX_TOKEN_LEN + 1)] {
            let e = ContinueToken::decode(bad, MetricsResource::Pods).unwrap_err();
            assert!(e.to_string().starts_with("invalid continue token: "), "{bad}: {e}");
        }
    }

    #[test]
    fn an_old_token_expires_with_a_fresh_one_at_the_same_place() {
        let token = ContinueToken::new(MetricsResource::Nodes, 1_000, "", "node-7");
        assert!(token.check_fresh(1_000 + 60_000, 60_000).is_ok());
        let e = token.check_fresh(1_000 + 60_001, 60_000).unwrap_err();
        assert_eq!((e.status_code(), e.reason()), (410, "Expired"));
        let ApiError::ContinueExpired { continue_token } = e else {
            panic!("not expired")
        };
        let fresh = ContinueToken::decode(&continue_token, MetricsResource::Nodes).unwrap();
        assert_eq!((fresh.after(), fresh.issued), (("", "node-7"), 61_001));
    }

    #[test]
    fn cut_keeps_the_first_items_and_names_the_last() {
        let rows = vec![("a", "1"), ("a", "2"), ("b", "1")];
        let page = cut(rows.clone(), Some(2), |r| *r);
        assert_eq!(page.items, [("a", "1"), ("a", "2")]);
        assert_eq!(page.next, Some(("a".into(), "2".into())));
        for limit in [None, Some(3), Some(10)] {
            let page = cut(rows.clone(), limit, |r| *r);
            assert_eq!((page.items.len(), page.next), (3, None), "{limit:?}");
        }
    }
}
