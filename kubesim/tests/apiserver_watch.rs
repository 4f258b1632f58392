//! The fake apiserver's list/get/watch layer against the real kube-rs client: watchers (list-watch,
//! streaming lists, metadata), field-selector transitions, pagination, 404/410/400 Statuses and
//! the Table kubectl asks for. A tiny router stands in for `server.rs`.

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ListParams, WatchEvent, WatchParams};
use kube::core::PartialObjectMeta;
use kube::runtime::watcher;
use kube::runtime::watcher::Event;
use kube::{Client, ResourceExt};
use kubesim::apiserver::resources::{ResourceRequest, handle};
use kubesim::apiserver::store::{Kind, Store};
use kubesim::http::{Request, json_response, serve_connection};
use serde_json::{Value, json};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Every wait in these tests is bounded by this.
const WAIT: Duration = Duration::from_secs(10);

fn route(req: &Request) -> Option<ResourceRequest> {
    let segments: Vec<&str> = req.uri().path().trim_matches('/').split('/').collect();
    let (kind, namespace, name) = match segments.as_slice() {
        ["api", "v1", "nodes"] => (Kind::Nodes, None, None),
        ["api", "v1", "nodes", name] => (Kind::Nodes, None, Some(name)),
        ["api", "v1", "pods"] => (Kind::Pods, None, None),
        ["api", "v1", "namespaces", ns, "pods"] => (Kind::Pods, Some(ns), None),
        ["api", "v1", "namespaces", ns, "pods", name] => (Kind::Pods, Some(ns), Some(name)),
        _ => return None,
    };
    let own = |s: Option<&&str>| s.map(|s| s.to_string());
    Some(ResourceRequest {
        kind,
        namespace: own(namespace),
        name: own(name),
    })
}

/// Serves the store on 127.0.0.1 and returns a kube client for it.
async fn start(store: Arc<Store>) -> anyhow::Result<Client> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let store = store.clone();
            tokio::spawn(serve_connection(stream, move |req: Request| {
                let store = store.clone();
                async move {
                    match route(&req) {
                        Some(route) => handle(store, route, req).await,
                        None => json_response(http::StatusCode::NOT_FOUND, &json!({"kind": "Status", "code": 404})),
                    }
                }
            }));
        }
    });
    let mut config = kube::Config::new(format!("http://{addr}").parse()?);
    config.default_namespace = "default".into();
    Ok(Client::try_from(config)?)
}

fn node(name: &str, labels: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": labels, "creationTimestamp": "2025-01-01T00:00:00Z"},
        "spec": {},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]}
    })
}

fn pod(ns: &str, name: &str, node: &str, phase: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": "web"}, "creationTimestamp": "2025-01-01T00:00:00Z"},
        "spec": {"nodeName": node, "containers": [{"name": "main"}]},
        "status": {"phase": phase}
    })
}

async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, f)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// Reads watcher events until the initial list is done; returns the names seen in it.
async fn initial_names<K: kube::Resource>(
    events: &mut (impl futures::Stream<Item = Result<Event<K>, watcher::Error>> + Unpin),
) -> Vec<String> {
    let mut names = Vec::new();
    loop {
        match within("the initial list", events.next())
            .await
            .expect("stream open")
            .expect("no watch error")
        {
            Event::Init => names.clear(),
            Event::InitApply(o) => names.push(o.meta().name.clone().unwrap_or_default()),
            Event::InitDone => return names,
            other => panic!("unexpected event before InitDone: {:?}", std::mem::discriminant(&other)),
        }
    }
}

/// The next Apply or Delete, skipping nothing: `("apply"|"delete", object)`.
async fn next_change<K: kube::Resource>(
    events: &mut (impl futures::Stream<Item = Result<Event<K>, watcher::Error>> + Unpin),
) -> (&'static str, K) {
    match within("a change", events.next())
        .await
        .expect("stream open")
        .expect("no watch error")
    {
        Event::Apply(o) => ("apply", o),
        Event::Delete(o) => ("delete", o),
        _ => panic!("expected Apply or Delete"),
    }
}

async fn follows_nodes(config: watcher::Config) -> anyhow::Result<()> {
    let store = Store::new(1000);
    store.upsert(Kind::Nodes, node("node-1", json!({})));
    store.upsert(Kind::Nodes, node("node-2", json!({})));
    let client = start(store.clone()).await?;
    let mut events = watcher(Api::<Node>::all(client), config).boxed();

    tracing::info!("the initial list shows the nodes already there");
    assert_eq!(initial_names(&mut events).await, ["node-1", "node-2"]);

    tracing::info!("an added node, a label change and a deletion follow in order");
    store.upsert(Kind::Nodes, node("node-3", json!({})));
    let (change, added) = next_change(&mut events).await;
    assert_eq!((change, added.name_any()), ("apply", "node-3".to_string()));
    store.upsert(Kind::Nodes, node("node-1", json!({"tier": "gold"})));
    let (change, relabelled) = next_change(&mut events).await;
    assert_eq!((change, relabelled.name_any()), ("apply", "node-1".to_string()));
    assert_eq!(relabelled.labels().get("tier").map(String::as_str), Some("gold"));
    let rv = store.delete(Kind::Nodes, "", "node-2").expect("node-2 exists");
    let (change, deleted) = next_change(&mut events).await;
    assert_eq!((change, deleted.name_any()), ("delete", "node-2".to_string()));
    assert_eq!(deleted.resource_version(), Some(rv.to_string()));
    Ok(())
}

#[tokio::test]
async fn list_watch_watcher_follows_nodes() -> anyhow::Result<()> {
    follows_nodes(watcher::Config::default()).await
}

#[tokio::test]
async fn streaming_list_watcher_follows_nodes() -> anyhow::Result<()> {
    follows_nodes(watcher::Config::default().streaming_lists()).await
}

#[tokio::test]
async fn metadata_watcher_follows_pods() -> anyhow::Result<()> {
    let store = Store::new(1000);
    store.upsert(Kind::Pods, pod("default", "web-0", "node-1", "Running"));
    store.upsert(Kind::Pods, pod("kube-system", "dns-0", "node-2", "Running"));
    let client = start(store.clone()).await?;
    let config = watcher::Config::default().page_size(1);
    let mut events = watcher(Api::<PartialObjectMeta<Pod>>::all(client), config).boxed();
    let first: Vec<String> = initial_names::<PartialObjectMeta<Pod>>(&mut events).await;
    assert_eq!(first, ["web-0", "dns-0"]);

    store.upsert(Kind::Pods, pod("default", "web-1", "node-1", "Pending"));
    let (change, added) = next_change(&mut events).await;
    assert_eq!((change, added.name_any()), ("apply", "web-1".to_string()));
    assert_eq!(added.namespace().as_deref(), Some("default"));
    store.delete(Kind::Pods, "kube-system", "dns-0");
    let (change, deleted) = next_change(&mut events).await;
    assert_eq!((change, deleted.name_any()), ("delete", "dns-0".to_string()));
    Ok(())
}

#[tokio::test]
async fn field_selector_watchers_see_pods_leave() -> anyhow::Result<()> {
    let store = Store::new(1000);
    store.upsert(Kind::Pods, pod("default", "a", "node-1", "Running"));
    store.upsert(Kind::Pods, pod("default", "b", "node-2", "Running"));
    let client = start(store.clone()).await?;
    let pods = Api::<Pod>::all(client);
    let by_node = watcher::Config::default().fields("spec.nodeName=node-1");
    let mut on_node = watcher(pods.clone(), by_node).boxed();
    let running = watcher::Config::default()
        .fields("status.phase=Running")
        .streaming_lists();
    let mut running = watcher(pods, running).boxed();
    assert_eq!(initial_names(&mut on_node).await, ["a"]);
    assert_eq!(initial_names(&mut running).await, ["a", "b"]);

    tracing::info!("b moves onto node-1: ADDED for the node watcher");
    store.upsert(Kind::Pods, pod("default", "b", "node-1", "Running"));
    let (change, moved_in) = next_change(&mut on_node).await;
    assert_eq!((change, moved_in.name_any()), ("apply", "b".to_string()));

    tracing::info!("a moves away from node-1: DELETED with its last matching content");
    let rv = store.upsert(Kind::Pods, pod("default", "a", "node-3", "Running"));
    let (change, moved_out) = next_change(&mut on_node).await;
    assert_eq!((change, moved_out.name_any()), ("delete", "a".to_string()));
    assert_eq!(
        moved_out.spec.as_ref().and_then(|s| s.node_name.as_deref()),
        Some("node-1")
    );
    assert_eq!(moved_out.resource_version(), Some(rv.to_string()));

    tracing::info!("the phase watcher saw a's move as a modification, then sees b stop running");
    let (change, _) = next_change(&mut running).await;
    assert_eq!(change, "apply");
    let (change, _) = next_change(&mut running).await;
    assert_eq!(change, "apply");
    store.upsert(Kind::Pods, pod("default", "b", "node-1", "Succeeded"));
    let (change, finished) = next_change(&mut running).await;
    assert_eq!((change, finished.name_any()), ("delete", "b".to_string()));
    Ok(())
}

#[tokio::test]
async fn list_paginates_at_the_first_pages_version() -> anyhow::Result<()> {
    let store = Store::new(1000);
    for name in ["p1", "p2", "p3", "p4", "p5"] {
        store.upsert(Kind::Pods, pod("default", name, "node-1", "Running"));
    }
    store.upsert(Kind::Pods, pod("other", "x", "node-1", "Running"));
    let client = start(store.clone()).await?;
    let pods: Api<Pod> = Api::default_namespaced(client.clone());

    let first = within("page 1", pods.list(&ListParams::default().limit(2))).await?;
    let names = |list: &kube::core::ObjectList<Pod>| list.items.iter().map(|p| p.name_any()).collect::<Vec<_>>();
    assert_eq!(names(&first), ["p1", "p2"]);
    assert_eq!(first.metadata.remaining_item_count, Some(3));
    let version = first.metadata.resource_version.clone();

    tracing::info!("changes after the first page do not show in later pages");
    store.upsert(Kind::Pods, pod("default", "p0", "node-1", "Running"));
    store.delete(Kind::Pods, "default", "p4");
    store.upsert(Kind::Pods, pod("default", "p6", "node-1", "Running"));
    let mut all = names(&first);
    let mut token = first.metadata.continue_.clone();
    while let Some(next) = token.filter(|t| !t.is_empty()) {
        let page = within(
            "next page",
            pods.list(&ListParams::default().limit(2).continue_token(&next)),
        )
        .await?;
        assert_eq!(page.metadata.resource_version, version);
        all.extend(names(&page));
        assert!(all.len() <= 5, "pagination does not end: {all:?}");
        token = page.metadata.continue_;
    }
    assert_eq!(all, ["p1", "p2", "p3", "p4", "p5"]);

    tracing::info!("a fresh list sees the changes; metadata lists paginate too");
    let now = within("a fresh list", pods.list(&ListParams::default())).await?;
    assert_eq!(names(&now), ["p0", "p1", "p2", "p3", "p5", "p6"]);
    let meta = within(
        "a metadata list",
        Api::<Pod>::all(client).list_metadata(&ListParams::default().limit(4)),
    )
    .await?;
    assert_eq!(meta.items.len(), 4);
    assert!(meta.metadata.continue_.is_some());
    Ok(())
}

#[tokio::test]
async fn statuses_for_missing_expired_and_bad_requests() -> anyhow::Result<()> {
    let store = Store::new(2);
    store.upsert(Kind::Nodes, node("node-1", json!({})));
    let client = start(store.clone()).await?;
    let nodes: Api<Node> = Api::all(client.clone());
    assert_eq!(within("get", nodes.get("node-1")).await?.name_any(), "node-1");
    let kube::Error::Api(missing) = within("get", nodes.get("nope")).await.expect_err("no such node") else {
        panic!("not a Status");
    };
    assert_eq!(
        (missing.code, missing.message.as_str()),
        (404, "nodes \"nope\" not found")
    );

    tracing::info!("a watch from a compacted resourceVersion gets one 410 ERROR event");
    for i in 0..5 {
        store.upsert(Kind::Nodes, node("node-1", json!({"i": i.to_string()})));
    }
    let stream = within("watch", nodes.watch(&WatchParams::default(), "2")).await?;
    let events: Vec<_> = within("the watch to end", stream.try_collect::<Vec<_>>()).await?;
    let [WatchEvent::Error(gone)] = events.as_slice() else {
        panic!("expected one ERROR event")
    };
    assert_eq!((gone.code, gone.reason.as_str()), (410, "Expired"));
    assert!(
        gone.message.starts_with("too old resource version: 2 ("),
        "{}",
        gone.message
    );

    tracing::info!("unsupported field labels are 400, list options that break validation 422");
    let bad = ListParams::default().fields("spec.bogus=1");
    let kube::Error::Api(bad) = within("list", nodes.list(&bad)).await.expect_err("bad field") else {
        panic!()
    };
    assert_eq!(
        (bad.code, bad.message.as_str()),
        (400, "field label not supported: spec.bogus")
    );
    let req = http::Request::get("/api/v1/nodes?sendInitialEvents=true").body(Vec::new())?;
    let kube::Error::Api(invalid) = within("list", client.request::<Value>(req)).await.expect_err("422") else {
        panic!()
    };
    assert_eq!(invalid.code, 422);
    Ok(())
}

#[tokio::test]
async fn table_for_kubectl_get() -> anyhow::Result<()> {
    let store = Store::new(100);
    store.upsert(
        Kind::Nodes,
        node("node-1", json!({"node-role.kubernetes.io/control-plane": ""})),
    );
    store.upsert(Kind::Pods, pod("default", "web-0", "node-1", "Running"));
    store.upsert(Kind::Pods, pod("kube-system", "dns-0", "node-1", "Running"));
    let client = start(store).await?;
    let accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
    let req = http::Request::get("/api/v1/nodes?limit=500")
        .header("Accept", accept)
        .body(Vec::new())?;
    let table: Value = within("table", client.request(req)).await?;
    assert_eq!(
        (table["kind"].as_str(), table["apiVersion"].as_str()),
        (Some("Table"), Some("meta.k8s.io/v1"))
    );
    let columns: Vec<_> = table["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["priority"] == 0)
        .map(|c| c["name"].clone())
        .collect();
    assert_eq!(
        columns,
        [
            json!("Name"),
            json!("Status"),
            json!("Roles"),
            json!("Age"),
            json!("Version")
        ]
    );
    assert_eq!(
        table["rows"][0]["cells"].as_array().unwrap()[..3],
        [json!("node-1"), json!("Ready"), json!("control-plane")]
    );

    let req = http::Request::get("/api/v1/pods")
        .header("Accept", accept)
        .body(Vec::new())?;
    let table: Value = within("table", client.request(req)).await?;
    let namespaces: Vec<_> = table["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["object"]["metadata"]["namespace"].clone())
        .collect();
    assert_eq!(namespaces, [json!("default"), json!("kube-system")]);
    assert_eq!(
        table["rows"][0]["cells"].as_array().unwrap()[..4],
        [json!("web-0"), json!("0/1"), json!("Running"), json!("0")]
    );
    Ok(())
}

#[tokio::test]
async fn namespaced_watch_skips_other_namespaces() -> anyhow::Result<()> {
    let store = Store::new(1000);
    store.upsert(Kind::Pods, pod("default", "web-0", "node-1", "Running"));
    store.upsert(Kind::Pods, pod("kube-system", "dns-0", "node-1", "Running"));
    let client = start(store.clone()).await?;
    let pods: Api<Pod> = Api::default_namespaced(client);
    let mut stream = within("watch", pods.watch(&WatchParams::default(), "0")).await?.boxed();
    let mut next = async || match within("an event", stream.try_next()).await {
        Ok(Some(WatchEvent::Added(p))) => ("ADDED", p.name_any()),
        Ok(Some(WatchEvent::Modified(p))) => ("MODIFIED", p.name_any()),
        Ok(Some(WatchEvent::Deleted(p))) => ("DELETED", p.name_any()),
        other => panic!("unexpected {:?}", other.map(|e| e.map(|_| ()))),
    };
    assert_eq!(next().await, ("ADDED", "web-0".to_string()));
    store.upsert(Kind::Pods, pod("kube-system", "dns-1", "node-1", "Running"));
    store.upsert(Kind::Pods, pod("default", "web-0", "node-2", "Running"));
    store.delete(Kind::Pods, "kube-system", "dns-0");
    store.delete(Kind::Pods, "default", "web-0");
    assert_eq!(next().await, ("MODIFIED", "web-0".to_string()));
    assert_eq!(next().await, ("DELETED", "web-0".to_string()));
    Ok(())
}
