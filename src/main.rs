//! `ha-metrics-server`: flags -> `Config::validate` -> `app::run` -> exit code.

use clap::Parser;
use ha_metrics_server::config::Config;
use std::process::ExitCode;

fn main() -> ExitCode {
    let _ = rustls::crypto::ring::default_provider().install_default();
    if std::env::args().nth(1).as_deref() == Some("status") {
        return status();
    }
    let config = Config::parse();
    init_logging(&config);
    match config.validate() {
        Ok(warnings) => warnings.iter().for_each(|w| tracing::warn!("{w}")),
        Err(errors) => {
            for e in &errors {
                eprintln!("Error: {e}");
            }
            return ExitCode::FAILURE;
        }
    }
    tracing::info!(
        runtime_threads = config.runtime_threads(),
        api_workers = config.api_workers(),
        peer_workers = config.peer_workers(),
        cpus = ha_metrics_server::cpus::available(),
        "thread pools"
    );
    let threads = config.runtime_threads();
    let system = actix::System::with_tokio_rt(move || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
            .expect("tokio runtime")
    });
    match system.block_on(ha_metrics_server::app::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("Error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `ha-metrics-server status ...`: prints the replica set.
fn status() -> ExitCode {
    use ha_metrics_server::ha::status::{StatusArgs, run};
    let args = StatusArgs::parse_from(std::env::args().skip(1));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(run(args)) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("Error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `-v` levels as klog's: 0-1 info, 2-3 debug for our crates, 4+ debug, 6+ trace. Below 2,
/// openraft's per-RPC replication errors (several lines every heartbeat while a peer is down)
/// are off: the control loop logs the member going Down and Up once each.
fn init_logging(config: &Config) {
    let level = match config.verbosity {
        0..=1 => "info,openraft=error,openraft::replication=off",
        2..=3 => "info,openraft=warn,ha_metrics_server=debug,shard=debug",
        4..=5 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if config.logging_format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}
