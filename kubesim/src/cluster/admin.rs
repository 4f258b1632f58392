//! The simulator's admin HTTP API under `/kubesim/v1/`, on the apiserver's listener: ground
//! truth, faults, actions, kubelet scrape counters, review counters, policy and replicas. Tests
//! that run kubesim as a child process drive it through this API.

#![allow(clippy::result_large_err)] // Err is an HTTP response, returned as is.

use super::actions::Action;
use super::{Cluster, Inner};
use crate::apiserver::auth::Policy;
use crate::apiserver::server::AdminHandler;
use crate::apiserver::status;
use crate::http::{Body, Request, json_response, read_body};
use crate::kubelet::Fault;
use crate::kubelet::server::now_ms;
use http::{Method, Response, StatusCode};
use serde_json::json;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

/// Largest admin request body.
pub const MAX_ADMIN_BODY: usize = 1024 * 1024;

pub(crate) fn handler(inner: Weak<Inner>) -> AdminHandler {
    Arc::new(move |req| {
        let inner = inner.clone();
        Box::pin(async move {
            match inner.upgrade() {
                Some(inner) => route(Cluster { inner }, req).await,
                None => status::status(StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable", "cluster stopped"),
            }
        })
    })
}

fn query(req: &Request, key: &str) -> Option<String> {
    req.uri().query()?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == key).then(|| percent_encoding::percent_decode_str(v).decode_utf8_lossy().into_owned())
    })
}

/// `start` and `end` (Unix ms) from the query; `end` defaults to now, `start` to `end`.
fn window(req: &Request) -> Result<(i64, i64), Response<Body>> {
    let parse = |key| {
        query(req, key).map(|v| {
            v.parse::<i64>()
                .map_err(|_| status::bad_request(&format!("{key} must be Unix milliseconds")))
        })
    };
    let end = parse("end").transpose()?.unwrap_or_else(now_ms);
    let start = parse("start").transpose()?.unwrap_or(end);
    Ok((start, end))
}

async fn body_json<T: serde::de::DeserializeOwned>(req: Request) -> Result<T, Response<Body>> {
    let bytes = read_body(req.into_body(), MAX_ADMIN_BODY)
        .await
        .ok_or_else(|| status::bad_request("body too large or unreadable"))?;
    serde_json::from_slice(&bytes).map_err(|e| status::bad_request(&format!("invalid body: {e}")))
}

fn ok(value: serde_json::Value) -> Response<Body> {
    json_response(StatusCode::OK, &value)
}

async fn route(cluster: Cluster, req: Request) -> Response<Body> {
    let path = req.uri().path().trim_start_matches("/kubesim/v1/").to_string();
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let result = match (req.method().clone(), segments.as_slice()) {
        (Method::GET, ["cluster"]) => Ok(ok(summary(&cluster))),
        (Method::GET, ["truth", "nodes", node]) => window(&req).and_then(|(s, e)| {
            let truth = cluster
                .node_truth(node, s, e)
                .ok_or_else(|| status::not_found("nodes", "", node))?;
            Ok(ok(json!(truth)))
        }),
        (Method::GET, ["truth", "pods", ns, name]) => window(&req).and_then(|(s, e)| {
            let truth = cluster
                .pod_truth(ns, name, s, e)
                .ok_or_else(|| status::not_found("pods", "", name))?;
            Ok(ok(json!(truth)))
        }),
        (Method::PUT, ["faults", node]) => {
            let node = node.to_string();
            match body_json::<Fault>(req).await {
                Ok(fault) => cluster
                    .set_fault(&node, Some(fault))
                    .await
                    .map(|_| ok(json!({})))
                    .map_err(|e| status::bad_request(&e.to_string())),
                Err(resp) => Err(resp),
            }
        }
        (Method::DELETE, ["faults", node]) => cluster
            .set_fault(node, None)
            .await
            .map(|_| ok(json!({})))
            .map_err(|e| status::bad_request(&e.to_string())),
        (Method::POST, ["actions"]) => match body_json::<Action>(req).await {
            Ok(action) => cluster
                .act(action)
                .await
                .map(ok)
                .map_err(|e| status::bad_request(&e.to_string())),
            Err(resp) => Err(resp),
        },
        (Method::GET, ["kubelets"]) => Ok(ok(json!(cluster.kubelet_stats().await))),
        (Method::GET, ["reviews"]) => Ok(ok(reviews(&cluster))),
        (Method::GET, ["policy"]) => Ok(ok(json!(cluster.authority().policy()))),
        (Method::PUT, ["policy"]) => body_json::<Policy>(req).await.map(|p| {
            cluster.set_policy(p);
            ok(json!({}))
        }),
        (Method::GET, ["replicas"]) => Ok(ok(replicas(&cluster))),
        (Method::PUT, ["replicas"]) => body_json::<Vec<String>>(req).await.map(|a| {
            cluster.set_replicas(&a);
            ok(json!({}))
        }),
        _ => Err(status::not_found("paths", "kubesim", &path)),
    };
    result.unwrap_or_else(|resp| resp)
}

fn summary(cluster: &Cluster) -> serde_json::Value {
    let (nodes, pods) = cluster.with_world(|w| (w.nodes.len(), w.pods.len()));
    json!({"apiUrl": cluster.api_url(), "dir": cluster.dir(), "nodes": nodes, "pods": pods, "now": now_ms(),
           "seed": cluster.inner.shape.seed})
}

fn reviews(cluster: &Cluster) -> serde_json::Value {
    let a = cluster.authority();
    json!({"tokenReviews": a.token_reviews.load(Ordering::Relaxed), "subjectAccessReviews": a.access_reviews.load(Ordering::Relaxed)})
}

fn replicas(cluster: &Cluster) -> serde_json::Value {
    let list: Vec<_> = cluster
        .inner
        .proxy
        .replicas()
        .into_iter()
        .map(|(a, ready)| json!({"address": a, "ready": ready}))
        .collect();
    json!(list)
}
