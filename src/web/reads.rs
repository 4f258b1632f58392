//! metrics.k8s.io reads: node and pod get and list in either served version, as JSON, Table or
//! protobuf, one page at a time with `limit`; and the OpenAPI documents.

use super::{WebState, body, bytes, error_response_as, not_found};
use crate::api::error::{ApiError, MetricsResource};
use crate::api::table::{self, IncludeObject, ResponseFormat, TableOptions};
use crate::api::types::{ApiVersion, ListMeta, PodItem};
use crate::api::{json, protobuf, types};
use crate::query::page::ContinueToken;
use crate::query::{ListParams, NodeRow, PodList, PodRows};
use actix_web::{HttpRequest, HttpResponse};

/// One read: the request, its version and format, and its parsed query.
struct Read<'r> {
    state: &'r WebState,
    req: &'r HttpRequest,
    version: ApiVersion,
    format: ResponseFormat,
    params: ListParams,
}

/// Routes the segments after `/apis/metrics.k8s.io/{version}/`.
pub async fn read(state: &WebState, req: &HttpRequest, version: ApiVersion, rest: &[&str]) -> HttpResponse {
    let format = table::negotiate(req.headers().get("accept").and_then(|v| v.to_str().ok()));
    let resource = match rest {
        ["nodes"] | ["nodes", _] => MetricsResource::Nodes,
        ["pods"] | ["namespaces", _, "pods"] | ["namespaces", _, "pods", _] => MetricsResource::Pods,
        _ => return not_found(),
    };
    let read = match ListParams::parse(req.query_string(), resource) {
        Ok(params) => Read {
            state,
            req,
            version,
            format,
            params,
        },
        Err(e) => return error_response_as(&e, format),
    };
    // An invalid includeObject is refused whatever the format (as before Tables were asked for).
    if let Err(e) = IncludeObject::parse(read.params.include_object.as_deref()) {
        return error_response_as(&e, format);
    }
    let result = match rest {
        ["nodes"] => read.list_nodes().await,
        ["nodes", name] => read.get_node(name).await,
        ["pods"] => read.list_pods(None).await,
        ["namespaces", ns, "pods"] => read.list_pods(Some(ns)).await,
        ["namespaces", ns, "pods", name] => read.get_pod(ns, name).await,
        _ => return not_found(),
    };
    result.unwrap_or_else(|e| error_response_as(&e, format))
}

fn now() -> i64 {
    shard::point::now_nanos()
}

impl Read<'_> {
    fn table_options(&self, version: table::TableVersion) -> Result<TableOptions, ApiError> {
        Ok(TableOptions {
            version,
            include_object: IncludeObject::parse(self.params.include_object.as_deref())?,
            api: self.version,
        })
    }

    fn observe_freshness(&self, timestamps: impl Iterator<Item = i64>) {
        let now = now();
        for ts in timestamps.filter(|&t| t > 0) {
            self.state.metrics.freshness.observe((now - ts) as f64 / 1e9);
        }
    }

    /// A continued list's token must still be fresh (checked here, by the replica the client
    /// asked; owners answering a fan-out only read its position).
    fn check_continue(&self) -> Result<(), ApiError> {
        match &self.params.continue_token {
            Some(token) => token.check_fresh(now() / 1_000_000, self.state.continue_token_lifetime.as_millis() as i64),
            None => Ok(()),
        }
    }

    /// The token of the next page, issued when the list's first page was.
    fn next_token(&self, resource: MetricsResource, next: Option<(String, String)>) -> Option<String> {
        let issued = self
            .params
            .continue_token
            .as_ref()
            .map_or(now() / 1_000_000, |t| t.issued);
        next.map(|(ns, name)| ContinueToken::new(resource, issued, &ns, &name).encode())
    }

    fn nodes_response(&self, rows: &[NodeRow], single: bool, token: Option<&str>) -> Result<HttpResponse, ApiError> {
        self.observe_freshness(rows.iter().map(|r| r.metrics.timestamp));
        let items: Vec<_> = rows.iter().map(NodeRow::usage).collect();
        let meta = ListMeta { continue_token: token };
        let (version, now) = (self.version, now());
        Ok(match self.format {
            ResponseFormat::Table(v) => bytes(
                v.content_type(),
                table::node_table_json(&items, now, self.table_options(v)?, meta),
            ),
            ResponseFormat::Json if single => bytes(
                json::CONTENT_TYPE_JSON,
                types::node_metrics_json(&items[0], version, now),
            ),
            ResponseFormat::Json => body::list(
                json::CONTENT_TYPE_JSON,
                types::node_list_json(&items, version, meta, now),
            ),
            ResponseFormat::Protobuf if single => bytes(
                protobuf::CONTENT_TYPE_PROTOBUF,
                protobuf::node_metrics(&items[0], version, now),
            ),
            ResponseFormat::Protobuf => body::list(
                protobuf::CONTENT_TYPE_PROTOBUF,
                protobuf::node_list(&items, version, meta, now),
            ),
        })
    }

    fn pods_response(&self, rows: &PodRows, single: bool, token: Option<&str>) -> Result<HttpResponse, ApiError> {
        match rows {
            PodRows::Local(rows) => self.pods_response_of(rows, single, token),
            PodRows::Gathered(rows) => self.pods_response_of(rows, single, token),
            PodRows::Mixed(rows) => self.pods_response_of(rows, single, token),
        }
    }

    /// JSON and protobuf lists are written straight from the rows; Tables and single JSON
    /// objects go through the API layer's [`types::PodUsage`] views.
    fn pods_response_of<P: PodItem>(
        &self,
        rows: &[P],
        single: bool,
        token: Option<&str>,
    ) -> Result<HttpResponse, ApiError> {
        self.observe_freshness(rows.iter().map(P::timestamp_ns));
        let meta = ListMeta { continue_token: token };
        let (version, now) = (self.version, now());
        match (self.format, single) {
            (ResponseFormat::Json, false) => {
                return Ok(body::list(
                    json::CONTENT_TYPE_JSON,
                    types::pod_list(rows, version, meta, now),
                ));
            }
            (ResponseFormat::Protobuf, false) => {
                return Ok(body::list(
                    protobuf::CONTENT_TYPE_PROTOBUF,
                    protobuf::pod_list(rows, version, meta, now),
                ));
            }
            (ResponseFormat::Protobuf, true) => {
                return Ok(bytes(
                    protobuf::CONTENT_TYPE_PROTOBUF,
                    protobuf::pod_metrics(&rows[0], version, now),
                ));
            }
            _ => {}
        }
        let containers: Vec<Vec<_>> = rows
            .iter()
            .map(|r| (0..r.container_count()).map(|i| r.container(i)).collect())
            .collect();
        let items: Vec<_> = rows.iter().zip(&containers).map(|(r, c)| usage(r, c)).collect();
        Ok(match self.format {
            ResponseFormat::Table(v) => bytes(
                v.content_type(),
                table::pod_table_json(&items, now, self.table_options(v)?, meta),
            ),
            _ => bytes(
                json::CONTENT_TYPE_JSON,
                types::pod_metrics_json(&items[0], version, now),
            ),
        })
    }

    async fn list_nodes(&self) -> Result<HttpResponse, ApiError> {
        self.check_continue()?;
        let page = self.state.reader.list_nodes(&self.params).await;
        let token = self.next_token(MetricsResource::Nodes, page.next);
        self.nodes_response(&page.items, false, token.as_deref())
    }

    async fn get_node(&self, name: &str) -> Result<HttpResponse, ApiError> {
        let row = self.state.reader.get_node(name).await?;
        self.nodes_response(std::slice::from_ref(&row), true, None)
    }

    async fn list_pods(&self, namespace: Option<&str>) -> Result<HttpResponse, ApiError> {
        self.check_continue()?;
        let query = self.req.query_string();
        let PodList { rows, next } = self.state.reader.list_pods(namespace, &self.params, query).await;
        let token = self.next_token(MetricsResource::Pods, next);
        self.pods_response(&rows, false, token.as_deref())
    }

    async fn get_pod(&self, namespace: &str, name: &str) -> Result<HttpResponse, ApiError> {
        let query = self.req.query_string();
        let rows = self.state.reader.get_pod(namespace, name, &self.params, query).await?;
        self.pods_response(&rows, true, None)
    }
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

/// `/openapi/v2`, `/openapi/v3` and `/openapi/v3/apis/metrics.k8s.io/{v1,v1beta1}`.
pub fn openapi(rest: &[&str]) -> HttpResponse {
    use crate::api::openapi;
    match rest {
        ["v2"] => bytes(json::CONTENT_TYPE_JSON, openapi::openapi_v2_json()),
        ["v3"] => bytes(json::CONTENT_TYPE_JSON, openapi::openapi_v3_index_json()),
        ["v3", "apis", "metrics.k8s.io", version] => match ApiVersion::parse(version) {
            Some(version) => bytes(json::CONTENT_TYPE_JSON, openapi::openapi_v3_group_version_json(version)),
            None => not_found(),
        },
        _ => not_found(),
    }
}
