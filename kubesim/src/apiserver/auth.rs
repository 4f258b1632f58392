//! Who a caller is and what it may do: a scriptable policy of bearer tokens and allow rules,
//! served as TokenReview and SubjectAccessReview, with counters so tests can see caching.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// A user as Kubernetes authentication reports it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct UserInfo {
    pub username: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, Vec<String>>,
}

/// One allow rule; an empty list matches anything, `"*"` too.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Rule {
    pub users: Vec<String>,
    pub groups: Vec<String>,
    pub verbs: Vec<String>,
    pub api_groups: Vec<String>,
    pub resources: Vec<String>,
    pub namespaces: Vec<String>,
    pub names: Vec<String>,
    /// Non-resource paths (`/healthz`, `/metrics`); a trailing `*` matches a prefix.
    pub non_resource_urls: Vec<String>,
}

/// Tokens, rules, and who a credential-less plain-HTTP caller is.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Policy {
    pub tokens: BTreeMap<String, UserInfo>,
    pub rules: Vec<Rule>,
    /// Identity of plain-HTTP requests without credentials (kubectl sends none over http).
    pub anonymous: Option<UserInfo>,
}

/// What a SubjectAccessReview asks.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Attributes {
    pub user: String,
    pub groups: Vec<String>,
    pub verb: String,
    pub api_group: String,
    pub resource: String,
    pub subresource: String,
    pub namespace: String,
    pub name: String,
    /// Set for non-resource requests.
    pub path: Option<String>,
}

fn any_or(list: &[String], value: &str) -> bool {
    list.is_empty() || list.iter().any(|v| v == "*" || v == value)
}

impl Rule {
    pub fn allows(&self, a: &Attributes) -> bool {
        let who = (self.users.is_empty() && self.groups.is_empty())
            || self.users.iter().any(|u| u == "*" || *u == a.user)
            || self.groups.iter().any(|g| a.groups.contains(g));
        if !who || !any_or(&self.verbs, &a.verb) {
            return false;
        }
        match &a.path {
            Some(path) => self.non_resource_urls.iter().any(|p| match p.strip_suffix('*') {
                Some(prefix) => path.starts_with(prefix),
                None => p == path,
            }),
            None => {
                let resource = if a.subresource.is_empty() {
                    a.resource.clone()
                } else {
                    format!("{}/{}", a.resource, a.subresource)
                };
                self.non_resource_urls.is_empty()
                    && any_or(&self.api_groups, &a.api_group)
                    && any_or(&self.resources, &resource)
                    && any_or(&self.namespaces, &a.namespace)
                    && any_or(&self.names, &a.name)
            }
        }
    }
}

impl Policy {
    /// Allowed if the user is in `system:masters` or any rule allows.
    pub fn decide(&self, a: &Attributes) -> (bool, String) {
        if a.groups.iter().any(|g| g == "system:masters") {
            return (true, "system:masters".into());
        }
        match self.rules.iter().position(|r| r.allows(a)) {
            Some(i) => (true, format!("allowed by kubesim rule {i}")),
            None => (false, String::new()),
        }
    }
}

/// The live policy and review counters.
#[derive(Debug, Default)]
pub struct Authority {
    policy: RwLock<Policy>,
    pub token_reviews: AtomicU64,
    pub access_reviews: AtomicU64,
}

impl Authority {
    pub fn new(policy: Policy) -> Self {
        Authority {
            policy: RwLock::new(policy),
            ..Default::default()
        }
    }

    pub fn set_policy(&self, policy: Policy) {
        *self.policy.write().expect("policy lock") = policy;
    }

    pub fn policy(&self) -> Policy {
        self.policy.read().expect("policy lock").clone()
    }

    /// The user behind a bearer token.
    pub fn user_for_token(&self, token: &str) -> Option<UserInfo> {
        self.policy.read().expect("policy lock").tokens.get(token).cloned()
    }

    pub fn anonymous(&self) -> Option<UserInfo> {
        self.policy.read().expect("policy lock").anonymous.clone()
    }

    /// Answers a `TokenReview` request body.
    pub fn token_review(&self, body: &Value) -> Value {
        self.token_reviews.fetch_add(1, Ordering::Relaxed);
        let token = body["spec"]["token"].as_str().unwrap_or_default();
        let status = match self.user_for_token(token) {
            Some(user) => {
                json!({"authenticated": true, "user": user, "audiences": body["spec"]["audiences"]})
            }
            None => json!({"authenticated": false, "error": "invalid bearer token"}),
        };
        json!({"kind": "TokenReview", "apiVersion": "authentication.k8s.io/v1", "metadata": {"creationTimestamp": null},
               "spec": body["spec"], "status": status})
    }

    /// Answers a `SubjectAccessReview` request body.
    pub fn access_review(&self, body: &Value) -> Value {
        self.access_reviews.fetch_add(1, Ordering::Relaxed);
        let spec = &body["spec"];
        let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
        let ra = &spec["resourceAttributes"];
        let nra = &spec["nonResourceAttributes"];
        let attrs = Attributes {
            user: text(&spec["user"]),
            groups: spec["groups"]
                .as_array()
                .map(|g| g.iter().map(text).collect())
                .unwrap_or_default(),
            verb: if ra.is_object() {
                text(&ra["verb"])
            } else {
                text(&nra["verb"])
            },
            api_group: text(&ra["group"]),
            resource: text(&ra["resource"]),
            subresource: text(&ra["subresource"]),
            namespace: text(&ra["namespace"]),
            name: text(&ra["name"]),
            path: if ra.is_object() { None } else { Some(text(&nra["path"])) },
        };
        let (allowed, reason) = self.policy.read().expect("policy lock").decide(&attrs);
        let mut status = json!({"allowed": allowed});
        if !reason.is_empty() {
            status["reason"] = json!(reason);
        }
        json!({"kind": "SubjectAccessReview", "apiVersion": "authorization.k8s.io/v1",
               "metadata": {"creationTimestamp": null}, "spec": spec, "status": status})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy {
            rules: vec![Rule {
                users: vec!["alice".into()],
                verbs: vec!["get".into(), "list".into()],
                api_groups: vec!["metrics.k8s.io".into()],
                resources: vec!["pods".into()],
                namespaces: vec!["team-1".into()],
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn pods(user: &str, ns: &str) -> Attributes {
        Attributes {
            user: user.into(),
            verb: "list".into(),
            api_group: "metrics.k8s.io".into(),
            resource: "pods".into(),
            namespace: ns.into(),
            ..Default::default()
        }
    }

    #[test]
    fn rules_scope_by_user_namespace_and_resource() {
        let p = policy();
        assert!(p.decide(&pods("alice", "team-1")).0);
        assert!(!p.decide(&pods("alice", "default")).0);
        assert!(!p.decide(&pods("bob", "team-1")).0);
        let mut nodes = pods("alice", "");
        nodes.resource = "nodes".into();
        assert!(!p.decide(&nodes).0);
        let mut master = pods("root", "x");
        master.groups = vec!["system:masters".into()];
        assert!(p.decide(&master).0);
    }

    #[test]
    fn non_resource_rules_match_paths_and_prefixes() {
        let rule = Rule {
            non_resource_urls: vec!["/healthz".into(), "/debug/*".into()],
            ..Default::default()
        };
        let at = |path: &str| Attributes {
            verb: "get".into(),
            path: Some(path.into()),
            ..Default::default()
        };
        assert!(rule.allows(&at("/healthz")));
        assert!(rule.allows(&at("/debug/pprof")));
        assert!(!rule.allows(&at("/metrics")));
        assert!(!rule.allows(&pods("x", "y")));
    }

    #[test]
    fn reviews_answer_and_count() {
        let mut p = policy();
        p.tokens.insert(
            "t1".into(),
            UserInfo {
                username: "alice".into(),
                ..Default::default()
            },
        );
        let a = Authority::new(p);
        let ok = a.token_review(&json!({"spec": {"token": "t1"}}));
        assert_eq!(ok["status"]["user"]["username"], "alice");
        let bad = a.token_review(&json!({"spec": {"token": "nope"}}));
        assert_eq!(bad["status"]["authenticated"], false);
        let sar = json!({"spec": {"user": "alice", "resourceAttributes": {"verb": "list", "group": "metrics.k8s.io", "resource": "pods", "namespace": "team-1"}}});
        assert_eq!(a.access_review(&sar)["status"]["allowed"], true);
        assert_eq!(a.token_reviews.load(Ordering::Relaxed), 2);
        assert_eq!(a.access_reviews.load(Ordering::Relaxed), 1);
    }
}
