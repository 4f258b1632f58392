//! The coordinator of ha-metrics-server: which replica scrapes which shard of nodes.
//!
//! Control path: the Raft leader watches members (Up/Down from acknowledgements), proposes
//! [`shard_map::Command`]s through openraft, and every replica applies the committed commands to
//! its copy of the [`shard_map::ShardMap`]; the shard supervisor and the query router read that
//! map. Only this small map and its membership are replicated, never metrics.
//!
//! The crate owns:
//! - the openraft type configuration, the durable log and vote store (redb), the state machine
//!   that publishes the map on a `watch` channel, and the replica's node id ([`raft`]); the
//!   Raft network is still to come;
//! - the `ShardMap` state machine and its `apply` ([`shard_map`]);
//! - the assignment of shards to members ([`shard_map::assign`]), pure and property-tested;
//! - membership and liveness as data: members, their Raft ids, addresses, Up/Down state and
//!   voter flag ([`shard_map::Member`]).
//!
//! `shard_map` is pure: no IO, no clocks, no tasks. `raft` does the storage IO. Deciding *when* a
//! member is Down is the caller's job; this crate decides what follows from it.

pub mod raft;
pub mod shard_map;
