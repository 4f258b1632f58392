//! Ports for the processes the harness starts (replicas, servers under test). `bind(0)` hands
//! out a port from the kernel's ephemeral range and releases it when the probe closes; before
//! the started process binds it, any outgoing connection of a test running beside this one may
//! take it as its local port ("Address already in use"). So ports come from below the ephemeral
//! range, at random per process, and are checked free.

use crate::sim::rng::Rng;
use std::net::TcpListener;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// The lowest port handed out when the ephemeral range leaves room below it.
const LOWEST: u16 = 10_000;
/// Where Linux puts its ephemeral range when `/proc` does not say (`32768-60999`).
const DEFAULT_EPHEMERAL_START: u16 = 32_768;
/// Tries before falling back to `bind(0)`.
const ATTEMPTS: usize = 100;

static RNG: Mutex<Option<Rng>> = Mutex::new(None);

/// The first port of the kernel's ephemeral range.
fn ephemeral_start() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(DEFAULT_EPHEMERAL_START)
}

/// A port on 127.0.0.1 that is free now and outside the ephemeral range where possible.
pub fn free_port() -> u16 {
    let end = ephemeral_start();
    if end > LOWEST {
        let mut rng = RNG.lock().expect("port rng lock");
        let rng = rng.get_or_insert_with(|| {
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            Rng::derive(nanos, u64::from(std::process::id()))
        });
        for _ in 0..ATTEMPTS {
            let port = LOWEST + (rng.next_u64() % u64::from(end - LOWEST)) as u16;
            if TcpListener::bind(("127.0.0.1", port)).is_ok() {
                return port;
            }
        }
    }
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_free_and_below_the_ephemeral_range() {
        let end = ephemeral_start();
        for _ in 0..50 {
            let port = free_port();
            if end > LOWEST {
                assert!((LOWEST..end).contains(&port), "{port} not in {LOWEST}..{end}");
            }
            TcpListener::bind(("127.0.0.1", port)).expect("the port is free");
        }
    }
}
