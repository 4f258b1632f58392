//! Tests only: which member owns a node, with the hash the replicas use. The map itself knows
//! shard numbers only (see the module doc); the hash's one definition is the shard crate's
//! `shard/src/hash.rs`. It is dependency-free, so this test build compiles that file directly
//! (`hash` below) instead of depending on the whole `shard` crate (actix, hyper, rustls).

use super::{MemberId, ShardMap};

#[path = "../../../shard/src/hash.rs"]
pub(super) mod hash;

impl ShardMap {
    /// The primary of the shard that `node_name` hashes to; `None` before `Init` or when no
    /// member is Up.
    pub fn owner_for_node(&self, node_name: &str) -> Option<&MemberId> {
        if !self.is_initialized() {
            return None;
        }
        self.primary(hash::shard_of(node_name, self.shard_count))
    }
}
