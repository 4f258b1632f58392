//! Query parameters of Metrics API reads: `labelSelector`, `fieldSelector` (`metadata.name`
//! and `metadata.namespace` as metrics-server, and `spec.nodeName` for pods), `limit` and
//! `continue` (pagination, see [`super::page`]; metrics-server ignores them), `watch` (refused),
//! `includeObject`; `resourceVersion`, `resourceVersionMatch` and `timeoutSeconds` are accepted
//! and ignored, as metrics-server ignores them.

use super::page::ContinueToken;
use crate::api::error::{ApiError, MetricsResource};
use apimachinery::selector::{FieldOp, FieldSelector, LabelSelector};

/// Longest query string accepted.
pub const MAX_QUERY_LEN: usize = 16 * 1024;

/// The pod field selector for the node a pod runs on (known from the scrape that reported it).
pub const NODE_NAME_FIELD: &str = "spec.nodeName";

#[derive(Debug, Default)]
pub struct ListParams {
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    pub include_object: Option<String>,
    /// `limit`: at most this many items per page; `None` (absent or 0) for the whole list.
    pub limit: Option<usize>,
    /// `continue`: where the previous page ended.
    pub continue_token: Option<ContinueToken>,
}

fn decode(value: &str) -> String {
    let plus_as_space = value.replace('+', " ");
    percent_decode(&plus_as_space)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl ListParams {
    /// Parses a raw query string for `resource`.
    pub fn parse(query: &str, resource: MetricsResource) -> Result<ListParams, ApiError> {
        if query.len() > MAX_QUERY_LEN {
            return Err(ApiError::RequestUriTooLong {
                message: format!("query string longer than {MAX_QUERY_LEN} bytes"),
            });
        }
        let mut params = ListParams::default();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = decode(value);
            match key {
                "labelSelector" => {
                    params.labels =
                        LabelSelector::parse(&value).map_err(|e| ApiError::BadRequest { message: e.to_string() })?
                }
                "fieldSelector" => params.fields = field_selector(&value, resource)?,
                "watch" if matches!(value.as_str(), "true" | "1") => {
                    return Err(ApiError::watch_not_supported(resource));
                }
                "includeObject" => params.include_object = Some(value),
                "limit" => params.limit = limit(&value)?,
                "continue" if !value.is_empty() => {
                    params.continue_token = Some(ContinueToken::decode(&value, resource)?)
                }
                _ => {}
            }
        }
        Ok(params)
    }

    /// The nodes an `spec.nodeName=NODE` (or `==`) requirement restricts a pod list to: `None`
    /// without one; two different names select nothing (`Some` of an empty list).
    pub fn node_names(&self) -> Option<Vec<&str>> {
        let mut names: Vec<&str> = self
            .fields
            .requirements()
            .iter()
            .filter(|r| r.field == NODE_NAME_FIELD && r.op == FieldOp::Eq)
            .map(|r| r.value.as_str())
            .collect();
        if names.is_empty() {
            return None;
        }
        names.dedup();
        Some(if names.len() == 1 { names } else { Vec::new() })
    }

    /// The key after which this page starts, if it continues a list.
    pub fn after(&self) -> Option<(&str, &str)> {
        self.continue_token.as_ref().map(ContinueToken::after)
    }
}

/// `limit`: a non-negative integer; 0 means no limit, as in the apiserver.
fn limit(value: &str) -> Result<Option<usize>, ApiError> {
    let n: i64 = value.parse().map_err(|_| ApiError::BadRequest {
        message: format!("invalid limit {}: not an integer", crate::api::error::go_quote(value)),
    })?;
    Ok(usize::try_from(n).ok().filter(|&n| n > 0))
}

fn field_selector(value: &str, resource: MetricsResource) -> Result<FieldSelector, ApiError> {
    let fields = FieldSelector::parse(value).map_err(|e| ApiError::BadRequest { message: e.to_string() })?;
    let known = |field: &str| match resource {
        MetricsResource::Nodes => matches!(field, "metadata.name" | "metadata.namespace"),
        MetricsResource::Pods => matches!(field, "metadata.name" | "metadata.namespace" | NODE_NAME_FIELD),
    };
    if let Some(bad) = fields.requirements().iter().find(|r| !known(&r.field)) {
        return Err(ApiError::unknown_field_selector(&bad.field, resource));
    }
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_decode_and_validate() {
        let p = ListParams::parse(
            "labelSelector=app%3Dweb%2Ctier+in+%28a%2Cb%29&fieldSelector=metadata.name%3Dx&limit=500",
            MetricsResource::Pods,
        )
        .unwrap();
        assert_eq!(p.labels.to_string(), "app=web,tier in (a,b)");
        assert_eq!(p.fields.requirements().len(), 1);
        assert!(matches!(
            ListParams::parse("fieldSelector=spec.nodeName%3Dn1", MetricsResource::Nodes),
            Err(ApiError::BadRequest { .. })
        ));
        assert!(matches!(
            ListParams::parse("fieldSelector=status.phase%3DRunning", MetricsResource::Pods),
            Err(ApiError::BadRequest { .. })
        ));
        let on_node = ListParams::parse("fieldSelector=spec.nodeName%3Dn1", MetricsResource::Pods).unwrap();
        assert_eq!(on_node.node_names(), Some(vec!["n1"]));
        let two = ListParams::parse(
            "fieldSelector=spec.nodeName%3Dn1,spec.nodeName%3Dn2",
            MetricsResource::Pods,
        );
        assert_eq!(two.unwrap().node_names(), Some(vec![]));
        let not = ListParams::parse("fieldSelector=spec.nodeName!%3Dn1", MetricsResource::Pods).unwrap();
        assert_eq!(not.node_names(), None);
        assert!(matches!(
            ListParams::parse("labelSelector=a+in+%28", MetricsResource::Pods),
            Err(ApiError::BadRequest { .. })
        ));
        assert!(matches!(
            ListParams::parse("watch=true", MetricsResource::Nodes),
            Err(ApiError::MethodNotSupported { .. })
        ));
        assert!(ListParams::parse("watch=false", MetricsResource::Nodes).is_ok());
        assert_eq!(
            ListParams::parse("limit=500", MetricsResource::Pods).unwrap().limit,
            Some(500)
        );
        assert_eq!(ListParams::parse("limit=0", MetricsResource::Pods).unwrap().limit, None);
        assert_eq!(
            ListParams::parse("limit=-3", MetricsResource::Pods).unwrap().limit,
            None
        );
        assert!(ListParams::parse("limit=x", MetricsResource::Pods).is_err());
        assert!(
            ListParams::parse("continue=", MetricsResource::Pods)
                .unwrap()
                .continue_token
                .is_none()
        );
        assert!(ListParams::parse("continue=bogus", MetricsResource::Pods).is_err());
        assert!(matches!(
            ListParams::parse(&"a".repeat(MAX_QUERY_LEN + 1), MetricsResource::Nodes),
            Err(ApiError::RequestUriTooLong { .. })
        ));
    }
}
