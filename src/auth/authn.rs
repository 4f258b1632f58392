//! Authentication, in the apiserver's order: the front-proxy certificate with `X-Remote-*`
//! headers, then a client certificate from the client CA, then a bearer token through
//! TokenReview (answers cached for `--authentication-token-webhook-cache-ttl`). No credentials,
//! or credentials that fail, give `None` (401): there is no anonymous user.

use super::cache::TtlCache;
use super::cas::DynamicAuthn;
use super::user::User;
use super::verifier::{ClientChain, Verdict};
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use kube::api::{Api, PostParams};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Longest bearer token sent to TokenReview; longer ones are refused without asking.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// How one request tried to identify itself.
pub struct Credentials<'a, F> {
    pub chain: Option<&'a ClientChain>,
    /// Yields every (name, value) header pair.
    pub headers: F,
    /// The `Authorization` header's value.
    pub authorization: Option<&'a str>,
}

pub struct Authenticator {
    pub dynamic: Arc<DynamicAuthn>,
    /// For TokenReview; `None` refuses every token.
    pub client: Option<kube::Client>,
    pub token_ttl: Duration,
    tokens: TtlCache<Option<Arc<User>>>,
    /// TokenReview requests sent (cache misses).
    pub token_reviews: AtomicU64,
}

impl Authenticator {
    pub fn new(dynamic: Arc<DynamicAuthn>, client: Option<kube::Client>, token_ttl: Duration) -> Self {
        Authenticator {
            dynamic,
            client,
            token_ttl,
            tokens: TtlCache::default(),
            token_reviews: AtomicU64::new(0),
        }
    }

    /// The caller, or `None` for 401.
    pub async fn authenticate<'a, F, I>(&self, creds: Credentials<'a, F>) -> Option<Arc<User>>
    where
        F: Fn() -> I,
        I: Iterator<Item = (&'a str, &'a str)>,
    {
        if let Some(chain) = creds.chain {
            let snapshot = self.dynamic.load();
            match chain.verdict(&snapshot) {
                Verdict::FrontProxy { cn } => {
                    let (_, rh) = snapshot.request_header.as_ref()?;
                    match rh.authenticate(&cn, creds.headers) {
                        Ok(Some(user)) => return Some(Arc::new(user.authenticated())),
                        Ok(None) => {}
                        Err(e) => tracing::debug!("{e}"),
                    }
                }
                Verdict::Client(user) => return Some(user),
                Verdict::Untrusted => {}
            }
        }
        let token = creds.authorization?.strip_prefix("Bearer ")?.trim();
        if token.is_empty() || token.len() > MAX_TOKEN_LEN {
            return None;
        }
        self.token(token).await
    }

    async fn token(&self, token: &str) -> Option<Arc<User>> {
        if let Some(answer) = self.tokens.get(std::iter::once(token)) {
            return answer;
        }
        let client = self.client.clone()?;
        self.token_reviews.fetch_add(1, Ordering::Relaxed);
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: Some(token.to_string()),
                audiences: None,
            },
            ..Default::default()
        };
        let answer = match Api::<TokenReview>::all(client)
            .create(&PostParams::default(), &review)
            .await
        {
            Ok(review) => review
                .status
                .filter(|s| s.authenticated == Some(true))
                .and_then(|s| s.user),
            Err(e) => {
                tracing::warn!(error = %e, "TokenReview failed");
                return None;
            }
        };
        let user = answer.and_then(|u| {
            Some(Arc::new(
                User {
                    name: u.username.filter(|n| !n.is_empty())?,
                    uid: u.uid.unwrap_or_default(),
                    groups: u.groups.unwrap_or_default(),
                    extra: u.extra.unwrap_or_default(),
                }
                .authenticated(),
            ))
        });
        self.tokens.insert(std::iter::once(token), user.clone(), self.token_ttl);
        user
    }
}
