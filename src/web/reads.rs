//! metrics.k8s.io reads: node and pod get and list, as JSON or Table, and the OpenAPI documents.

use super::{WebState, body, bytes, error_response, not_found};
use crate::api::error::{ApiError, MetricsResource};
use crate::api::table::{self, IncludeObject, ResponseFormat, TableOptions};
use crate::api::types::PodItem;
use crate::api::{json, types};
use crate::query::{ListParams, NodeRow, PodRows};
use actix_web::{HttpRequest, HttpResponse};

/// Routes the segments after `/apis/metrics.k8s.io/v1beta1/`.
pub async fn read(state: &WebState, req: &HttpRequest, rest: &[&str]) -> HttpResponse {
    let result = match rest {
        ["nodes"] => list_nodes(state, req).await,
        ["nodes", name] => get_node(state, req, name).await,
        ["pods"] => list_pods(state, req, None).await,
        ["namespaces", ns, "pods"] => list_pods(state, req, Some(ns)).await,
        ["namespaces", ns, "pods", name] => get_pod(state, req, ns, name).await,
        _ => return not_found(),
    };
    result.unwrap_or_else(|e| error_response(&e))
}

fn format(req: &HttpRequest, params: &ListParams) -> Result<ResponseFormat, ApiError> {
    let accept = req.headers().get("accept").and_then(|v| v.to_str().ok());
    let format = table::negotiate(accept);
    IncludeObject::parse(params.include_object.as_deref())?;
    Ok(format)
}

fn table_options(version: table::TableVersion, params: &ListParams) -> Result<TableOptions, ApiError> {
    Ok(TableOptions {
        version,
        include_object: IncludeObject::parse(params.include_object.as_deref())?,
    })
}

fn now() -> i64 {
    shard::point::now_nanos()
}

fn observe_freshness(state: &WebState, timestamps: impl Iterator<Item = i64>) {
    let now = now();
    for ts in timestamps.filter(|&t| t > 0) {
        state.metrics.freshness.observe((now - ts) as f64 / 1e9);
    }
}

fn nodes_response(
    state: &WebState,
    req: &HttpRequest,
    rows: &[NodeRow],
    single: bool,
) -> Result<HttpResponse, ApiError> {
    let params = ListParams::parse(req.query_string(), MetricsResource::Nodes)?;
    observe_freshness(state, rows.iter().map(|r| r.metrics.timestamp));
    let items: Vec<_> = rows.iter().map(NodeRow::usage).collect();
    Ok(match format(req, &params)? {
        ResponseFormat::Table(v) => bytes(
            v.content_type(),
            table::node_table_json(&items, now(), table_options(v, &params)?),
        ),
        ResponseFormat::Json if single => bytes(json::CONTENT_TYPE_JSON, types::node_metrics_json(&items[0], now())),
        ResponseFormat::Json => bytes(json::CONTENT_TYPE_JSON, types::node_list_json(&items, now())),
    })
}

fn pods_response(state: &WebState, req: &HttpRequest, rows: &PodRows, single: bool) -> Result<HttpResponse, ApiError> {
    match rows {
        PodRows::Local(rows) => pods_response_of(state, req, rows, single),
        PodRows::Gathered(rows) => pods_response_of(state, req, rows, single),
    }
}

/// JSON lists are written straight from the rows; Tables and single objects go through the
/// API layer's [`types::PodUsage`] views.
fn pods_response_of<P: PodItem>(
    state: &WebState,
    req: &HttpRequest,
    rows: &[P],
    single: bool,
) -> Result<HttpResponse, ApiError> {
    let params = ListParams::parse(req.query_string(), MetricsResource::Pods)?;
    observe_freshness(state, rows.iter().map(P::timestamp_ns));
    let format = format(req, &params)?;
    if let (ResponseFormat::Json, false) = (format, single) {
        return Ok(body::list(json::CONTENT_TYPE_JSON, types::pod_list(rows, now())));
    }
    let containers: Vec<Vec<_>> = rows
        .iter()
        .map(|r| (0..r.container_count()).map(|i| r.container(i)).collect())
        .collect();
    let items: Vec<_> = rows.iter().zip(&containers).map(|(r, c)| usage(r, c)).collect();
    Ok(match format {
        ResponseFormat::Table(v) => bytes(
            v.content_type(),
            table::pod_table_json(&items, now(), table_options(v, &params)?),
        ),
        ResponseFormat::Json => bytes(json::CONTENT_TYPE_JSON, types::pod_metrics_json(&items[0], now())),
    })
}

fn usage<'a, P: PodItem>(row: &'a P, containers: &'a [types::ContainerUsage<'a>]) -> types::PodUsage<'a> {
    types::PodUsage {
        namespace: row.namespace(),
        name: row.name(),
        labels: row.labels(),
        timestamp_ns: row.timestamp_ns(),
        window_ns: row.window_ns(),
        containers: containers.into(),
    }
}

async fn list_nodes(state: &WebState, req: &HttpRequest) -> Result<HttpResponse, ApiError> {
    let params = ListParams::parse(req.query_string(), MetricsResource::Nodes)?;
    let rows = state.reader.list_nodes(&params).await;
    nodes_response(state, req, &rows, false)
}

async fn get_node(state: &WebState, req: &HttpRequest, name: &str) -> Result<HttpResponse, ApiError> {
    ListParams::parse(req.query_string(), MetricsResource::Nodes)?;
    let row = state.reader.get_node(name).await?;
    nodes_response(state, req, std::slice::from_ref(&row), true)
}

async fn list_pods(state: &WebState, req: &HttpRequest, namespace: Option<&str>) -> Result<HttpResponse, ApiError> {
    let params = ListParams::parse(req.query_string(), MetricsResource::Pods)?;
    let rows = state.reader.list_pods(namespace, &params, req.query_string()).await;
    pods_response(state, req, &rows, false)
}

async fn get_pod(state: &WebState, req: &HttpRequest, namespace: &str, name: &str) -> Result<HttpResponse, ApiError> {
    let params = ListParams::parse(req.query_string(), MetricsResource::Pods)?;
    let rows = state
        .reader
        .get_pod(namespace, name, &params, req.query_string())
        .await?;
    pods_response(state, req, &rows, true)
}

/// `/openapi/v2`, `/openapi/v3` and `/openapi/v3/apis/metrics.k8s.io/v1beta1`.
pub fn openapi(rest: &[&str]) -> HttpResponse {
    use crate::api::openapi;
    match rest {
        ["v2"] => bytes(json::CONTENT_TYPE_JSON, openapi::openapi_v2_json()),
        ["v3"] => bytes(json::CONTENT_TYPE_JSON, openapi::openapi_v3_index_json()),
        ["v3", "apis", "metrics.k8s.io", "v1beta1"] => {
            bytes(json::CONTENT_TYPE_JSON, openapi::openapi_v3_group_version_json())
        }
        _ => not_found(),
    }
}
