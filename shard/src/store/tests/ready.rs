//! metrics-server `pkg/storage/ready_test.go`: ready needs a node AND a pod (v0.9).

use super::*;

#[test]
fn not_ready_when_only_node_metrics_are_stored() {
    let mut s = Store::new(RESOLUTION);
    store_node(&mut s, point(START, at(10), 10 * CORE_SECOND, 2 * MIB));
    assert!(!s.ready());
    store_node(&mut s, point(START, at(20), 20 * CORE_SECOND, 3 * MIB));
    assert!(!s.ready());
}

#[test]
fn not_ready_when_only_pod_metrics_are_stored() {
    let mut s = Store::new(RESOLUTION);
    store_pod(&mut s, &[("container1", point(START, at(120), CORE_SECOND, 4 * MIB))]);
    assert!(!s.ready());
    store_pod(
        &mut s,
        &[("container1", point(START, at(125), 6 * CORE_SECOND, 5 * MIB))],
    );
    assert!(!s.ready());
}

#[test]
fn ready_when_both_node_and_pod_metrics_are_stored() {
    let mut s = Store::new(RESOLUTION);
    let first = [("container1", point(START, at(120), CORE_SECOND, 4 * MIB))];
    let node = point(START, at(10), 10 * CORE_SECOND, 2 * MIB);
    store_scrape(&mut s, "node1", Some(node), &[("pod1", &first)], at(120));
    assert!(!s.ready());

    let second = [("container1", point(START, at(125), 6 * CORE_SECOND, 5 * MIB))];
    let node = point(START, at(20), 20 * CORE_SECOND, 3 * MIB);
    store_scrape(&mut s, "node1", Some(node), &[("pod1", &second)], at(125));
    assert!(s.ready());
}
