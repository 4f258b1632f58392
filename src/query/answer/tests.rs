//! An owner's answer: stale shards are named, and an answer that would grow past the limit
//! leaves the remaining shards for another request instead of failing as a whole.

use super::*;
use crate::informer::Caches;
use crate::query::Reader;
use k8s_openapi::api::core::v1::Pod;
use kube::core::{ObjectMeta, PartialObjectMeta};
use kube::runtime::watcher::Event;
use shard::actor::{NoObserver, ShardContext, ShardSet};
use shard::point::MetricsPoint;
use shard::scrape::{KubeletClient, tls};
use shard::store::{NodeScrape, PodScrape};
use std::sync::Arc;
use std::time::Duration;

const SECOND: i64 = 1_000_000_000;

/// A reader over `shards` shards; shard `s` holds one node with `pods` servable pods.
fn reader(shards: u32, pods: usize) -> Reader {
    let client = tls::client_config(tls::Trust::Insecure, None).unwrap();
    let ctx = ShardContext {
        resolution: Duration::from_secs(15),
        limits: Default::default(),
        client: KubeletClient::new(client, None, Duration::from_secs(1), 1 << 20),
        limiter: Arc::new(tokio::sync::Semaphore::new(1)),
        observer: Arc::new(NoObserver),
        last_tick: Default::default(),
        publisher: None,
        shard_count: shards,
    };
    let set = ShardSet::idle(shards, Arc::new(ctx));
    let caches = Caches::default();
    for shard in 0..shards {
        let names: Vec<String> = (0..pods).map(|i| format!("pod-{shard}-{i}")).collect();
        for name in &names {
            let meta = ObjectMeta {
                namespace: Some("ns".into()),
                name: Some(name.clone()),
                ..Default::default()
            };
            let pod = PartialObjectMeta::<Pod> {
                types: None,
                metadata: meta,
                _phantom: Default::default(),
            };
            caches.pods.write().unwrap().apply(Event::Apply(pod));
        }
        let mut store = set.stores[shard as usize].write().unwrap();
        for round in 0..2i64 {
            let at = (1_700_000_000 + 15 * round) * SECOND;
            let point = MetricsPoint {
                start_time: at - 3600 * SECOND,
                timestamp: at,
                cumulative_cpu: (round as u64 + 1) * 1_000_000_000,
                memory: 1 << 20,
                swap: None,
            };
            let containers = [("app", point)];
            let scrape: Vec<PodScrape> = names
                .iter()
                .map(|name| PodScrape {
                    namespace: "ns",
                    name,
                    containers: &containers,
                })
                .collect();
            let node = NodeScrape {
                node: Some(point),
                pods: &scrape,
            };
            store.insert_node(&format!("node-{shard}"), node, at);
        }
    }
    Reader {
        caches: Arc::new(caches),
        shards: Arc::new(set),
        node_selector: Default::default(),
        fanout: None,
    }
}

fn pods_request(shards: Vec<u32>) -> QueryRequest {
    QueryRequest {
        epoch: 1,
        shards,
        target: QueryTarget::Pods {
            namespace: None,
            name: None,
            query: String::new(),
        },
    }
}

#[test]
fn an_answer_past_the_limit_defers_the_remaining_shards_and_they_come_when_asked_again() {
    let reader = reader(3, 50);
    let all = answer_within(&reader, &pods_request(vec![0, 1, 2]), &HashSet::new(), usize::MAX).unwrap();
    assert_eq!(all.pods.len(), 150);
    assert!(all.deferred.is_empty());

    // A limit below one shard's rows: the first shard goes out, the rest is deferred.
    let first = answer_within(&reader, &pods_request(vec![0, 1, 2]), &HashSet::from([2]), 100).unwrap();
    assert_eq!(first.pods.len(), 50);
    assert!(first.pods.iter().all(|p| p.shard == 0));
    assert_eq!(first.deferred, [1, 2]);
    assert!(
        first.cold.is_empty(),
        "a deferred shard is not reported stale in this answer"
    );

    let rest = answer_within(
        &reader,
        &pods_request(first.deferred.clone()),
        &HashSet::new(),
        usize::MAX,
    )
    .unwrap();
    assert_eq!(rest.pods.len(), 100);
    let mut names: Vec<&str> = first.pods.iter().chain(&rest.pods).map(|p| p.name.as_str()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 150, "every pod exactly once over the two answers");

    let stale = answer_within(&reader, &pods_request(vec![1, 2]), &HashSet::from([2]), usize::MAX).unwrap();
    assert_eq!(stale.cold, [2], "the stale shard is named");
    assert!(stale.pods.iter().all(|p| p.shard == 1), "and none of its rows is sent");
}
