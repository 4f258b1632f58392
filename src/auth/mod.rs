//! Delegated authentication and authorization of the Metrics API, as an aggregated API server
//! does it (k8s.io/apiserver's `DelegatingAuthenticationOptions` and
//! `DelegatingAuthorizationOptions`, which metrics-server uses; docs/security.md):
//!
//! - [`cas`]: client CA, request-header CA, allowed and header names, from flags and the
//!   `kube-system/extension-apiserver-authentication` ConfigMap ([`lookup`]), swappable at run
//!   time; [`verifier`]: the TLS client-certificate verifier over them.
//! - [`authn`]: front-proxy certificate + `X-Remote-*` ([`request_header`]), client
//!   certificates, bearer tokens via TokenReview, cached.
//! - [`authz`]: SubjectAccessReview on the request's [`attributes`], cached; `system:masters`
//!   always allowed.
//!
//! The web layer calls [`Auth`] once per request, before any work; the peer channel never
//! sees a user (only mutually authenticated replicas talk there).

pub mod attributes;
pub mod authn;
pub mod authz;
pub mod cache;
pub mod cas;
pub mod lookup;
pub mod request_header;
pub mod user;
pub mod verifier;

use crate::config::Config;
use anyhow::Context;
use cas::{DynamicAuthn, Sources};
use request_header::RequestHeader;
use std::sync::Arc;

/// Authentication and authorization of the serving port.
pub struct Auth {
    pub authn: authn::Authenticator,
    pub authz: authz::Authorizer,
}

impl Auth {
    pub fn dynamic(&self) -> &Arc<DynamicAuthn> {
        &self.authn.dynamic
    }
}

/// The settings the flags give.
pub fn flag_sources(config: &Config) -> anyhow::Result<Sources> {
    let read = |p: &std::path::Path| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
    let request_header = match &config.requestheader_client_ca_file {
        Some(ca) => Some((
            read(ca)?,
            RequestHeader {
                allowed_names: config.requestheader_allowed_names.clone(),
                username_headers: config.requestheader_username_headers.clone(),
                group_headers: config.requestheader_group_headers.clone(),
                extra_prefixes: config.requestheader_extra_headers_prefix.clone(),
            },
        )),
        None => None,
    };
    Ok(Sources {
        client_ca: config.client_ca_file.as_deref().map(read).transpose()?,
        request_header,
    })
}

async fn client_for(path: &Option<std::path::PathBuf>, default: &kube::Client) -> anyhow::Result<kube::Client> {
    match path {
        Some(path) => {
            let kubeconfig =
                kube::config::Kubeconfig::read_from(path).with_context(|| format!("reading {}", path.display()))?;
            let options = kube::config::KubeConfigOptions::default();
            let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options).await?;
            Ok(kube::Client::try_from(config)?)
        }
        None => Ok(default.clone()),
    }
}

/// Builds authentication and authorization, reads the authentication ConfigMap (unless
/// `--authentication-skip-lookup`) and keeps following it.
pub async fn start(config: &Config, default_client: &kube::Client) -> anyhow::Result<Arc<Auth>> {
    let dynamic = DynamicAuthn::new(flag_sources(config)?).map_err(anyhow::Error::msg)?;
    let authn_client = client_for(&config.authentication_kubeconfig, default_client).await?;
    let authz_client = client_for(&config.authorization_kubeconfig, default_client).await?;
    if !config.authentication_skip_lookup {
        lookup::follow(authn_client.clone(), dynamic.clone()).await;
    }
    Ok(Arc::new(Auth {
        authn: authn::Authenticator::new(
            dynamic,
            Some(authn_client),
            config.authentication_token_webhook_cache_ttl,
        ),
        authz: authz::Authorizer::new(
            Some(authz_client),
            config.authorization_webhook_cache_authorized_ttl,
            config.authorization_webhook_cache_unauthorized_ttl,
        ),
    }))
}
