//! CPU time and resident memory of a process tree, read from `/proc`, for benchmarks that
//! report a component's own cost.

use std::collections::BTreeSet;

/// Clock ticks per second of `/proc/<pid>/stat` times (USER_HZ, 100 on Linux).
pub const TICKS_PER_SECOND: f64 = 100.0;
const PAGE_SIZE: u64 = 4096;

/// CPU ticks (user + system) and resident bytes of one process.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    pub cpu_ticks: u64,
    pub rss_bytes: u64,
}

/// Reads one process; `None` if it is gone.
pub fn process(pid: u32) -> Option<Usage> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // After the command name: state(0) ppid(1) ... utime(11) stime(12) ... rss(21).
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let rss_pages: u64 = fields.get(21)?.parse().ok()?;
    Some(Usage {
        cpu_ticks: utime + stime,
        rss_bytes: rss_pages * PAGE_SIZE,
    })
}

/// `root` and all its descendants.
pub fn tree(root: u32) -> BTreeSet<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse().ok());
        if let Some(ppid) = ppid {
            parents.push((pid, ppid));
        }
    }
    let mut found = BTreeSet::from([root]);
    loop {
        let before = found.len();
        for &(pid, ppid) in &parents {
            if found.contains(&ppid) {
                found.insert(pid);
            }
        }
        if found.len() == before {
            return found;
        }
    }
}

/// Summed usage of `root`'s process tree.
pub fn tree_usage(root: u32) -> Usage {
    tree(root)
        .into_iter()
        .filter_map(process)
        .fold(Usage::default(), |a, u| Usage {
            cpu_ticks: a.cpu_ticks + u.cpu_ticks,
            rss_bytes: a.rss_bytes + u.rss_bytes,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let me = process(std::process::id()).unwrap();
        assert!(me.rss_bytes > 0);
        assert!(tree(std::process::id()).contains(&std::process::id()));
    }
}
