//! Sample values -> the integer units of [`MetricsPoint`](crate::point::MetricsPoint).

use super::line::Series;
use crate::point::NANOS_PER_SECOND;

/// 2^64 and 2^63 as `f64` (both exact): the first values that do not fit `u64` and `i64`.
const U64_END: f64 = 18_446_744_073_709_551_616.0;
const I64_END: f64 = 9_223_372_036_854_775_808.0;

/// The value in the point's unit, rounded to the nearest integer: nanocore-seconds for CPU,
/// bytes for memory, Unix ns for a start time (which always fits `i64`). `None` for a value
/// that is negative, NaN, infinite or does not fit.
pub(super) fn convert(series: Series, value: f64) -> Option<u64> {
    let per_second = NANOS_PER_SECOND as f64;
    let (scaled, end) = match series {
        Series::ContainerMemory | Series::NodeMemory => (value, U64_END),
        Series::ContainerCpu | Series::NodeCpu => (value * per_second, U64_END),
        Series::ContainerStart => (value * per_second, I64_END),
    };
    whole(scaled, end)
}

/// `x` rounded, if `0 <= x` and the rounded value is below `end` (false for NaN and
/// infinities). Then `as u64` is exact.
fn whole(x: f64, end: f64) -> Option<u64> {
    let rounded = x.round();
    (x >= 0.0 && rounded < end).then_some(rounded as u64)
}
