//! Pagination and `spec.nodeName` with three sharded replicas: a continue token from one replica
//! works on any other, also after the shard map's epoch changed (a replica killed between two
//! pages), and a node's pods come from the owners of that node's shard.

mod support;

use serde_json::Value;
use std::collections::BTreeSet;
use std::time::Duration;
use support::replicas::Replicas;
use support::*;

fn ha_flags() -> Vec<&'static str> {
    vec![
        "--shards=12",
        "--member-down-after=2s",
        "--quorum-loss-timeout=4s",
        "--fanout-timeout=2s",
    ]
}

fn keys(body: &str) -> (Vec<(String, String)>, Option<String>) {
    let list: Value = serde_json::from_str(body).unwrap();
    let items = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let meta = &p["metadata"];
            (
                meta["namespace"].as_str().unwrap().to_string(),
                meta["name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    (items, list["metadata"]["continue"].as_str().map(String::from))
}

async fn get_on(cluster: &kubesim::Cluster, port: u16, path: &str) -> String {
    let (code, body) = direct_get(cluster, port, path).await.unwrap();
    assert_eq!(code, 200, "{path}: {body}");
    body
}

/// Waits until every live replica serves every running pod.
async fn wait_everywhere(cluster: &kubesim::Cluster, replicas: &Replicas) {
    let want = running_pods(cluster);
    for (_, r) in replicas.alive() {
        eventually(Duration::from_secs(90), "every replica serves every pod", async || {
            let Ok((200, body)) = direct_get(cluster, r.port, "/apis/metrics.k8s.io/v1/pods").await else {
                return false;
            };
            keys(&body).0.into_iter().collect::<BTreeSet<_>>() == want
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn continue_tokens_work_on_any_replica_and_across_an_epoch_change() {
    let cluster = cluster(6, 4, 151).await;
    let mut replicas = Replicas::new(&cluster, 3, 3, &ha_flags());
    for i in 0..3 {
        replicas.start(&cluster, i, true);
    }
    wait_everywhere(&cluster, &replicas).await;
    let all = running_pods(&cluster);
    let ports: Vec<u16> = replicas.replicas.iter().map(|r| r.port).collect();

    tracing::info!("pages of 5, each asked of the next replica in turn");
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    for turn in 0.. {
        let path = match &token {
            Some(t) => format!("/apis/metrics.k8s.io/v1/pods?limit=5&continue={t}"),
            None => "/apis/metrics.k8s.io/v1/pods?limit=5".into(),
        };
        let (items, next) = keys(&get_on(&cluster, ports[turn % 3], &path).await);
        assert!(items.len() <= 5);
        seen.extend(items);
        match next {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    assert_eq!(seen.len(), all.len(), "no pod twice");
    assert_eq!(seen.into_iter().collect::<BTreeSet<_>>(), all);

    tracing::info!("first page from r2, then r2 is killed (new epoch): r0 and r1 finish the list");
    let (mut seen, mut token) = keys(&get_on(&cluster, ports[2], "/apis/metrics.k8s.io/v1/pods?limit=7").await);
    replicas.kill(2);
    replicas.update_proxy(&cluster);
    let mut turn = 0;
    while let Some(t) = token.take() {
        let path = format!("/apis/metrics.k8s.io/v1/pods?limit=7&continue={t}");
        let port = ports[turn % 2];
        turn += 1;
        // While the map moves the survivors may leave the dead replica's shards out for a moment;
        // the same token is asked again until the page is whole.
        let mut page = keys(&get_on(&cluster, port, &path).await);
        for _ in 0..60 {
            let last = seen.last().cloned();
            let expected: Vec<_> = all
                .iter()
                .filter(|k| Some(*k) > last.as_ref())
                .take(7)
                .cloned()
                .collect();
            if page.0 == expected {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
            page = keys(&get_on(&cluster, port, &path).await);
        }
        seen.extend(page.0);
        token = page.1;
    }
    assert_eq!(
        seen,
        all.iter().cloned().collect::<Vec<_>>(),
        "the whole list, in order, after the epoch change"
    );

    tracing::info!("spec.nodeName through the proxy: exactly that node's pods, from its shard's owners");
    for node in ["node-0", "node-3", "node-5"] {
        let want: BTreeSet<(String, String)> = cluster.with_world(|w| {
            w.running_pods(&w.nodes[node])
                .map(|p| (p.spec.namespace.clone(), p.spec.name.clone()))
                .collect()
        });
        let path = format!("/apis/metrics.k8s.io/v1/pods?fieldSelector=spec.nodeName%3D{node}");
        let got = keys(&serde_json::to_string(&raw(&cluster, &path).await).unwrap()).0;
        assert_eq!(got.into_iter().collect::<BTreeSet<_>>(), want, "{node}");
    }
    cluster.shutdown();
}
