//! metrics-server `pkg/storage/node_test.go`, case by case.

use super::*;

#[test]
fn provides_node_metrics_from_stored_batches() {
    let mut s = Store::new(RESOLUTION);
    // Storing the first scrape: not servable until a second one.
    store_node(&mut s, point(START, at(10), 10 * CORE_SECOND, 2 * MIB));
    assert!(!node_ready(&s));
    assert_eq!(s.node("node1"), None);

    // The second scrape: timestamp of the newer point, window = the delta, CPU = delta / window.
    store_node(&mut s, point(START, at(20), 20 * CORE_SECOND, 3 * MIB));
    assert!(node_ready(&s));
    let expected = NodeMetrics {
        timestamp: at(20),
        window: secs(10),
        usage: usage(CORE_SECOND, 3 * MIB),
    };
    assert_eq!(s.node("node1"), Some(expected));
    assert_eq!(s.nodes().collect::<Vec<_>>(), vec![("node1", expected)]);

    // A node never stored.
    assert_eq!(s.node("node2"), None);

    // A third scrape without a node point forgets the node.
    s.insert_node("node1", NodeScrape::default(), at(30));
    assert_eq!(s.node("node1"), None);
}

#[test]
fn handle_repeated_node_metric_point() {
    let mut s = Store::new(RESOLUTION);
    let p = point(START, at(10), 10 * CORE_SECOND, 2 * MIB);
    store_node(&mut s, p);
    // The exact same point again (kubelet cache not refreshed).
    store_node(&mut s, p);
    assert_eq!(s.node("node1"), None);
    assert!(!node_ready(&s));
}

#[test]
fn exposes_correct_node_storage_points() {
    let mut s = Store::new(RESOLUTION);
    assert_eq!(s.servable_counts(), (0, 0));
    store_node(&mut s, point(START, at(10), 10 * CORE_SECOND, 2 * MIB));
    assert_eq!(s.servable_counts(), (0, 0));
    store_node(&mut s, point(START, at(20), 21 * CORE_SECOND, 3 * MIB));
    assert_eq!(s.servable_counts(), (1, 0));
}

#[test]
fn should_detect_node_restart_and_skip_metric() {
    let mut s = Store::new(RESOLUTION);
    store_node(&mut s, point(START, at(10), 10 * CORE_SECOND, 2 * MIB));
    // Start time after the previous point and the counter restarted lower.
    store_node(&mut s, point(at(15), at(20), 5 * CORE_SECOND, 3 * MIB));
    assert_eq!(s.node("node1"), None);
}

#[test]
fn should_return_empty_node_metrics_if_decreased_data_point_reported() {
    let mut s = Store::new(RESOLUTION);
    store_node(&mut s, point(START, at(15), 50 * CORE_SECOND, 3 * MIB));
    store_node(&mut s, point(START, at(25), 10 * CORE_SECOND, 5 * MIB));
    assert_eq!(s.node("node1"), None);
    // Counted as a point (it has a previous one) even though its rate fails, as metrics-server.
    assert_eq!(s.servable_counts(), (1, 0));
}

#[test]
fn should_handle_metrics_older_than_prev() {
    let mut s = Store::new(RESOLUTION);
    store_node(&mut s, point(START, at(15), 10 * CORE_SECOND, 3 * MIB));
    store_node(&mut s, point(START, at(35), 50 * CORE_SECOND, 5 * MIB));
    // A point older than the previous one. metrics-server drops the previous point and hides
    // the node; here the point is ignored and the node keeps its last two points.
    store_node(&mut s, point(START, at(5), 6 * CORE_SECOND, 2 * MIB));
    let kept = NodeMetrics {
        timestamp: at(35),
        window: secs(20),
        usage: usage(2 * CORE_SECOND, 5 * MIB),
    };
    assert_eq!(s.node("node1"), Some(kept));
}

#[test]
fn should_handle_metrics_prev_older_than_new_older_than_last() {
    let mut s = Store::new(RESOLUTION);
    store_node(&mut s, point(START, at(15), 10 * CORE_SECOND, MIB));
    store_node(&mut s, point(START, at(35), 50 * CORE_SECOND, 4 * MIB));
    // prev.ts < new.ts < last.ts. metrics-server pairs the new point with the previous one and
    // serves it, so the served timestamp goes back from 35 to 25; here the point is ignored.
    store_node(&mut s, point(START, at(25), 35 * CORE_SECOND, 2 * MIB));
    let expected = NodeMetrics {
        timestamp: at(35),
        window: secs(20),
        usage: usage(2 * CORE_SECOND, 4 * MIB),
    };
    assert_eq!(s.node("node1"), Some(expected));
}

#[test]
fn provides_node_metrics_when_start_time_is_zero() {
    let mut s = Store::new(RESOLUTION);
    store_node(&mut s, point(0, at(10), 10 * CORE_SECOND, 2 * MIB));
    assert!(!node_ready(&s));
    assert_eq!(s.node("node1"), None);
    store_node(&mut s, point(0, at(20), 20 * CORE_SECOND, 3 * MIB));
    assert!(node_ready(&s));
    let expected = NodeMetrics {
        timestamp: at(20),
        window: secs(10),
        usage: usage(CORE_SECOND, 3 * MIB),
    };
    assert_eq!(s.node("node1"), Some(expected));
}
