//! Three (and five) replica processes with peers against kubesim: one leader, each kubelet
//! scraped once per interval, identical answers from every replica, and failover under real
//! kill -9: leader loss, quorum loss, rejoin, scale out and in, while a client polls through the
//! aggregation proxy every 0.5 s and checks that no pod goes missing and no timestamp goes back.

mod support;

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::replicas::Replicas;
use support::*;

const RESOLUTION_MS: u64 = 2000;
const POLL: Duration = Duration::from_millis(500);

fn ha_flags() -> Vec<&'static str> {
    vec![
        "--shards=12",
        "--member-down-after=2s",
        "--quorum-loss-timeout=4s",
        "--fanout-timeout=2s",
    ]
}

type PodKey = (String, String);

/// `(namespace, name) -> (timestamp ms, the item)` of a PodMetricsList.
fn pods_of(body: &str) -> Option<BTreeMap<PodKey, (i64, Value)>> {
    let list: Value = serde_json::from_str(body).ok()?;
    let items = list["items"].as_array()?;
    Some(
        items
            .iter()
            .map(|p| {
                let key = (
                    p["metadata"]["namespace"].as_str().unwrap().to_string(),
                    p["metadata"]["name"].as_str().unwrap().to_string(),
                );
                let mut item = p.clone();
                item["metadata"]["creationTimestamp"] = Value::Null;
                (key, (millis(p["timestamp"].as_str().unwrap()), item))
            })
            .collect(),
    )
}

/// Sum of a metric over the live replicas.
async fn metric_sum(cluster: &kubesim::Cluster, replicas: &Replicas, name: &str) -> f64 {
    let mut sum = 0.0;
    for (i, _) in replicas.alive() {
        sum += replicas.metric(cluster, i, name).await.unwrap_or(0.0);
    }
    sum
}

async fn wait_all_pods_everywhere(cluster: &kubesim::Cluster, replicas: &Replicas) {
    let want = running_pods(cluster);
    for (_, r) in replicas.alive() {
        eventually(Duration::from_secs(60), "every replica serves every pod", async || {
            let Ok((200, body)) = direct_get(cluster, r.port, "/apis/metrics.k8s.io/v1beta1/pods").await else {
                return false;
            };
            pods_of(&body).is_some_and(|p| p.keys().cloned().collect::<BTreeSet<_>>() == want)
        })
        .await;
    }
}

async fn wait_one_leader(cluster: &kubesim::Cluster, replicas: &Replicas) {
    eventually(Duration::from_secs(30), "exactly one leader", async || {
        metric_sum(cluster, replicas, "ha_metrics_server_coordinator_is_leader").await == 1.0
    })
    .await;
}

/// Waits until the live replicas agree on one settled map that gives every shard `owners`
/// owners, all of them live.
async fn wait_settled(cluster: &kubesim::Cluster, replicas: &Replicas, primaries_total: f64) {
    eventually(
        Duration::from_secs(40),
        "a settled shard map over the live replicas",
        async || {
            let mut epochs = BTreeSet::new();
            let mut primaries = 0.0;
            for (i, _) in replicas.alive() {
                epochs.insert(
                    replicas
                        .metric(cluster, i, "ha_metrics_server_shard_map_epoch")
                        .await
                        .unwrap_or(-1.0) as i64,
                );
                primaries += replicas
                    .metric(cluster, i, "ha_metrics_server_shards{role=\"primary\"}")
                    .await
                    .unwrap_or(0.0);
            }
            epochs.len() == 1 && primaries == primaries_total
        },
    )
    .await;
}

/// Scrapes per kubelet over `intervals` resolutions.
async fn scrapes_per_node(cluster: &kubesim::Cluster, intervals: u64) -> Vec<u64> {
    let before = cluster.kubelet_stats().await;
    tokio::time::sleep(Duration::from_millis(RESOLUTION_MS * intervals)).await;
    let after = cluster.kubelet_stats().await;
    after.iter().map(|(node, s)| s.scrapes - before[node].scrapes).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_scrape_once_and_answer_alike() {
    let cluster = cluster(6, 4, 501).await;
    let mut replicas = Replicas::new(&cluster, 3, 3, &ha_flags());
    for i in 0..3 {
        replicas.start(&cluster, i, true);
    }
    wait_one_leader(&cluster, &replicas).await;
    wait_settled(&cluster, &replicas, 12.0).await;
    wait_all_pods_everywhere(&cluster, &replicas).await;

    tracing::info!("every kubelet is scraped once per interval, not once per replica");
    let counts = scrapes_per_node(&cluster, 5).await;
    tracing::info!(?counts, "kubelet scrapes per node over 5 intervals with 3 replicas");
    assert!(
        counts.iter().all(|&c| (4..=6).contains(&c)),
        "scrapes per node over 5 intervals: {counts:?}"
    );

    tracing::info!("every replica answers with the same objects and values");
    eventually(
        Duration::from_secs(20),
        "identical answers from the three replicas",
        async || {
            let mut answers = Vec::new();
            for (_, r) in replicas.alive() {
                match direct_get(&cluster, r.port, "/apis/metrics.k8s.io/v1beta1/pods").await {
                    Ok((200, body)) => answers.push(pods_of(&body).unwrap()),
                    _ => return false,
                }
            }
            answers.windows(2).all(|w| w[0] == w[1])
        },
    )
    .await;
    tracing::info!("with three owners per shard (the default) the replica asked answers alone");
    let fanouts = "ha_metrics_server_fanout_duration_seconds_count";
    let before = metric_sum(&cluster, &replicas, fanouts).await;
    let mut reads = 0;
    for path in [
        "/apis/metrics.k8s.io/v1beta1/nodes",
        "/apis/metrics.k8s.io/v1beta1/namespaces/ns-0/pods",
        "/apis/metrics.k8s.io/v1beta1/pods",
    ] {
        for (_, r) in replicas.alive() {
            let (code, body) = direct_get(&cluster, r.port, path).await.unwrap();
            assert_eq!(code, 200, "{path}: {body}");
            reads += 1;
        }
    }
    let asked_others = metric_sum(&cluster, &replicas, fanouts).await - before;
    // Each replica holds every shard under a read lease; a lease lapsing for a moment on a
    // loaded machine sends that read to the writer, which is why this is not `== 0`. Asking
    // the others on every read (without the lease) would give `reads`.
    assert!(
        asked_others * 3.0 <= reads as f64,
        "{asked_others} of {reads} reads asked other replicas"
    );

    tracing::info!("status shows the replica set");
    // A point-in-time view: under a loaded CI machine a ping may miss, so the last answer is
    // reported if no answer shows all three Up within the limit.
    let dir = cluster.dir();
    let peer_port = replicas.replicas[1].peer_port;
    let mut last = String::new();
    let all_up = |text: &str| {
        text.starts_with("LEADER: r")
            && ["r0", "r1", "r2"]
                .iter()
                .all(|name| text.lines().any(|l| l.starts_with(name) && l.contains(" Up ")))
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_ha-metrics-server"))
            .arg("status")
            .arg(format!("--server=127.0.0.1:{peer_port}"))
            .arg(format!("--peer-cert-file={}", dir.join("peer.crt").display()))
            .arg(format!("--peer-key-file={}", dir.join("peer.key").display()))
            .arg(format!("--peer-ca-file={}", dir.join("peer-ca.crt").display()))
            .output()
            .await
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        last = String::from_utf8_lossy(&out.stdout).into_owned();
        if all_up(&last) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    tracing::info!("status:\n{last}");
    assert!(
        all_up(&last),
        "status does not show a leader and r0, r1, r2 Up:\n{last}"
    );
}

/// What a client polling through the aggregation proxy saw.
#[derive(Default)]
struct Observed {
    polls: usize,
    errors: Vec<(Instant, String)>,
    /// Per pod: every `(poll time, served timestamp)`.
    seen: BTreeMap<PodKey, Vec<(Instant, i64)>>,
    /// When the last completed poll was sent.
    last_poll: Option<Instant>,
}

/// Polls `/apis/metrics.k8s.io/v1beta1/pods` through the proxy every 0.5 s until stopped.
fn poll_through_proxy(cluster: &kubesim::Cluster) -> (Arc<Mutex<Observed>>, tokio::sync::oneshot::Sender<()>) {
    let observed = Arc::new(Mutex::new(Observed::default()));
    let (stop, mut stopped) = tokio::sync::oneshot::channel();
    let url = format!("{}/apis/metrics.k8s.io/v1beta1/pods", cluster.api_url());
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Empty<bytes::Bytes>>();
    let sink = observed.clone();
    tokio::spawn(async move {
        use http_body_util::BodyExt;
        let mut tick = tokio::time::interval(POLL);
        loop {
            tokio::select! {
                _ = &mut stopped => return,
                _ = tick.tick() => {}
            }
            let at = Instant::now();
            let answer = async {
                let resp = client.get(url.parse().unwrap()).await.map_err(|e| e.to_string())?;
                let status = resp.status();
                let body = resp.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
                let body = String::from_utf8_lossy(&body).into_owned();
                if status != 200 {
                    return Err(format!("{status}: {body}"));
                }
                pods_of(&body).ok_or(body)
            };
            let answer = tokio::time::timeout(Duration::from_secs(5), answer)
                .await
                .unwrap_or(Err("timeout".into()));
            let mut o = sink.lock().unwrap();
            o.polls += 1;
            o.last_poll = Some(at);
            match answer {
                Ok(pods) => {
                    for (key, (ts, _)) in pods {
                        o.seen.entry(key).or_default().push((at, ts));
                    }
                }
                Err(e) => o.errors.push((at, e)),
            }
        }
    });
    (observed, stop)
}

/// The longest absence of any pod between `start` and `ended` (when polling stopped): between
/// two sightings, before the first and after the last, so a pod that vanishes for good counts.
fn check(
    observed: &Observed,
    pods: &BTreeSet<PodKey>,
    kills: &[Instant],
    start: Instant,
    ended: Instant,
) -> (Duration, String) {
    let mut longest = (Duration::ZERO, String::new());
    for key in pods {
        let seen = observed.seen.get(key).unwrap_or_else(|| panic!("{key:?} never served"));
        let first = seen.first().map_or(ended, |s| s.0);
        let last = seen.last().map_or(start, |s| s.0);
        for (from, to) in [(start, first), (last, ended)] {
            if to.saturating_duration_since(from) > longest.0 {
                longest = (
                    to - from,
                    format!(
                        "{key:?} from {:?} (before its first or after its last sighting)",
                        from - start
                    ),
                );
            }
        }
        for w in seen.windows(2) {
            if w[1].0 - w[0].0 > longest.0 {
                longest = (w[1].0 - w[0].0, format!("{key:?} from {:?}", w[0].0 - start));
            }
            assert!(
                w[1].1 >= w[0].1,
                "{key:?}: timestamp went backwards {} -> {}",
                w[0].1,
                w[1].1
            );
        }
    }
    for (at, error) in &observed.errors {
        let near_kill = kills
            .iter()
            .any(|k| *at + Duration::from_secs(1) >= *k && *at <= *k + Duration::from_secs(1));
        assert!(
            near_kill,
            "client saw an error not caused by a request in flight to a killed replica: {error}"
        );
    }
    longest
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_quorum_loss_rejoin_and_scaling() {
    let cluster = cluster(6, 4, 502).await;
    let pods = running_pods(&cluster);
    let mut replicas = Replicas::new(&cluster, 5, 3, &ha_flags());
    for i in 0..3 {
        replicas.start(&cluster, i, true);
    }
    wait_one_leader(&cluster, &replicas).await;
    wait_settled(&cluster, &replicas, 12.0).await;
    wait_all_pods_everywhere(&cluster, &replicas).await;
    let (observed, stop) = poll_through_proxy(&cluster);
    let mut kills = Vec::new();
    let mut report = Vec::new();
    let start = Instant::now();
    let mark = |what: &str, report: &mut Vec<String>| report.push(format!("{:?}: {what}", start.elapsed()));

    tracing::info!("kill -9 the leader: a new leader within 5 s");
    mark("kill -9 the leader: a new leader within 5 s", &mut report);
    let mut leader = None;
    for (i, _) in replicas.alive() {
        if replicas
            .metric(&cluster, i, "ha_metrics_server_coordinator_is_leader")
            .await
            == Some(1.0)
        {
            leader = Some(i);
        }
    }
    let leader = leader.expect("a leader");
    kills.push(Instant::now());
    replicas.kill(leader);
    let killed_at = Instant::now();
    wait_one_leader(&cluster, &replicas).await;
    let election = killed_at.elapsed();
    report.push(format!("new leader after {election:?}"));
    assert!(election <= Duration::from_secs(5), "election took {election:?}");
    replicas.update_proxy(&cluster);
    wait_settled(&cluster, &replicas, 12.0).await;
    report.push(format!(
        "map settled without the leader after {:?}",
        killed_at.elapsed()
    ));
    // Faults a little apart: the promoted primaries push to their new standbys first.
    tokio::time::sleep(Duration::from_millis(RESOLUTION_MS * 2)).await;

    tracing::info!("kill -9 a second replica: the survivor serves every pod");
    mark("kill -9 a second replica: the survivor serves every pod", &mut report);
    let second = replicas.alive().map(|(i, _)| i).next().unwrap();
    kills.push(Instant::now());
    replicas.kill(second);
    let killed_at = Instant::now();
    replicas.update_proxy(&cluster);
    let survivor = replicas.alive().map(|(i, _)| i).next().unwrap();
    eventually(Duration::from_secs(10), "the survivor degraded", async || {
        replicas.metric(&cluster, survivor, "ha_metrics_server_degraded").await == Some(1.0)
    })
    .await;
    report.push(format!("survivor degraded after {:?}", killed_at.elapsed()));
    tokio::time::sleep(Duration::from_millis(RESOLUTION_MS * 2)).await;
    wait_all_pods_everywhere(&cluster, &replicas).await;
    let counts = scrapes_per_node(&cluster, 3).await;
    report.push(format!("scrapes per node over 3 intervals, one survivor: {counts:?}"));
    assert!(
        counts.iter().all(|&c| (2..=4).contains(&c)),
        "survivor scrapes every node: {counts:?}"
    );

    tracing::info!("restart the killed replicas with their data: they rejoin");
    mark("restart the killed replicas with their data: they rejoin", &mut report);
    replicas.start(&cluster, leader, false);
    replicas.start(&cluster, second, false);
    let restarted_at = Instant::now();
    wait_one_leader(&cluster, &replicas).await;
    eventually(Duration::from_secs(20), "quorum back", async || {
        metric_sum(&cluster, &replicas, "ha_metrics_server_degraded").await == 0.0
    })
    .await;
    wait_settled(&cluster, &replicas, 12.0).await;
    report.push(format!("rejoined and settled after {:?}", restarted_at.elapsed()));
    tokio::time::sleep(Duration::from_millis(RESOLUTION_MS)).await;
    let counts = scrapes_per_node(&cluster, 5).await;
    report.push(format!("scrapes per node over 5 intervals after rejoin: {counts:?}"));
    assert!(
        counts.iter().all(|&c| (4..=6).contains(&c)),
        "one scrape per node per interval again: {counts:?}"
    );

    tracing::info!("scale 3 -> 5: learners join and take shards with handoff");
    mark("scale 3 -> 5: learners join and take shards with handoff", &mut report);
    replicas.start(&cluster, 3, true);
    replicas.start(&cluster, 4, true);
    wait_settled(&cluster, &replicas, 12.0).await;
    eventually(Duration::from_secs(20), "the new replicas own shards", async || {
        replicas
            .metric(&cluster, 3, "ha_metrics_server_shards{role=\"primary\"}")
            .await
            .unwrap_or(0.0)
            > 0.0
            && replicas
                .metric(&cluster, 4, "ha_metrics_server_shards{role=\"primary\"}")
                .await
                .unwrap_or(0.0)
                > 0.0
    })
    .await;
    wait_all_pods_everywhere(&cluster, &replicas).await;
    tokio::time::sleep(Duration::from_millis(RESOLUTION_MS * 2)).await;

    tracing::info!("scale 5 -> 3");
    mark("scale 5 -> 3", &mut report);
    // As a StatefulSet scales in: SIGTERM, then SIGKILL only after the grace period (here
    // 10 s; a replica leaves, hands its shards over and exits well before).
    for i in [3, 4] {
        replicas.signal(i, "TERM");
    }
    let signalled = Instant::now();
    for i in [3, 4] {
        let mut server = replicas.replicas[i].process.take().unwrap();
        let exited = tokio::time::timeout(Duration::from_secs(10), server.child.wait()).await;
        report.push(format!(
            "r{i} exited after SIGTERM in {:?} ({exited:?})",
            signalled.elapsed()
        ));
        if exited.is_err() {
            kills.push(Instant::now());
            let _ = server.child.start_kill();
        }
    }
    replicas.update_proxy(&cluster);
    wait_settled(&cluster, &replicas, 12.0).await;
    tokio::time::sleep(Duration::from_millis(RESOLUTION_MS * 2)).await;

    let _ = stop.send(());
    let observed = observed.lock().unwrap();
    let ended = observed.last_poll.expect("polls were made");
    let (longest, which) = check(&observed, &pods, &kills, start, ended);
    report.push(format!(
        "{} polls, {} errors near kills, longest gap between sightings of a pod {longest:?} ({which})",
        observed.polls,
        observed.errors.len()
    ));
    tracing::info!("failover report:\n{}", report.join("\n"));
    let allowed = Duration::from_millis(RESOLUTION_MS) + POLL * 2;
    assert!(longest <= allowed, "a pod was missing for {longest:?}");
}
