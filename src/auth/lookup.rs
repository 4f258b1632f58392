//! Reads and keeps watching `kube-system/extension-apiserver-authentication`, as
//! metrics-server's delegating authentication does, and applies each version to the live
//! settings ([`DynamicAuthn::apply_configmap`]): a rotated CA takes effect without a restart.

use super::cas::DynamicAuthn;
use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::runtime::watcher::{self, Event};
use std::sync::Arc;
use std::time::Duration;

pub const NAMESPACE: &str = "kube-system";
pub const NAME: &str = "extension-apiserver-authentication";
/// How long start-up waits for the first read before going on with the flags alone.
pub const FIRST_READ_TIMEOUT: Duration = Duration::from_secs(10);

fn apply(dynamic: &DynamicAuthn, cm: &ConfigMap) {
    let data = cm.data.clone().unwrap_or_default();
    match dynamic.apply_configmap(&data) {
        Ok(()) => tracing::info!(
            generation = dynamic.load().generation,
            "authentication settings loaded from {NAMESPACE}/{NAME}"
        ),
        Err(e) => tracing::error!("ignoring {NAMESPACE}/{NAME}: {e}"),
    }
}

/// Reads the ConfigMap once (bounded wait), then follows it in the background.
pub async fn follow(client: kube::Client, dynamic: Arc<DynamicAuthn>) {
    let api: Api<ConfigMap> = Api::namespaced(client, NAMESPACE);
    match tokio::time::timeout(FIRST_READ_TIMEOUT, api.get_opt(NAME)).await {
        Ok(Ok(Some(cm))) => apply(&dynamic, &cm),
        Ok(Ok(None)) => tracing::warn!("{NAMESPACE}/{NAME} not found: using flags only until it appears"),
        Ok(Err(e)) => tracing::warn!(error = %e, "unable to get {NAMESPACE}/{NAME}: using flags only"),
        Err(_) => tracing::warn!("reading {NAMESPACE}/{NAME} timed out: using flags only"),
    }
    let config = watcher::Config::default().fields(&format!("metadata.name={NAME}"));
    tokio::spawn(async move {
        let mut events = watcher::watcher(api, config).boxed();
        while let Some(event) = events.next().await {
            match event {
                Ok(Event::Apply(cm) | Event::InitApply(cm)) => apply(&dynamic, &cm),
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "watching {NAMESPACE}/{NAME}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    });
}
