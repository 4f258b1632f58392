//! The 26 real kubelet `/metrics/resource` captures in `tests/data/kubelet-payloads/` (public
//! sources; INDEX.md there says where each comes from and its quirks) as a regression test
//! through the real server: each file is replayed by a kubesim kubelet (fault `replay`), first
//! as it is, then with every CPU counter advanced by a known amount, every
//! working set grown by a known number of bytes and every timestamp moved 10 s on. The pods and
//! the node are then served with the rate and memory those amounts give, and swap as the file
//! says; what the file does not support (truncated series, old metric names, a negative start
//! time, only swap lines, the kubelet's own error) is left out, as `INDEX.md` describes.
//!
//! Expectations come from the files by this test's own reading of the text format (below), not
//! from the server's parser. Files naming the same pods (parts of one response, or the same kind
//! control plane) are replayed in separate rounds; `015` (two responses pasted back to back) is
//! split at its blank-line pair into two nodes; `010` and `011` (the head and the `grep swap` of
//! one response) are also replayed joined. Neither has `node_cpu`/`node_memory` lines, so the
//! joined body is given the node CPU and memory lines of `014` (see [`joined_with_node`]): the
//! node is then served, and the uint64 wraparound `node_swap_usage_bytes 1.8446743709127774e+19`
//! beside it must leave it without swap, while the same body with `020`'s node swap value must
//! serve that value.
//!
//! No capture has a multi-container pod with one container lacking a sample, so whole-pod
//! accuracy is checked on `021` with one such sample taken out
//! ([`one_container_without_memory`]): the pod is left out, through the API and `kubectl top`.
//!
//! The files replayed are [`ALL`]; a test checks that it is every `.txt` file of the directory
//! (and, where the shared reference corpus is checked out beside the repository, that the copy
//! here is identical to it), so a new capture is noticed.

mod support;

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use support::*;

/// How far the second replay moves every timestamp.
const STEP_MS: i64 = 10_000;
/// Bytes the second replay adds to the i-th working set (i from 1).
const MEMORY_STEP: u64 = 1024;
/// CPU cores the second replay adds to the i-th counter (i from 1) over [`STEP_MS`].
const CPU_STEP_CORES: f64 = 0.01;
/// Byte counts at or past this are a wrapped uint64, not data (our server's rule, stated here
/// independently: 2^63).
const MAX_BYTES: f64 = 9_223_372_036_854_775_808.0;

/// The copy of the corpus in the repository (CI runs on a clean clone, so never the shared one).
fn payload_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/kubelet-payloads")
}

/// The shared reference corpus the copy was taken from, beside the repository when it is checked
/// out in the project's work area (`../shared/reference/kubelet-payloads/`, as issue 13 names it).
fn reference_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/reference/kubelet-payloads")
}

/// `name -> bytes` of every file in `dir`.
fn files_of(dir: &std::path::Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect()
}

/// One sample line: `name{labels} value [ts]`, leading blanks allowed.
struct Line {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
    ts: Option<i64>,
}

fn parse_line(raw: &str) -> Option<Line> {
    let line = raw.trim_start();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let (head, rest) = match line.find('{') {
        Some(_) => {
            let close = line.find('}')?;
            (&line[..close + 1], &line[close + 1..])
        }
        None => line.split_at(line.find(' ')?),
    };
    let (name, labels) = match head.split_once('{') {
        Some((name, inner)) => {
            let labels = inner
                .trim_end_matches('}')
                .split(',')
                .filter_map(|kv| {
                    let (k, v) = kv.split_once('=')?;
                    Some((k.to_string(), v.trim_matches('"').to_string()))
                })
                .collect();
            (name.to_string(), labels)
        }
        None => (head.to_string(), BTreeMap::new()),
    };
    let mut fields = rest.split_whitespace();
    let value = fields.next()?.parse().ok()?;
    let ts = match fields.next() {
        Some(t) => Some(t.parse().ok()?),
        None => None,
    };
    Some(Line {
        name,
        labels,
        value,
        ts,
    })
}

/// The body of the second replay: counters, working sets and timestamps moved on; every other
/// byte as in the file. The i-th CPU line (from 1) gains `i * CPU_STEP_CORES * STEP` seconds.
fn advanced(body: &str) -> String {
    let (mut cpu_i, mut mem_i) = (0u32, 0u64);
    let mut out = String::new();
    for raw in body.split_inclusive('\n') {
        let Some(line) = parse_line(raw) else {
            out.push_str(raw);
            continue;
        };
        let indent = &raw[..raw.len() - raw.trim_start().len()];
        let value = match line.name.as_str() {
            "container_cpu_usage_seconds_total" | "node_cpu_usage_seconds_total" => {
                cpu_i += 1;
                line.value + cpu_i as f64 * CPU_STEP_CORES * STEP_MS as f64 / 1000.0
            }
            "container_memory_working_set_bytes" | "node_memory_working_set_bytes" => {
                mem_i += 1;
                line.value + (mem_i * MEMORY_STEP) as f64
            }
            _ => line.value,
        };
        let labels: Vec<String> = line.labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
        let labels = if line.labels.is_empty() {
            String::new()
        } else {
            format!("{{{}}}", labels.join(","))
        };
        let ts = line.ts.map_or(String::new(), |t| format!(" {}", t + STEP_MS));
        let newline = if raw.ends_with('\n') { "\n" } else { "" };
        out.push_str(&format!("{indent}{}{labels} {value}{ts}{newline}", line.name));
    }
    out
}

/// What a container should be served with.
#[derive(Debug, Clone, PartialEq)]
struct Want {
    cpu_nanocores: f64,
    memory: u64,
    swap: Option<u64>,
}

/// A container or node as the two replays describe it.
#[derive(Default, Clone)]
struct Series {
    cpu: Option<(f64, u32)>,
    memory: Option<(f64, u64)>,
    swap: Option<f64>,
    start: Option<f64>,
    bad: bool,
    /// Timestamp of the later of the CPU and memory lines (file order), if it had one.
    ts: Option<i64>,
}

impl Series {
    fn want(&self) -> Option<Want> {
        let (cpu, i) = self.cpu?;
        let (memory, j) = self.memory?;
        let ok = |v: f64| v > 0.0 && v.is_finite();
        if self.bad || !ok(cpu) || !ok(memory) || memory >= MAX_BYTES {
            return None;
        }
        // A container started after its first sample counts as restarted: no rate yet.
        if let (Some(start), Some(ts)) = (self.start, self.ts)
            && start * 1000.0 >= ts as f64
        {
            return None;
        }
        let swap = self.swap.filter(|s| *s >= 0.0 && *s < MAX_BYTES).map(|s| s as u64);
        Some(Want {
            cpu_nanocores: i as f64 * CPU_STEP_CORES * 1e9,
            memory: memory as u64 + j * MEMORY_STEP,
            swap,
        })
    }
}

/// What the file says should be served: pods (namespace, name) -> container -> Want (a pod is
/// left out unless every container is servable), the node, and every pod the file names.
struct Expected {
    pods: BTreeMap<(String, String), BTreeMap<String, Want>>,
    node: Option<Want>,
    named: BTreeSet<(String, String)>,
}

fn expected(body: &str) -> Expected {
    let (mut cpu_i, mut mem_i) = (0u32, 0u64);
    let mut containers: BTreeMap<(String, String, String), Series> = BTreeMap::new();
    let mut node = Series::default();
    let mut named = BTreeSet::new();
    let mut kubelet_error = false;
    for raw in body.lines() {
        let Some(line) = parse_line(raw) else { continue };
        let key = match (
            line.labels.get("namespace"),
            line.labels.get("pod"),
            line.labels.get("container"),
        ) {
            (Some(ns), Some(pod), Some(c)) => Some((ns.clone(), pod.clone(), c.clone())),
            _ => None,
        };
        if let Some(k) = &key {
            named.insert((k.0.clone(), k.1.clone()));
        }
        if let (Some(ns), Some(pod)) = (line.labels.get("namespace"), line.labels.get("pod")) {
            named.insert((ns.clone(), pod.clone()));
        }
        let negative_ts = line.ts.is_some_and(|t| t < 0);
        let series = match (line.name.as_str(), &key) {
            (n, Some(k)) if n.starts_with("container_") => containers.entry(k.clone()).or_default(),
            (n, None) if n.starts_with("node_") => &mut node,
            ("resource_scrape_error" | "scrape_error", None) => {
                kubelet_error |= line.value == 1.0;
                continue;
            }
            _ => continue,
        };
        match line.name.as_str() {
            "container_cpu_usage_seconds_total" | "node_cpu_usage_seconds_total" => {
                cpu_i += 1;
                series.cpu = Some((line.value, cpu_i));
                series.bad |= negative_ts;
                series.ts = line.ts;
            }
            "container_memory_working_set_bytes" | "node_memory_working_set_bytes" => {
                mem_i += 1;
                series.memory = Some((line.value, mem_i));
                series.bad |= negative_ts;
                series.ts = line.ts;
            }
            "container_swap_usage_bytes" | "node_swap_usage_bytes" if !negative_ts => series.swap = Some(line.value),
            "container_start_time_seconds" if !negative_ts && line.value >= 0.0 => series.start = Some(line.value),
            _ => {}
        }
    }
    let mut pods: BTreeMap<(String, String), Option<BTreeMap<String, Want>>> = BTreeMap::new();
    for ((ns, pod, c), series) in &containers {
        let entry = pods.entry((ns.clone(), pod.clone())).or_insert(Some(BTreeMap::new()));
        match (series.want(), entry.as_mut()) {
            (Some(want), Some(map)) => {
                map.insert(c.clone(), want);
            }
            _ => *entry = None,
        }
    }
    let samples = !containers.is_empty() || node.cpu.is_some() || node.memory.is_some();
    if kubelet_error && !samples {
        return Expected {
            pods: BTreeMap::new(),
            node: None,
            named,
        };
    }
    Expected {
        pods: pods.into_iter().filter_map(|(k, v)| Some((k, v?))).collect(),
        node: node.want(),
        named,
    }
}

/// The bodies to replay in one round: `(label, body)`.
fn round(files: &[&str]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for prefix in files {
        let path = std::fs::read_dir(payload_dir())
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
            .unwrap_or_else(|| panic!("payload {prefix}"));
        let text = std::fs::read_to_string(&path).unwrap();
        match *prefix {
            "015" => {
                let (a, b) = text.split_once("\n\n\n").expect("015 is two responses");
                out.push(("015a".into(), format!("{a}\n")));
                out.push(("015b".into(), b.to_string()));
            }
            _ => out.push((prefix.to_string(), text)),
        }
    }
    out
}

/// The text of one payload file (by its number).
fn payload(prefix: &str) -> String {
    let mut bodies = round(&[prefix]);
    assert_eq!(bodies.len(), 1, "{prefix} is one response");
    bodies.remove(0).1
}

/// Label of [`joined_with_node`] with the swap value as captured (the wraparound).
const WRAPPED: &str = "010+011+014node";
/// Label of [`joined_with_node`] with `020`'s node swap value.
const SANE_SWAP: &str = "010+011+014node+020swap";

/// `010` (head) and `011` (`grep swap`) of the same kubelet response, joined, with the node CPU
/// and memory families of `014` (a kubelet 1.28 response, the minor of the 010/011 dev build)
/// put where a kubelet writes them: after the `container_*` families, before
/// `node_swap_usage_bytes` (families are sorted by name). Their two samples keep `014`'s values
/// and are stamped with `011`'s node swap timestamp: the 1.28 kubelet stamps node swap with the
/// node memory time (FORMAT-NOTES.md, last rows of the timeline). Every other line is the
/// files' own. With `swap_from_020`, the value of the `node_swap_usage_bytes` sample is the one
/// of `020` (a real node's swap), the rest of that line as in `011`.
fn joined_with_node(swap_from_020: bool) -> (String, String) {
    let (head, swap, node_source) = (payload("010"), payload("011"), payload("014"));
    let swap_line = |text: &str| -> String {
        text.lines()
            .find(|l| l.starts_with("node_swap_usage_bytes "))
            .expect("a node swap sample")
            .to_string()
    };
    let wrapped_line = swap_line(&swap);
    let swap_ts = parse_line(&wrapped_line)
        .unwrap()
        .ts
        .expect("011's node swap has a timestamp");
    let mut node_lines = String::new();
    for family in ["node_cpu_usage_seconds_total", "node_memory_working_set_bytes"] {
        let mut found = 0;
        for line in node_source.lines() {
            let comment = [format!("# HELP {family} "), format!("# TYPE {family} ")];
            if comment.iter().any(|c| line.starts_with(c.as_str())) {
                node_lines.push_str(&format!("{line}\n"));
            } else if line.starts_with(&format!("{family} ")) {
                let sample = parse_line(line).unwrap();
                let value = line.split_whitespace().nth(1).unwrap();
                assert!(sample.ts.is_some() && sample.value > 0.0, "014: {line}");
                node_lines.push_str(&format!("{family} {value} {swap_ts}\n"));
                found += 1;
            }
        }
        assert_eq!(found, 1, "014 has one {family} sample");
    }
    let at = swap
        .find("# HELP node_swap_usage_bytes")
        .expect("011 has the node swap family");
    let mut swap = format!("{}{node_lines}{}", &swap[..at], &swap[at..]);
    let mut label = WRAPPED;
    if swap_from_020 {
        let sane = swap_line(&payload("020"));
        let value = sane.split_whitespace().nth(1).unwrap();
        let ts = wrapped_line.split_whitespace().nth(2).unwrap();
        swap = swap.replace(&wrapped_line, &format!("node_swap_usage_bytes {value} {ts}"));
        label = SANE_SWAP;
    }
    let body = if head.ends_with('\n') {
        format!("{head}{swap}")
    } else {
        format!("{head}\n{swap}")
    };
    (label.to_string(), body)
}

fn usage_of(v: &Value, key: &str) -> Option<f64> {
    v["usage"][key]
        .as_str()
        .map(|q| if key == "cpu" { cores(q) * 1e9 } else { bytes(q) })
}

fn check_container(label: &str, what: &str, got: &Value, want: &Want) {
    let cpu = usage_of(got, "cpu").unwrap();
    assert!(
        (cpu - want.cpu_nanocores).abs() <= 2.0,
        "{label} {what}: cpu {cpu} nanocores, want {}",
        want.cpu_nanocores
    );
    assert_eq!(
        usage_of(got, "memory"),
        Some(want.memory as f64),
        "{label} {what}: memory"
    );
    assert_eq!(
        usage_of(got, "swap"),
        want.swap.map(|s| s as f64),
        "{label} {what}: swap"
    );
}

/// Replays `bodies` (one kubesim node each), waits for two scrapes of each, checks the answers;
/// returns each label's served NodeMetrics, if any.
async fn replay_round(bodies: Vec<(String, String)>, seed: u64) -> BTreeMap<String, Option<Value>> {
    let (cluster, server, nodes) = serve_round(bodies, seed).await;
    drop(server);
    cluster.shutdown();
    nodes
}

/// [`replay_round`] leaving the cluster and its server running, for checks of its own.
async fn serve_round(
    bodies: Vec<(String, String)>,
    seed: u64,
) -> (kubesim::Cluster, Server, BTreeMap<String, Option<Value>>) {
    use kubesim::cluster::actions::{Action, PodRequest};
    use kubesim::kubelet::faults::Fault;
    let cluster = cluster(bodies.len() as u32, 0, seed).await;
    let mut plans = Vec::new();
    for (i, (label, body)) in bodies.iter().enumerate() {
        let node = format!("node-{i}");
        let want = expected(body);
        for (namespace, name) in &want.named {
            let request = PodRequest {
                node: Some(node.clone()),
                namespace: Some(namespace.clone()),
                name: Some(name.clone()),
                ..Default::default()
            };
            cluster.act(Action::AddPod(request)).await.unwrap();
        }
        let fault = Fault::Replay {
            bodies: vec![body.clone(), advanced(body)],
        };
        cluster.set_fault(&node, Some(fault)).await.unwrap();
        tracing::info!(
            label,
            node,
            pods = want.pods.len(),
            node_served = want.node.is_some(),
            "replaying"
        );
        plans.push((label.clone(), node, want));
    }
    let server = start_server(&cluster, &[]).await;
    eventually(
        Duration::from_secs(60),
        "every kubelet scraped at least three times",
        async || cluster.kubelet_stats().await.values().all(|s| s.scrapes >= 3),
    )
    .await;
    let pods = raw(&cluster, "/apis/metrics.k8s.io/v1/pods").await;
    let nodes = raw(&cluster, "/apis/metrics.k8s.io/v1/nodes").await;
    let served: BTreeMap<(String, String), &Value> = pods["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let m = &p["metadata"];
            (
                (
                    m["namespace"].as_str().unwrap().into(),
                    m["name"].as_str().unwrap().into(),
                ),
                p,
            )
        })
        .collect();
    let mut served_nodes = BTreeMap::new();
    for (label, node, want) in &plans {
        let mine: BTreeSet<_> = served.keys().filter(|k| want.named.contains(k)).cloned().collect();
        assert_eq!(mine, want.pods.keys().cloned().collect(), "{label}: the pods served");
        for (key, containers) in &want.pods {
            let pod = served[key];
            let got: BTreeMap<String, &Value> = pod["containers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| (c["name"].as_str().unwrap().to_string(), c))
                .collect();
            assert_eq!(
                got.keys().collect::<Vec<_>>(),
                containers.keys().collect::<Vec<_>>(),
                "{label} {key:?}"
            );
            for (name, want) in containers {
                check_container(label, name, got[name], want);
            }
            assert_eq!(
                window_ms(pod["window"].as_str().unwrap()),
                STEP_MS,
                "{label} {key:?} window"
            );
        }
        let got = nodes["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["metadata"]["name"] == *node);
        match (&want.node, got) {
            (Some(want), Some(got)) => check_container(label, "node", got, want),
            (None, None) => {}
            (want, got) => panic!("{label}: node served {:?}, expected {want:?}", got.is_some()),
        }
        served_nodes.insert(label.clone(), got.cloned());
    }
    (cluster, server, served_nodes)
}

#[test]
fn the_test_reads_the_files_as_index_md_describes_them() {
    let by_label: BTreeMap<String, Expected> = round(&ALL)
        .into_iter()
        .map(|(label, body)| (label, expected(&body)))
        .collect();
    let served = |l: &str| (by_label[l].pods.len(), by_label[l].node.is_some());
    assert_eq!(served("001"), (0, false), "1.18.0's names without _total are not read");
    assert_eq!(served("002"), (70, true), "the full 70-pod response");
    assert_eq!(
        served("003"),
        (0, false),
        "start times only, one with a negative timestamp"
    );
    assert_eq!(served("004"), (0, true), "node only");
    assert_eq!(served("019"), (0, true), "no container families");
    assert_eq!(served("020"), (0, false), "node swap only");
    assert_eq!(served("024"), (0, false), "the kubelet's error");
    assert_eq!(by_label["025"].node.as_ref().unwrap().swap, Some(500));
    let pod_a = &by_label["026"].pods[&("namespace_a".to_string(), "pod_a".to_string())];
    assert_eq!(pod_a["container_a"].swap, Some(1000));
    assert_eq!(pod_a["container_b"].swap, None);
    assert_eq!(
        (by_label["010"].node.is_some(), by_label["011"].node.is_some()),
        (false, false),
        "010 and 011 alone have no node series"
    );
    let wrapped = expected(&joined_with_node(false).1);
    let node = wrapped
        .node
        .as_ref()
        .expect("010+011 with 014's node lines: the node is served");
    assert_eq!(node.swap, None, "a wrapped swap count is no swap");
    assert_eq!(wrapped.pods.len(), 1, "test-pod (coredns has no memory line in 010)");
    let sane = expected(&joined_with_node(true).1);
    assert_eq!(
        sane.node.unwrap().swap,
        Some(34_340_864),
        "020's node swap, 3.4340864e+07"
    );
    assert_eq!(sane.pods, wrapped.pods, "only the node swap value differs");
    assert!(by_label.values().map(|e| e.pods.len()).sum::<usize>() > 100);
}

/// [`ALL`] is every capture in the directory: a file added there (a 27th capture) fails here
/// until it is given a round. Where the shared reference corpus is checked out beside the
/// repository, the copy in `tests/data` must be identical to it.
#[test]
fn every_file_of_the_payload_directory_is_replayed() {
    let files = files_of(&payload_dir());
    let captures: BTreeSet<String> = files.keys().filter(|n| n.ends_with(".txt")).cloned().collect();
    let prefixes: BTreeSet<String> = captures.iter().map(|n| n[..3].to_string()).collect();
    assert_eq!(prefixes.len(), captures.len(), "one capture per number: {captures:?}");
    assert_eq!(
        prefixes,
        ALL.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>(),
        "ALL names every .txt file of {}",
        payload_dir().display()
    );
    let others: BTreeSet<&str> = files
        .keys()
        .filter(|n| !n.ends_with(".txt"))
        .map(String::as_str)
        .collect();
    assert_eq!(others, BTreeSet::from(["FORMAT-NOTES.md", "INDEX.md"]));
    for prefix in ALL {
        let row = format!("| {prefix} |");
        let listed = files["INDEX.md"].windows(row.len()).any(|w| w == row.as_bytes());
        assert!(listed, "INDEX.md has a row for {prefix}");
    }
    let reference = reference_dir();
    if reference.is_dir() {
        let shared = files_of(&reference);
        assert_eq!(
            shared.keys().collect::<Vec<_>>(),
            files.keys().collect::<Vec<_>>(),
            "tests/data/kubelet-payloads has the files of {}",
            reference.display()
        );
        for (name, bytes) in &shared {
            assert!(files[name] == *bytes, "{name} differs from {}", reference.display());
        }
    } else {
        eprintln!(
            "{} is absent (a clean clone): the copy is not compared",
            reference.display()
        );
    }
}

/// Every file, in three rounds of files whose pods do not collide.
const ALL: [&str; 26] = [
    "001", "002", "003", "004", "005", "006", "007", "008", "009", "010", "011", "012", "013", "014", "015", "016",
    "017", "018", "019", "020", "021", "022", "023", "024", "025", "026",
];
const ROUND_A: [&str; 23] = [
    "001", "002", "003", "004", "005", "006", "008", "009", "010", "012", "014", "015", "016", "017", "018", "019",
    "020", "021", "022", "023", "024", "025", "026",
];
const ROUND_B: [&str; 3] = ["007", "011", "013"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_payload_is_served_as_the_file_says() {
    let mut rounds: BTreeSet<&str> = ROUND_A.iter().chain(&ROUND_B).copied().collect();
    assert_eq!(rounds.len(), 26);
    rounds.retain(|f| !ALL.contains(f));
    assert!(rounds.is_empty(), "every file is replayed");
    replay_round(round(&ROUND_A), 801).await;
    replay_round(round(&ROUND_B), 802).await;

    // The wraparound beside real node series: the node is served, without swap.
    let mut with_head = round(&["007", "013"]);
    with_head.push(joined_with_node(false));
    let nodes = replay_round(with_head, 803).await;
    let node = nodes[WRAPPED]
        .as_ref()
        .expect("the node of 010+011+014's node lines is served");
    assert!(
        node["usage"]["cpu"].is_string() && node["usage"]["memory"].is_string(),
        "{node}"
    );
    assert!(
        node["usage"].get("swap").is_none(),
        "node_swap_usage_bytes 1.8446743709127774e+19 is not served: {node}"
    );

    // The same body with a sane node swap value (020's): that value is served. Its own round,
    // as it names the pods of the body above.
    let nodes = replay_round(vec![joined_with_node(true)], 804).await;
    let node = nodes[SANE_SWAP].as_ref().expect("the node is served");
    let swap = node["usage"]["swap"]
        .as_str()
        .unwrap_or_else(|| panic!("no swap: {node}"));
    assert_eq!(bytes(swap), 34_340_864.0, "020's node_swap_usage_bytes 3.4340864e+07");
}

/// The pod of `021` (EKS) whose one container loses its sample, and a sibling with two containers.
const PARTIAL_POD: &str = "ebs-csi-node-v6cqf";
const WHOLE_POD: &str = "aws-node-7k649";
/// The container of [`PARTIAL_POD`] without a working-set sample.
const PARTIAL_CONTAINER: &str = "liveness-probe";

/// `021` with the `container_memory_working_set_bytes` sample of one container of the
/// three-container pod [`PARTIAL_POD`] taken out: a kubelet that has CPU but no memory for it
/// (a container being restarted, or cAdvisor missing its cgroup for a housekeeping round).
fn one_container_without_memory() -> (String, String) {
    let body = payload("021");
    let wanted = format!(r#"container_memory_working_set_bytes{{container="{PARTIAL_CONTAINER}","#);
    let kept: Vec<&str> = body
        .lines()
        .filter(|l| !(l.starts_with(&wanted) && l.contains(&format!(r#"pod="{PARTIAL_POD}""#))))
        .collect();
    assert_eq!(kept.len() + 1, body.lines().count(), "021 has one such sample");
    ("021-partial".into(), format!("{}\n", kept.join("\n")))
}

/// Whole-pod accuracy: a pod one of whose containers has no valid sample is left out rather than
/// served with the containers that have one (an HPA would read it as nearly idle), while its node
/// and the other pods of the kubelet, multi-container ones too, are served; `kubectl top` gets the
/// NotFound metrics-server gives a running pod it has no metrics of, and lists the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_missing_one_containers_sample_is_left_out_whole() {
    let (label, body) = one_container_without_memory();
    let want = expected(&body);
    let ns = "kube-system".to_string();
    assert!(want.named.contains(&(ns.clone(), PARTIAL_POD.into())));
    assert!(
        !want.pods.contains_key(&(ns.clone(), PARTIAL_POD.into())),
        "this test's reading leaves the pod out"
    );
    assert_eq!(want.pods[&(ns.clone(), WHOLE_POD.into())].len(), 2);
    let full = expected(&payload("021"));
    assert_eq!(
        full.pods[&(ns.clone(), PARTIAL_POD.into())].len(),
        3,
        "unchanged, 021 serves the pod with three containers"
    );

    // Served pods equal this test's expectation (checked in the round): the pod is absent.
    let (cluster, server, nodes) = serve_round(vec![(label.clone(), body)], 805).await;
    assert!(nodes[&label].is_some(), "the node is served");
    let got = direct_get(
        &cluster,
        server.port,
        &format!("/apis/metrics.k8s.io/v1beta1/namespaces/{ns}/pods/{PARTIAL_POD}"),
    )
    .await
    .unwrap();
    assert_eq!(got.0, 404, "{}", got.1);

    let out = kubectl(&cluster, &["top", "pod", PARTIAL_POD, "-n", &ns]).await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            r#"Error from server (NotFound): podmetrics.metrics.k8s.io "{ns}/{PARTIAL_POD}" not found"#
        )),
        "{stderr}"
    );
    let listed = stdout(&kubectl(&cluster, &["top", "pod", "-n", &ns, "--no-headers"]).await);
    let names: BTreeSet<&str> = listed.lines().filter_map(|l| l.split_whitespace().next()).collect();
    let served: BTreeSet<&str> = want
        .pods
        .keys()
        .filter(|(n, _)| *n == ns)
        .map(|(_, p)| p.as_str())
        .collect();
    assert_eq!(names, served, "{listed}");
    assert!(names.contains(WHOLE_POD) && !names.contains(PARTIAL_POD), "{listed}");
    let containers = stdout(
        &kubectl(
            &cluster,
            &["top", "pod", WHOLE_POD, "-n", &ns, "--containers", "--no-headers"],
        )
        .await,
    );
    assert_eq!(containers.lines().count(), 2, "{containers}");
    drop(server);
    cluster.shutdown();
}
