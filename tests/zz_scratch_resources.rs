//! TEMPORARY scratch (helper session), deleted after use.
use chaos::apiserver::resources::{ResourceRequest, handle};
use chaos::apiserver::store::{Kind, Store};
use std::time::Instant;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scratch_scale() {
    let store = Store::new(200_000);
    let t = Instant::now();
    for i in 0..150_000 {
        store.upsert(Kind::Pods, serde_json::json!({"metadata": {"name": format!("pod-{i:06}"), "namespace": format!("ns-{}", i % 50), "labels": {"app": "web", "pod-template-hash": "abc"}, "creationTimestamp": "2025-01-01T00:00:00Z", "uid": "0b9f6c4e-1234-4a5b-9c8d-0123456789ab"}, "spec": {"nodeName": format!("node-{}", i % 5000), "containers": [{"name": "main", "image": "nginx:1.27"}]}, "status": {"phase": "Running", "podIP": "10.0.0.1", "containerStatuses": [{"name": "main", "ready": true, "restartCount": 0, "state": {"running": {"startedAt": "2025-01-01T00:00:00Z"}}}]}}));
    }
    println!("upsert 150k: {:?}", t.elapsed());
    for _ in 0..3 {
        let t = Instant::now();
        let mut n = 0;
        store.scan(Kind::Pods, None, None, std::ops::Bound::Unbounded, |_| { n += 1; std::ops::ControlFlow::Continue(()) }).unwrap();
        println!("scan {n}: {:?}", t.elapsed());
        let t = Instant::now();
        let snap = store.snapshot(Kind::Pods, None);
        println!("snapshot {}: {:?}", snap.objects.len(), t.elapsed());
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let s2 = store.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let store = s2.clone();
            tokio::spawn(chaos::http::serve_connection(stream, move |req: chaos::http::Request| {
                let store = store.clone();
                async move { handle(store, ResourceRequest { kind: Kind::Pods, namespace: None, name: None }, req).await }
            }));
        }
    });
    let client = kube::Client::try_from(kube::Config::new(format!("http://{addr}").parse().unwrap())).unwrap();
    for (accept, q) in [("application/json", ""), ("application/json;as=Table;v=v1;g=meta.k8s.io", ""), ("application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1", ""), ("application/json", "?limit=500"), ("application/json", "?fieldSelector=spec.nodeName%3Dnode-7")] {
        let t = Instant::now();
        let req = http::Request::get(format!("/api/v1/pods{q}")).header("Accept", accept).body(Vec::new()).unwrap();
        let body = client.request_text(req).await.unwrap();
        println!("{accept} {q}: {} bytes in {:?}", body.len(), t.elapsed());
    }
    // page through all with limit 500 after 1000 changes
    let mut token: Option<String> = None; let t = Instant::now(); let mut n = 0; let mut pages = 0;
    for i in 0..1000 { store.delete(Kind::Pods, &format!("ns-{}", i % 50), &format!("pod-{i:06}")); }
    loop {
        let q = match &token { Some(t) => format!("?limit=500&continue={t}"), None => "?limit=500".into() };
        let req = http::Request::get(format!("/api/v1/pods{q}")).body(Vec::new()).unwrap();
        let v: serde_json::Value = client.request(req).await.unwrap();
        n += v["items"].as_array().unwrap().len(); pages += 1;
        if pages == 1 { for i in 1000..3000 { store.delete(Kind::Pods, &format!("ns-{}", i % 50), &format!("pod-{i:06}")); } }
        token = v["metadata"]["continue"].as_str().map(str::to_string);
        if token.is_none() { break; }
    }
    println!("paged {n} items in {pages} pages in {:?}", t.elapsed());
}
