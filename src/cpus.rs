//! How many CPUs this process may use: the container's CPU quota (cgroup v2 `cpu.max`, or v1
//! `cpu.cfs_quota_us` / `cpu.cfs_period_us`) rounded up, else the CPUs the process may run on.
//! Thread pools are sized from it, as linkerd sizes its runtime from the quota rather than from
//! the node's cores (a 2-CPU limit on a 64-core node must not start 64 workers).

use std::path::Path;

/// CPUs available to this process (at least 1).
pub fn available() -> usize {
    let online = std::thread::available_parallelism().map_or(1, |n| n.get());
    let quota = read(Path::new("/sys/fs/cgroup/cpu.max"))
        .and_then(|s| parse_cpu_max(&s))
        .or_else(|| {
            let quota = read(Path::new("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"))?;
            let period = read(Path::new("/sys/fs/cgroup/cpu/cpu.cfs_period_us"))?;
            parse_cfs(&quota, &period)
        });
    quota.map_or(online, |q| q.min(online)).max(1)
}

fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// `cpu.max` is `"<quota> <period>"` or `"max <period>"` (no limit).
fn parse_cpu_max(text: &str) -> Option<usize> {
    let mut parts = text.split_whitespace();
    let (quota, period) = (parts.next()?, parts.next()?);
    cores(quota.parse().ok()?, period.parse().ok()?)
}

/// cgroup v1: a quota of -1 means no limit.
fn parse_cfs(quota: &str, period: &str) -> Option<usize> {
    let quota: i64 = quota.trim().parse().ok()?;
    cores(u64::try_from(quota).ok()?, period.trim().parse().ok()?)
}

fn cores(quota: u64, period: u64) -> Option<usize> {
    (quota > 0 && period > 0).then(|| quota.div_ceil(period) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotas_round_up_and_no_limit_is_none() {
        assert_eq!(parse_cpu_max("200000 100000\n"), Some(2));
        assert_eq!(parse_cpu_max("150000 100000"), Some(2), "1.5 CPUs need 2 threads");
        assert_eq!(parse_cpu_max("50000 100000"), Some(1));
        assert_eq!(parse_cpu_max("max 100000\n"), None);
        assert_eq!(parse_cpu_max(""), None);
        assert_eq!(parse_cfs("-1\n", "100000\n"), None);
        assert_eq!(parse_cfs("400000\n", "100000\n"), Some(4));
        assert!(available() >= 1);
    }
}
