//! One line of the text format: which of our series it is, then its labels, value and
//! timestamp (`name{labels} value [timestamp_ms]`).

use super::Limits;
use super::labels::{self, Labels};
use super::value;
use crate::point::{NANOS_PER_MILLI, Nanos};

/// The five series metrics-server reads, and the two swap series we read besides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Series {
    ContainerCpu,
    ContainerMemory,
    ContainerStart,
    ContainerSwap,
    NodeCpu,
    NodeMemory,
    NodeSwap,
}

impl Series {
    pub(super) fn name(self) -> &'static [u8] {
        match self {
            Series::ContainerCpu => b"container_cpu_usage_seconds_total",
            Series::ContainerMemory => b"container_memory_working_set_bytes",
            Series::ContainerStart => b"container_start_time_seconds",
            Series::ContainerSwap => b"container_swap_usage_bytes",
            Series::NodeCpu => b"node_cpu_usage_seconds_total",
            Series::NodeMemory => b"node_memory_working_set_bytes",
            Series::NodeSwap => b"node_swap_usage_bytes",
        }
    }

    pub(super) fn is_container(self) -> bool {
        matches!(
            self,
            Series::ContainerCpu | Series::ContainerMemory | Series::ContainerStart | Series::ContainerSwap
        )
    }
}

/// Why a line is not one of our series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Skipped {
    Blank,
    Comment,
    /// Another series, or not a sample at all.
    Other,
}

/// Why a line of one of our series was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    #[error("label block does not parse")]
    Labels,
    #[error("label value longer than the limit")]
    LabelTooLong,
    #[error("label value is not UTF-8")]
    LabelNotUtf8,
    #[error("label given twice")]
    DuplicateLabel,
    #[error("container series without a container, pod or namespace label")]
    MissingLabel,
    #[error("value missing or not a float")]
    Value,
    #[error("timestamp is not a non-negative integer of milliseconds")]
    Timestamp,
    #[error("text after the timestamp")]
    TrailingText,
    #[error("timestamp more than MAX_TIMESTAMP_AHEAD after the scrape was sent")]
    TimestampAhead,
}

/// A line's value and its timestamp (Unix ns, `None` when the line has none), or why they
/// did not parse.
pub(super) type Reading = Result<(f64, Option<Nanos>), LineError>;

/// A line whose labels parsed. The reading is kept apart so that a bad value or timestamp
/// still names the series it drops.
#[derive(Debug)]
pub(super) struct Sample<'a> {
    pub labels: Labels<'a>,
    /// The label block as written, between `{` and `}` (empty without one).
    pub label_block: &'a [u8],
    pub reading: Reading,
}

/// Which of our series `line` is a sample of. The name must be followed by `{`, a blank or
/// the end of the line: `container_cpu_usage_seconds_total_extra` is another series.
pub(super) fn classify(line: &[u8]) -> Result<Series, Skipped> {
    // Pick the only candidate by one or two bytes ("container_" and "node_" are 10 and 5
    // long), then compare the whole name once.
    let series = match line {
        [] => return Err(Skipped::Blank),
        [b'#', ..] => return Err(Skipped::Comment),
        [b'c', ..] => match (line.get(10), line.get(11)) {
            (Some(b'c'), _) => Series::ContainerCpu,
            (Some(b'm'), _) => Series::ContainerMemory,
            (Some(b's'), Some(b't')) => Series::ContainerStart,
            (Some(b's'), Some(b'w')) => Series::ContainerSwap,
            _ => return Err(Skipped::Other),
        },
        [b'n', ..] => match line.get(5) {
            Some(b'c') => Series::NodeCpu,
            Some(b'm') => Series::NodeMemory,
            Some(b's') => Series::NodeSwap,
            _ => return Err(Skipped::Other),
        },
        _ => return Err(Skipped::Other),
    };
    let name = series.name();
    let named = line.starts_with(name) && matches!(line.get(name.len()), None | Some(b'{' | b' ' | b'\t'));
    if named { Ok(series) } else { Err(Skipped::Other) }
}

/// Whether `line` is `resource_scrape_error` or `scrape_error` (no labels) with the value 1.
pub(super) fn is_scrape_error(line: &[u8]) -> bool {
    let rest = match line {
        [b'r', ..] => line.strip_prefix(b"resource_scrape_error".as_slice()),
        [b's', ..] => line.strip_prefix(b"scrape_error".as_slice()),
        _ => None,
    };
    rest.filter(|r| matches!(r.first(), Some(b' ' | b'\t')))
        .is_some_and(|r| matches!(reading(r), Ok((v, _)) if v == 1.0))
}

/// Whether a line that is not ours starts like a sample: a metric name followed by `{`, a
/// blank or the end of the line.
pub(super) fn looks_like_sample(line: &[u8]) -> bool {
    let name_len = line
        .iter()
        .position(|&b| !(b.is_ascii_alphanumeric() || b == b'_' || b == b':'))
        .unwrap_or(line.len());
    let starts_well = line.first().is_some_and(|b| !b.is_ascii_digit());
    name_len > 0 && starts_well && matches!(line.get(name_len), None | Some(b'{' | b' ' | b'\t'))
}

/// Parses what follows the metric name: `[{labels}] value [timestamp]`.
pub(super) fn parse<'a>(rest: &'a [u8], limits: &Limits) -> Result<Sample<'a>, LineError> {
    let rest = skip_blanks(rest);
    let (labels, label_block, rest) = match rest {
        [b'{', inner @ ..] => {
            let (labels, after) = labels::parse(inner, limits.max_label_len)?;
            (labels, &inner[..inner.len() - after.len() - 1], after)
        }
        _ => (Labels::default(), &rest[..0], rest),
    };
    let reading = reading(rest);
    Ok(Sample {
        labels,
        label_block,
        reading,
    })
}

/// `value [timestamp]`, with blanks around.
pub(super) fn reading(rest: &[u8]) -> Reading {
    let (value, rest) = token(skip_blanks(rest));
    let value = value::parse_float(value).ok_or(LineError::Value)?;
    let (timestamp, rest) = match skip_blanks(rest) {
        [] => (None, &rest[..0]),
        rest => {
            let (timestamp, rest) = parse_timestamp(rest).ok_or(LineError::Timestamp)?;
            (Some(timestamp), rest)
        }
    };
    if !skip_blanks(rest).is_empty() {
        return Err(LineError::TrailingText);
    }
    Ok((value, timestamp))
}

/// Milliseconds since the epoch, as Unix ns, and what follows them: plain digits that fit,
/// ended by a blank or the end of the line.
fn parse_timestamp(text: &[u8]) -> Option<(Nanos, &[u8])> {
    let digits = text.iter().take_while(|b| b.is_ascii_digit()).count();
    let (digits, rest) = text.split_at(digits);
    if digits.is_empty() || !matches!(rest.first(), None | Some(b' ' | b'\t')) {
        return None;
    }
    let mut millis: i64 = 0;
    for &b in digits {
        millis = millis.checked_mul(10)?.checked_add(i64::from(b - b'0'))?;
    }
    Some((millis.checked_mul(NANOS_PER_MILLI)?, rest))
}

pub(super) fn skip_blanks(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(bytes.len());
    &bytes[start..]
}

/// The bytes up to the next blank, and the rest.
fn token(bytes: &[u8]) -> (&[u8], &[u8]) {
    let end = bytes
        .iter()
        .position(|&b| b == b' ' || b == b'\t')
        .unwrap_or(bytes.len());
    bytes.split_at(end)
}
