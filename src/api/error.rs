//! The one place where request failures become Kubernetes `Status` bodies
//! (`{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",...}`), with the exact
//! messages, reasons, details and codes the apiserver library produces for metrics-server
//! (apimachinery `pkg/api/errors`, apiserver `endpoints/handlers/responsewriters`).
//!
//! Handlers return [`ApiError`]; the HTTP layer answers `status_code()` with `to_status_json()`
//! as `application/json`, or with `to_status_protobuf()` when the request asked for protobuf
//! first (the apiserver negotiates error bodies like any other), and a `Retry-After` header
//! when [`ApiError::retry_after_seconds`] is set.
//!
//! NotFound texts (metrics-server v0.9 `pkg/api/{node,pod,install}.go`): the
//! REST storages are built with `metrics.Resource("nodemetrics")` / `("podmetrics")`, so "known
//! object without metrics" is `nodemetrics.metrics.k8s.io "x" not found` /
//! `podmetrics.metrics.k8s.io "ns/x" not found`; an object missing from the informer cache gets
//! the lister's error, `node "x" not found` (client-go's typed `NodeLister` uses
//! `v1.Resource("node")`) / `pods "x" not found` (the metadata lister's `pods` resource).

use serde::Serialize;

use super::json;
use super::types::{GROUP, ListMeta};

/// apiserver's `inconsistentContinue` (storage `etcd3`): the message of a 410 for a continue
/// token past its lifetime, answered with a fresh token in the Status' list metadata.
const INCONSISTENT_CONTINUE: &str = "The provided continue parameter is too old to display a consistent list result. \
You can start a new list without the continue parameter, or use the continue token in this response to retrieve the \
remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were \
created, modified, or deleted between the time the first chunk was returned and now may show up in the list.";

/// A Metrics API resource, as named in paths and RBAC rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricsResource {
    Nodes,
    Pods,
}

impl MetricsResource {
    /// `nodes` or `pods`.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricsResource::Nodes => "nodes",
            MetricsResource::Pods => "pods",
        }
    }
}

/// What a denied request asked for: the authorizer attributes of apiserver's `Forbidden`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forbidden {
    /// The authenticated user name (`system:anonymous`, `system:serviceaccount:ns:sa`, ...).
    pub user: String,
    /// `get`, `list`, `watch`, ...
    pub verb: String,
    pub target: ForbiddenTarget,
    /// The authorizer's reason (SubjectAccessReview `status.reason`); may be empty.
    pub reason: String,
}

/// The object of a denied request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForbiddenTarget {
    /// A resource request; empty `namespace` means cluster scope, empty `name` a collection.
    Resource {
        group: String,
        resource: String,
        subresource: String,
        namespace: String,
        name: String,
    },
    /// A non-resource request such as `/metrics`.
    NonResource { path: String },
}

/// A failed Metrics API request. Each variant says whether retrying can help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// 404: the node is not in the Node cache. Retrying helps only once the node exists.
    #[error("node {} not found", go_quote(.name))]
    NodeNotFound { name: String },
    /// 404: the node is known but has no servable metrics (yet); retry after a scrape interval.
    #[error("nodemetrics.metrics.k8s.io {} not found", go_quote(.name))]
    NodeMetricsNotFound { name: String },
    /// 404: the pod is not in the Running-pod metadata cache. Not worth retrying soon.
    #[error("pods {} not found", go_quote(.name))]
    PodNotFound { namespace: String, name: String },
    /// 404: the pod is running but has no servable metrics (yet); retry after a scrape interval.
    #[error("podmetrics.metrics.k8s.io {} not found", go_quote(&format!("{}/{}", .namespace, .name)))]
    PodMetricsNotFound { namespace: String, name: String },
    /// 400: a malformed selector, field selector or parameter. Never worth retrying.
    #[error("{message}")]
    BadRequest { message: String },
    /// 405: `watch` (or any verb other than get/list). Never worth retrying.
    #[error("{action} is not supported on resources of kind {}", go_quote(&format!("{}.{GROUP}", .resource.as_str())))]
    MethodNotSupported { resource: MetricsResource, action: String },
    /// 401: no valid credentials. Retry only with other credentials.
    #[error("Unauthorized")]
    Unauthorized,
    /// 403: authenticated but not allowed. Retry only after an RBAC change.
    #[error("{}", forbidden_message(.0))]
    Forbidden(Box<Forbidden>),
    /// 429: over the in-flight limit. Worth retrying after `retry_after_seconds`.
    #[error("Too many requests, please try again later.")]
    TooManyRequests { retry_after_seconds: u32 },
    /// 413: a request body over the size cap. Never worth retrying.
    #[error("Request entity too large: {message}")]
    RequestEntityTooLarge { message: String },
    /// 414: a request URI (path plus query) over the size cap. Never worth retrying.
    #[error("Request-URI Too Long: {message}")]
    RequestUriTooLong { message: String },
    /// 431: request headers over the size cap. Never worth retrying.
    #[error("Request Header Fields Too Large: {message}")]
    RequestHeaderFieldsTooLarge { message: String },
    /// 504: the request did not finish within its deadline. Worth retrying.
    #[error("Timeout: {message}")]
    Timeout { message: String, retry_after_seconds: u32 },
    /// 500: a bug or an unexpected failure. May be worth retrying.
    #[error("Internal error occurred: {message}")]
    Internal { message: String },
    /// 503: this replica cannot serve yet (starting, shutting down). Worth retrying.
    #[error("{message}")]
    ServiceUnavailable { message: String },
    /// 410: a continue token older than its lifetime. Retry with `continue_token` (the same
    /// position, issued now) or start the list again.
    #[error("{INCONSISTENT_CONTINUE}")]
    ContinueExpired { continue_token: String },
}

impl ApiError {
    /// 400 for a field selector on a field `resource` does not support: metrics-server's
    /// `metadata.name` and `metadata.namespace` (apimachinery
    /// `DefaultMetaV1FieldSelectorConversion`), and for pods also `spec.nodeName`.
    pub fn unknown_field_selector(field: &str, resource: MetricsResource) -> Self {
        let extra = match resource {
            MetricsResource::Nodes => "",
            MetricsResource::Pods => ", \"spec.nodeName\"",
        };
        let message = format!(
            "{} is not a known field selector: only \"metadata.name\", \"metadata.namespace\"{extra}",
            go_quote(field)
        );
        ApiError::BadRequest { message }
    }

    /// 400 for `?includeObject=` other than `None`, `Metadata`, `Object` (apiserver `asTable`).
    pub fn unrecognized_include_object(value: &str) -> Self {
        ApiError::BadRequest {
            message: format!("unrecognized includeObject value: {}", go_quote(value)),
        }
    }

    /// 405 for `?watch=true` on a Metrics API list.
    pub fn watch_not_supported(resource: MetricsResource) -> Self {
        ApiError::MethodNotSupported {
            resource,
            action: "watch".to_string(),
        }
    }

    /// The HTTP status code.
    pub fn status_code(&self) -> u16 {
        match self {
            ApiError::NodeNotFound { .. }
            | ApiError::NodeMetricsNotFound { .. }
            | ApiError::PodNotFound { .. }
            | ApiError::PodMetricsNotFound { .. } => 404,
            ApiError::BadRequest { .. } => 400,
            ApiError::MethodNotSupported { .. } => 405,
            ApiError::Unauthorized => 401,
            ApiError::Forbidden(_) => 403,
            ApiError::TooManyRequests { .. } => 429,
            ApiError::RequestEntityTooLarge { .. } => 413,
            ApiError::RequestUriTooLong { .. } => 414,
            ApiError::RequestHeaderFieldsTooLarge { .. } => 431,
            ApiError::Timeout { .. } => 504,
            ApiError::Internal { .. } => 500,
            ApiError::ServiceUnavailable { .. } => 503,
            ApiError::ContinueExpired { .. } => 410,
        }
    }

    /// The `Status.reason` (`metav1.StatusReason`); empty is `StatusReasonUnknown`.
    pub fn reason(&self) -> &'static str {
        match self {
            ApiError::NodeNotFound { .. }
            | ApiError::NodeMetricsNotFound { .. }
            | ApiError::PodNotFound { .. }
            | ApiError::PodMetricsNotFound { .. } => "NotFound",
            ApiError::BadRequest { .. } => "BadRequest",
            ApiError::MethodNotSupported { .. } => "MethodNotAllowed",
            ApiError::Unauthorized => "Unauthorized",
            ApiError::Forbidden(_) => "Forbidden",
            ApiError::TooManyRequests { .. } => "TooManyRequests",
            ApiError::RequestEntityTooLarge { .. } => "RequestEntityTooLarge",
            ApiError::RequestUriTooLong { .. } | ApiError::RequestHeaderFieldsTooLarge { .. } => "",
            ApiError::Timeout { .. } => "Timeout",
            ApiError::Internal { .. } => "InternalError",
            ApiError::ServiceUnavailable { .. } => "ServiceUnavailable",
            ApiError::ContinueExpired { .. } => "Expired",
        }
    }

    /// Seconds for a `Retry-After` header, for 429 and 504.
    pub fn retry_after_seconds(&self) -> Option<u32> {
        match self {
            ApiError::TooManyRequests { retry_after_seconds }
            | ApiError::Timeout {
                retry_after_seconds, ..
            } => Some(*retry_after_seconds),
            _ => None,
        }
    }

    /// The `Status` body, compact, with Go's trailing newline.
    pub fn to_status_json(&self) -> Vec<u8> {
        let message = self.to_string();
        let status = StatusJson {
            kind: "Status",
            api_version: "v1",
            metadata: self.list_meta(),
            status: "Failure",
            message: &message,
            reason: self.reason(),
            details: self.details(),
            code: self.status_code(),
        };
        json::to_vec(&status)
    }

    /// The `Status` as protobuf: `k8s\0` + `runtime.Unknown` (`v1`, `Status`) around
    /// `meta.v1.Status`, every field written as gogo writes it.
    pub fn to_status_protobuf(&self) -> Vec<u8> {
        use super::protobuf::{envelope, wire};
        let message = self.to_string();
        let details = self.details();
        envelope("v1", "Status", 128 + message.len(), |o| {
            let meta = self.list_meta();
            wire::message(o, 1, |m| {
                wire::string(m, 1, "");
                wire::string(m, 2, "");
                wire::string(m, 3, meta.continue_token.unwrap_or(""));
            });
            wire::string(o, 2, "Failure");
            wire::string(o, 3, &message);
            wire::string(o, 4, self.reason());
            if let Some(d) = &details {
                wire::message(o, 5, |m| d.write_protobuf(m));
            }
            wire::varint(o, 6, u64::from(self.status_code()));
        })
    }

    /// `Status.metadata`: empty, but for an expired continue token the fresh one.
    fn list_meta(&self) -> ListMeta<'_> {
        match self {
            ApiError::ContinueExpired { continue_token } => ListMeta {
                continue_token: Some(continue_token),
            },
            _ => ListMeta::default(),
        }
    }

    /// `Status.details`, as each apimachinery constructor fills it.
    fn details(&self) -> Option<DetailsJson<'_>> {
        Some(match self {
            ApiError::NodeNotFound { name } => DetailsJson::object(name.into(), "", "node"),
            ApiError::NodeMetricsNotFound { name } => DetailsJson::object(name.into(), GROUP, "nodemetrics"),
            ApiError::PodNotFound { name, .. } => DetailsJson::object(name.into(), "", "pods"),
            ApiError::PodMetricsNotFound { namespace, name } => {
                DetailsJson::object(format!("{namespace}/{name}").into(), GROUP, "podmetrics")
            }
            ApiError::MethodNotSupported { resource, .. } => DetailsJson::object("".into(), GROUP, resource.as_str()),
            ApiError::Forbidden(forbidden) => forbidden_details(forbidden),
            ApiError::TooManyRequests { retry_after_seconds }
            | ApiError::Timeout {
                retry_after_seconds, ..
            } => DetailsJson {
                retry_after_seconds: *retry_after_seconds,
                ..DetailsJson::default()
            },
            ApiError::Internal { message } => DetailsJson {
                causes: vec![CauseJson { message }],
                ..DetailsJson::default()
            },
            _ => return None,
        })
    }
}

fn forbidden_details(forbidden: &Forbidden) -> DetailsJson<'_> {
    match &forbidden.target {
        ForbiddenTarget::Resource {
            group, resource, name, ..
        } => DetailsJson::object(name.into(), group, resource),
        ForbiddenTarget::NonResource { .. } => DetailsJson::default(),
    }
}

/// apiserver `responsewriters.Forbidden` + apimachinery `NewForbidden`:
/// `pods.metrics.k8s.io is forbidden: User "u" cannot list resource "pods" in API group
/// "metrics.k8s.io" in the namespace "x"`, then `: <reason>` when the authorizer gave one.
fn forbidden_message(f: &Forbidden) -> String {
    // apiserver sanitises the attribute message (not the authorizer's reason) against HTML.
    let attributes = forbidden_attributes(f)
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    let error = if f.reason.is_empty() {
        attributes
    } else {
        format!("{attributes}: {}", f.reason)
    };
    match &f.target {
        ForbiddenTarget::Resource {
            group, resource, name, ..
        } if !(group.is_empty() && resource.is_empty()) => {
            let qualified = if group.is_empty() {
                resource.clone()
            } else {
                format!("{resource}.{group}")
            };
            if name.is_empty() {
                format!("{qualified} is forbidden: {error}")
            } else {
                format!("{qualified} {} is forbidden: {error}", go_quote(name))
            }
        }
        _ => format!("forbidden: {error}"),
    }
}

/// apiserver's `forbiddenMessage(attributes)`.
fn forbidden_attributes(f: &Forbidden) -> String {
    let user = go_quote(&f.user);
    let (group, resource, subresource, namespace) = match &f.target {
        ForbiddenTarget::NonResource { path } => {
            return format!("User {user} cannot {} path {}", f.verb, go_quote(path));
        }
        ForbiddenTarget::Resource {
            group,
            resource,
            subresource,
            namespace,
            ..
        } => (group, resource, subresource, namespace),
    };
    let resource = if subresource.is_empty() {
        resource.clone()
    } else {
        format!("{resource}/{subresource}")
    };
    let scope = if namespace.is_empty() {
        "at the cluster scope".to_string()
    } else {
        format!("in the namespace {}", go_quote(namespace))
    };
    format!(
        "User {user} cannot {} resource {} in API group {} {scope}",
        f.verb,
        go_quote(&resource),
        go_quote(group)
    )
}

/// Go's `%q` (`strconv.Quote`) for the strings we meet: escapes quotes, backslashes and control
/// characters, keeps printable Unicode.
pub fn go_quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `metav1.Status`, in Go's field order; empty fields are omitted as Go's `omitempty` does.
#[derive(Serialize)]
struct StatusJson<'a> {
    kind: &'static str,
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    metadata: ListMeta<'a>,
    status: &'static str,
    #[serde(skip_serializing_if = "str::is_empty")]
    message: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    reason: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<DetailsJson<'a>>,
    code: u16,
}

/// `metav1.StatusDetails`.
#[derive(Serialize, Default)]
struct DetailsJson<'a> {
    #[serde(skip_serializing_if = "str::is_empty")]
    name: std::borrow::Cow<'a, str>,
    #[serde(skip_serializing_if = "str::is_empty")]
    group: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    kind: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    causes: Vec<CauseJson<'a>>,
    #[serde(rename = "retryAfterSeconds", skip_serializing_if = "is_zero")]
    retry_after_seconds: u32,
}

/// `metav1.StatusCause` with only a message (as `NewInternalError` fills it).
#[derive(Serialize)]
struct CauseJson<'a> {
    message: &'a str,
}

impl<'a> DetailsJson<'a> {
    /// `meta.v1.StatusDetails` fields: name, group, kind, causes, retryAfterSeconds, uid.
    fn write_protobuf(&self, out: &mut Vec<u8>) {
        use super::protobuf::wire;
        wire::string(out, 1, &self.name);
        wire::string(out, 2, self.group);
        wire::string(out, 3, self.kind);
        for cause in &self.causes {
            wire::message(out, 4, |c| {
                wire::string(c, 1, "");
                wire::string(c, 2, cause.message);
                wire::string(c, 3, "");
            });
        }
        wire::varint(out, 5, u64::from(self.retry_after_seconds));
        wire::string(out, 6, "");
    }

    /// The details of an object error: name, group, kind (the resource, as apimachinery fills it).
    fn object(name: std::borrow::Cow<'a, str>, group: &'a str, kind: &'a str) -> Self {
        DetailsJson {
            name,
            group,
            kind,
            ..DetailsJson::default()
        }
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

#[cfg(test)]
mod tests;
