//! metrics-server `pkg/storage/types_test.go` (`Test_resourceUsage`), plus the window guard.

use super::*;

fn ms(n: i64) -> Nanos {
    START + n * crate::point::NANOS_PER_MILLI
}

#[test]
fn get_resource_usage_successfully() {
    let got = rate(&point(START, ms(20), 500, 600), &point(START, ms(10), 300, 400));
    let expected = Rate {
        usage: usage(20_000, 600),
        timestamp: ms(20),
        window: ms(10) - START,
    };
    assert_eq!(got, Ok(expected));
}

#[test]
fn fails_on_decrease_in_start_time() {
    let got = rate(&point(START, ms(20), 500, 600), &point(ms(20), ms(10), 300, 400));
    assert_eq!(got, Err(RateError::StartTimeDecreased));
}

#[test]
fn fails_on_decrease_in_cumulative_cpu() {
    let got = rate(&point(START, ms(20), 100, 600), &point(START, ms(10), 300, 400));
    assert_eq!(got, Err(RateError::CpuDecreased));
}

#[test]
fn fails_on_window_that_is_not_positive() {
    let same = point(START, ms(10), 300, 400);
    assert_eq!(rate(&same, &same), Err(RateError::InvalidWindow));
    let older = point(START, ms(5), 300, 400);
    assert_eq!(rate(&older, &same), Err(RateError::InvalidWindow));
}

#[test]
fn whole_number_rates_are_exact_and_huge_rates_saturate() {
    // 1 millicore over a 14.931 s window: Go's float64 division truncates to 999999n.
    let got = rate(&point(0, ms(14_931), 14_931_000, 0), &point(0, ms(0), 0, 0)).unwrap();
    assert_eq!(got.usage.cpu_nanocores, 1_000_000);
    let got = rate(&point(0, 1, u64::MAX, 0), &point(0, 0, 0, 0)).unwrap();
    assert_eq!(got.usage.cpu_nanocores, u64::MAX);
}
