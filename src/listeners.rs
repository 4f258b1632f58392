//! Listening sockets that outlive an in-place restart. A replica that starts over
//! (`ha/reset.rs`: its Raft log belongs to a set that is gone, or its `--shards` differs from
//! the set's) re-executes itself. Between the exec and the new image's `bind` nothing would
//! listen on its ports, and a client connecting then would be refused (a 503 through
//! kube-aggregator; chaos finding T). Instead every listener is registered here when it is
//! bound, handed to the new image open (close-on-exec cleared, its descriptor named in
//! [`ENV`]), and adopted there by the address it was configured with. Connections that arrive
//! meanwhile wait in the socket's backlog and are accepted by the new image.
//!
//! The registry holds its own duplicate of each listening socket, so a server may close its
//! listener (to stop accepting) while the socket stays open for the next image. A restart is
//! requested with [`restart`]: the Metrics API server ([`crate::serve::run`]) stops accepting,
//! lets requests in flight finish (at most `--shutdown-grace-period`) and calls [`exec`]; a
//! connection accepted by the old image is not cut mid-request.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::net::{TcpListener, ToSocketAddrs};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;
use tokio::sync::Notify;

/// Names the listeners handed over by the previous image: `address=fd` pairs, comma-separated.
pub const ENV: &str = "HA_METRICS_SERVER_LISTENERS";

/// How long [`restart`] waits for the Metrics API server to drain before it re-executes the
/// process by itself (the server drains for at most `--shutdown-grace-period`).
pub const RESTART_FALLBACK: Duration = Duration::from_secs(30);

/// The listeners this image bound or adopted, by configured address: the registry's own
/// duplicates, closed on any exec but the one [`hand_over`] prepares.
static BOUND: Mutex<BTreeMap<String, OwnedFd>> = Mutex::new(BTreeMap::new());

/// The arguments of a requested restart, and who waits for one.
static RESTART: Mutex<Option<Vec<OsString>>> = Mutex::new(None);
static RESTART_ASKED: OnceLock<Notify> = OnceLock::new();

/// A non-blocking listener for `key` (the address as configured): the one the previous image
/// handed over under that key, or a new one bound to `addrs`.
pub fn listen(key: &str, addrs: impl ToSocketAddrs) -> std::io::Result<TcpListener> {
    let mut bound = BOUND.lock().expect("listeners lock");
    let listener = match inherited(key).filter(|_| !bound.contains_key(key)) {
        Some(listener) => {
            tracing::info!(address = key, "listening on the socket the previous image handed over");
            listener
        }
        None => TcpListener::bind(addrs)?,
    };
    listener.set_nonblocking(true)?;
    // Duplicated with close-on-exec set (F_DUPFD_CLOEXEC).
    bound.insert(key.to_string(), listener.as_fd().try_clone_to_owned()?);
    Ok(listener)
}

/// Asks for this process to be re-executed with `args` once the Metrics API server has drained
/// (see the module docs); re-executes it after [`RESTART_FALLBACK`] if no server did.
pub async fn restart(args: Vec<OsString>) -> ! {
    *RESTART.lock().expect("restart lock") = Some(args.clone());
    RESTART_ASKED.get_or_init(Notify::new).notify_one();
    tokio::time::sleep(RESTART_FALLBACK).await;
    tracing::warn!("no server drained for the restart in place: restarting now");
    exec(args)
}

/// Resolves with the arguments of a requested restart.
pub async fn restart_requested() -> Vec<OsString> {
    loop {
        if let Some(args) = RESTART.lock().expect("restart lock").clone() {
            return args;
        }
        RESTART_ASKED.get_or_init(Notify::new).notified().await;
    }
}

/// Replaces this process with the same executable and `args` (same pid, so a supervisor sees no
/// exit), its listening sockets handed over; exits with 70 if that fails.
pub fn exec(args: Vec<OsString>) -> ! {
    let error = match std::env::current_exe() {
        Ok(exe) => {
            let mut command = std::process::Command::new(exe);
            command.args(args);
            hand_over(&mut command);
            command.exec()
        }
        Err(e) => e,
    };
    tracing::error!(%error, "cannot restart in place; exiting so the replica is restarted");
    std::process::exit(70);
}

/// Leaves every registered listener open across `exec` and names them in `command`'s
/// environment.
pub fn hand_over(command: &mut std::process::Command) {
    let bound = BOUND.lock().expect("listeners lock");
    let mut named = Vec::new();
    for (key, fd) in bound.iter() {
        let fd = fd.as_raw_fd();
        match set_cloexec(fd, false) {
            Ok(()) => named.push(format!("{key}={fd}")),
            Err(e) => tracing::warn!(address = key, error = %e, "cannot keep a listener open across the restart"),
        }
    }
    command.env(ENV, named.join(","));
}

/// The listener the previous image handed over under `key`, if any (and still a listening TCP
/// socket).
fn inherited(key: &str) -> Option<TcpListener> {
    let list = std::env::var(ENV).ok()?;
    let fd: RawFd = parse(&list, key)?;
    // SAFETY: the previous image named this descriptor as the listener it left open for `key`
    // and nothing in this image has opened it: descriptors below it were inherited too, and
    // `BOUND` prevents adopting it twice.
    let listener = unsafe { TcpListener::from_raw_fd(fd) };
    if let Err(e) = listener.local_addr().and_then(|_| set_cloexec(fd, true)) {
        tracing::warn!(address = key, fd, error = %e, "the handed-over listener is not usable: binding anew");
        std::mem::forget(listener);
        return None;
    }
    Some(listener)
}

/// The descriptor named for `key` in a [`ENV`] value.
fn parse(list: &str, key: &str) -> Option<RawFd> {
    list.split(',')
        .filter_map(|entry| entry.rsplit_once('='))
        .find(|(k, _)| *k == key)
        .and_then(|(_, fd)| fd.parse().ok())
        .filter(|fd| *fd > 2)
}

fn set_cloexec(fd: RawFd, on: bool) -> std::io::Result<()> {
    // SAFETY: fcntl on a descriptor this process owns, with integer arguments only.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    if flags < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let flags = if on {
        flags | libc::FD_CLOEXEC
    } else {
        flags & !libc::FD_CLOEXEC
    };
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, flags) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_descriptor_is_found_by_its_configured_address() {
        let list = "127.0.0.1:443=7,0.0.0.0:10250=9";
        assert_eq!(parse(list, "127.0.0.1:443"), Some(7));
        assert_eq!(parse(list, "0.0.0.0:10250"), Some(9));
        assert_eq!(parse(list, "127.0.0.1:444"), None);
        assert_eq!(parse("", "127.0.0.1:443"), None);
        assert_eq!(parse("a=x", "a"), None, "not a number");
        assert_eq!(parse("a=1", "a"), None, "never a standard stream");
    }

    #[test]
    fn a_listener_outlives_its_server_and_stays_open_across_exec_only_when_handed_over() {
        let listener = listen("127.0.0.1:0", "127.0.0.1:0").expect("bind");
        let port = listener.local_addr().unwrap().port();
        let fd = BOUND.lock().unwrap()["127.0.0.1:0"].as_raw_fd();
        assert_ne!(fd, listener.as_raw_fd(), "the registry keeps its own duplicate");
        let cloexec = || unsafe { libc::fcntl(fd, libc::F_GETFD) } & libc::FD_CLOEXEC != 0;
        assert!(cloexec(), "closed on exec by default");
        drop(listener);
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        assert!(
            std::net::TcpStream::connect(addr).is_ok(),
            "the server closed its listener; the socket still takes connections for the next image"
        );
        let mut command = std::process::Command::new("true");
        hand_over(&mut command);
        assert!(!cloexec(), "left open for the new image");
        let env: Vec<_> = command.get_envs().collect();
        let value = env
            .iter()
            .find(|(k, _)| *k == ENV)
            .and_then(|(_, v)| *v)
            .expect("named");
        assert_eq!(parse(value.to_str().unwrap(), "127.0.0.1:0"), Some(fd));
    }
}
