//! Query parameters of Metrics API reads: `labelSelector`, `fieldSelector` (only
//! `metadata.name` and `metadata.namespace`), `watch` (refused), `includeObject`; `limit`,
//! `continue`, `resourceVersion`, `timeoutSeconds` are accepted and ignored, as metrics-server
//! ignores them.

use crate::api::error::{ApiError, MetricsResource};
use shard::selector::{FieldSelector, LabelSelector};

/// Longest query string accepted.
pub const MAX_QUERY_LEN: usize = 16 * 1024;

#[derive(Debug, Default)]
pub struct ListParams {
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    pub include_object: Option<String>,
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
                "fieldSelector" => params.fields = field_selector(&value)?,
                "watch" if matches!(value.as_str(), "true" | "1") => {
                    return Err(ApiError::watch_not_supported(resource));
                }
                "includeObject" => params.include_object = Some(value),
                _ => {}
            }
        }
        Ok(params)
    }
}

fn field_selector(value: &str) -> Result<FieldSelector, ApiError> {
    let fields = FieldSelector::parse(value).map_err(|e| ApiError::BadRequest { message: e.to_string() })?;
    if let Some(bad) = fields
        .requirements()
        .iter()
        .find(|r| r.field != "metadata.name" && r.field != "metadata.namespace")
    {
        return Err(ApiError::unknown_field_selector(&bad.field));
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
            ListParams::parse("fieldSelector=spec.nodeName%3Dn1", MetricsResource::Pods),
            Err(ApiError::BadRequest { .. })
        ));
        assert!(matches!(
            ListParams::parse("labelSelector=a+in+%28", MetricsResource::Pods),
            Err(ApiError::BadRequest { .. })
        ));
        assert!(matches!(
            ListParams::parse("watch=true", MetricsResource::Nodes),
            Err(ApiError::MethodNotSupported { .. })
        ));
        assert!(ListParams::parse("watch=false", MetricsResource::Nodes).is_ok());
        assert!(matches!(
            ListParams::parse(&"a".repeat(MAX_QUERY_LEN + 1), MetricsResource::Nodes),
            Err(ApiError::RequestUriTooLong { .. })
        ));
    }
}
