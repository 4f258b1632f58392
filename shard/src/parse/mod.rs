//! Kubelet `/metrics/resource` text -> [`ScrapeBatch`]: the node's point and every complete
//! pod's container points.
//!
//! Read path: kubelet -> `scrape` (HTTPS, body bytes) -> **`parse`** -> `store`. Pure: no IO,
//! no clock (the caller passes the time the request was sent), no panics on any input (fuzzed,
//! see `shard/fuzz/`).
//!
//! Follows metrics-server's `pkg/scraper/client/resource/decode.go` (v0.8):
//!
//! - Five series are read as metrics-server reads them: `node_cpu_usage_seconds_total`,
//!   `node_memory_working_set_bytes`, `container_cpu_usage_seconds_total`,
//!   `container_memory_working_set_bytes` and `container_start_time_seconds`, matched by exact
//!   name; and two more, `container_swap_usage_bytes` and `node_swap_usage_bytes` (swap, which
//!   metrics-server ignores; a swap line never decides whether a point is complete, nor its
//!   timestamp). Comments, `pod_*`, `container_swap_limit_bytes` and the rest are skipped
//!   unparsed.
//! - CPU seconds x 1e9 are nanocore-seconds, memory and swap are bytes, start time seconds x
//!   1e9 are Unix ns; each is rounded to the nearest integer (metrics-server truncates, so it
//!   can be one unit lower). A byte count of 2^63 or more is a wrapped `uint64`, not data
//!   ([`MAX_BYTES_END`]).
//! - A sample's time is its millisecond timestamp, or `default_timestamp` when it has none.
//!   The CPU and the memory line both set a point's timestamp, so the later one wins: with the
//!   kubelet's sorted output that is the memory sample's time, as in metrics-server.
//! - The node is left out when its timestamp is zero or its CPU or memory is zero. A
//!   container whose CPU or memory is zero (missing, invalid, or only a start-time line) leaves
//!   its whole pod out of the batch.
//! - A series given twice: the last valid line wins.
//! - Blanks and tabs before a line are skipped (Prometheus' parsers skip them; metrics-server's
//!   `textparse` too).
//! - A body whose only news is `resource_scrape_error 1` (or the older `scrape_error 1`), the
//!   kubelet's way of saying its stats provider failed, is a failed scrape
//!   ([`DecodeError::KubeletError`]), so the last good points stay served; metrics-server
//!   stores the empty batch and hides the node's pods.
//!
//! Deliberate improvements (docs/security.md, "Bounded and validated input"): a malformed line or an invalid value (negative, NaN,
//! infinite, out of range) drops that series only, never the whole node, and is counted in
//! [`DecodeStats`]; label values are parsed properly (quoted, escaped, any order) instead of
//! found by byte search; input is bounded by [`Limits`].
//!
//! ```
//! use shard::parse::{decode, Limits};
//!
//! let body = b"container_cpu_usage_seconds_total{container=\"c\",namespace=\"ns\",pod=\"p\"} 0.5 1000\n\
//!              container_memory_working_set_bytes{container=\"c\",namespace=\"ns\",pod=\"p\"} 1.2537856e+07 2000\n\
//!              node_cpu_usage_seconds_total 357.35491 1633253809720\n\
//!              node_memory_working_set_bytes 1.137475584e+09 1633253809720\n";
//! let batch = decode(body, 7, &Limits::default()).unwrap();
//! let pod = &batch.pods[0];
//! assert_eq!((&*pod.namespace, &*pod.name), ("ns", "p"));
//! assert_eq!(pod.containers[0].point.cumulative_cpu, 500_000_000);
//! assert_eq!(pod.containers[0].point.timestamp, 2_000_000_000); // the memory line's
//! assert_eq!(batch.node.unwrap().memory, 1_137_475_584);
//! ```

mod batch;
mod labels;
mod line;
mod value;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

use crate::point::{MetricsPoint, Nanos};
use batch::{Builder, Target};
use line::{Reading, Series, Skipped};
use std::borrow::Cow;

pub use line::LineError;
pub use value::MAX_BYTES_END;

/// Default for [`Limits::max_series`]: far above a real node (110 pods of a few containers
/// give a few hundred series) and small enough to bound memory per scrape.
pub const DEFAULT_MAX_SERIES: usize = 100_000;
/// A sample stamped more than this after the scraping replica sent the request is dropped: a
/// kubelet whose clock runs ahead (or that lies) must not plant points that rank as newer than
/// every honest copy for as long as it is ahead. NTP keeps real clocks well inside a second.
pub const MAX_TIMESTAMP_AHEAD: Nanos = 60 * crate::point::NANOS_PER_SECOND;
/// Default for [`Limits::max_label_len`], in bytes. Kubernetes names are at most 253 bytes.
pub const DEFAULT_MAX_LABEL_LEN: usize = 1024;
/// Largest body [`decode`] accepts, in bytes (so that every line count fits in a `u32`).
pub const MAX_BODY_LEN: usize = u32::MAX as usize;

/// Bounds on what one body may make [`decode`] keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most container sample lines read (CPU, memory and start-time lines together). Lines
    /// after that are not read and [`DecodeStats::series_limit_hit`] is set; the node's lines
    /// are still read.
    pub max_series: usize,
    /// Longest label value, in bytes as written (escapes count as written). A line with a
    /// longer value is malformed.
    pub max_label_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_series: DEFAULT_MAX_SERIES,
            max_label_len: DEFAULT_MAX_LABEL_LEN,
        }
    }
}

/// What one kubelet body said about its node and pods.
#[derive(Debug, Clone, PartialEq)]
pub struct ScrapeBatch<'a> {
    /// The node's point; `None` when incomplete (timestamp, CPU or memory zero), as
    /// metrics-server drops it.
    pub node: Option<MetricsPoint>,
    /// Complete pods, in the order their first series appeared.
    pub pods: Vec<PodBatch<'a>>,
    pub stats: DecodeStats,
}

/// One pod whose every container has CPU and memory.
#[derive(Debug, Clone, PartialEq)]
pub struct PodBatch<'a> {
    pub namespace: Cow<'a, str>,
    pub name: Cow<'a, str>,
    /// In the order their first series appeared; never empty.
    pub containers: Vec<ContainerPoint<'a>>,
}

/// One container's sample. Names borrow from the body unless the label value had escapes.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerPoint<'a> {
    pub name: Cow<'a, str>,
    pub point: MetricsPoint,
}

/// Counts of what [`decode`] read, skipped and dropped, for logs and self-metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DecodeStats {
    /// Lines in the body, blank and comment lines included.
    pub lines: u32,
    /// Samples of the five used series that were taken into the batch.
    pub samples: u32,
    /// Lines of a used series that did not parse (syntax, missing or over-long label, bad
    /// timestamp); each drops its series.
    pub malformed_lines: u32,
    /// Well-formed samples whose value was negative, NaN, infinite or too large; each drops
    /// its series.
    pub invalid_values: u32,
    /// Pods left out because a container had no CPU or no memory.
    pub dropped_pods: u32,
    /// The node's point was left out (see [`ScrapeBatch::node`]).
    pub node_incomplete: bool,
    /// More than [`Limits::max_series`] container lines; the rest were not read.
    pub series_limit_hit: bool,
    /// The first malformed line, for a log message.
    pub first_malformed: Option<Malformed>,
}

/// Where and why a line was malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed {
    /// 1-based line number in the body.
    pub line: u32,
    pub reason: LineError,
}

/// Why a whole body was refused. Both mean the scrape failed (keep the last good points);
/// retrying on the next tick is worthwhile, the kubelet may answer properly then.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The body has lines but not one comment or sample line: it is not the Prometheus text
    /// format at all (an HTML error page, a binary body).
    #[error("kubelet body is not Prometheus text: {lines} lines, none a comment or sample")]
    NotMetricsText { lines: u32 },
    /// The body is longer than [`MAX_BODY_LEN`].
    #[error("kubelet body of {len} bytes is longer than {MAX_BODY_LEN}")]
    TooLarge { len: usize },
    /// The kubelet reported `resource_scrape_error 1` (or `scrape_error 1`) and no sample of a
    /// series we read: its stats provider failed this time.
    #[error("kubelet reported a scrape error (resource_scrape_error 1) and no samples")]
    KubeletError,
}

/// Parses a kubelet `/metrics/resource` body. `default_timestamp` (Unix ns) is the time of
/// samples without a timestamp: the time the request was sent, as in metrics-server.
pub fn decode<'a>(body: &'a [u8], default_timestamp: Nanos, limits: &Limits) -> Result<ScrapeBatch<'a>, DecodeError> {
    if body.len() > MAX_BODY_LEN {
        return Err(DecodeError::TooLarge { len: body.len() });
    }
    let mut decoder = Decoder::new(default_timestamp, limits);
    let mut rest = body;
    while !rest.is_empty() {
        let (line, next) = split_line(rest);
        decoder.line(line);
        rest = next;
    }
    decoder.finish()
}

/// The first line of `body` without its `\n` or `\r\n`, and what follows it.
fn split_line(body: &[u8]) -> (&[u8], &[u8]) {
    let (line, next) = match memchr::memchr(b'\n', body) {
        Some(i) => (&body[..i], &body[i + 1..]),
        None => (body, &body[body.len()..]),
    };
    (line.strip_suffix(b"\r").unwrap_or(line), next)
}

/// The state of one [`decode`] call.
struct Decoder<'a, 'l> {
    limits: &'l Limits,
    default_timestamp: Nanos,
    builder: Builder<'a>,
    stats: DecodeStats,
    container_lines: usize,
    /// Some line was a comment or a sample: the body is Prometheus text.
    recognised: bool,
    /// Some non-blank line was neither.
    unrecognised: bool,
    /// A scrape-error gauge said 1.
    kubelet_error: bool,
}

impl<'a, 'l> Decoder<'a, 'l> {
    fn new(default_timestamp: Nanos, limits: &'l Limits) -> Self {
        Decoder {
            limits,
            default_timestamp,
            builder: Builder::default(),
            stats: DecodeStats::default(),
            container_lines: 0,
            recognised: false,
            unrecognised: false,
            kubelet_error: false,
        }
    }

    fn line(&mut self, line: &'a [u8]) {
        self.stats.lines += 1;
        // Blanks before a line are allowed, as the Prometheus text parsers allow them.
        let line = line::skip_blanks(line);
        let series = match line::classify(line) {
            Ok(series) => series,
            Err(skipped) => {
                self.kubelet_error |= skipped == Skipped::Other && line::is_scrape_error(line);
                return self.skip(skipped, line);
            }
        };
        self.recognised = true;
        if series.is_container() && !self.count_container_line() {
            return;
        }
        let rest = &line[series.name().len()..];
        match self.locate(series, rest) {
            Ok((target, reading)) => self.take(series, target, reading),
            Err(reason) => {
                // A node series is known by its name alone, so it is dropped too.
                self.builder.drop_node_series(series);
                self.malformed(reason);
            }
        }
    }

    /// Counts a container line; false (and flagged) once past [`Limits::max_series`].
    fn count_container_line(&mut self) -> bool {
        if self.container_lines >= self.limits.max_series {
            self.stats.series_limit_hit = true;
            return false;
        }
        self.container_lines += 1;
        true
    }

    /// The point a line is about, and its reading. A container line whose label block is,
    /// byte for byte, the one the kubelet's series order makes likely next is matched without
    /// parsing or hashing its labels.
    fn locate(&mut self, series: Series, rest: &'a [u8]) -> Result<(Target, Reading), LineError> {
        if series.is_container()
            && let Some((target, after)) = self.builder.repeated(rest)
        {
            return Ok((target, line::reading(after)));
        }
        let sample = line::parse(rest, self.limits)?;
        let target = self.builder.target(series, sample.labels, sample.label_block)?;
        Ok((target, sample.reading))
    }

    /// Notes whether a line that is not one of ours still shows the body is metrics text.
    /// Only looked at until the first such line, so it costs nothing on a real body.
    fn skip(&mut self, skipped: Skipped, line: &[u8]) {
        if self.recognised || skipped == Skipped::Blank {
            return;
        }
        if skipped == Skipped::Comment || line::looks_like_sample(line) {
            self.recognised = true;
        } else {
            self.unrecognised = true;
        }
    }

    /// Sets the line's series on its point, or drops the series if the value or timestamp
    /// is bad.
    fn take(&mut self, series: Series, target: Target, reading: Reading) {
        let default_timestamp = self.default_timestamp;
        let reading = reading.and_then(|(value, timestamp)| match timestamp {
            Some(t) if t > default_timestamp.saturating_add(MAX_TIMESTAMP_AHEAD) => Err(LineError::TimestampAhead),
            _ => Ok((value, timestamp)),
        });
        let point = self.builder.point(target);
        match reading.map(|(value, timestamp)| (value::convert(series, value), timestamp)) {
            Ok((Some(value), timestamp)) => {
                batch::set(point, series, value, timestamp.unwrap_or(default_timestamp));
                self.stats.samples += 1;
            }
            Ok((None, _)) => {
                batch::clear(point, series);
                self.stats.invalid_values += 1;
            }
            Err(reason) => {
                batch::clear(point, series);
                self.malformed(reason);
            }
        }
    }

    fn malformed(&mut self, reason: LineError) {
        self.stats.malformed_lines += 1;
        let line = self.stats.lines;
        self.stats.first_malformed.get_or_insert(Malformed { line, reason });
    }

    fn finish(mut self) -> Result<ScrapeBatch<'a>, DecodeError> {
        if self.unrecognised && !self.recognised {
            let lines = self.stats.lines;
            return Err(DecodeError::NotMetricsText { lines });
        }
        if self.kubelet_error && self.stats.samples == 0 {
            return Err(DecodeError::KubeletError);
        }
        let (node, pods) = self.builder.finish(&mut self.stats);
        Ok(ScrapeBatch {
            node,
            pods,
            stats: self.stats,
        })
    }
}
