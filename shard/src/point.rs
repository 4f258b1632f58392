//! The data that flows from the parser to the store: one sample of a node or container.
//! Besides metrics-server's four values it carries swap, when the kubelet reports it.

use serde::{Deserialize, Serialize};

/// Unix time in nanoseconds.
pub type Nanos = i64;

/// The wall clock as Unix ns: what the whole server stamps local events with (stored-at times,
/// self-metrics, expiry).
pub fn now_nanos() -> Nanos {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as Nanos)
}

pub const NANOS_PER_SECOND: i64 = 1_000_000_000;
pub const NANOS_PER_MILLI: i64 = 1_000_000;

/// One sample of a node or container, as metrics-server's `MetricsPoint`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash, Serialize, Deserialize)]
pub struct MetricsPoint {
    /// Container start time (Unix ns, from `container_start_time_seconds`); 0 when unknown (always
    /// for nodes, as in metrics-server).
    pub start_time: Nanos,
    /// Sample time (Unix ns) from the kubelet's millisecond sample timestamps.
    pub timestamp: Nanos,
    /// Cumulative CPU in nanocore-seconds (`*_cpu_usage_seconds_total` x 1e9).
    pub cumulative_cpu: u64,
    /// Working set in bytes.
    pub memory: u64,
    /// Swap in use, in bytes (`container_swap_usage_bytes` / `node_swap_usage_bytes`); `None`
    /// when the kubelet did not report it (no swap statistics on that node) or reported a
    /// value that is not a byte count (a wrapped `uint64`).
    #[serde(default)]
    pub swap: Option<u64>,
}
