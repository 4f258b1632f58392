//! Go durations, both ways, the one codec of the workspace:
//! - [`parse`]: Go's `time.ParseDuration` syntax (`15s`, `1m30s`, `500ms`, `1.5h`), so that
//!   metrics-server's flag values work unchanged (the server's flags, kubesim's and the chaos
//!   runner's); negative durations are refused.
//! - [`GoDuration`]: Go's `time.Duration.String()`, which metrics-server uses for the `window`
//!   field of `NodeMetrics`/`PodMetrics` (`metav1.Duration` marshals through it) and for the
//!   `Window` cell of Table rows: `15.012s`, `1m0s`, `1h2m3.5s`, `500ms`, `1.5µs`, `0s`. It sits
//!   at the very end of the read path: the API layer formats windows (nanoseconds from the
//!   store) with it while it writes JSON. A port of `formatDuration`, `fmtFrac` and `fmtInt` in
//!   Go's `src/time/time.go`.

use std::fmt;
use std::time::Duration;

const NANOS_PER_MICRO: u64 = 1_000;
const NANOS_PER_MILLI: u64 = 1_000_000;
const NANOS_PER_SECOND: u64 = 1_000_000_000;

/// A signed number of nanoseconds that displays exactly as Go's `time.Duration.String()`.
///
/// Formatting does not allocate, so `serializer.collect_str(&GoDuration(ns))` writes straight
/// into the response buffer.
///
/// ```
/// use apimachinery::duration::GoDuration;
/// assert_eq!(GoDuration(15_012_000_000).to_string(), "15.012s");
/// assert_eq!(GoDuration(60_000_000_000).to_string(), "1m0s");
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GoDuration(pub i64);

/// `GoDuration(nanos).to_string()`.
pub fn go_duration_string(nanos: i64) -> String {
    GoDuration(nanos).to_string()
}

impl GoDuration {
    /// Appends the text to `out` (what [`fmt::Display`] writes, without a formatter).
    pub fn push_to(self, out: &mut Vec<u8>) {
        let mut buf = [0u8; 32];
        let start = format_into(self.0, &mut buf);
        out.extend_from_slice(&buf[start..]);
    }
}

impl fmt::Display for GoDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The longest output, "-2562047h47m16.854775808s", is 25 bytes.
        let mut buf = [0u8; 32];
        let start = format_into(self.0, &mut buf);
        f.write_str(std::str::from_utf8(&buf[start..]).map_err(|_| fmt::Error)?)
    }
}

/// Writes `d` right-aligned into `buf`; returns where the text starts.
fn format_into(d: i64, buf: &mut [u8; 32]) -> usize {
    let mut w = buf.len() - 1;
    buf[w] = b's';
    let u = d.unsigned_abs();
    w = if u < NANOS_PER_SECOND {
        format_below_second(u, buf, w)
    } else {
        format_seconds_and_up(u, buf, w)
    };
    if d < 0 {
        w -= 1;
        buf[w] = b'-';
    }
    w
}

/// Below one second Go switches to smaller units, like `1.2ms`.
fn format_below_second(u: u64, buf: &mut [u8; 32], mut w: usize) -> usize {
    if u == 0 {
        w -= 1;
        buf[w] = b'0';
        return w;
    }
    let (prec, unit): (u32, &[u8]) = if u < NANOS_PER_MICRO {
        (0, b"n")
    } else if u < NANOS_PER_MILLI {
        (3, "µ".as_bytes())
    } else {
        (6, b"m")
    };
    w -= unit.len();
    buf[w..w + unit.len()].copy_from_slice(unit);
    let (w, whole) = fmt_frac(buf, w, u, prec);
    fmt_int(buf, whole, w)
}

/// `[[<h>h]<m>m]<s>[.<frac>]` before the `s` already written; Go stops at hours because days
/// can have different lengths.
fn format_seconds_and_up(u: u64, buf: &mut [u8; 32], w: usize) -> usize {
    let (mut w, seconds) = fmt_frac(buf, w, u, 9);
    w = fmt_int(buf, seconds % 60, w);
    let minutes = seconds / 60;
    if minutes > 0 {
        w -= 1;
        buf[w] = b'm';
        w = fmt_int(buf, minutes % 60, w);
        let hours = minutes / 60;
        if hours > 0 {
            w -= 1;
            buf[w] = b'h';
            w = fmt_int(buf, hours, w);
        }
    }
    w
}

/// Writes the fraction of `v / 10^prec` (".12345") before `w`, without trailing zeros and
/// without the point when the fraction is zero; returns the new start and `v / 10^prec`.
fn fmt_frac(buf: &mut [u8], mut w: usize, mut v: u64, prec: u32) -> (usize, u64) {
    let mut print = false;
    for _ in 0..prec {
        let digit = (v % 10) as u8;
        print = print || digit != 0;
        if print {
            w -= 1;
            buf[w] = b'0' + digit;
        }
        v /= 10;
    }
    if print {
        w -= 1;
        buf[w] = b'.';
    }
    (w, v)
}

/// Writes `v` in decimal before `w`; returns the new start.
fn fmt_int(buf: &mut [u8], mut v: u64, mut w: usize) -> usize {
    loop {
        w -= 1;
        buf[w] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            return w;
        }
    }
}

/// Parses a Go duration string; negative durations are refused.
pub fn parse(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() || s.starts_with('-') {
        return Err(format!("invalid duration {text:?}"));
    }
    let mut rest = s.strip_prefix('+').unwrap_or(s);
    let mut total = 0f64;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, tail) = rest.split_at(number_len);
        let value: f64 = number.parse().map_err(|_| format!("invalid duration {text:?}"))?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        total += value * unit_nanos(unit).ok_or_else(|| format!("unknown unit {unit:?} in duration {text:?}"))?;
        rest = tail;
    }
    if !total.is_finite() || total > u64::MAX as f64 {
        return Err(format!("invalid duration {text:?}"));
    }
    Ok(Duration::from_nanos(total as u64))
}

fn unit_nanos(unit: &str) -> Option<f64> {
    Some(match unit {
        "ns" => 1.0,
        "us" | "µs" | "μs" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        "m" => 60e9,
        "h" => 3600e9,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const US: i64 = 1_000;
    const MS: i64 = 1_000_000;
    const S: i64 = 1_000_000_000;
    const MIN: i64 = 60 * S;
    const H: i64 = 60 * MIN;

    /// Go's own table, `durationTests` in `src/time/time_test.go`.
    #[test]
    fn matches_go_duration_tests() {
        let cases = [
            ("0s", 0),
            ("1ns", 1),
            ("1.1µs", 1100),
            ("2.2ms", 2200 * US),
            ("3.3s", 3300 * MS),
            ("4m5s", 4 * MIN + 5 * S),
            ("4m5.001s", 4 * MIN + 5001 * MS),
            ("5h6m7.001s", 5 * H + 6 * MIN + 7001 * MS),
            ("8m0.000000001s", 8 * MIN + 1),
            ("2562047h47m16.854775807s", i64::MAX),
            ("-2562047h47m16.854775808s", i64::MIN),
        ];
        for (want, d) in cases {
            assert_eq!(GoDuration(d).to_string(), want, "{d} ns");
        }
    }

    /// Durations as metrics-server prints them in a `window` field (Go's `Duration.String()`):
    /// typical scrape windows (`15.012s`, `1m0s`) and the unit boundaries around them, so ours
    /// read the same.
    #[test]
    fn formats_metrics_windows() {
        let cases = [
            ("15.012s", 15_012 * MS),
            ("14.998s", 14_998 * MS),
            ("1m0s", MIN),
            ("1h2m3.5s", H + 2 * MIN + 3500 * MS),
            ("500ms", 500 * MS),
            ("1.5µs", 1500),
            ("10.5s", 10_500 * MS),
            ("20.064s", 20_064 * MS),
            ("1h0m0s", H),
            ("999ns", 999),
            ("1µs", US),
            ("1ms", MS),
            ("1s", S),
            ("-1.5s", -1500 * MS),
            ("-500ms", -500 * MS),
        ];
        for (want, d) in cases {
            assert_eq!(go_duration_string(d), want, "{d} ns");
        }
    }

    #[test]
    fn go_syntax() {
        assert_eq!(parse("15s"), Ok(Duration::from_secs(15)));
        assert_eq!(parse("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("0"), Ok(Duration::ZERO));
        assert!(parse("15").is_err());
        assert!(parse("-1s").is_err());
        assert!(parse("1d").is_err());
        assert!(parse("").is_err());
    }
}
