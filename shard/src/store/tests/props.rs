//! Properties of the rate maths and of the rules under arbitrary input: no panic or overflow for
//! any values, exact floor division for valid pairs, served windows always positive.

use proptest::prelude::*;

use super::*;

fn any_point() -> impl Strategy<Value = MetricsPoint> {
    (any::<i64>(), any::<i64>(), any::<u64>(), any::<u64>()).prop_map(|(s, t, c, m)| point(s, t, c, m))
}

/// `cpu` is `floor(delta * 1e9 / window)`, or `u64::MAX` when that does not fit.
fn is_floor(cpu: u64, delta: u64, window: Nanos) -> bool {
    let (exact, window) = (u128::from(delta) * 1_000_000_000, window as u128);
    let (cpu, saturated) = (u128::from(cpu), cpu == u64::MAX);
    cpu * window <= exact && (saturated || exact < (cpu + 1) * window)
}

proptest! {
    #[test]
    fn rate_never_panics_and_checks_hold(last in any_point(), prev in any_point()) {
        match rate(&last, &prev) {
            Ok(r) => {
                prop_assert!(r.window > 0);
                prop_assert_eq!(r.timestamp, last.timestamp);
                prop_assert_eq!(r.usage.memory_bytes, last.memory);
                let delta = last.cumulative_cpu - prev.cumulative_cpu;
                prop_assert!(is_floor(r.usage.cpu_nanocores, delta, r.window));
            }
            Err(RateError::StartTimeDecreased) => prop_assert!(last.start_time < prev.start_time),
            Err(RateError::CpuDecreased) => prop_assert!(last.cumulative_cpu < prev.cumulative_cpu),
            Err(RateError::InvalidWindow) => {
                prop_assert!(last.timestamp <= prev.timestamp || last.timestamp.checked_sub(prev.timestamp).is_none())
            }
        }
    }

    #[test]
    fn rate_is_floor_of_delta_over_window_for_valid_pairs(
        prev in any_point(),
        window in 1..=i64::MAX / 2,
        delta in any::<u64>(),
    ) {
        let prev = point(prev.start_time, prev.timestamp / 2, prev.cumulative_cpu / 2, prev.memory);
        let last = point(prev.start_time, prev.timestamp + window, prev.cumulative_cpu.saturating_add(delta), 1);
        let r = rate(&last, &prev).unwrap();
        prop_assert_eq!(r.window, window);
        prop_assert!(is_floor(r.usage.cpu_nanocores, last.cumulative_cpu - prev.cumulative_cpu, window));
    }

    #[test]
    fn served_node_is_the_newest_point_with_a_positive_window_and_never_goes_back(
        points in prop::collection::vec(any_point(), 1..12),
    ) {
        let mut s = Store::new(RESOLUTION);
        let (mut newest, mut served) = (i64::MIN, i64::MIN);
        for p in &points {
            store_node(&mut s, *p);
            newest = newest.max(p.timestamp);
            if let Some(m) = s.node("node1") {
                prop_assert_eq!(m.timestamp, newest, "points older than the last are ignored");
                prop_assert!(m.window > 0);
                prop_assert!(m.timestamp >= served, "the served timestamp never goes back");
                served = m.timestamp;
            }
        }
    }

    #[test]
    fn served_pod_has_positive_windows_from_its_containers(
        scrapes in prop::collection::vec(prop::collection::vec((0..3usize, any_point()), 0..4), 1..10),
        resolution in 1..i64::MAX,
    ) {
        let mut s = Store::new(resolution);
        let mut newest = i64::MIN;
        for scrape in &scrapes {
            let containers: Vec<(&str, MetricsPoint)> = scrape.iter().map(|(i, p)| (["a", "b", "c"][*i], *p)).collect();
            store_pod(&mut s, &containers);
            newest = containers.iter().map(|(_, p)| p.timestamp).fold(newest, i64::max);
            if let Some(pod) = s.pod("ns1", "pod1") {
                prop_assert!(pod.containers.is_empty() || pod.window > 0);
                prop_assert!(pod.containers.windows(2).all(|w| w[0].0 < w[1].0));
                prop_assert!(pod.containers.is_empty() || pod.timestamp <= newest);
            }
        }
    }
}
