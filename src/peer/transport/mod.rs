//! The peer channel's transport: how replicas talk to each other, whatever they say. Mutual TLS
//! against the peer CA ([`tls`]), size-capped bincode bodies ([`codec`]), the HTTPS client one
//! replica calls another with ([`client`]) and the listener ([`server`]). The routes on it (Raft,
//! query fan-out, replication, handoff) live under [`PEER_PATH_PREFIX`] on `--peer-port`.
//!
//! Only a replica holding a certificate from the peer CA gets an HTTP response at all: the peer
//! port must never be a way around Metrics API authorisation (docs/security.md).

pub mod client;
pub mod codec;
pub mod server;
pub mod tls;

pub use client::{PeerClient, PeerError};
pub use codec::{Bincode, BincodeConfig, CodecError, MAX_PEER_BODY_BYTES, MAX_PEER_REQUEST_BYTES};
pub use tls::PeerTls;

use std::time::Duration;

/// The versioned prefix of the peer routes (`/peer/v1/query`, `/peer/v1/raft/...`). A message
/// that old replicas cannot decode moves to the next version under its own name
/// (`/peer/v2/replicate`), so an old replica gets a 404 for it, never a body it misreads.
pub const PEER_PATH_PREFIX: &str = "/peer/v1";

/// How long the peer server keeps an idle connection (`HttpServer::keep_alive`). Longer than the
/// client's idle pool timeout, so the client closes first and never sends a request down a
/// connection the server is closing (actix's default of 5 s would break pooled connections).
pub const PEER_SERVER_KEEP_ALIVE: Duration = Duration::from_secs(90);
