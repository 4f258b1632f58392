//! High-availability flags: who the peers are, how they talk (mutual TLS on the peer port), where
//! the Raft log lives, and the failure-detection timings. With no `--peers` the server runs as
//! one replica and none of these matter.

use super::go_duration;
use clap::Args;
use std::path::PathBuf;
use std::time::Duration;

/// How many replicas of `--peers` (the first ones, in list order) vote in Raft. The rest, and
/// replicas not in the list, join as learners: adding replicas never grows the quorum.
pub const DEFAULT_VOTERS: usize = 3;
/// Owners per shard unless `--replication-factor` says otherwise.
pub const DEFAULT_REPLICATION_FACTOR: u8 = 3;

#[derive(Args, Debug, Clone)]
pub struct HaConfig {
    /// This replica's name (default: $POD_NAME, else the hostname).
    #[arg(long, env = "POD_NAME")]
    pub replica_id: Option<String>,
    /// Peers as `name=host:port,...`, or as DNS names whose first label is the replica name
    /// (a StatefulSet behind a headless Service), with `{0..N}` ranges:
    /// `ha-metrics-server-{0..2}.ha-metrics-server-peers.kube-system.svc:10251`. This replica
    /// may be in the list. Empty: one replica.
    #[arg(long, value_delimiter = ',')]
    pub peers: Vec<String>,
    /// How many of the first --peers vote in Raft (the others are learners).
    #[arg(long, default_value_t = DEFAULT_VOTERS)]
    pub voters: usize,
    /// Address of the peer channel listener.
    #[arg(long, default_value = "0.0.0.0")]
    pub peer_bind_address: String,
    /// Port of the peer channel (mutual TLS, bincode).
    #[arg(long, default_value_t = 10251)]
    pub peer_port: u16,
    /// `host:port` other replicas use to reach this one (default: its --peers entry).
    #[arg(long)]
    pub peer_advertise_address: Option<String>,
    /// This replica's peer certificate (PEM), signed by --peer-ca-file.
    #[arg(long)]
    pub peer_cert_file: Option<PathBuf>,
    /// The key of --peer-cert-file (PEM).
    #[arg(long)]
    pub peer_key_file: Option<PathBuf>,
    /// The CA every replica's peer certificate chains to (PEM).
    #[arg(long)]
    pub peer_ca_file: Option<PathBuf>,
    /// Directory of the durable Raft log, vote and incarnation id.
    #[arg(long, default_value = "/var/lib/ha-metrics-server")]
    pub data_dir: PathBuf,
    /// Owners per shard: a primary that scrapes and standbys that hold its points. A replica
    /// answers reads of the shards it owns from its own copy, so with as many owners as
    /// replicas (3, the default, with three replicas) every read is answered by the replica
    /// asked, without asking the others; fewer owners use less memory per replica.
    #[arg(long, default_value_t = DEFAULT_REPLICATION_FACTOR)]
    pub replication_factor: u8,
    /// A member silent this long is marked Down and its shards move (Go duration).
    #[arg(long, default_value = "3s", value_parser = go_duration)]
    pub member_down_after: Duration,
    /// Without a reachable leader this long, scrape the shards whose owners are unreachable
    /// and serve them from this replica (Go duration).
    #[arg(long, default_value = "10s", value_parser = go_duration)]
    pub quorum_loss_timeout: Duration,
    /// Deadline of one fan-out query to the other replicas (Go duration).
    #[arg(long, default_value = "4s", value_parser = go_duration)]
    pub fanout_timeout: Duration,
}

/// One `name=host:port` entry of `--peers`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub name: String,
    pub address: String,
}

impl HaConfig {
    /// Whether the replica runs with peers.
    pub fn enabled(&self) -> bool {
        !self.peers.is_empty()
    }

    /// The parsed `--peers`, in list order.
    pub fn peer_list(&self) -> Result<Vec<Peer>, String> {
        let mut out: Vec<Peer> = Vec::new();
        for entry in self
            .peers
            .iter()
            .map(|e| expand_range(e))
            .collect::<Result<Vec<_>, _>>()?
            .concat()
        {
            let invalid = || format!("--peers entry {entry:?} is not name=host:port or host:port");
            let (name, address) = match entry.split_once('=') {
                Some((name, address)) => (name.to_string(), address),
                None => (
                    entry.split(['.', ':']).next().unwrap_or_default().to_string(),
                    entry.as_str(),
                ),
            };
            let valid_address = address
                .rsplit_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok());
            if name.is_empty() || !valid_address {
                return Err(invalid());
            }
            if out.iter().any(|p| p.name == name) {
                return Err(format!("--peers names {name:?} twice"));
            }
            out.push(Peer {
                name,
                address: address.to_string(),
            });
        }
        Ok(out)
    }

    /// This replica's name: --replica-id ($POD_NAME), else the hostname.
    pub fn replica_name(&self) -> String {
        self.replica_id.clone().filter(|s| !s.is_empty()).unwrap_or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| "ha-metrics-server".into())
        })
    }

    /// The address peers dial: --peer-advertise-address, else this replica's --peers entry.
    pub fn advertise_address(&self) -> Option<String> {
        let name = self.replica_name();
        self.peer_advertise_address.clone().or_else(|| {
            self.peer_list()
                .ok()?
                .into_iter()
                .find(|p| p.name == name)
                .map(|p| p.address)
        })
    }

    /// HA-specific problems, appended to `errors`.
    pub fn validate(&self, errors: &mut Vec<String>) {
        if !self.enabled() {
            return;
        }
        if let Err(e) = self.peer_list() {
            errors.push(e);
        }
        if self.peer_cert_file.is_none() || self.peer_key_file.is_none() || self.peer_ca_file.is_none() {
            errors.push("with --peers, --peer-cert-file, --peer-key-file and --peer-ca-file are required".into());
        }
        if self.advertise_address().is_none() {
            errors.push("this replica is not in --peers: set --peer-advertise-address".into());
        }
        if self.voters == 0 {
            errors.push("--voters must be at least 1".into());
        }
        if self.replication_factor == 0 {
            errors.push("--replication-factor must be at least 1".into());
        }
        if self.member_down_after.is_zero() || self.quorum_loss_timeout.is_zero() || self.fanout_timeout.is_zero() {
            errors.push("--member-down-after, --quorum-loss-timeout and --fanout-timeout must be positive".into());
        }
    }
}

/// Largest `{a..b}` range accepted in `--peers`.
const MAX_PEER_RANGE: u32 = 64;

/// Expands one `{a..b}` range: `r-{0..2}.svc:1` -> `r-0.svc:1`, `r-1.svc:1`, `r-2.svc:1`.
fn expand_range(entry: &str) -> Result<Vec<String>, String> {
    let Some((head, rest)) = entry.split_once('{') else {
        return Ok(vec![entry.to_string()]);
    };
    let bad = || format!("--peers entry {entry:?}: a range is {{first..last}}");
    let (range, tail) = rest.split_once('}').ok_or_else(bad)?;
    let (a, b) = range.split_once("..").ok_or_else(bad)?;
    let (a, b): (u32, u32) = (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
    if a > b || b - a >= MAX_PEER_RANGE {
        return Err(format!(
            "--peers entry {entry:?}: at most {MAX_PEER_RANGE} replicas in a range"
        ));
    }
    Ok((a..=b).map(|i| format!("{head}{i}{tail}")).collect())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    fn peers(list: &str) -> Result<Vec<(String, String)>, String> {
        let config = crate::config::Config::try_parse_from(["x", &format!("--peers={list}")]).unwrap();
        Ok(config
            .ha
            .peer_list()?
            .into_iter()
            .map(|p| (p.name, p.address))
            .collect())
    }

    #[test]
    fn static_dns_and_range_forms() {
        assert_eq!(
            peers("a=10.0.0.1:10251,b=10.0.0.2:10251").unwrap(),
            [
                ("a".into(), "10.0.0.1:10251".into()),
                ("b".into(), "10.0.0.2:10251".into())
            ]
        );
        let sts = peers("ms-{0..2}.ms-peers.kube-system.svc:10251").unwrap();
        assert_eq!(sts.len(), 3);
        assert_eq!(sts[2], ("ms-2".into(), "ms-2.ms-peers.kube-system.svc:10251".into()));
    }

    #[test]
    fn bad_entries_are_errors() {
        for bad in [
            "a=nohost",
            "a=h:notaport",
            "ms-{2..0}.s:1",
            "ms-{0..999}.s:1",
            "ms-{0..x}.s:1",
            "a=h:1,a=g:1",
        ] {
            assert!(peers(bad).is_err(), "{bad}");
        }
    }
}
