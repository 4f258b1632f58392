//! Replica-to-replica channel (wired by the lead).

pub mod transport;
