//! OpenAPI documents for the Metrics API: `/openapi/v2` (Swagger 2.0, both served versions),
//! `/openapi/v3` (the index) and `/openapi/v3/apis/metrics.k8s.io/{v1,v1beta1}` (OpenAPI 3.0,
//! one per group version). The kube-aggregator downloads them from the APIService and merges
//! them into kube-apiserver's; `kubectl explain podmetrics` reads the result.
//!
//! Static JSON built once. The title stays metrics-server's, `Kubernetes metrics-server`, for
//! drop-in compatibility; the version is `v` + the crate version (metrics-server uses its
//! `gitVersion`). Definitions follow `k8s.io/metrics` `v1beta1`, and the same again under `v1`
//! for the `v1` version (names, descriptions, required
//! fields, `x-kubernetes-group-version-kind`, `x-kubernetes-list-type`), plus the meta types
//! they use; `ObjectMeta` lists only the fields we serve, so the aggregator renames our copy
//! rather than replacing kube-apiserver's. Only GET paths exist, and only JSON is produced.

use std::sync::LazyLock;

use serde_json::{Map, Value, json};

use super::json as go_json;
use super::types::{ApiVersion, GROUP};

/// The OpenAPI v3 document path of a group version (also the index key, without
/// `/openapi/v3/`).
pub fn openapi_v3_group_version_path(version: ApiVersion) -> String {
    format!("/openapi/v3/apis/{}", version.group_version())
}

const TITLE: &str = "Kubernetes metrics-server";
const NODE_METRICS: &str = "NodeMetrics";
const NODE_METRICS_LIST: &str = "NodeMetricsList";
const POD_METRICS: &str = "PodMetrics";
const POD_METRICS_LIST: &str = "PodMetricsList";
const CONTAINER_METRICS: &str = "ContainerMetrics";

/// The definition name of a metrics kind in `version`, e.g.
/// `io.k8s.metrics.pkg.apis.metrics.v1beta1.NodeMetrics`.
pub fn definition(version: ApiVersion, kind: &str) -> String {
    format!("io.k8s.metrics.pkg.apis.metrics.{}.{kind}", version.version())
}
const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
const LIST_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";
const TIME: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Time";
const DURATION: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Duration";
const QUANTITY: &str = "io.k8s.apimachinery.pkg.api.resource.Quantity";
const RESOURCE_LIST: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.APIResourceList";
const RESOURCE: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.APIResource";

const KIND_DOC: &str = "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";
const API_VERSION_DOC: &str = "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources";
const TIMESTAMP_DOC: &str = "The following fields define time interval from which metrics were collected from the interval [Timestamp-Window, Timestamp].";
const USAGE_DOC: &str = "The memory usage is the memory working set.";

/// `/openapi/v2`: both versions' paths and definitions in one document.
pub fn openapi_v2_json() -> &'static [u8] {
    static BODY: LazyLock<Vec<u8>> = LazyLock::new(|| to_bytes(&document(Version::V2, &ApiVersion::ALL)));
    &BODY
}

/// `/openapi/v3/apis/metrics.k8s.io/{version}`.
pub fn openapi_v3_group_version_json(version: ApiVersion) -> &'static [u8] {
    static V1: LazyLock<Vec<u8>> = LazyLock::new(|| to_bytes(&document(Version::V3, &[ApiVersion::V1])));
    static V1BETA1: LazyLock<Vec<u8>> = LazyLock::new(|| to_bytes(&document(Version::V3, &[ApiVersion::V1beta1])));
    match version {
        ApiVersion::V1 => &V1,
        ApiVersion::V1beta1 => &V1BETA1,
    }
}

/// The `hash` query value of a v3 document; a request carrying it may be cached forever
/// (`Cache-Control: public, immutable`), as the apiserver does.
pub fn openapi_v3_hash(version: ApiVersion) -> &'static str {
    static V1: LazyLock<String> = LazyLock::new(|| content_hash(openapi_v3_group_version_json(ApiVersion::V1)));
    static V1BETA1: LazyLock<String> =
        LazyLock::new(|| content_hash(openapi_v3_group_version_json(ApiVersion::V1beta1)));
    match version {
        ApiVersion::V1 => &V1,
        ApiVersion::V1beta1 => &V1BETA1,
    }
}

/// `/openapi/v3`: `{"paths":{"apis/metrics.k8s.io/v1":{"serverRelativeURL":"...?hash=..."},
/// "apis/metrics.k8s.io/v1beta1":{...}}}`.
pub fn openapi_v3_index_json() -> &'static [u8] {
    static BODY: LazyLock<Vec<u8>> = LazyLock::new(|| {
        let paths: Map<String, Value> = ApiVersion::ALL
            .iter()
            .map(|&v| {
                let path = openapi_v3_group_version_path(v);
                let url = format!("{path}?hash={}", openapi_v3_hash(v));
                let key = path.trim_start_matches("/openapi/v3/").to_string();
                (key, json!({ "serverRelativeURL": url }))
            })
            .collect();
        to_bytes(&json!({ "paths": paths }))
    });
    &BODY
}

/// A stable hash of a body as upper-case hex (FNV-1a, 64 bits): an opaque cache key for
/// `?hash=` and `ETag` values, which clients never interpret.
pub fn content_hash(bytes: &[u8]) -> String {
    let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("{hash:016X}")
}

/// Specs are written without the trailing newline, as kube-openapi's handler does.
fn to_bytes(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    go_json::write(&mut out, value);
    out
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Version {
    V2,
    V3,
}

fn document(version: Version, api: &[ApiVersion]) -> Value {
    let info = json!({ "title": TITLE, "version": concat!("v", env!("CARGO_PKG_VERSION")) });
    let security_scheme = json!({
        "description": "Bearer Token authentication", "type": "apiKey", "name": "authorization", "in": "header"
    });
    match version {
        Version::V2 => json!({
            "swagger": "2.0", "info": info, "paths": paths(version, api), "definitions": schemas(version, api),
            "securityDefinitions": { "BearerToken": security_scheme }, "security": [{ "BearerToken": [] }],
        }),
        Version::V3 => json!({
            "openapi": "3.0.0", "info": info, "paths": paths(version, api),
            "components": { "schemas": schemas(version, api), "securitySchemes": { "BearerToken": security_scheme } },
            "security": [{ "BearerToken": [] }],
        }),
    }
}

/// `{"$ref": ...}` to a definition / component schema.
fn reference(version: Version, name: &str) -> Value {
    let prefix = if version == Version::V2 {
        "#/definitions/"
    } else {
        "#/components/schemas/"
    };
    json!({ "$ref": format!("{prefix}{name}") })
}

/// A reference carrying its own description (and default): siblings of `$ref` in v2 as
/// Kubernetes writes them, `allOf` in v3 where `$ref` siblings are ignored.
fn described_reference(version: Version, name: &str, description: &str, default: Option<Value>) -> Value {
    let mut schema = match version {
        Version::V2 => reference(version, name),
        Version::V3 => json!({ "allOf": [reference(version, name)] }),
    };
    let object = schema.as_object_mut().expect("a reference is an object");
    object.insert("description".into(), description.into());
    if let Some(default) = default {
        object.insert("default".into(), default);
    }
    schema
}

fn string(description: &str) -> Value {
    json!({ "description": description, "type": "string" })
}

fn gvk(group: &str, version: &str, kind: &str) -> Value {
    json!([{ "group": group, "kind": kind, "version": version }])
}

fn schemas(version: Version, api: &[ApiVersion]) -> Map<String, Value> {
    let mut out = Map::new();
    for &v in api {
        out.extend(metrics_schemas(version, v));
        out.extend(list_schemas(version, v));
    }
    out.extend(value_schemas(version));
    out.extend(meta_schemas(version));
    out.extend(discovery_schemas(version));
    out
}

/// The `usage` map of nodes and containers.
fn usage(version: Version) -> Value {
    json!({ "description": USAGE_DOC, "type": "object", "additionalProperties": reference(version, QUANTITY) })
}

/// `apiVersion`, `kind` and `metadata` (an `ObjectMeta` or `ListMeta` reference).
fn type_and_meta(version: Version, meta: &str) -> Map<String, Value> {
    let description = if meta == OBJECT_META {
        "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"
    } else {
        "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds"
    };
    let mut properties = type_meta();
    properties.insert(
        "metadata".into(),
        described_reference(version, meta, description, Some(json!({}))),
    );
    properties
}

/// `apiVersion` and `kind`.
fn type_meta() -> Map<String, Value> {
    Map::from_iter([
        ("apiVersion".into(), string(API_VERSION_DOC)),
        ("kind".into(), string(KIND_DOC)),
    ])
}

fn metrics_schemas(version: Version, api: ApiVersion) -> Map<String, Value> {
    let r = |name| reference(version, name);
    let d = |kind| definition(api, kind);
    let api_version = api.version();
    let timestamp = described_reference(version, TIME, TIMESTAMP_DOC, None);
    let mut node = type_and_meta(version, OBJECT_META);
    node.extend([
        ("timestamp".into(), timestamp.clone()),
        ("window".into(), r(DURATION)),
        ("usage".into(), usage(version)),
    ]);
    let mut pod = type_and_meta(version, OBJECT_META);
    let containers = json!({ "description": "Metrics for all containers are collected within the same time window.",
        "type": "array", "items": reference(version, &d(CONTAINER_METRICS)), "x-kubernetes-list-type": "atomic" });
    pod.extend([
        ("timestamp".into(), timestamp),
        ("window".into(), r(DURATION)),
        ("containers".into(), containers),
    ]);
    let container_name = json!({ "description": "Container name corresponding to the one from pod.spec.containers.",
        "type": "string", "default": "" });
    Map::from_iter([
        (
            d(NODE_METRICS),
            json!({ "description": "NodeMetrics sets resource usage metrics of a node.",
            "type": "object", "required": ["timestamp", "window", "usage"], "properties": node,
            "x-kubernetes-group-version-kind": gvk(GROUP, api_version, "NodeMetrics") }),
        ),
        (
            d(POD_METRICS),
            json!({ "description": "PodMetrics sets resource usage metrics of a pod.",
            "type": "object", "required": ["timestamp", "window", "containers"], "properties": pod,
            "x-kubernetes-group-version-kind": gvk(GROUP, api_version, "PodMetrics") }),
        ),
        (
            d(CONTAINER_METRICS),
            json!({ "description": "ContainerMetrics sets resource usage metrics of a container.",
            "type": "object", "required": ["name", "usage"],
            "properties": { "name": container_name, "usage": usage(version) } }),
        ),
    ])
}

fn list_schemas(version: Version, api: ApiVersion) -> Map<String, Value> {
    let lists = [
        (NODE_METRICS_LIST, "NodeMetrics", NODE_METRICS, "node"),
        (POD_METRICS_LIST, "PodMetrics", POD_METRICS, "pod"),
    ];
    Map::from_iter(lists.map(|(name, kind, item, what)| {
        let mut properties = type_and_meta(version, LIST_META);
        let items = json!({ "description": format!("List of {what} metrics."), "type": "array",
            "items": reference(version, &definition(api, item)) });
        properties.insert("items".into(), items);
        let schema = json!({ "description": format!("{kind}List is a list of {kind}."), "type": "object",
            "required": ["items"], "properties": properties,
            "x-kubernetes-group-version-kind": gvk(GROUP, api.version(), &format!("{kind}List")) });
        (definition(api, name), schema)
    }))
}

/// Quantity, Time and Duration: strings on the wire.
fn value_schemas(version: Version) -> Map<String, Value> {
    let quantity_doc = "Quantity is a fixed-point representation of a number. It provides convenient marshaling/unmarshaling in JSON and YAML, in addition to String() and AsInt64() accessors.";
    let quantity = match version {
        Version::V2 => json!({ "description": quantity_doc, "type": "string" }),
        Version::V3 => json!({ "description": quantity_doc, "oneOf": [{ "type": "string" }, { "type": "number" }] }),
    };
    let time = json!({ "description": "Time is a wrapper around time.Time which supports correct marshaling to YAML and JSON.  Wrappers are provided for many of the factory methods that the time package offers.",
        "type": "string", "format": "date-time" });
    let duration = string(
        "Duration is a wrapper around time.Duration which supports correct marshaling to YAML and JSON. In particular, it marshals into strings, which can be used as map keys in json.",
    );
    Map::from_iter([
        (QUANTITY.into(), quantity),
        (TIME.into(), time),
        (DURATION.into(), duration),
    ])
}

/// `ObjectMeta` (the fields served) and `ListMeta`.
fn meta_schemas(version: Version) -> Map<String, Value> {
    let created = "For metrics objects: the time the response was built, in RFC3339 form, UTC.";
    let object_meta = json!({
        "description": "ObjectMeta is metadata that all persisted resources must have, which includes all objects users must create.",
        "type": "object",
        "properties": {
            "name": string("Name must be unique within a namespace."),
            "namespace": string("Namespace defines the space within which each name must be unique."),
            "creationTimestamp": described_reference(version, TIME, created, None),
            "labels": { "description": "Map of string keys and values that can be used to organize and categorize (scope and select) objects.",
                "type": "object", "additionalProperties": { "type": "string", "default": "" } },
        },
    });
    let list_meta = json!({
        "description": "ListMeta describes metadata that synthetic resources must have, including lists and various status objects. A resource may have only one of {ObjectMeta, ListMeta}.",
        "type": "object",
        "properties": {
            "continue": string("continue may be set if the user set a limit on the number of items returned, and indicates that the server has more data available. The value is opaque and may be used to issue another request to the endpoint that served this list to retrieve the next set of available objects. It expires after a while (410 Gone, reason Expired)."),
            "remainingItemCount": { "description": "remainingItemCount is the number of subsequent items in the list which are not included in this list response. Never set by this server.",
                "type": "integer", "format": "int64" },
            "resourceVersion": string("String that identifies the server's internal version of this object. Never set by this server."),
            "selfLink": string("Deprecated: selfLink is a legacy read-only field that is no longer populated by the system."),
        },
    });
    Map::from_iter([(OBJECT_META.into(), object_meta), (LIST_META.into(), list_meta)])
}

/// `APIResourceList` and `APIResource`, the answer of the group-version discovery path.
fn discovery_schemas(version: Version) -> Map<String, Value> {
    let typed = |description: &str, kind: &str, default: Value| json!({ "description": description, "type": kind, "default": default });
    let mut list = type_meta();
    list.insert(
        "groupVersion".into(),
        typed(
            "groupVersion is the group and version this APIResourceList is for.",
            "string",
            json!(""),
        ),
    );
    list.insert(
        "resources".into(),
        json!({ "description": "resources contains the name of the resources and if they are namespaced.",
        "type": "array", "items": reference(version, RESOURCE), "x-kubernetes-list-type": "atomic" }),
    );
    let resource = json!({
        "name": typed("name is the plural name of the resource.", "string", json!("")),
        "singularName": typed("singularName is the singular name of the resource.", "string", json!("")),
        "namespaced": typed("namespaced indicates if a resource is namespaced or not.", "boolean", json!(false)),
        "kind": typed("kind is the kind for the resource (e.g. 'Foo' is the kind for a resource 'foo')", "string", json!("")),
        "verbs": { "description": "verbs is a list of supported kube verbs.", "type": "array", "items": { "type": "string", "default": "" } },
    });
    Map::from_iter([
        (
            RESOURCE_LIST.into(),
            json!({ "description": "APIResourceList is a list of APIResource, it is used to expose the name of the resources supported in a specific group and version, and if the resource is namespaced.",
            "type": "object", "required": ["groupVersion", "resources"], "properties": list,
            "x-kubernetes-group-version-kind": gvk("", "v1", "APIResourceList") }),
        ),
        (
            RESOURCE.into(),
            json!({ "description": "APIResource specifies the name of a resource and whether it is namespaced.",
            "type": "object", "required": ["name", "singularName", "namespaced", "kind", "verbs"], "properties": resource }),
        ),
    ])
}

/// The GET paths: suffix after `/apis/metrics.k8s.io/{version}`, operationId (after
/// `get`/`list`/`read` + `Metrics` + the version), kind, response kind (a metrics kind, or the
/// discovery list). The action, description and parameters follow from the operationId and the
/// path.
const PATHS: [(&str, &str, &str, &str, &str); 6] = [
    ("/", "get", "APIResources", "", RESOURCE_LIST),
    (
        "/namespaces/{namespace}/pods",
        "list",
        "NamespacedPodMetrics",
        "PodMetrics",
        POD_METRICS_LIST,
    ),
    (
        "/namespaces/{namespace}/pods/{name}",
        "read",
        "NamespacedPodMetrics",
        "PodMetrics",
        POD_METRICS,
    ),
    ("/nodes", "list", "NodeMetrics", "NodeMetrics", NODE_METRICS_LIST),
    ("/nodes/{name}", "read", "NodeMetrics", "NodeMetrics", NODE_METRICS),
    (
        "/pods",
        "list",
        "PodMetricsForAllNamespaces",
        "PodMetrics",
        POD_METRICS_LIST,
    ),
];

fn paths(version: Version, api: &[ApiVersion]) -> Map<String, Value> {
    let mut out = Map::new();
    for &v in api {
        let mut title = v.version().to_string();
        title[..1].make_ascii_uppercase();
        for &(suffix, action, name, kind, response) in &PATHS {
            let operation_id = format!("{action}Metrics{title}{name}");
            let response = match response {
                RESOURCE_LIST => RESOURCE_LIST.to_string(),
                metrics_kind => definition(v, metrics_kind),
            };
            let op = operation(version, v, suffix, &operation_id, kind, &response);
            out.insert(format!("/apis/{}{suffix}", v.group_version()), json!({ "get": op }));
        }
    }
    out
}

fn operation(version: Version, api: ApiVersion, path: &str, operation_id: &str, kind: &str, response: &str) -> Value {
    let action = if operation_id.starts_with("list") {
        Some("list")
    } else {
        operation_id.starts_with("read").then_some("get")
    };
    let description = match action {
        Some("list") => format!("list objects of kind {kind}"),
        Some(_) => format!("read the specified {kind}"),
        None => "get available resources".to_string(),
    };
    let schema = reference(version, response);
    let ok = match version {
        Version::V2 => json!({ "description": "OK", "schema": schema }),
        Version::V3 => json!({ "description": "OK", "content": { "application/json": { "schema": schema } } }),
    };
    let mut op = json!({
        "description": description, "tags": [format!("metrics_{}", api.version())], "operationId": operation_id,
        "parameters": parameters(version, path, kind, action == Some("list")),
        "responses": { "200": ok, "401": { "description": "Unauthorized" } },
    });
    if version == Version::V2 {
        op["consumes"] = json!(["*/*"]);
        op["produces"] = json!(["application/json"]);
        op["schemes"] = json!(["https"]);
    }
    if let Some(action) = action {
        op["x-kubernetes-action"] = action.into();
        op["x-kubernetes-group-version-kind"] = gvk(GROUP, api.version(), kind)[0].clone();
    }
    op
}

fn parameters(version: Version, path: &str, kind: &str, list: bool) -> Value {
    let mut params = Vec::new();
    if path.ends_with("{name}") {
        params.push(parameter(
            version,
            "name",
            "path",
            "string",
            &format!("name of the {kind}"),
        ));
    }
    if path.contains("{namespace}") {
        let description = "object name and auth scope, such as for teams and projects";
        params.push(parameter(version, "namespace", "path", "string", description));
    }
    if list {
        for (name, schema_type, description) in LIST_PARAMETERS {
            params.push(parameter(version, name, "query", schema_type, description));
        }
    }
    params.push(parameter(
        version,
        "pretty",
        "query",
        "string",
        "If 'true', then the output is pretty printed.",
    ));
    Value::Array(params)
}

const LIST_PARAMETERS: [(&str, &str, &str); 7] = [
    (
        "continue",
        "string",
        "The continue option should be set when retrieving more results from the server. Since this value is server defined, clients may only use the continue value from a previous query result with identical query parameters (except for the value of continue), on any replica. A token older than the server's continue-token lifetime gets 410 Gone (reason Expired).",
    ),
    (
        "fieldSelector",
        "string",
        "A selector to restrict the list of returned objects by their fields. metadata.name and metadata.namespace are supported, and spec.nodeName for pods.",
    ),
    (
        "labelSelector",
        "string",
        "A selector to restrict the list of returned objects by their labels. Defaults to everything.",
    ),
    (
        "limit",
        "integer",
        "limit is a maximum number of responses to return for a list call. If more items exist, the server will set the `continue` field on the list metadata to a value that can be used with the same initial query to retrieve the next set of results.",
    ),
    (
        "resourceVersion",
        "string",
        "Ignored: metrics objects are not versioned.",
    ),
    (
        "resourceVersionMatch",
        "string",
        "Ignored: metrics objects are not versioned.",
    ),
    ("timeoutSeconds", "integer", "Ignored."),
];

fn parameter(version: Version, name: &str, location: &str, kind: &str, description: &str) -> Value {
    let mut schema = json!({ "type": kind, "uniqueItems": true });
    if kind == "integer" {
        schema["format"] = "int32".into();
    }
    let mut param = json!({ "name": name, "in": location, "description": description });
    if location == "path" {
        param["required"] = true.into();
    }
    match version {
        Version::V2 => param
            .as_object_mut()
            .expect("object")
            .extend(schema.as_object().expect("object").clone()),
        Version::V3 => param["schema"] = schema,
    }
    param
}

#[cfg(test)]
mod tests;
