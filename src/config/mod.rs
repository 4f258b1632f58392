//! Command-line flags, with metrics-server's names and meanings where they make sense, and
//! their cross-field validation (every problem reported at once, as metrics-server does).

mod ha;
mod tls;

pub use ha::{DEFAULT_VOTERS, HaConfig, Peer};
pub use tls::{TlsVersion, cipher_suites};

use clap::{ArgAction, Parser};
use std::path::PathBuf;
use std::time::Duration;

/// Lowest accepted `--metric-resolution`.
pub const MIN_RESOLUTION: Duration = Duration::from_secs(1);
/// Most threads or workers any of the pool flags may ask for.
pub const MAX_THREADS: usize = 256;
/// Pools never get fewer threads than this, however small the CPU quota: one busy thread must
/// not stall the rest.
pub const MIN_THREADS: usize = 2;
/// Below this resolution we warn: kubelets refresh their stats about every 10-15 s.
pub const WARN_RESOLUTION: Duration = Duration::from_secs(10);

fn go_duration(s: &str) -> Result<Duration, String> {
    apimachinery::duration::parse(s)
}

#[derive(Parser, Debug, Clone)]
#[command(
    name = "ha-metrics-server",
    version,
    about = "Highly available, sharded Kubernetes resource Metrics API server"
)]
pub struct Config {
    /// Path to a kubeconfig for the Kubernetes API and kubelets (default: in-cluster).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Port of the HTTPS Metrics API.
    #[arg(long, default_value_t = 10250)]
    pub secure_port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0")]
    pub bind_address: String,
    /// Directory of the self-signed certificate made when no --tls-cert-file is given.
    #[arg(long, default_value = "apiserver.local.config/certificates")]
    pub cert_dir: PathBuf,
    /// Serving certificate (PEM).
    #[arg(long)]
    pub tls_cert_file: Option<PathBuf>,
    /// Serving key (PEM).
    #[arg(long)]
    pub tls_private_key_file: Option<PathBuf>,
    /// Minimum TLS version: VersionTLS12 or VersionTLS13 (lower values are raised to 1.2).
    #[arg(long, default_value = "VersionTLS12")]
    pub tls_min_version: String,
    /// Cipher suites, by Go name (default: rustls' safe defaults).
    #[arg(long, value_delimiter = ',')]
    pub tls_cipher_suites: Vec<String>,
    /// How often kubelets are scraped (Go duration).
    #[arg(long, default_value = "15s", value_parser = go_duration)]
    pub metric_resolution: Duration,
    /// Kubelet port, unless --kubelet-use-node-status-port finds one on the Node.
    #[arg(long, default_value_t = 10250)]
    pub kubelet_port: u16,
    /// Do not verify kubelet serving certificates.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", action = ArgAction::Set)]
    pub kubelet_insecure_tls: bool,
    /// CA bundle for kubelet serving certificates (default: the kubeconfig's CA).
    #[arg(long)]
    pub kubelet_certificate_authority: Option<PathBuf>,
    /// Client certificate for kubelets.
    #[arg(long)]
    pub kubelet_client_certificate: Option<PathBuf>,
    /// Client key for kubelets.
    #[arg(long)]
    pub kubelet_client_key: Option<PathBuf>,
    /// Node address types to try, in order.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "Hostname,InternalDNS,InternalIP,ExternalDNS,ExternalIP"
    )]
    pub kubelet_preferred_address_types: Vec<String>,
    /// Use the port in the Node's status.daemonEndpoints.kubeletEndpoint.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", action = ArgAction::Set)]
    pub kubelet_use_node_status_port: bool,
    /// Timeout of one kubelet request (Go duration).
    #[arg(long, default_value = "10s", value_parser = go_duration)]
    pub kubelet_request_timeout: Duration,
    /// Largest kubelet response accepted, in bytes.
    #[arg(long, default_value_t = shard::scrape::client::DEFAULT_MAX_BODY)]
    pub kubelet_max_body_bytes: usize,
    /// Kubelet requests in flight at once, per replica.
    #[arg(long, default_value_t = 512)]
    pub kubelet_max_concurrency: usize,
    /// Label selector of the nodes to scrape (`=`, `==`, `!=`, set-based).
    #[arg(short = 'l', long, default_value = "")]
    pub node_selector: String,
    /// Number of shards nodes are hashed into.
    #[arg(long, default_value_t = 256)]
    pub shards: u32,
    /// CA bundle for front-proxy client certificates.
    #[arg(long)]
    pub requestheader_client_ca_file: Option<PathBuf>,
    /// Common names allowed for front-proxy client certificates (empty: any).
    #[arg(long, value_delimiter = ',')]
    pub requestheader_allowed_names: Vec<String>,
    /// Headers carrying the user name.
    #[arg(long, value_delimiter = ',', default_value = "X-Remote-User")]
    pub requestheader_username_headers: Vec<String>,
    /// Headers carrying the groups.
    #[arg(long, value_delimiter = ',', default_value = "X-Remote-Group")]
    pub requestheader_group_headers: Vec<String>,
    /// Header prefixes carrying extra user attributes.
    #[arg(long, value_delimiter = ',', default_value = "X-Remote-Extra-")]
    pub requestheader_extra_headers_prefix: Vec<String>,
    /// CA bundle for client certificates (CN is the user, O the groups); default: the
    /// `client-ca-file` of `kube-system/extension-apiserver-authentication`.
    #[arg(long)]
    pub client_ca_file: Option<PathBuf>,
    /// Do not read (or watch) `kube-system/extension-apiserver-authentication`: only flags count.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", action = ArgAction::Set)]
    pub authentication_skip_lookup: bool,
    /// Kubeconfig for TokenReview and the ConfigMap lookup (default: --kubeconfig or in-cluster).
    #[arg(long)]
    pub authentication_kubeconfig: Option<PathBuf>,
    /// How long TokenReview answers are cached, allowed and refused alike (Go duration).
    #[arg(long, default_value = "10s", value_parser = go_duration)]
    pub authentication_token_webhook_cache_ttl: Duration,
    /// Kubeconfig for SubjectAccessReview (default: --kubeconfig or in-cluster).
    #[arg(long)]
    pub authorization_kubeconfig: Option<PathBuf>,
    /// How long an allowed SubjectAccessReview answer is cached (Go duration).
    #[arg(long, default_value = "10s", value_parser = go_duration)]
    pub authorization_webhook_cache_authorized_ttl: Duration,
    /// How long a denied SubjectAccessReview answer is cached (Go duration).
    #[arg(long, default_value = "10s", value_parser = go_duration)]
    pub authorization_webhook_cache_unauthorized_ttl: Duration,
    /// Paths served without authorization.
    #[arg(long, value_delimiter = ',', default_value = "/healthz,/readyz,/livez")]
    pub authorization_always_allow_paths: Vec<String>,
    /// Serve HTTP/1.1 only (no ALPN `h2`).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", action = ArgAction::Set)]
    pub disable_http2_serving: bool,
    /// Streams a client may open at once on one HTTP/2 connection, announced in SETTINGS;
    /// 0 means Go's default (250), as in metrics-server.
    #[arg(long, default_value_t = 0)]
    pub http2_max_streams_per_connection: u32,
    /// Requests in flight at once; more get 429.
    #[arg(long, default_value_t = 400)]
    pub max_requests_inflight: usize,
    /// Worker threads of the async runtime (scrapes, fan-out, replication); 0: one per CPU of
    /// the container's CPU quota (cgroup `cpu.max`), at least 2.
    #[arg(long, default_value_t = 0)]
    pub runtime_threads: usize,
    /// HTTP workers of the Metrics API port; 0: as --runtime-threads. Large answers are built
    /// off the workers, so probes do not wait behind them.
    #[arg(long, default_value_t = 0)]
    pub api_workers: usize,
    /// HTTP workers of the peer port; 0: as --runtime-threads. Bulk answers (queries, pulls)
    /// are built and encoded off the workers, so pings and Raft messages do not wait behind them.
    #[arg(long, default_value_t = 0)]
    pub peer_workers: usize,
    /// How long a paginated list's continue token stays valid after its first page was served;
    /// an older one gets 410 Gone, reason Expired (the apiserver's tokens expire with etcd's
    /// compaction, every 5 minutes by default) (Go duration).
    #[arg(long, default_value = "5m", value_parser = go_duration)]
    pub continue_token_lifetime: Duration,
    /// After SIGTERM, how long requests are still served while /readyz fails, so load balancers
    /// and the aggregator stop sending new ones (Go duration).
    #[arg(long, default_value = "1s", value_parser = go_duration)]
    pub shutdown_delay_duration: Duration,
    /// How long SIGTERM waits for in-flight requests (Go duration).
    #[arg(long, default_value = "20s", value_parser = go_duration)]
    pub shutdown_grace_period: Duration,
    /// Log verbosity (klog-style levels: 0 info, 2 more, 4 debug, 6+ trace).
    #[arg(short = 'v', long = "v", default_value_t = 0)]
    pub verbosity: u8,
    /// Log format: text or json.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    pub logging_format: String,
    #[command(flatten)]
    pub ha: HaConfig,
}

impl Config {
    /// Cross-field checks; returns every problem found.
    pub fn validate(&self) -> Result<Vec<String>, Vec<String>> {
        let mut errors = Vec::new();
        let mut warnings = Vec::new();
        if self.metric_resolution < MIN_RESOLUTION {
            errors.push(format!("--metric-resolution must be at least {MIN_RESOLUTION:?}"));
        } else if self.metric_resolution < WARN_RESOLUTION {
            warnings.push("--metric-resolution below 10s is faster than kubelets refresh their stats".to_string());
        }
        if self.kubelet_request_timeout.is_zero() {
            errors.push("--kubelet-request-timeout must be positive".into());
        }
        if self.kubelet_request_timeout > self.metric_resolution.mul_f64(0.9) {
            errors.push("--kubelet-request-timeout must be at most 0.9 x --metric-resolution".into());
        }
        if self.kubelet_insecure_tls && self.kubelet_certificate_authority.is_some() {
            errors.push("cannot use both --kubelet-certificate-authority and --kubelet-insecure-tls".into());
        }
        if self.kubelet_client_certificate.is_some() != self.kubelet_client_key.is_some() {
            errors.push("--kubelet-client-certificate and --kubelet-client-key must be set together".into());
        }
        if self.tls_cert_file.is_some() != self.tls_private_key_file.is_some() {
            errors.push("--tls-cert-file and --tls-private-key-file must be set together".into());
        }
        if self.bind_address.parse::<std::net::IpAddr>().is_err() {
            errors.push(format!("--bind-address {:?} must be an IP address", self.bind_address));
        }
        if self.shards == 0 || self.shards > coordinator::shard_map::MAX_SHARDS {
            errors.push(format!(
                "--shards must be between 1 and {} (the shard map's limit)",
                coordinator::shard_map::MAX_SHARDS
            ));
        }
        if self.kubelet_max_concurrency == 0 || self.max_requests_inflight == 0 {
            errors.push("--kubelet-max-concurrency and --max-requests-inflight must be positive".into());
        }
        if self.kubelet_preferred_address_types.is_empty() {
            errors.push("--kubelet-preferred-address-types must not be empty".into());
        }
        if let Err(e) = apimachinery::selector::LabelSelector::parse(&self.node_selector) {
            errors.push(format!("--node-selector: {e}"));
        }
        match TlsVersion::parse(&self.tls_min_version) {
            Ok((_, Some(warning))) => warnings.push(warning),
            Ok(_) => {}
            Err(e) => errors.push(e),
        }
        if let Err(e) = cipher_suites(&self.tls_cipher_suites) {
            errors.push(e);
        }
        self.ha.validate(&mut errors);
        if self.runtime_threads > MAX_THREADS || self.api_workers > MAX_THREADS || self.peer_workers > MAX_THREADS {
            errors.push(format!(
                "--runtime-threads, --api-workers and --peer-workers must be at most {MAX_THREADS}"
            ));
        }
        if errors.is_empty() { Ok(warnings) } else { Err(errors) }
    }
}

impl Config {
    /// The async runtime's worker threads (see `--runtime-threads`).
    pub fn runtime_threads(&self) -> usize {
        pool_size(self.runtime_threads, crate::cpus::available())
    }

    /// The Metrics API port's HTTP workers.
    pub fn api_workers(&self) -> usize {
        pool_size(self.api_workers, self.runtime_threads())
    }

    /// The peer port's HTTP workers.
    pub fn peer_workers(&self) -> usize {
        pool_size(self.peer_workers, self.runtime_threads())
    }
}

/// A flag's pool size: the flag if set, else `default`, at least [`MIN_THREADS`].
fn pool_size(flag: usize, default: usize) -> usize {
    if flag > 0 { flag } else { default.max(MIN_THREADS) }
}

#[cfg(test)]
mod tests;
