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

#[derive(Args, Debug, Clone)]
pub struct HaConfig {
    /// This replica's name (default: $POD_NAME, else the hostname).
    #[arg(long, env = "POD_NAME")]
    pub replica_id: Option<String>,
    /// Static peer list `name=host:port,...` (this replica may be in it). Empty: one replica.
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
    /// Owners per shard: a primary that scrapes and standbys that hold its points.
    #[arg(long, default_value_t = 2)]
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
        for entry in &self.peers {
            let (name, address) = entry
                .split_once('=')
                .ok_or_else(|| format!("--peers entry {entry:?} is not name=host:port"))?;
            let valid_address = address.rsplit_once(':').is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok());
            if name.is_empty() || !valid_address {
                return Err(format!("--peers entry {entry:?} is not name=host:port"));
            }
            if out.iter().any(|p| p.name == name) {
                return Err(format!("--peers names {name:?} twice"));
            }
            out.push(Peer {
                name: name.to_string(),
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
