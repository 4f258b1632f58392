//! Authorization through SubjectAccessReview, as the apiserver's delegating authorizer does:
//! `system:masters` is allowed without asking; other answers are cached, allowed ones for
//! `--authorization-webhook-cache-authorized-ttl` and denied ones for
//! `--authorization-webhook-cache-unauthorized-ttl`. A cache hit takes one mutex and one hash
//! and allocates only the reason's `Arc` clone.

use super::attributes::Attributes;
use super::cache::TtlCache;
use super::user::User;
use crate::api::error::{ApiError, Forbidden, ForbiddenTarget};
use crate::api::types::GROUP;
use k8s_openapi::api::authorization::v1::{
    NonResourceAttributes, ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::api::{Api, PostParams};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// An answer: allowed, and the authorizer's reason.
type Decision = (bool, Arc<str>);

pub struct Authorizer {
    /// For SubjectAccessReview; `None` denies everyone but `system:masters`.
    pub client: Option<kube::Client>,
    pub allowed_ttl: Duration,
    pub denied_ttl: Duration,
    cache: TtlCache<Decision>,
    /// SubjectAccessReview requests sent (cache misses).
    pub access_reviews: AtomicU64,
}

fn key<'a>(user: &'a User, attrs: &'a Attributes<'a>) -> impl Iterator<Item = &'a str> + Clone {
    let extra = user.extra.iter().flat_map(|(k, vs)| {
        std::iter::once(k.as_str())
            .chain(vs.iter().map(String::as_str))
            .chain(["\u{0}"])
    });
    [user.name.as_str(), user.uid.as_str()]
        .into_iter()
        .chain(user.groups.iter().map(String::as_str))
        .chain(["\u{0}"])
        .chain(extra)
        .chain(attrs.parts())
}

impl Authorizer {
    pub fn new(client: Option<kube::Client>, allowed_ttl: Duration, denied_ttl: Duration) -> Self {
        Authorizer {
            client,
            allowed_ttl,
            denied_ttl,
            cache: TtlCache::default(),
            access_reviews: AtomicU64::new(0),
        }
    }

    /// `Ok` when allowed; 403 when denied, 500 when the review failed.
    pub async fn authorize(&self, user: &User, attrs: &Attributes<'_>) -> Result<(), ApiError> {
        if user.is_master() {
            return Ok(());
        }
        let (allowed, reason) = match self.cache.get(key(user, attrs)) {
            Some(decision) => decision,
            None => {
                let decision = self.review(user, attrs).await?;
                let ttl = if decision.0 { self.allowed_ttl } else { self.denied_ttl };
                self.cache.insert(key(user, attrs), decision.clone(), ttl);
                decision
            }
        };
        if allowed {
            return Ok(());
        }
        Err(ApiError::Forbidden(Box::new(forbidden(user, attrs, &reason))))
    }

    async fn review(&self, user: &User, attrs: &Attributes<'_>) -> Result<Decision, ApiError> {
        let Some(client) = self.client.clone() else {
            return Ok((false, "no authorizer configured".into()));
        };
        self.access_reviews.fetch_add(1, Ordering::Relaxed);
        let review = SubjectAccessReview {
            spec: spec(user, attrs),
            ..Default::default()
        };
        match Api::<SubjectAccessReview>::all(client)
            .create(&PostParams::default(), &review)
            .await
        {
            Ok(answer) => {
                let status = answer.status.unwrap_or_default();
                let allowed = status.allowed && status.denied != Some(true);
                Ok((allowed, status.reason.unwrap_or_default().into()))
            }
            Err(e) => {
                tracing::warn!(error = %e, "SubjectAccessReview failed");
                Err(ApiError::Internal {
                    message: format!("authorization failed: {e}"),
                })
            }
        }
    }
}

fn opt(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

fn spec(user: &User, attrs: &Attributes<'_>) -> SubjectAccessReviewSpec {
    let mut spec = SubjectAccessReviewSpec {
        user: Some(user.name.clone()),
        uid: opt(&user.uid),
        groups: Some(user.groups.clone()),
        extra: (!user.extra.is_empty()).then(|| user.extra.clone()),
        ..Default::default()
    };
    match *attrs {
        Attributes::Resource {
            verb,
            version,
            namespace,
            resource,
            subresource,
            name,
        } => {
            spec.resource_attributes = Some(ResourceAttributes {
                group: Some(GROUP.into()),
                version: Some(version.into()),
                verb: Some(verb.into()),
                namespace: opt(namespace),
                resource: opt(resource),
                subresource: opt(subresource),
                name: opt(name),
                ..Default::default()
            })
        }
        Attributes::NonResource { verb, path } => {
            spec.non_resource_attributes = Some(NonResourceAttributes {
                path: Some(path.into()),
                verb: Some(verb.into()),
            })
        }
    }
    spec
}

fn forbidden(user: &User, attrs: &Attributes<'_>, reason: &str) -> Forbidden {
    let target = match *attrs {
        Attributes::Resource {
            namespace,
            resource,
            subresource,
            name,
            ..
        } => ForbiddenTarget::Resource {
            group: GROUP.into(),
            resource: resource.into(),
            subresource: subresource.into(),
            namespace: namespace.into(),
            name: name.into(),
        },
        Attributes::NonResource { path, .. } => ForbiddenTarget::NonResource { path: path.into() },
    };
    Forbidden {
        user: user.name.clone(),
        verb: attrs.verb().into(),
        target,
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str, groups: &[&str]) -> User {
        User {
            name: name.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn masters_pass_and_others_are_denied_without_an_authorizer() {
        let authz = Authorizer::new(None, Duration::from_secs(10), Duration::from_secs(10));
        let attrs = Attributes::of("GET", "/apis/metrics.k8s.io/v1beta1/namespaces/x/pods", "");
        assert!(
            authz
                .authorize(&user("root", &["system:masters"]), &attrs)
                .await
                .is_ok()
        );
        let Err(ApiError::Forbidden(f)) = authz.authorize(&user("bob", &[]), &attrs).await else {
            panic!("bob is allowed")
        };
        assert_eq!(
            ApiError::Forbidden(f).to_string(),
            "pods.metrics.k8s.io is forbidden: User \"bob\" cannot list resource \"pods\" in API group \
             \"metrics.k8s.io\" in the namespace \"x\": no authorizer configured"
        );
    }

    #[test]
    fn keys_separate_users_groups_and_attributes() {
        let attrs = Attributes::of("GET", "/metrics", "");
        let (ua, ub) = (user("a", &["g"]), user("a", &[]));
        let a: Vec<_> = key(&ua, &attrs).collect();
        let b: Vec<_> = key(&ub, &attrs).collect();
        assert_ne!(a, b);
    }
}

#[cfg(test)]
mod bench {
    use super::*;

    /// `cargo test --release -p ha-metrics-server --lib auth::authz::bench -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn cache_hit_cost() {
        let authz = Authorizer::new(None, Duration::from_secs(60), Duration::from_secs(60));
        let user = User {
            name: "system:serviceaccount:kube-system:horizontal-pod-autoscaler".into(),
            groups: vec!["system:serviceaccounts".into(), "system:authenticated".into()],
            ..Default::default()
        };
        let attrs = Attributes::of(
            "GET",
            "/apis/metrics.k8s.io/v1beta1/namespaces/team-1/pods",
            "labelSelector=a",
        );
        authz
            .cache
            .insert(key(&user, &attrs), (true, "".into()), Duration::from_secs(60));
        let n = 1_000_000;
        let start = std::time::Instant::now();
        for _ in 0..n {
            assert!(authz.cache.get(key(&user, &attrs)).is_some_and(|d| d.0));
        }
        println!("authorization cache hit: {:?} per lookup", start.elapsed() / n);
    }
}
