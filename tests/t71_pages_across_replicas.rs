//! Pagination and `spec.nodeName` with three sharded replicas: a continue token from one replica
//! works on any other, also after the shard map's epoch changed (a replica killed between two
//! pages; the survivors' `ha_metrics_server_shard_map_epoch` is seen to rise before the paging
//! goes on), and a node's pods come from the owner of that node's shard alone, while a namespace
//! LIST asks only the shards the reading replica does not own (seen in its fan-out log, below).

mod support;

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
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

/// The self-metric samples of the replica on `port` named `name` (exactly, labels aside):
/// `(labels, value)`; empty if the replica does not answer.
async fn samples(cluster: &kubesim::Cluster, port: u16, name: &str) -> Vec<(String, f64)> {
    let Ok((200, text)) = direct_get(cluster, port, "/metrics").await else {
        return Vec::new();
    };
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let rest = l.strip_prefix(name)?;
            let (labels, value) = match rest.strip_prefix('{') {
                Some(inner) => {
                    let (labels, value) = inner.split_once('}')?;
                    (labels.to_string(), value)
                }
                None if rest.starts_with(' ') => (String::new(), rest),
                None => return None,
            };
            Some((labels, value.trim().split(' ').next()?.parse().ok()?))
        })
        .collect()
}

/// The one unlabelled sample `name` of the replica on `port`.
async fn gauge(cluster: &kubesim::Cluster, port: u16, name: &str) -> Option<f64> {
    samples(cluster, port, name)
        .await
        .into_iter()
        .find(|(labels, _)| labels.is_empty())
        .map(|(_, v)| v)
}

const EPOCH: &str = "ha_metrics_server_shard_map_epoch";

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
    let mut before = Vec::new();
    for &port in &ports[..2] {
        before.push(gauge(&cluster, port, EPOCH).await.expect("a survivor's map epoch"));
    }
    let (mut seen, mut token) = keys(&get_on(&cluster, ports[2], "/apis/metrics.k8s.io/v1/pods?limit=7").await);
    assert!(token.is_some(), "more than one page");
    replicas.kill(2);
    replicas.update_proxy(&cluster);
    // The token was issued under the old map; the rest is asked only once both survivors have
    // applied a newer one, in which they hold every primary between them (r2's moved).
    eventually(
        Duration::from_secs(60),
        "both survivors apply a shard map without r2",
        async || {
            let mut primaries = 0.0;
            for (i, &port) in ports[..2].iter().enumerate() {
                match gauge(&cluster, port, EPOCH).await {
                    Some(epoch) if epoch > before[i] => {}
                    _ => return false,
                }
                let shards = samples(&cluster, port, "ha_metrics_server_shards").await;
                primaries += shards
                    .iter()
                    .filter(|(labels, _)| labels == "role=\"primary\"")
                    .map(|(_, v)| v)
                    .sum::<f64>();
            }
            primaries == 12.0
        },
    )
    .await;
    for (i, &port) in ports[..2].iter().enumerate() {
        let after = gauge(&cluster, port, EPOCH).await.unwrap();
        tracing::info!(replica = i, before = before[i], after, "map epoch");
        assert!(after > before[i], "r{i}: epoch {} then {after}", before[i]);
    }
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

/// What the reading replica logs of each fan-out: its `ha_metrics_server::ha::fanout` events at
/// trace level ("fan-out answer" with the source asked and the shards it was asked for, once
/// per source that answered; "fan-out gathered" once per read), the rest as `--v=2` has it.
const FANOUT_LOG: &str = "info,openraft=warn,ha_metrics_server=debug,shard=debug,ha_metrics_server::ha::fanout=trace";

/// `text` without ANSI colour sequences (the server's log is coloured).
fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// One fan-out of one read, from the log: each source that answered with the shards it was
/// asked for.
#[derive(Debug, Default)]
struct Fanout {
    answers: Vec<(String, BTreeSet<u32>)>,
    gathered: usize,
}

/// The fan-out events in `log` after byte `from`.
fn fanout_since(log: &std::path::Path, from: usize) -> Fanout {
    let text = std::fs::read(log).unwrap();
    let text = plain(&String::from_utf8_lossy(&text[from.min(text.len())..]));
    let mut out = Fanout::default();
    for line in text.lines() {
        if line.contains("fan-out gathered") {
            out.gathered += 1;
        }
        if !line.contains("fan-out answer") {
            continue;
        }
        let field = |name: &str| line.split(&format!(" {name}=")).nth(1).map(str::to_string);
        let source = field("source").expect("source=").split(' ').next().unwrap().to_string();
        let asked = field("asked").expect("asked=");
        let asked = asked.strip_prefix('[').unwrap().split(']').next().unwrap();
        let shards = asked
            .split(',')
            .filter(|s| !s.trim().is_empty())
            .map(|s| s.trim().parse().unwrap())
            .collect();
        out.answers.push((source, shards));
    }
    out
}

/// Runs `path` on the replica on `port` and returns what its log says the read asked.
async fn read_and_fanout(cluster: &kubesim::Cluster, server: &Server, path: &str) -> (String, Fanout) {
    let from = std::fs::metadata(&server.log).unwrap().len() as usize;
    let body = get_on(cluster, server.port, path).await;
    (body, fanout_since(&server.log, from))
}

/// `fieldSelector=spec.nodeName=NODE` is read from the shard of that node alone: from the reading
/// replica's own copy when it owns the shard (primary, or standby holding a read lease), else
/// asked of the replica that scrapes the node (its shard's primary); a namespace LIST asks only
/// the shards the reader does not own. With two owners per shard of three replicas, both cases
/// occur. Which replica scrapes a node: the one with
/// `metrics_server_kubelet_last_request_time_seconds` for it. Which replica a fan-out asked: the
/// reader's trace log (`source=Remote(MemberId(N))`, N as `ha_metrics_server_member_info`
/// labels it). Who owns what: the reader's shard map (peer `info`). No self-metric counts the
/// shards or sources of a read, so the log is what shows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_filter_asks_only_the_primary_of_that_nodes_shard() {
    const SHARDS: u32 = 12;
    // Enough nodes that some land on shards r0 owns and some on others: r0 owns about two
    // thirds of the shards (replication factor 2 of 3 replicas), so with 6 nodes all were
    // r0's in about one run in eleven; with 16, one in 650.
    let cluster = cluster(16, 3, 157).await;
    let mut flags = ha_flags();
    flags.push("--replication-factor=2");
    let mut replicas = Replicas::new(&cluster, 3, 3, &flags);
    // Each replica's log at the level that shows its fan-outs (`RUST_LOG` wins over `--v`).
    replicas.env = vec![("RUST_LOG".into(), FANOUT_LOG.into())];
    for i in 0..3 {
        replicas.start(&cluster, i, true);
    }
    wait_everywhere(&cluster, &replicas).await;
    let ports: Vec<u16> = replicas.replicas.iter().map(|r| r.port).collect();

    let mut member_of = Vec::new();
    for &port in &ports {
        let info = samples(&cluster, port, "ha_metrics_server_member_info").await;
        let label = &info.iter().find(|(_, v)| *v == 1.0).expect("member_info").0;
        let id = label
            .strip_prefix("member=\"")
            .unwrap()
            .trim_end_matches('"')
            .to_string();
        member_of.push(id);
    }
    let nodes: Vec<String> = cluster.with_world(|w| w.nodes.keys().cloned().collect());
    // A replica that scraped a node before its shard moved may keep the node's series (it can
    // stay the shard's standby): the scraper is the one replica whose last request is recent.
    let mut scraper = BTreeMap::new();
    for node in &nodes {
        eventually(Duration::from_secs(60), "one replica scrapes each node", async || {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs_f64();
            let mut by = Vec::new();
            for (i, &port) in ports.iter().enumerate() {
                let series = samples(&cluster, port, "metrics_server_kubelet_last_request_time_seconds").await;
                let recent = series
                    .iter()
                    .any(|(labels, at)| *labels == format!("node=\"{node}\"") && now - at < 5.0);
                if recent {
                    by.push(i);
                }
            }
            if let [one] = by[..] {
                scraper.insert(node.clone(), one);
            }
            by.len() == 1
        })
        .await;
    }
    tracing::info!(?scraper, ?member_of, "who scrapes which node");

    let client = support::replicas::peer_client(&cluster);
    let map = support::replicas::peer_info(&client, replicas.replicas[0].peer_port)
        .await
        .expect("r0 answers")
        .map;
    let me = coordinator::shard_map::MemberId(member_of[0].parse().unwrap());
    let owned: BTreeSet<u32> = (0..SHARDS).filter(|&s| map.owners(s).contains(&me)).collect();
    let reader = replicas.replicas[0].process.as_ref().unwrap();
    let (mut local_nodes, mut sources_seen) = (0, BTreeSet::new());
    for node in &nodes {
        let shard = shard::hash::shard_of(node, SHARDS);
        let want: BTreeSet<(String, String)> = cluster.with_world(|w| {
            w.running_pods(&w.nodes[node.as_str()])
                .map(|p| (p.spec.namespace.clone(), p.spec.name.clone()))
                .collect()
        });
        let path = format!("/apis/metrics.k8s.io/v1/pods?fieldSelector=spec.nodeName%3D{node}");
        let local = owned.contains(&shard);
        // A read lease can lapse for a moment on a loaded machine (a late ping): such a read
        // asks the primary, as one without a lease must. A few tries find one under a lease.
        let (mut body, mut fanout) = read_and_fanout(&cluster, reader, &path).await;
        for _ in 0..5 {
            if !local || fanout.gathered == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
            (body, fanout) = read_and_fanout(&cluster, reader, &path).await;
        }
        assert_eq!(keys(&body).0.into_iter().collect::<BTreeSet<_>>(), want, "{node}");
        if local {
            assert_eq!(
                fanout.gathered, 0,
                "{node}: r0 owns shard {shard}, it asks nobody: {fanout:?}"
            );
            local_nodes += 1;
            continue;
        }
        let primary = scraper[node];
        let source = format!("Remote(MemberId({}))", member_of[primary]);
        assert_eq!(fanout.gathered, 1, "{node}: one fan-out for the read: {fanout:?}");
        assert_eq!(
            fanout.answers,
            [(source.clone(), BTreeSet::from([shard]))],
            "{node} (shard {shard}, scraped by r{primary}): only that shard, asked of its primary"
        );
        sources_seen.insert(source);
    }
    assert!(
        local_nodes > 0 && !sources_seen.is_empty(),
        "some nodes' shards are r0's and some are not ({local_nodes} local, asked {sources_seen:?})"
    );

    tracing::info!("a namespace LIST on the same replica asks only the shards it does not own");
    let namespace = cluster.with_world(|w| w.pods.values().next().unwrap().spec.namespace.clone());
    let path = format!("/apis/metrics.k8s.io/v1/namespaces/{namespace}/pods");
    let not_owned: BTreeSet<u32> = (0..SHARDS).filter(|s| !owned.contains(s)).collect();
    let asked_of =
        |fanout: &Fanout| -> BTreeSet<u32> { fanout.answers.iter().flat_map(|(_, s)| s.iter().copied()).collect() };
    let (mut body, mut fanout) = read_and_fanout(&cluster, reader, &path).await;
    for _ in 0..5 {
        if asked_of(&fanout) == not_owned {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        (body, fanout) = read_and_fanout(&cluster, reader, &path).await;
    }
    let want: BTreeSet<(String, String)> = running_pods(&cluster)
        .into_iter()
        .filter(|(ns, _)| *ns == namespace)
        .collect();
    assert_eq!(keys(&body).0.into_iter().collect::<BTreeSet<_>>(), want);
    assert_eq!(fanout.gathered, 1, "{fanout:?}");
    assert_eq!(asked_of(&fanout), not_owned, "{fanout:?}");
    assert!(
        fanout.answers.iter().all(|(source, _)| source != "Local"),
        "its own shards are read without a fan-out: {fanout:?}"
    );
    cluster.shutdown();
}
