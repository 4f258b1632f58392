//! Faults a fake kubelet can be switched into at run time, one at a time per kubelet.

use serde::{Deserialize, Serialize};

/// Default size of an [`Fault::Oversized`] body: far beyond any real node's payload.
pub const DEFAULT_OVERSIZED_BYTES: u64 = 64 * 1024 * 1024;

/// A metric family of `/metrics/resource`, for [`Fault::MissingSeries`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    ContainerCpuUsageSecondsTotal,
    ContainerMemoryWorkingSetBytes,
    ContainerStartTimeSeconds,
    ContainerSwapUsageBytes,
    NodeCpuUsageSecondsTotal,
    NodeMemoryWorkingSetBytes,
    NodeSwapUsageBytes,
    PodCpuUsageSecondsTotal,
    PodMemoryWorkingSetBytes,
    PodSwapUsageBytes,
    ResourceScrapeError,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Fault {
    /// Nothing listens on the kubelet's address: connections are refused.
    ConnectionRefused,
    /// Connections are accepted and then nothing is ever sent (not even the TLS handshake).
    Hang,
    /// Answers correctly after `delay_ms`.
    #[serde(rename_all = "camelCase")]
    Slow { delay_ms: u64 },
    /// `500 Internal Server Error`.
    Http500,
    /// `200 OK` with a body that is not the exposition format.
    Garbage,
    /// Announces the full length, sends half the body, then closes the connection.
    Truncated,
    /// `200 OK` with a valid-looking body of `bytes` bytes.
    Oversized {
        #[serde(default = "default_oversized")]
        bytes: u64,
    },
    /// The listed families are left out.
    MissingSeries { families: Vec<Family> },
    /// Every CPU and memory value is 0.
    ZeroValues,
    /// CPU counters are reported at `factor` (< 1) of their true value: the counter goes
    /// backwards without a container restart.
    CounterBackwards {
        #[serde(default = "default_backwards")]
        factor: f64,
    },
    /// The stats stop updating: every scrape repeats the timestamps and values of the moment
    /// the fault was set (duplicated timestamps).
    StaleStats,
    /// Stats are reported as of `by_ms` before now: timestamps go back (out of order).
    #[serde(rename_all = "camelCase")]
    TimestampsBackwards { by_ms: i64 },
    /// Stats are stamped `by_ms` after now: a kubelet whose clock runs ahead (or that lies).
    #[serde(rename_all = "camelCase")]
    TimestampsAhead { by_ms: i64 },
    /// `200 OK` with recorded bodies instead of the simulation's: the n-th scrape after the
    /// fault is set gets `bodies[n]`, and every later one the last body (a real kubelet's
    /// payload replayed, then replayed with its counters advanced).
    Replay { bodies: Vec<String> },
}

fn default_oversized() -> u64 {
    DEFAULT_OVERSIZED_BYTES
}

fn default_backwards() -> f64 {
    0.5
}
