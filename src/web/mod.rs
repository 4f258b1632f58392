//! The Metrics API's HTTP layer (actix-web): one dispatcher that checks input caps,
//! authenticates, bounds concurrency, authorises and routes by path to discovery, OpenAPI,
//! health, self-metrics and the metrics.k8s.io reads (`v1` and `v1beta1`, same handlers).
//! Response bodies come from the pure `api` module; errors are `Status` bodies in JSON, or in
//! protobuf when the request asked for protobuf first.

mod body;
pub mod limits;
mod reads;

use crate::api::error::ApiError;
use crate::api::table::{self, ResponseFormat};
use crate::api::types::ApiVersion;
use crate::api::{discovery, json, protobuf};
use crate::auth::Auth;
use crate::auth::attributes::Attributes;
use crate::auth::authn::Credentials;
use crate::auth::user::User;
use crate::auth::verifier::ClientChain;
use crate::health::{Health, HealthSource};
use crate::metrics::{Metrics, TypeLabel};
use crate::query::Reader;
use actix_web::http::StatusCode;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use std::sync::Arc;
use tokio::sync::Semaphore;

/// Everything a request may need.
pub struct WebState {
    pub reader: Reader,
    pub health: Health<ReadinessSource>,
    pub metrics: Arc<Metrics>,
    pub auth: Arc<Auth>,
    pub always_allow: Vec<String>,
    pub inflight: Semaphore,
    /// `--continue-token-lifetime`.
    pub continue_token_lifetime: std::time::Duration,
}

/// Readiness facts from the caches, the stores and (with peers) the replica set.
pub struct ReadinessSource {
    pub reader: Reader,
}

impl HealthSource for ReadinessSource {
    fn informers_synced(&self) -> bool {
        self.reader.caches.synced()
    }

    /// With peers, a replica is also ready when the replica set can answer for it (it may hold
    /// no shard itself, for example just after joining).
    fn storage_ready(&self) -> bool {
        self.reader.ready() || self.reader.fanout.as_ref().is_some_and(|ha| ha.can_answer())
    }

    fn metadata_informer_running(&self) -> bool {
        self.reader
            .caches
            .metadata_running
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    fn scraping_since(&self) -> Option<i64> {
        self.reader.shards.scraping_since()
    }
}

/// `e` as a JSON `Status`.
pub fn error_response(e: &ApiError) -> HttpResponse {
    error_response_as(e, ResponseFormat::Json)
}

/// `e` as a `Status` in the request's format: protobuf when it asked for protobuf first, else
/// JSON.
pub fn error_response_as(e: &ApiError, format: ResponseFormat) -> HttpResponse {
    let mut resp =
        HttpResponse::build(StatusCode::from_u16(e.status_code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR));
    if let Some(secs) = e.retry_after_seconds() {
        resp.insert_header(("Retry-After", secs.to_string()));
    }
    if format.is_protobuf() {
        resp.content_type(protobuf::CONTENT_TYPE_PROTOBUF)
            .body(e.to_status_protobuf())
    } else {
        resp.content_type(json::CONTENT_TYPE_JSON).body(e.to_status_json())
    }
}

/// The format the request's `Accept` header asks for.
fn requested_format(req: &HttpRequest) -> ResponseFormat {
    table::negotiate(req.headers().get("accept").and_then(|v| v.to_str().ok()))
}

fn bytes(content_type: &str, body: impl actix_web::body::MessageBody + 'static) -> HttpResponse {
    HttpResponse::Ok().content_type(content_type.to_string()).body(body)
}

fn is_health(path: &str) -> Option<(&str, Option<&str>)> {
    let rest = path.strip_prefix('/')?;
    let (endpoint, check) = rest.split_once('/').map_or((rest, None), |(e, c)| (e, Some(c)));
    matches!(endpoint, "healthz" | "livez" | "readyz").then_some((endpoint, check))
}

/// The identity of the caller, if any.
async fn authenticate(state: &WebState, req: &HttpRequest) -> Option<Arc<User>> {
    // The listener puts the connection's certificate chain into the request's extensions
    // (`crate::serve::bridge`); actix's own server would put it into the connection data.
    let chain: Option<Arc<ClientChain>> = req
        .extensions()
        .get::<Arc<ClientChain>>()
        .cloned()
        .or_else(|| req.conn_data::<Arc<ClientChain>>().cloned());
    let headers = || {
        req.headers()
            .iter()
            .filter_map(|(n, v)| Some((n.as_str(), v.to_str().ok()?)))
    };
    let authorization = req.headers().get("authorization").and_then(|v| v.to_str().ok());
    let creds = Credentials {
        chain: chain.as_deref(),
        headers,
        authorization,
    };
    state.auth.authn.authenticate(creds).await
}

fn always_allowed(state: &WebState, path: &str) -> bool {
    state
        .always_allow
        .iter()
        .any(|p| p == path || p.strip_suffix('*').is_some_and(|pre| path.starts_with(pre)))
}

/// The single entry point for every request: caps, authentication, concurrency,
/// authorization, then health or the API.
pub async fn dispatch(req: HttpRequest, state: web::Data<WebState>) -> HttpResponse {
    let format = requested_format(&req);
    let error_response = |e: &ApiError| error_response_as(e, format);
    if let Err(e) = limits::check(&req) {
        tracing::debug!(path = %req.path(), "{e}");
        return error_response(&e);
    }
    let path = req.path();
    let health_path = is_health(path);
    let user = if always_allowed(&state, path) {
        None
    } else {
        match authenticate(&state, &req).await {
            Some(user) => Some(user),
            None => return error_response(&ApiError::Unauthorized),
        }
    };
    let _permit = match health_path {
        Some(_) => None,
        None => match state.inflight.try_acquire() {
            Ok(permit) => Some(permit),
            Err(_) => return error_response(&ApiError::TooManyRequests { retry_after_seconds: 1 }),
        },
    };
    if let Some(user) = &user {
        let attributes = Attributes::of(req.method().as_str(), path, req.query_string());
        if let Err(e) = state.auth.authz.authorize(user, &attributes).await {
            return error_response(&e);
        }
    }
    if let Some((endpoint, check)) = health_path {
        return health(&state, &req, endpoint, check);
    }
    if req.method() != actix_web::http::Method::GET && req.method() != actix_web::http::Method::HEAD {
        return HttpResponse::MethodNotAllowed().finish();
    }
    route(&state, &req, path).await
}

async fn route(state: &WebState, req: &HttpRequest, path: &str) -> HttpResponse {
    let accept = req.headers().get("accept").and_then(|v| v.to_str().ok());
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segments.as_slice() {
        ["apis"] => {
            let format = discovery::negotiate_discovery(accept);
            bytes(format.content_type(), format.apis_body())
        }
        ["apis", "metrics.k8s.io"] => bytes(json::CONTENT_TYPE_JSON, discovery::api_group_json()),
        ["apis", "metrics.k8s.io", version, rest @ ..] => match ApiVersion::parse(version) {
            Some(version) if rest.is_empty() => {
                bytes(json::CONTENT_TYPE_JSON, discovery::api_resource_list_json(version))
            }
            Some(version) => reads::read(state, req, version, rest).await,
            None => not_found(),
        },
        ["version"] => bytes(
            json::CONTENT_TYPE_JSON,
            discovery::version_json(&discovery::VersionInfo::current()),
        ),
        ["metrics"] => self_metrics(state),
        ["openapi", ..] => reads::openapi(&segments[1..]),
        _ => not_found(),
    }
}

/// The generic apiserver's answer for a path it does not serve.
pub fn not_found() -> HttpResponse {
    HttpResponse::NotFound()
        .content_type("text/plain; charset=utf-8")
        .body("404 page not found\n")
}

fn health(state: &WebState, req: &HttpRequest, endpoint: &str, check: Option<&str>) -> HttpResponse {
    let query = req.query_string();
    let verbose = query.split('&').any(|p| p == "verbose" || p.starts_with("verbose="));
    let exclude: Vec<String> = query
        .split('&')
        .filter_map(|p| p.strip_prefix("exclude="))
        .map(String::from)
        .collect();
    let (code, body) = state
        .health
        .answer(endpoint, check, verbose, &exclude, shard::point::now_nanos());
    HttpResponse::build(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .content_type("text/plain; charset=utf-8")
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .body(body)
}

fn self_metrics(state: &WebState) -> HttpResponse {
    let (mut nodes, mut containers) = (0i64, 0i64);
    for store in &state.reader.shards.stores {
        let (n, c) = store.read().expect("store lock").servable_counts();
        nodes += n as i64;
        containers += c as i64;
    }
    state
        .metrics
        .storage_points
        .get_or_create(&TypeLabel { r#type: "node".into() })
        .set(nodes);
    state
        .metrics
        .storage_points
        .get_or_create(&TypeLabel {
            r#type: "container".into(),
        })
        .set(containers);
    bytes("text/plain; version=0.0.4; charset=utf-8", state.metrics.encode())
}
