//! metrics-server `pkg/storage/pod_test.go`, case by case (pod `ns1/pod1` on `node1`).

use super::*;

fn pod(s: &Store) -> Option<PodMetrics> {
    s.pod("ns1", "pod1")
}

fn served(timestamp: Nanos, window: Nanos, containers: &[(&str, Usage)]) -> Option<PodMetrics> {
    let containers = containers
        .iter()
        .map(|(name, usage)| (Arc::from(*name), *usage))
        .collect();
    Some(PodMetrics {
        timestamp,
        window,
        containers,
    })
}

#[test]
fn provides_pod_metrics_from_stored_batches() {
    let mut s = Store::new(RESOLUTION);
    // The first scrape: wait for a second one.
    store_pod(&mut s, &[("container1", point(START, at(120), CORE_SECOND, 4 * MIB))]);
    assert!(!pod_ready(&s));
    assert_eq!(pod(&s), None);

    // The second scrape makes the pod servable.
    store_pod(
        &mut s,
        &[("container1", point(START, at(125), 6 * CORE_SECOND, 5 * MIB))],
    );
    assert!(pod_ready(&s));
    let expected = served(at(125), secs(5), &[("container1", usage(CORE_SECOND, 5 * MIB))]);
    assert_eq!(pod(&s), expected);

    // A pod never stored.
    assert_eq!(s.pod("ns1", "pod2"), None);

    // A third scrape without the pod forgets it.
    store_pod_free_scrape(&mut s);
    assert_eq!(pod(&s), None);
}

/// A scrape of `node1` with no pods (`podMetricsBatch()`).
fn store_pod_free_scrape(s: &mut Store) {
    s.insert_node("node1", NodeScrape::default(), at(200));
}

#[test]
fn returns_timestamp_of_earliest_container_of_pod() {
    let mut s = Store::new(RESOLUTION);
    store_pod(
        &mut s,
        &[
            ("container1", point(START, at(110), CORE_SECOND, 4 * MIB)),
            ("container2", point(START, at(115), 2 * CORE_SECOND, 5 * MIB)),
        ],
    );
    store_pod(
        &mut s,
        &[
            ("container1", point(START, at(120), 6 * CORE_SECOND, 6 * MIB)),
            ("container2", point(START, at(125), 7 * CORE_SECOND, 7 * MIB)),
        ],
    );
    assert!(pod_ready(&s));
    let got = pod(&s).unwrap();
    assert_eq!((got.timestamp, got.window), (at(120), secs(10)));
}

#[test]
fn handle_repeated_pod_metric_point() {
    let mut s = Store::new(RESOLUTION);
    let containers = [("container1", point(START, at(110), CORE_SECOND, 4 * MIB))];
    store_pod(&mut s, &containers);
    store_pod(&mut s, &containers);
    assert!(!pod_ready(&s));
    assert_eq!(pod(&s), None);
}

#[test]
fn exposes_correct_pod_storage_points() {
    let mut s = Store::new(RESOLUTION);
    assert_eq!(s.servable_counts(), (0, 0));
    store_pod(
        &mut s,
        &[
            ("container1", point(START, at(110), CORE_SECOND, 4 * MIB)),
            ("container2", point(START, at(115), 2 * CORE_SECOND, 5 * MIB)),
        ],
    );
    assert_eq!(s.servable_counts(), (0, 0));
    store_pod(
        &mut s,
        &[
            ("container1", point(START, at(120), 6 * CORE_SECOND, 6 * MIB)),
            ("container2", point(START, at(125), 7 * CORE_SECOND, 7 * MIB)),
        ],
    );
    assert_eq!(s.servable_counts(), (0, 2));
}

#[test]
fn should_detect_container_restart_and_use_window_from_start_time() {
    let mut s = Store::new(RESOLUTION);
    store_pod(&mut s, &[("container1", point(START, at(10), CORE_SECOND, 4 * MIB))]);
    // Started after the previous point: restarted. 10 s old, so the fresh-container shortcut applies.
    store_pod(
        &mut s,
        &[("container1", point(at(15), at(25), 5 * CORE_SECOND, 5 * MIB))],
    );
    let expected = served(at(25), secs(10), &[("container1", usage(500_000_000, 5 * MIB))]);
    assert_eq!(pod(&s), expected);
}

/// metrics-server serves this pod with no containers; with whole-pod accuracy (its PR #1781) a
/// pod whose container has no valid rate this window is left out.
#[test]
fn should_leave_the_pod_out_if_decreased_data_point_reported() {
    let mut s = Store::new(RESOLUTION);
    store_pod(
        &mut s,
        &[("container1", point(START, at(110), 20 * CORE_SECOND, 4 * MIB))],
    );
    store_pod(
        &mut s,
        &[("container1", point(START, at(120), 10 * CORE_SECOND, 4 * MIB))],
    );
    assert_eq!(pod(&s), None);
}

#[test]
fn should_handle_pod_metrics_older_than_prev() {
    let mut s = Store::new(RESOLUTION);
    store_pod(
        &mut s,
        &[("container1", point(START, at(1115), 20 * CORE_SECOND, 4 * MIB))],
    );
    store_pod(
        &mut s,
        &[("container1", point(START, at(1125), 40 * CORE_SECOND, 4 * MIB))],
    );
    store_pod(
        &mut s,
        &[("container1", point(START, at(115), 10 * CORE_SECOND, 4 * MIB))],
    );
    // metrics-server hides the pod; here the point older than the last one is ignored.
    let kept = served(at(1125), secs(10), &[("container1", usage(2 * CORE_SECOND, 4 * MIB))]);
    assert_eq!(pod(&s), kept);
}

#[test]
fn should_handle_pod_metrics_prev_older_than_new_older_than_last() {
    let mut s = Store::new(RESOLUTION);
    store_pod(
        &mut s,
        &[("container1", point(START, at(115), 10 * CORE_SECOND, 4 * MIB))],
    );
    store_pod(
        &mut s,
        &[("container1", point(START, at(125), 50 * CORE_SECOND, 5 * MIB))],
    );
    store_pod(
        &mut s,
        &[("container1", point(START, at(120), 35 * CORE_SECOND, 5 * MIB))],
    );
    // metrics-server serves the new point with the previous one (timestamp 120, back from
    // 125); here it is ignored and the last two points stay.
    let expected = served(at(125), secs(10), &[("container1", usage(4 * CORE_SECOND, 5 * MIB))]);
    assert_eq!(pod(&s), expected);
}

#[test]
fn should_not_serve_long_running_container_after_one_cycle() {
    let mut s = Store::new(RESOLUTION);
    store_pod(&mut s, &[("container1", point(START, at(120), CORE_SECOND, 4 * MIB))]);
    assert!(!pod_ready(&s));
    assert_eq!(pod(&s), None);
}

#[test]
fn should_serve_fresh_container_after_one_cycle() {
    let mut s = Store::new(RESOLUTION);
    store_pod(
        &mut s,
        &[("container1", point(START, at(10), 10 * CORE_SECOND, 4 * MIB))],
    );
    assert!(pod_ready(&s));
    let expected = served(at(10), secs(10), &[("container1", usage(CORE_SECOND, 4 * MIB))]);
    assert_eq!(pod(&s), expected);
}

#[test]
fn should_not_serve_fresh_container_started_after_its_timestamp() {
    let mut s = Store::new(RESOLUTION);
    store_pod(
        &mut s,
        &[("container1", point(START, at(-10), 10 * CORE_SECOND, 4 * MIB))],
    );
    assert!(!pod_ready(&s));
    assert_eq!(pod(&s), None);
}

#[test]
fn should_not_serve_fresh_container_younger_than_10s() {
    let mut s = Store::new(RESOLUTION);
    store_pod(
        &mut s,
        &[("container1", point(START, at(9), 10 * CORE_SECOND, 4 * MIB))],
    );
    assert!(!pod_ready(&s));
    assert_eq!(pod(&s), None);
}

#[test]
fn provides_pod_metrics_when_start_time_is_zero() {
    let mut s = Store::new(RESOLUTION);
    store_pod(&mut s, &[("container1", point(0, at(120), CORE_SECOND, 4 * MIB))]);
    assert!(!pod_ready(&s));
    assert_eq!(pod(&s), None);
    store_pod(&mut s, &[("container1", point(0, at(125), 6 * CORE_SECOND, 5 * MIB))]);
    assert!(pod_ready(&s));
    let expected = served(at(125), secs(5), &[("container1", usage(CORE_SECOND, 5 * MIB))]);
    assert_eq!(pod(&s), expected);
}

#[test]
fn should_omit_pod_if_not_all_containers_reported_in_first_cycle() {
    let mut s = Store::new(RESOLUTION);
    store_pod(&mut s, &[("container1", point(START, at(110), CORE_SECOND, 4 * MIB))]);
    store_pod(
        &mut s,
        &[
            ("container1", point(START, at(120), 6 * CORE_SECOND, 6 * MIB)),
            ("container2", point(START, at(120), 8 * CORE_SECOND, 5 * MIB)),
        ],
    );
    assert_eq!(pod(&s), None);
    // container1 has a previous point: the pod counts for readiness and storage points.
    assert_eq!(s.servable_counts(), (0, 1));
}
