//! Legacy discovery documents (`/version`, `/api`, `/apis`, group and group-version resource
//! lists), which every kubectl version understands. Aggregated discovery is not offered: kubectl
//! asks for it first and falls back to these.
//!
//! `metrics.k8s.io` lists the versions of both APIServices a metrics server registers, `v1`
//! first (the higher `versionPriority`, so the preferred version, as kube-aggregator orders
//! them) and `v1beta1`; the proxy forwards both.

use super::objects::KUBE_VERSION;
use serde_json::{Value, json};

/// The groups served besides the core group, with their versions, preferred first.
const GROUPS: &[(&str, &[&str])] = &[
    ("authentication.k8s.io", &["v1"]),
    ("authorization.k8s.io", &["v1"]),
    ("metrics.k8s.io", &["v1", "v1beta1"]),
];

pub fn version() -> Value {
    let minor = KUBE_VERSION.split('.').nth(1).unwrap_or("32");
    json!({"major": "1", "minor": minor, "gitVersion": KUBE_VERSION, "gitCommit": "kubesim",
           "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.23.0",
           "compiler": "gc", "platform": "linux/amd64"})
}

pub fn core_versions(server_address: &str) -> Value {
    json!({"kind": "APIVersions", "versions": ["v1"],
           "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]})
}

fn group(name: &str, versions: &[&str]) -> Value {
    let gv = |version: &str| json!({"groupVersion": format!("{name}/{version}"), "version": version});
    let all: Vec<Value> = versions.iter().map(|v| gv(v)).collect();
    json!({"name": name, "versions": all, "preferredVersion": gv(versions[0])})
}

pub fn group_list() -> Value {
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": GROUPS.iter().map(|(n, v)| group(n, v)).collect::<Vec<_>>()})
}

/// `/apis/<group>`, if the group is served.
pub fn group_doc(name: &str) -> Option<Value> {
    let (n, v) = GROUPS.iter().find(|(n, _)| *n == name)?;
    let mut doc = group(n, v);
    doc["kind"] = json!("APIGroup");
    doc["apiVersion"] = json!("v1");
    Some(doc)
}

fn resource(name: &str, singular: &str, namespaced: bool, kind: &str, verbs: &[&str], short: &[&str]) -> Value {
    let mut r = json!({"name": name, "singularName": singular, "namespaced": namespaced, "kind": kind, "verbs": verbs});
    if !short.is_empty() {
        r["shortNames"] = json!(short);
    }
    r
}

/// `/api/v1` and the served non-aggregated group versions.
pub fn resource_list(group_version: &str) -> Option<Value> {
    let read = ["get", "list", "watch"];
    let resources = match group_version {
        "v1" => vec![
            resource("configmaps", "configmap", true, "ConfigMap", &read, &["cm"]),
            resource("namespaces", "namespace", false, "Namespace", &read, &["ns"]),
            resource("nodes", "node", false, "Node", &read, &["no"]),
            resource("pods", "pod", true, "Pod", &read, &["po"]),
        ],
        "authentication.k8s.io/v1" => vec![resource(
            "tokenreviews",
            "tokenreview",
            false,
            "TokenReview",
            &["create"],
            &[],
        )],
        "authorization.k8s.io/v1" => {
            vec![resource(
                "subjectaccessreviews",
                "subjectaccessreview",
                false,
                "SubjectAccessReview",
                &["create"],
                &[],
            )]
        }
        _ => return None,
    };
    Some(json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources}))
}
