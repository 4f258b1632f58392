//! Listening sockets that outlive an in-place restart. A replica that starts over
//! (`ha/reset.rs`: its Raft log belongs to a set that is gone, or its `--shards` differs from
//! the set's) re-executes itself. Between the exec and the new image's `bind` nothing would
//! listen on its ports, and a client connecting then would be refused (a 503 through
//! kube-aggregator; chaos finding T). Instead every listener is registered here when it is
//! bound, handed to the new image open (close-on-exec cleared, its descriptor named in
//! [`ENV`]), and adopted there by the address it was configured with. Connections that arrive
//! meanwhile wait in the socket's backlog and are accepted by the new image.

use std::collections::BTreeMap;
use std::net::{TcpListener, ToSocketAddrs};
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::sync::Mutex;

/// Names the listeners handed over by the previous image: `address=fd` pairs, comma-separated.
pub const ENV: &str = "HA_METRICS_SERVER_LISTENERS";

/// The listeners this image bound or adopted, by configured address.
static BOUND: Mutex<BTreeMap<String, RawFd>> = Mutex::new(BTreeMap::new());

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
    bound.insert(key.to_string(), listener.as_raw_fd());
    Ok(listener)
}

/// Leaves every registered listener open across `exec` and names them in `command`'s
/// environment.
pub fn hand_over(command: &mut std::process::Command) {
    let bound = BOUND.lock().expect("listeners lock");
    let mut named = Vec::new();
    for (key, &fd) in bound.iter() {
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
    fn a_listener_stays_open_across_exec_only_when_handed_over() {
        let listener = listen("127.0.0.1:0", "127.0.0.1:0").expect("bind");
        let fd = listener.as_raw_fd();
        let cloexec = || unsafe { libc::fcntl(fd, libc::F_GETFD) } & libc::FD_CLOEXEC != 0;
        assert!(cloexec(), "closed on exec by default");
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
