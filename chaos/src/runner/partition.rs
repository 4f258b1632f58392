//! Network partitions between replica processes on one host. Each replica runs in its own
//! cgroup (v2); iptables' `cgroup` match drops, in the OUTPUT chain, every TCP packet a replica
//! sends to the peer port of a replica on the other side. A connection needs both directions,
//! so dropping each side's packets towards the other's peer port cuts every peer connection
//! either way, while the apiserver, kubelets and clients stay reachable.
//!
//! Rules live in a chain of their own inside a private network namespace (the `chaos` binary
//! re-executes itself under `unshare --net`), so the host's ruleset is never touched. Needs
//! root, `iptables` and a cgroup2 mount; [`Partitioner::detect`] says why not otherwise.

use std::path::PathBuf;
use std::process::Command;

const CHAIN: &str = "CHAOS-PARTITION";
/// Set by the `chaos` binary when it re-executed itself in a new network namespace.
pub const NETNS_ENV: &str = "CHAOS_IN_NETNS";

pub struct Partitioner {
    /// The run's cgroup directory.
    root: PathBuf,
    /// The same, relative to the cgroup2 mount (what `--path` matches).
    relative: String,
    peer_ports: Vec<u16>,
}

fn cgroup2_mount() -> Option<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    mounts
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.len() > 2 && f[2] == "cgroup2")
        .map(|f| PathBuf::from(f[1]))
}

fn iptables(args: &[&str]) -> Result<(), String> {
    let out = Command::new("iptables")
        .args(["-w"])
        .args(args)
        .output()
        .map_err(|e| format!("iptables: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "iptables {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Partitioner {
    /// Sets up the chain and cgroups if this process can partition, or says why not.
    pub fn detect(run: &str, peer_ports: Vec<u16>) -> Result<Partitioner, String> {
        if std::env::var_os(NETNS_ENV).is_none() {
            return Err("not in a private network namespace (needs root and unshare)".into());
        }
        let mount = cgroup2_mount().ok_or("no cgroup2 mount")?;
        let root = mount.join(format!("chaos-{run}"));
        std::fs::create_dir_all(&root).map_err(|e| format!("creating {}: {e}", root.display()))?;
        iptables(&["-N", CHAIN])?;
        iptables(&["-A", "OUTPUT", "-j", CHAIN])?;
        Ok(Partitioner {
            relative: format!("chaos-{run}"),
            root,
            peer_ports,
        })
    }

    /// The `cgroup.procs` file of replica `i`'s cgroup (created on first use).
    pub fn procs_file(&self, i: usize) -> anyhow::Result<PathBuf> {
        let dir = self.root.join(format!("r{i}"));
        std::fs::create_dir_all(&dir)?;
        Ok(dir.join("cgroup.procs"))
    }

    /// Cuts every peer connection between `side` and `others`, both ways.
    pub fn split(&self, side: &[usize], others: &[usize]) -> Result<(), String> {
        for &a in side {
            for &b in others {
                self.drop_from_to(a, b)?;
                self.drop_from_to(b, a)?;
            }
        }
        Ok(())
    }

    fn drop_from_to(&self, from: usize, to: usize) -> Result<(), String> {
        let path = format!("{}/r{from}", self.relative);
        let port = self.peer_ports[to].to_string();
        iptables(&[
            "-A", CHAIN, "-p", "tcp", "-m", "cgroup", "--path", &path, "--dport", &port, "-j", "DROP",
        ])
    }

    /// Removes every partition.
    pub fn heal(&self) -> Result<(), String> {
        iptables(&["-F", CHAIN])
    }

    /// Removes the chain and the cgroups (their processes must be gone).
    pub fn cleanup(&self) {
        let _ = iptables(&["-F", CHAIN]);
        let _ = iptables(&["-D", "OUTPUT", "-j", CHAIN]);
        let _ = iptables(&["-X", CHAIN]);
        for entry in std::fs::read_dir(&self.root).into_iter().flatten().flatten() {
            let _ = std::fs::remove_dir(entry.path());
        }
        let _ = std::fs::remove_dir(&self.root);
    }
}

/// Re-executes this program in a new network namespace (loopback up) when running as root with
/// `unshare` and `ip` available and not already inside one. Returns only if it did not.
pub fn reexec_in_netns() {
    if std::env::var_os(NETNS_ENV).is_some() || !is_root() {
        return;
    }
    let (Ok(exe), args) = (std::env::current_exe(), std::env::args_os().skip(1).collect::<Vec<_>>()) else {
        return;
    };
    let probe = Command::new("unshare")
        .args(["--net", "--", "ip", "link", "set", "lo", "up"])
        .status();
    if !probe.is_ok_and(|s| s.success()) {
        return;
    }
    let status = Command::new("unshare")
        .args(["--net", "--", "sh", "-c", "ip link set lo up && exec \"$0\" \"$@\""])
        .arg(exe)
        .args(args)
        .env(NETNS_ENV, "1")
        .status();
    match status {
        Ok(s) => std::process::exit(s.code().unwrap_or(1)),
        Err(e) => eprintln!("chaos: could not re-execute in a network namespace ({e}); partitions off"),
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}
