//! Property tests of [`decode`]: bodies rendered from a random model of a node decode to the
//! model's values, and no input (random bytes, random tokens, mutated real bodies) panics or
//! breaks the batch's invariants. `shard/fuzz/` runs the same checks under libFuzzer.

use super::*;
use crate::point::{NANOS_PER_MILLI, NANOS_PER_SECOND};
use proptest::prelude::*;
use std::fmt::Write as _;

const SENT: Nanos = 1_700_000_000_000 * NANOS_PER_MILLI;

#[derive(Debug, Clone)]
struct ContainerModel {
    name: String,
    /// `None`: no line. Nanocore-seconds below 1e15, where seconds as `f64` round-trip exactly.
    cpu: Option<u64>,
    /// `None`: no line. Bytes below 2^53, exact as `f64`.
    memory: Option<u64>,
    start_ms: Option<i64>,
    cpu_ms: Option<i64>,
    memory_ms: Option<i64>,
}

#[derive(Debug, Clone)]
struct PodModel {
    namespace: String,
    name: String,
    containers: Vec<ContainerModel>,
}

#[derive(Debug, Clone)]
struct Model {
    node_cpu: Option<u64>,
    node_memory: Option<u64>,
    node_ms: Option<i64>,
    pods: Vec<PodModel>,
    /// Drives the rendering choices: line order, label order, number style, noise, CRLF.
    seed: u64,
}

/// A label value: mostly Kubernetes-like, sometimes with characters that need escaping.
fn label_value() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z][-a-z0-9]{0,24}",
        1 => "[a-z\"\\\\\n é名{},=]{1,8}",
    ]
}

fn present<T: std::fmt::Debug + Clone>(value: impl Strategy<Value = T>) -> impl Strategy<Value = Option<T>> {
    prop_oneof![8 => value.prop_map(Some), 1 => Just(None)]
}

fn amount(max: u64) -> impl Strategy<Value = u64> {
    prop_oneof![8 => 1..max, 1 => Just(0), 1 => 1..1000u64]
}

/// Sample times from years before the request up to the latest one accepted.
fn millis() -> impl Strategy<Value = i64> {
    1_600_000_000_000..=(SENT + MAX_TIMESTAMP_AHEAD) / NANOS_PER_MILLI
}

fn container_model(name: String) -> impl Strategy<Value = ContainerModel> {
    let values = (amount(1_000_000_000_000_000), amount(1 << 53));
    let values = (present(values.0), present(values.1));
    let times = (present(millis()), present(millis()), present(millis()));
    (values, times).prop_map(move |((cpu, memory), (start_ms, cpu_ms, memory_ms))| {
        let name = name.clone();
        ContainerModel {
            name,
            cpu,
            memory,
            start_ms,
            cpu_ms,
            memory_ms,
        }
    })
}

fn pod_model(index: usize) -> impl Strategy<Value = PodModel> {
    let names = (label_value(), label_value(), prop::collection::vec(label_value(), 1..4));
    names.prop_flat_map(move |(namespace, name, containers)| {
        // Suffixes keep (namespace, pod) and container names unique.
        let name = format!("{name}-{index}");
        let containers: Vec<_> = containers
            .into_iter()
            .enumerate()
            .map(|(i, c)| container_model(format!("{c}{i}")))
            .collect();
        (Just(namespace), Just(name), containers).prop_map(|(namespace, name, containers)| PodModel {
            namespace,
            name,
            containers,
        })
    })
}

fn model() -> impl Strategy<Value = Model> {
    let pods = (0..12usize).prop_flat_map(|n| (0..n).map(pod_model).collect::<Vec<_>>());
    let node = (
        present(amount(1_000_000_000_000_000)),
        present(amount(1 << 53)),
        present(millis()),
    );
    (node, pods, any::<u64>()).prop_map(|((node_cpu, node_memory, node_ms), pods, seed)| Model {
        node_cpu,
        node_memory,
        node_ms,
        pods,
        seed,
    })
}

/// xorshift64*, for rendering choices derived from the model's seed.
struct Dice(u64);

impl Dice {
    fn roll(&mut self, sides: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % sides
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.roll(i as u64 + 1) as usize);
        }
    }
}

/// Go's `strconv.FormatFloat(v, 'g', -1, 64)`, as the kubelet writes numbers.
fn go_float(v: f64) -> String {
    let sci = format!("{v:e}");
    let (mantissa, exp) = sci.split_once('e').expect("exponent form");
    let exp: i32 = exp.parse().expect("exponent");
    if (-4..6).contains(&exp) {
        return format!("{v}");
    }
    let sign = if exp < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exp.unsigned_abs())
}

fn number(dice: &mut Dice, v: f64) -> String {
    match dice.roll(3) {
        0 => format!("{v}"),
        1 => format!("{v:e}"),
        _ => go_float(v),
    }
}

fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn labels(dice: &mut Dice, model: &Model, pod: usize, container: usize) -> String {
    let (pod, container) = (&model.pods[pod], &model.pods[pod].containers[container]);
    let mut pairs = vec![
        ("container", escape(&container.name)),
        ("namespace", escape(&pod.namespace)),
        ("pod", escape(&pod.name)),
    ];
    if dice.roll(4) == 0 {
        pairs.push(("id", "/kubepods/\\\"x\\\\".to_owned()));
    }
    dice.shuffle(&mut pairs);
    let body: Vec<_> = pairs.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    format!("{{{}}}", body.join(","))
}

fn sample(out: &mut String, dice: &mut Dice, name: &str, labels: &str, value: &str, ms: Option<i64>) {
    let _ = write!(out, "{name}{labels} {value}");
    if let Some(ms) = ms {
        let _ = write!(out, " {ms}");
    }
    out.push_str(if dice.roll(5) == 0 { "\r\n" } else { "\n" });
    if dice.roll(8) == 0 {
        out.push_str(NOISE[dice.roll(NOISE.len() as u64) as usize]);
    }
}

/// Lines the decoder must skip without effect.
const NOISE: &[&str] = &[
    "# HELP container_cpu_usage_seconds_total [STABLE] Cumulative cpu time\n",
    "# TYPE container_cpu_usage_seconds_total counter\n",
    "\n",
    "pod_cpu_usage_seconds_total{namespace=\"ns\",pod=\"p\"} 1 1\n",
    "container_swap_limit_bytes{container=\"c\",namespace=\"ns\",pod=\"p\"} 0 1\n",
    "pod_swap_usage_bytes{namespace=\"ns\",pod=\"p\"} 0 1\n",
    "container_cpu_usage_seconds_total_extra{container=\"c\",namespace=\"ns\",pod=\"p\"} 1 1\n",
    "resource_scrape_error 0\n",
];

/// One container line to render: which container, and which family.
type Event = (usize, usize, Family);

#[derive(Debug, Clone, Copy, PartialEq)]
enum Family {
    Cpu,
    Memory,
    Start,
}

/// The body for `model`, families in the kubelet's order, and the container events in the
/// order written. Half the bodies are kubelet-like (every family in one series order, each
/// series' label text the same in every family); in the others each family has its own order
/// and every line its own label order and extra labels.
fn render(model: &Model) -> (String, Vec<Event>) {
    let mut dice = Dice(model.seed | 1);
    let kubelet_like = dice.roll(2) == 0;
    let mut order: Vec<(usize, usize)> = (model.pods.iter().enumerate())
        .flat_map(|(p, pod)| (0..pod.containers.len()).map(move |c| (p, c)))
        .collect();
    dice.shuffle(&mut order);
    let fixed: Vec<String> = order.iter().map(|&(p, c)| labels(&mut dice, model, p, c)).collect();
    let (mut out, mut events) = (String::new(), Vec::new());
    for family in [Family::Cpu, Family::Memory, Family::Start] {
        if !kubelet_like {
            dice.shuffle(&mut order);
        }
        for (i, &(p, c)) in order.iter().enumerate() {
            let labels = if kubelet_like {
                fixed[i].clone()
            } else {
                labels(&mut dice, model, p, c)
            };
            if container_line(&mut out, &mut dice, model, (p, c, family), &labels) {
                events.push((p, c, family));
            }
        }
    }
    node_lines(&mut out, &mut dice, model);
    (out, events)
}

fn container_line(out: &mut String, dice: &mut Dice, model: &Model, event: Event, labels: &str) -> bool {
    let container = &model.pods[event.0].containers[event.1];
    let (name, value, ms) = match event.2 {
        Family::Cpu => (
            "container_cpu_usage_seconds_total",
            container.cpu.map(seconds),
            container.cpu_ms,
        ),
        Family::Memory => (
            "container_memory_working_set_bytes",
            container.memory.map(|m| m as f64),
            container.memory_ms,
        ),
        Family::Start => (
            "container_start_time_seconds",
            container.start_ms.map(|s| s as f64 / 1000.0),
            None,
        ),
    };
    let Some(value) = value else { return false };
    let value = number(dice, value);
    sample(out, dice, name, labels, &value, ms);
    true
}

fn node_lines(out: &mut String, dice: &mut Dice, model: &Model) {
    if let Some(cpu) = model.node_cpu {
        let value = number(dice, seconds(cpu));
        sample(out, dice, "node_cpu_usage_seconds_total", "", &value, model.node_ms);
    }
    if let Some(memory) = model.node_memory {
        let value = number(dice, memory as f64);
        sample(out, dice, "node_memory_working_set_bytes", "", &value, model.node_ms);
    }
}

fn seconds(nanos: u64) -> f64 {
    nanos as f64 / NANOS_PER_SECOND as f64
}

/// What metrics-server's rules make of `model`: the node if complete, and complete pods in
/// the order their first line was written.
type Expected = (Option<MetricsPoint>, Vec<ExpectedPod>);
/// `(namespace, pod, [(container, point)])`.
type ExpectedPod = (String, String, Vec<(String, MetricsPoint)>);

fn expected(model: &Model, events: &[Event]) -> Expected {
    let node_ts = model.node_ms.map_or(SENT, |ms| ms * NANOS_PER_MILLI);
    let node = MetricsPoint {
        start_time: 0,
        timestamp: node_ts,
        cumulative_cpu: model.node_cpu.unwrap_or(0),
        memory: model.node_memory.unwrap_or(0),
        swap: None,
    };
    let node = (node.cumulative_cpu != 0 && node.memory != 0).then_some(node);
    let mut order: Vec<(usize, Vec<usize>)> = Vec::new();
    for &(p, c, _) in events {
        let at = order.iter().position(|(q, _)| *q == p).unwrap_or_else(|| {
            order.push((p, Vec::new()));
            order.len() - 1
        });
        if !order[at].1.contains(&c) {
            order[at].1.push(c);
        }
    }
    let pods = order
        .into_iter()
        .filter_map(|(p, cs)| expected_pod(&model.pods[p], &cs))
        .collect();
    (node, pods)
}

fn expected_pod(pod: &PodModel, order: &[usize]) -> Option<ExpectedPod> {
    let mut containers = Vec::new();
    for &c in order {
        let m = &pod.containers[c];
        let (cpu, memory) = (m.cpu.unwrap_or(0), m.memory.unwrap_or(0));
        if cpu == 0 || memory == 0 {
            return None;
        }
        // The memory line comes after the CPU line, so its timestamp wins.
        let timestamp = m.memory_ms.map_or(SENT, |ms| ms * NANOS_PER_MILLI);
        let start_time = m.start_ms.map_or(0, |ms| ms * NANOS_PER_MILLI);
        let point = MetricsPoint {
            start_time,
            timestamp,
            cumulative_cpu: cpu,
            memory,
            swap: None,
        };
        containers.push((m.name.clone(), point));
    }
    Some((pod.namespace.clone(), pod.name.clone(), containers))
}

/// What every batch must satisfy, whatever the input.
fn check_invariants(body: &[u8], limits: &Limits) {
    let Ok(batch) = decode(body, SENT, limits) else { return };
    if let Some(node) = batch.node {
        assert!(node.timestamp != 0 && node.cumulative_cpu != 0 && node.memory != 0);
    }
    for pod in &batch.pods {
        assert!(!pod.containers.is_empty() && !pod.name.is_empty() && !pod.namespace.is_empty());
        for c in &pod.containers {
            assert!(c.point.cumulative_cpu != 0 && c.point.memory != 0 && !c.name.is_empty());
        }
    }
    let stats = &batch.stats;
    assert!(stats.samples + stats.malformed_lines + stats.invalid_values <= stats.lines);
    assert_eq!(stats.node_incomplete, batch.node.is_none());
    let newlines = body.iter().filter(|&&b| b == b'\n').count();
    let unterminated = usize::from(!body.is_empty() && !body.ends_with(b"\n"));
    assert_eq!(stats.lines as usize, newlines + unterminated);
}

/// Pieces of the text format, so that random sequences reach deep into the line parser.
const TOKENS: &[&str] = &[
    "container_cpu_usage_seconds_total",
    "container_memory_working_set_bytes",
    "container_start_time_seconds",
    "node_cpu_usage_seconds_total",
    "node_memory_working_set_bytes",
    "pod_cpu_usage_seconds_total",
    "#",
    "{",
    "}",
    "\"",
    "\\",
    "=",
    ",",
    " ",
    "\t",
    "\n",
    "\r\n",
    "container",
    "pod",
    "namespace",
    "x",
    "é",
    "1",
    "0",
    "-1",
    "1e+09",
    "1.5",
    "NaN",
    "+Inf",
    "1633253812125",
    "-5",
    "99999999999999999999",
    "\u{0}",
];

fn tokens() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop::sample::select(TOKENS), 0..80).prop_map(|t| t.concat().into_bytes())
}

fn small_limits() -> impl Strategy<Value = Limits> {
    prop_oneof![
        Just(Limits::default()),
        (0..8usize, 0..12usize).prop_map(|(max_series, max_label_len)| Limits {
            max_series,
            max_label_len
        }),
    ]
}

/// Compares a batch with the model's expectation. Start times are seconds as `f64` in the
/// text, so they are exact to well under a microsecond; everything else is exact.
fn check_round_trip(batch: &ScrapeBatch<'_>, (node, pods): &Expected) -> Result<(), TestCaseError> {
    prop_assert_eq!(&batch.node, node);
    prop_assert_eq!(batch.pods.len(), pods.len());
    for (got, (namespace, name, containers)) in batch.pods.iter().zip(pods) {
        prop_assert_eq!((&*got.namespace, &*got.name), (namespace.as_str(), name.as_str()));
        prop_assert_eq!(got.containers.len(), containers.len());
        for (got, (name, want)) in got.containers.iter().zip(containers) {
            prop_assert_eq!(&*got.name, name.as_str());
            let drift = got.point.start_time - want.start_time;
            prop_assert!(drift.abs() < 1_000, "{:?} {:?}", got.point, want);
            prop_assert_eq!(
                MetricsPoint {
                    start_time: want.start_time,
                    ..got.point
                },
                *want
            );
        }
    }
    prop_assert_eq!(batch.stats.malformed_lines + batch.stats.invalid_values, 0);
    Ok(())
}

/// Random edits: `(position, byte, 0 replace | 1 insert | 2 delete)`.
type Edits = Vec<(usize, u8, u8)>;

fn mutate(body: &mut Vec<u8>, edits: Edits) {
    for (at, byte, kind) in edits {
        let at = at % (body.len() + 1);
        match kind {
            0 if at < body.len() => body[at] = byte,
            1 => body.insert(at, byte),
            _ if at < body.len() => {
                body.remove(at);
            }
            _ => {}
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1_000))]

    #[test]
    fn rendered_model_round_trips(model in model()) {
        let (body, events) = render(&model);
        let batch = decode(body.as_bytes(), SENT, &Limits::default()).unwrap();
        check_round_trip(&batch, &expected(&model, &events))?;
    }

    #[test]
    fn mutated_bodies_keep_invariants(
        model in model(),
        edits in prop::collection::vec((any::<usize>(), any::<u8>(), 0..3u8), 1..8),
    ) {
        let mut body = render(&model).0.into_bytes();
        mutate(&mut body, edits);
        check_invariants(&body, &Limits::default());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(20_000))]

    /// The decimal fast path gives `str::parse`'s value, bit for bit, whenever it answers.
    #[test]
    fn fast_decimals_equal_str_parse(
        text in "[0-9]{0,20}(\\.[0-9]{0,20})?([eE][-+]?[0-9]{0,4})?",
    ) {
        let parsed = text.parse::<f64>().ok().map(f64::to_bits);
        if let Some(fast) = super::value::decimal(text.as_bytes()) {
            prop_assert_eq!(Some(fast.to_bits()), parsed);
        }
        prop_assert_eq!(super::value::parse_float(text.as_bytes()).map(f64::to_bits), parsed);
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        body in prop::collection::vec(any::<u8>(), 0..1024),
        limits in small_limits(),
    ) {
        check_invariants(&body, &limits);
    }

    #[test]
    fn arbitrary_token_sequences_never_panic(body in tokens(), limits in small_limits()) {
        check_invariants(&body, &limits);
    }
}
