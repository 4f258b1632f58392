//! GET of the stored kinds, as the real kube-apiserver answers it: one object (`get`), a
//! collection (`list`, in `list.rs`) or a change stream (`watch`, in [`super::watch`]).
//!
//! The router (`server.rs`) resolves the path to a [`ResourceRequest`] and calls [`handle`].
//! Query decoding and Accept negotiation live in [`super::params`]; every failure is an
//! [`ApiError`], turned into a Kubernetes `Status` here and nowhere else.

use super::params::{self, Format, ListOptions, Query, Shape, Version};
use super::status::status_body;
use super::store::{Kind, Store, Stored};
use super::table::{self, IncludeObject, TableMeta};
use crate::http::{Body, Request, json_response, respond};
use apimachinery::selector::{FieldSelector, LabelSelector};
use http::{Method, Response, StatusCode, header};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// How long a request for a resourceVersion newer than the store's waits for it (the
/// apiserver's watch cache waits 3 s before `Too large resource version`).
pub const RESOURCE_VERSION_WAIT: Duration = Duration::from_secs(3);

/// What the router resolved from the path: the kind, the namespace segment (if any) and the
/// object name (`None` for the collection).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceRequest {
    pub kind: Kind,
    pub namespace: Option<String>,
    pub name: Option<String>,
}

/// Serves one request on a resource path. Only GET is served; other methods get 405.
pub async fn handle(store: Arc<Store>, route: ResourceRequest, req: Request) -> Response<Body> {
    let query = Query::parse(req.uri().query());
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let method = req.method().clone();
    drop(req);
    serve(store, route, &method, &query, accept.as_deref())
        .await
        .unwrap_or_else(|e| e.into_response())
}

async fn serve(
    store: Arc<Store>,
    route: ResourceRequest,
    method: &Method,
    query: &Query,
    accept: Option<&str>,
) -> Result<Response<Body>, ApiError> {
    let kind = route.kind;
    if method != Method::GET {
        let verb = match *method {
            Method::POST => "create",
            Method::PUT => "update",
            Method::PATCH => "patch",
            Method::DELETE if route.name.is_none() => "deletecollection",
            Method::DELETE => "delete",
            _ => method.as_str(),
        };
        return Err(ApiError::MethodNotAllowed {
            kind,
            verb: verb.to_ascii_lowercase(),
        });
    }
    let namespace = if kind.namespaced() { route.namespace } else { None };
    if let Some(name) = route.name {
        if query
            .get("watch")
            .is_some_and(|w| w != "0" && !w.eq_ignore_ascii_case("false"))
        {
            return Err(ApiError::MethodNotAllowed {
                kind,
                verb: "watch".to_string(),
            });
        }
        return get(&store, kind, namespace.as_deref(), &name, query, accept).await;
    }
    let opts = ListOptions::parse(query, kind)?;
    opts.validate()?;
    let filter = Filter {
        labels: opts.labels.clone(),
        fields: opts.fields.clone(),
        namespace,
    };
    let format = params::negotiate(accept, if opts.watch { Shape::Watch } else { Shape::List })?;
    // `includeObject` is a Table option: only checked when a Table is asked for.
    let include = match format {
        Format::Table => params::include_object(query)?,
        Format::Json | Format::Metadata => IncludeObject::default(),
    };
    if opts.watch {
        super::watch::watch(store, kind, filter, &opts, format, include).await
    } else {
        super::list::list(&store, kind, &filter, &opts, format, include).await
    }
}

async fn get(
    store: &Store,
    kind: Kind,
    namespace: Option<&str>,
    name: &str,
    query: &Query,
    accept: Option<&str>,
) -> Result<Response<Body>, ApiError> {
    let format = params::negotiate(accept, Shape::Object)?;
    if let Version::At(rv) = Version::parse(query.get("resourceVersion"))? {
        wait_for_version(store, rv).await?;
    }
    let Some(stored) = store.get(kind, namespace.unwrap_or_default(), name) else {
        return Err(ApiError::NotFound {
            kind,
            name: name.to_string(),
        });
    };
    let content_type = params::content_type(format, Shape::Object);
    let body = match format {
        Format::Json => stored.json.clone(),
        Format::Metadata => stored.meta_json.clone(),
        Format::Table => {
            let meta = TableMeta {
                resource_version: stored.resource_version,
                ..TableMeta::default()
            };
            let include = params::include_object(query)?;
            table::table(kind, &[stored], &meta, now_ms(), include).into()
        }
    };
    Ok(respond(StatusCode::OK, content_type, body))
}

/// Waits until the store has reached `rv`, at most [`RESOURCE_VERSION_WAIT`].
pub(super) async fn wait_for_version(store: &Store, rv: u64) -> Result<(), ApiError> {
    let deadline = tokio::time::Instant::now() + RESOURCE_VERSION_WAIT;
    loop {
        let current = store.resource_version();
        if current >= rv {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ApiError::TooLargeResourceVersion { requested: rv, current });
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Wall-clock now in Unix ms, for Age columns.
pub(super) fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// Which objects a list or watch selects.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    /// Only this namespace (namespaced kinds under `/namespaces/{ns}/`).
    pub namespace: Option<String>,
}

impl Filter {
    /// Whether the selectors match (the namespace is checked by [`Filter::in_namespace`]).
    pub fn matches(&self, stored: &Stored) -> bool {
        self.labels.matches(&stored.labels) && self.fields.matches(|f| stored.field(f))
    }

    pub fn in_namespace(&self, stored: &Stored) -> bool {
        self.namespace.as_ref().is_none_or(|ns| *ns == stored.key.0)
    }

    /// Whether the request has label or field selectors (the apiserver's non-empty predicate).
    pub fn has_selectors(&self) -> bool {
        !self.labels.is_empty() || !self.fields.is_empty()
    }
}

/// One field validation error, as apimachinery `field.Error` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: &'static str,
    /// `FieldValueForbidden` or `FieldValueNotSupported`.
    pub cause: &'static str,
    /// The text after `<field>: `, e.g. `Forbidden: ...`.
    pub body: String,
}

impl FieldError {
    pub fn forbidden(field: &'static str, detail: &str) -> FieldError {
        FieldError {
            field,
            cause: "FieldValueForbidden",
            body: format!("Forbidden: {detail}"),
        }
    }

    pub fn not_supported(field: &'static str, value: &str, supported: &[&str]) -> FieldError {
        let supported: Vec<String> = supported.iter().map(|s| format!("{s:?}")).collect();
        let body = format!(
            "Unsupported value: {value:?}: supported values: {}",
            supported.join(", ")
        );
        FieldError {
            field,
            cause: "FieldValueNotSupported",
            body,
        }
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.body)
    }
}

/// Why a request failed; each variant is one `Status` reason. None is worth retrying as is,
/// except `TooLargeResourceVersion` (retry after a second) and `Expired` (relist).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// 400 `BadRequest`: a query parameter that does not parse or is not supported.
    #[error("{0}")]
    BadRequest(String),
    /// 422 `Invalid`: `ListOptions` that break apimachinery's validation.
    #[error("ListOptions.meta.k8s.io \"\" is invalid")]
    Invalid(Vec<FieldError>),
    /// 404 `NotFound`: `pods "x" not found`.
    #[error("{} {name:?} not found", kind.resource())]
    NotFound { kind: Kind, name: String },
    /// 405 `MethodNotAllowed`.
    #[error("{verb} is not supported on resources of kind {:?}", kind.resource())]
    MethodNotAllowed { kind: Kind, verb: String },
    /// 406 `NotAcceptable`.
    #[error("{0}")]
    NotAcceptable(String),
    /// 410 `Expired`, with a continue token to resume inconsistently when there is one.
    #[error("{message}")]
    Expired {
        message: String,
        continue_token: Option<String>,
    },
    /// 504 `Timeout`: the requested resourceVersion is newer than the store's.
    #[error("Timeout: Too large resource version: {requested}, current: {current}")]
    TooLargeResourceVersion { requested: u64, current: u64 },
}

impl ApiError {
    /// The `Status` object.
    pub fn status_body(&self) -> serde_json::Value {
        let message = self.to_string();
        match self {
            ApiError::BadRequest(_) => status_body(StatusCode::BAD_REQUEST, "BadRequest", &message, None),
            ApiError::Invalid(errors) => {
                let mut texts: Vec<String> = errors.iter().map(ToString::to_string).collect();
                texts.dedup();
                let all = if texts.len() == 1 {
                    texts.remove(0)
                } else {
                    format!("[{}]", texts.join(", "))
                };
                let causes: Vec<_> = errors
                    .iter()
                    .map(|e| json!({"reason": e.cause, "message": e.body, "field": e.field}))
                    .collect();
                let details = json!({"group": "meta.k8s.io", "kind": "ListOptions", "causes": causes});
                let message = format!("{message}: {all}");
                status_body(StatusCode::UNPROCESSABLE_ENTITY, "Invalid", &message, Some(details))
            }
            ApiError::NotFound { kind, name } => {
                let details = json!({"name": name, "kind": kind.resource()});
                status_body(StatusCode::NOT_FOUND, "NotFound", &message, Some(details))
            }
            ApiError::MethodNotAllowed { kind, .. } => {
                let details = json!({"kind": kind.resource()});
                status_body(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "MethodNotAllowed",
                    &message,
                    Some(details),
                )
            }
            ApiError::NotAcceptable(_) => status_body(StatusCode::NOT_ACCEPTABLE, "NotAcceptable", &message, None),
            ApiError::Expired { continue_token, .. } => {
                let mut body = status_body(StatusCode::GONE, "Expired", &message, None);
                if let Some(token) = continue_token {
                    body["metadata"]["continue"] = json!(token);
                }
                body
            }
            ApiError::TooLargeResourceVersion { .. } => {
                let causes = json!([{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}]);
                let details = json!({"causes": causes, "retryAfterSeconds": 1});
                status_body(StatusCode::GATEWAY_TIMEOUT, "Timeout", &message, Some(details))
            }
        }
    }

    pub fn into_response(self) -> Response<Body> {
        let body = self.status_body();
        let code = body["code"].as_u64().and_then(|c| StatusCode::from_u16(c as u16).ok());
        json_response(code.unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), &body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn code(route: ResourceRequest, method: Method, query: &str, accept: Option<&str>) -> u16 {
        let store = Store::new(10);
        store.upsert(Kind::Pods, json!({"metadata": {"name": "p", "namespace": "default"}}));
        let query = Query::parse(Some(query));
        let response = match serve(store, route, &method, &query, accept).await {
            Ok(response) => response,
            Err(e) => e.into_response(),
        };
        response.status().as_u16()
    }

    #[tokio::test]
    async fn odd_requests_get_statuses_not_panics() {
        let list = ResourceRequest {
            kind: Kind::Pods,
            namespace: None,
            name: None,
        };
        let get = ResourceRequest {
            kind: Kind::Pods,
            namespace: Some("default".into()),
            name: Some("p".into()),
        };
        let cases = [
            (&list, "", 200),
            (&list, "watch=1&timeoutSeconds=9223372036854775807", 200),
            (&list, "watch=1&timeoutSeconds=-5&resourceVersion=1", 200),
            (&list, "limit=99999999999999999999", 400),
            (&list, "limit=-1&continue=%00%01", 400),
            (&list, "continue=e30&resourceVersion=5", 400),
            (&list, "labelSelector=%E2%9C%93%3D%3D", 400),
            (&list, "fieldSelector=metadata.name%3D%5C", 400),
            (&list, "resourceVersion=x", 400),
            (&list, "resourceVersion=1&resourceVersionMatch=Exact", 200),
            (&list, "resourceVersionMatch=Exact", 422),
            (&list, "sendInitialEvents=false", 422),
            (&list, "includeObject=All", 200),
            (&get, "", 200),
            (&get, "watch=true", 405),
            (&get, "resourceVersion=-1", 400),
        ];
        for (route, query, want) in cases {
            assert_eq!(code(route.clone(), Method::GET, query, None).await, want, "{query}");
        }
        let table = Some("application/json;as=Table;v=v1;g=meta.k8s.io");
        assert_eq!(code(list.clone(), Method::GET, "includeObject=All", table).await, 400);
        assert_eq!(code(list.clone(), Method::GET, "", Some("text/html")).await, 406);
        assert_eq!(code(list.clone(), Method::POST, "", None).await, 405);
        let missing = ResourceRequest {
            name: Some("nope".into()),
            ..get
        };
        assert_eq!(code(missing, Method::GET, "", None).await, 404);
    }

    #[test]
    fn statuses_match_the_apiserver() {
        let not_found = ApiError::NotFound {
            kind: Kind::Pods,
            name: "x".into(),
        }
        .status_body();
        assert_eq!(not_found["message"], "pods \"x\" not found");
        assert_eq!(not_found["code"], 404);
        assert_eq!(not_found["details"], json!({"name": "x", "kind": "pods"}));
        let invalid = ApiError::Invalid(vec![FieldError::forbidden(
            "sendInitialEvents",
            "sendInitialEvents is forbidden for list",
        )]);
        let body = invalid.status_body();
        assert_eq!(
            body["message"],
            "ListOptions.meta.k8s.io \"\" is invalid: sendInitialEvents: Forbidden: sendInitialEvents is forbidden for list"
        );
        assert_eq!(
            (body["code"].clone(), body["reason"].clone()),
            (json!(422), json!("Invalid"))
        );
        assert_eq!(body["details"]["causes"][0]["reason"], "FieldValueForbidden");
        let two = ApiError::Invalid(vec![FieldError::forbidden("a", "x"), FieldError::forbidden("b", "y")]);
        assert_eq!(
            two.status_body()["message"],
            "ListOptions.meta.k8s.io \"\" is invalid: [a: Forbidden: x, b: Forbidden: y]"
        );
        let too_large = ApiError::TooLargeResourceVersion {
            requested: 10,
            current: 4,
        }
        .status_body();
        assert_eq!(
            too_large["message"],
            "Timeout: Too large resource version: 10, current: 4"
        );
        assert_eq!(too_large["code"], 504);
        let expired = ApiError::Expired {
            message: "gone".into(),
            continue_token: Some("t".into()),
        }
        .status_body();
        assert_eq!(
            (expired["code"].clone(), expired["metadata"]["continue"].clone()),
            (json!(410), json!("t"))
        );
        let method = ApiError::MethodNotAllowed {
            kind: Kind::Nodes,
            verb: "create".into(),
        };
        assert_eq!(
            method.to_string(),
            "create is not supported on resources of kind \"nodes\""
        );
    }
}
