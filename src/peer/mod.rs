//! The peer channel, replica to replica: what replicas say to each other ([`wire`]: messages
//! and paths) and how it travels ([`transport`]: mutual TLS, size-capped bincode bodies, the
//! client and the listener). It knows nothing of what a message does: the handlers live with
//! the replica set's behaviour in `crate::ha` (`ha/routes.rs`). docs/architecture.md has the
//! whole picture.

pub mod transport;
pub mod wire;
