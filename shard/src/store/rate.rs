//! Rate maths: the usage served from the two points of one node or container, as
//! metrics-server's `resourceUsage` (`pkg/storage/types.go`).
//!
//! CPU is `(last.cpu - prev.cpu) / (last.ts - prev.ts)` in integer nanocores, rounded down;
//! memory is the newer point's working set, swap the newer point's swap (when it has one). Unlike metrics-server, which divides in `float64`,
//! the division is exact (`u128`), so a whole-number rate is never truncated one nanocore low,
//! and it saturates at `u64::MAX` instead of overflowing.

use thiserror::Error;

use crate::point::{MetricsPoint, NANOS_PER_SECOND, Nanos};

/// Usage of a node or container over a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Usage {
    /// CPU in nanocores (1 core = 1e9), rounded down.
    pub cpu_nanocores: u64,
    /// Working set in bytes, from the newer point.
    pub memory_bytes: u64,
    /// Swap in bytes, from the newer point; `None` when its kubelet reports no swap.
    pub swap_bytes: Option<u64>,
}

/// What two points of one node or container give: usage over `[timestamp - window, timestamp]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rate {
    pub usage: Usage,
    /// The newer point's sample time (Unix ns).
    pub timestamp: Nanos,
    /// Newer minus older sample time, in ns; always > 0.
    pub window: Nanos,
}

/// Why two points give no usage. The entry is skipped on this read (the rest of the answer is
/// served); none is worth retrying, the next scrape brings new points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum RateError {
    /// The newer point's start time is before the older one's (a pod re-created from an old node;
    /// metrics-server commit `82a7323d`).
    #[error("unexpected decrease in startTime of node/container")]
    StartTimeDecreased,
    /// The cumulative CPU counter went backwards without a start-time change (node reboot).
    #[error("unexpected decrease in cumulative CPU usage value")]
    CpuDecreased,
    /// The newer point is not newer, or the window overflows `i64` ns (292 years). The store's
    /// rules never keep a pair that is not newer; this guards points restored from a peer.
    /// metrics-server would divide by zero or a negative window here.
    #[error("window between the two points is not positive")]
    InvalidWindow,
}

/// Usage from the newer point `last` and the older point `prev`, with metrics-server's checks in
/// its order: start time, then CPU counter; then the window (ours).
pub fn rate(last: &MetricsPoint, prev: &MetricsPoint) -> Result<Rate, RateError> {
    if last.start_time < prev.start_time {
        return Err(RateError::StartTimeDecreased);
    }
    let cpu = last
        .cumulative_cpu
        .checked_sub(prev.cumulative_cpu)
        .ok_or(RateError::CpuDecreased)?;
    let window = last
        .timestamp
        .checked_sub(prev.timestamp)
        .filter(|w| *w > 0)
        .ok_or(RateError::InvalidWindow)?;
    let usage = Usage {
        cpu_nanocores: nanocores(cpu, window.unsigned_abs()),
        memory_bytes: last.memory,
        swap_bytes: last.swap,
    };
    Ok(Rate {
        usage,
        timestamp: last.timestamp,
        window,
    })
}

/// `floor(cpu * 1e9 / window)`, saturating at `u64::MAX`. `window` is > 0.
fn nanocores(cpu: u64, window: u64) -> u64 {
    let per_second = u128::from(cpu) * NANOS_PER_SECOND as u128 / u128::from(window.max(1));
    u64::try_from(per_second).unwrap_or(u64::MAX)
}
