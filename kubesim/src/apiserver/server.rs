//! The fake apiserver's listener and router: identifies the caller, then dispatches to
//! discovery, resources, reviews, the aggregation proxy or the simulator's admin API.

#![allow(clippy::result_large_err)] // Err is an HTTP response, returned as is.

use super::auth::{Authority, UserInfo};
use super::discovery;
use super::proxy::Proxy;
use super::resources::{ResourceRequest, handle};
use super::status;
use super::store::{Kind, Store};
use crate::http::{Body, Request, json_response, serve_connection, text};
use futures::future::BoxFuture;
use http::{Method, Response, StatusCode, header};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::watch;

/// Largest review request body accepted.
pub const MAX_REVIEW_BODY: usize = 256 * 1024;
/// Path prefix of the simulator's own admin API (not a Kubernetes API).
pub const ADMIN_PREFIX: &str = "/kubesim/";

/// Handles `/kubesim/...` requests (the cluster's admin API).
pub type AdminHandler = Arc<dyn Fn(Request) -> BoxFuture<'static, Response<Body>> + Send + Sync>;

/// Everything the router needs.
pub struct ApiState {
    pub store: Arc<Store>,
    pub authority: Arc<Authority>,
    pub proxy: Arc<Proxy>,
    pub admin: Option<AdminHandler>,
}

/// A running apiserver; stops when dropped or on [`ApiServer::stop`].
pub struct ApiServer {
    pub addr: SocketAddr,
    pub https: bool,
    stop: watch::Sender<bool>,
}

impl ApiServer {
    /// Binds `addr` and serves, over TLS when `tls` is given.
    pub async fn start(
        state: Arc<ApiState>,
        addr: SocketAddr,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> std::io::Result<ApiServer> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (stop, mut stopped) = watch::channel(false);
        let https = tls.is_some();
        let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
        tokio::spawn(async move {
            loop {
                let stream = tokio::select! {
                    accepted = listener.accept() => match accepted { Ok((s, _)) => s, Err(_) => continue },
                    _ = stopped.changed() => return,
                };
                let _ = stream.set_nodelay(true);
                let state = state.clone();
                let acceptor = acceptor.clone();
                let mut stopped = stopped.clone();
                tokio::spawn(async move {
                    let router = move |req| route(state.clone(), req, addr, https);
                    let serve = async {
                        match acceptor {
                            Some(acceptor) => {
                                if let Ok(tls) = acceptor.accept(stream).await {
                                    serve_connection(tls, router).await
                                }
                            }
                            None => serve_connection(stream, router).await,
                        }
                    };
                    tokio::select! { _ = serve => {}, _ = stopped.changed() => {} }
                });
            }
        });
        Ok(ApiServer { addr, https, stop })
    }

    pub fn url(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    pub fn stop(&self) {
        self.stop.send_replace(true);
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Who is calling: a bearer token from the policy, or (plain HTTP only) the anonymous identity.
fn identify(state: &ApiState, req: &Request, tls: bool) -> Result<UserInfo, Response<Body>> {
    let auth = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    match auth.and_then(|v| v.strip_prefix("Bearer ")) {
        Some(token) => state
            .authority
            .user_for_token(token.trim())
            .ok_or_else(status::unauthorized),
        None if tls => Err(status::unauthorized()),
        None => state.authority.anonymous().ok_or_else(status::unauthorized),
    }
}

async fn route(state: Arc<ApiState>, req: Request, local: SocketAddr, tls: bool) -> Response<Body> {
    let path = req.uri().path().to_string();
    if path.starts_with(ADMIN_PREFIX) {
        return match &state.admin {
            Some(admin) => admin(req).await,
            None => status::not_found("paths", "", &path),
        };
    }
    if matches!(path.as_str(), "/healthz" | "/readyz" | "/livez") {
        return text(StatusCode::OK, "ok");
    }
    let user = match identify(&state, &req, tls) {
        Ok(user) => user,
        Err(resp) => return resp,
    };
    if path.starts_with("/apis/metrics.k8s.io/") {
        return state.proxy.forward(req, &user).await;
    }
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segments.as_slice() {
        ["version"] => json_response(StatusCode::OK, &discovery::version()),
        ["api"] => json_response(StatusCode::OK, &discovery::core_versions(&local.to_string())),
        ["apis"] => json_response(StatusCode::OK, &discovery::group_list()),
        ["api", "v1"] => doc(discovery::resource_list("v1"), &path),
        ["apis", group] => doc(discovery::group_doc(group), &path),
        ["apis", "authentication.k8s.io", "v1", "tokenreviews"] => review(&state, req, Review::Token).await,
        ["apis", "authorization.k8s.io", "v1", "subjectaccessreviews"] => review(&state, req, Review::Access).await,
        ["apis", group, version] => doc(discovery::resource_list(&format!("{group}/{version}")), &path),
        ["api", "v1", rest @ ..] => match resource_route(rest) {
            Some(route) => handle(state.store.clone(), route, req).await,
            None => status::not_found("paths", "", &path),
        },
        _ => status::not_found("paths", "", &path),
    }
}

fn doc(value: Option<serde_json::Value>, path: &str) -> Response<Body> {
    match value {
        Some(v) => json_response(StatusCode::OK, &v),
        None => status::status(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("the server could not find the requested resource ({path})"),
        ),
    }
}

/// Maps the segments after `/api/v1/` to a resource request.
pub fn resource_route(rest: &[&str]) -> Option<ResourceRequest> {
    let kind_of = |resource: &str| Kind::ALL.into_iter().find(|k| k.resource() == resource);
    let req = |kind, namespace: Option<&str>, name: Option<&str>| {
        Some(ResourceRequest {
            kind,
            namespace: namespace.map(String::from),
            name: name.map(String::from),
        })
    };
    match rest {
        ["namespaces", ns, resource] => req(kind_of(resource).filter(|k| k.namespaced())?, Some(ns), None),
        ["namespaces", ns, resource, name] => req(kind_of(resource).filter(|k| k.namespaced())?, Some(ns), Some(name)),
        [resource] => req(kind_of(resource)?, None, None),
        [resource, name] => req(kind_of(resource).filter(|k| !k.namespaced())?, None, Some(name)),
        _ => None,
    }
}

enum Review {
    Token,
    Access,
}

async fn review(state: &ApiState, req: Request, which: Review) -> Response<Body> {
    if req.method() != Method::POST {
        return status::method_not_allowed("only create is supported");
    }
    let Some(body) = crate::http::read_body(req.into_body(), MAX_REVIEW_BODY).await else {
        return status::status(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestEntityTooLarge",
            "request body too large",
        );
    };
    let Ok(body) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return status::bad_request("the request body is not valid JSON");
    };
    let answer = match which {
        Review::Token => state.authority.token_review(&body),
        Review::Access => state.authority.access_review(&body),
    };
    json_response(StatusCode::CREATED, &answer)
}
