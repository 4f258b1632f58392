//! Sample values: text -> `f64` -> the integer units of
//! [`MetricsPoint`](crate::point::MetricsPoint).

use super::line::Series;
use crate::point::NANOS_PER_SECOND;

/// 2^64 and 2^63 as `f64` (both exact): the first values that do not fit `u64` and `i64`.
const U64_END: f64 = 18_446_744_073_709_551_616.0;
const I64_END: f64 = 9_223_372_036_854_775_808.0;

/// The first byte count (memory, swap) taken as bad data: 2^63 bytes (8 EiB) is beyond any
/// machine and beyond `resource.Quantity`'s `int64`. What reaches it is a `uint64` counter that
/// wrapped below zero in the kubelet, such as `node_swap_usage_bytes 1.8446743709127774e+19`
/// in a real 1.28 payload (the stats summary beside it said `swapUsageBytes:
/// 18446743709127774000`).
pub const MAX_BYTES_END: f64 = I64_END;

/// The value in the point's unit, rounded to the nearest integer: nanocore-seconds for CPU,
/// bytes for memory and swap, Unix ns for a start time (which always fits `i64`). `None` for a
/// value that is negative, NaN, infinite or does not fit (bytes: at or past
/// [`MAX_BYTES_END`]).
pub(super) fn convert(series: Series, value: f64) -> Option<u64> {
    let per_second = NANOS_PER_SECOND as f64;
    let (scaled, end) = match series {
        Series::ContainerMemory | Series::NodeMemory | Series::ContainerSwap | Series::NodeSwap => {
            (value, MAX_BYTES_END)
        }
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

/// Exact powers of ten as `f64` (10^22 is the largest).
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20,
    1e21, 1e22,
];

/// A float in Go's `ParseFloat` syntax, as far as the kubelet uses it: decimals, exponents,
/// `NaN`, `+Inf`, `-Inf` (hex floats are refused).
pub(super) fn parse_float(token: &[u8]) -> Option<f64> {
    decimal(token).or_else(|| std::str::from_utf8(token).ok()?.parse().ok())
}

/// The fast path for what the kubelet writes (`0.967393`, `1.2537856e+07`): unsigned
/// decimals whose digits form an integer below 2^53 and whose power of ten is within 22.
/// One multiplication or division of two exact values rounds correctly (Clinger), so the
/// result equals `str::parse`'s. `None` sends anything else to `str::parse`.
pub(super) fn decimal(token: &[u8]) -> Option<f64> {
    let (mantissa, mut exp, rest) = digits(token)?;
    if let [b'e' | b'E', rest @ ..] = rest {
        exp += exponent(rest)?;
    } else if !rest.is_empty() {
        return None;
    }
    let m = mantissa as f64;
    match exp {
        0..=22 => Some(m * POW10[exp as usize]),
        -22..=-1 => Some(m / POW10[exp.unsigned_abs() as usize]),
        _ => None,
    }
}

/// `ddd[.ddd]` as an integer below 2^53 and its power of ten, and the rest of the token.
fn digits(token: &[u8]) -> Option<(u64, i32, &[u8])> {
    let (mut mantissa, mut exp, mut any, mut dot) = (0u64, 0i32, false, false);
    let mut at = 0;
    while let Some(&b) = token.get(at) {
        match b {
            b'0'..=b'9' => {
                mantissa = mantissa * 10 + u64::from(b - b'0');
                if mantissa >= 1 << 53 {
                    return None;
                }
                exp -= i32::from(dot);
                any = true;
            }
            b'.' if !dot => dot = true,
            _ => break,
        }
        at += 1;
    }
    any.then_some((mantissa, exp, &token[at..]))
}

/// An exponent after `e`: optional sign, one to three digits, nothing else.
fn exponent(text: &[u8]) -> Option<i32> {
    let (negative, digits) = match text {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, text),
    };
    if digits.is_empty() || digits.len() > 3 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let value = digits.iter().fold(0, |n, &d| n * 10 + i32::from(d - b'0'));
    Some(if negative { -value } else { value })
}
