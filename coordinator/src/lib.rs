//! The coordinator of ha-metrics-server: which replica scrapes which shard of nodes.
//!
//! Control path: the Raft leader watches members (Up/Down from acknowledgements), proposes
//! [`shard_map::Command`]s through openraft, and every replica applies the committed commands to
//! its copy of the [`shard_map::ShardMap`]; the shard supervisor and the query router read that
//! map. Only this small map and its membership are replicated, never metrics.
//!
//! The crate owns:
//! - the openraft type configuration, the durable log and vote store, and the Raft network
//!   (to come, in `raft/`);
//! - the `ShardMap` state machine and its `apply` ([`shard_map`]);
//! - the assignment of shards to members ([`shard_map::assign`]), pure and property-tested;
//! - membership and liveness as data: members, their Raft ids, addresses, Up/Down state and
//!   voter flag ([`shard_map::Member`]).
//!
//! Everything here so far is pure: no IO, no clocks, no tasks. Deciding *when* a member is Down
//! is the caller's job; this crate decides what follows from it.

pub mod shard_map;
