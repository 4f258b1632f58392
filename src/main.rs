//! `ha-metrics-server`: the highly available, sharded Metrics API server.
//!
//! The server itself arrives with issue 3 (one replica) and issue 4 (HA); until then this binary
//! only says so, so that nobody mistakes it for a working server.

fn main() -> std::process::ExitCode {
    eprintln!(
        "ha-metrics-server {}: the server is not implemented yet (see README.md, Status)",
        env!("CARGO_PKG_VERSION")
    );
    std::process::ExitCode::from(2)
}
