//! A small bounded TTL cache for review answers, keyed by a list of strings. Lookups hash the
//! borrowed parts and compare them against the stored key byte by byte, so a hit allocates
//! nothing and a hash collision can never return another key's answer. At [`MAX_ENTRIES`] an
//! insert first drops expired entries, then everything (answers are cheap to ask again).

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
use std::sync::Mutex;
use tokio::time::{Duration, Instant};

/// Most entries one cache holds.
pub const MAX_ENTRIES: usize = 10_000;

struct Entry<V> {
    key: Box<[u8]>,
    value: V,
    expires: Instant,
}

/// A hasher that passes a `u64` through: the map's keys already are random-keyed hashes.
#[derive(Default)]
struct Identity(u64);

impl Hasher for Identity {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type Buckets<V> = HashMap<u64, Vec<Entry<V>>, BuildHasherDefault<Identity>>;

pub struct TtlCache<V> {
    map: Mutex<Buckets<V>>,
    hasher: RandomState,
    max: usize,
}

impl<V: Clone> Default for TtlCache<V> {
    fn default() -> Self {
        Self::new(MAX_ENTRIES)
    }
}

fn matches<'a>(stored: &[u8], parts: impl Iterator<Item = &'a str>) -> bool {
    let mut rest = stored;
    for part in parts {
        let Some((len, tail)) = rest.split_first_chunk::<4>() else {
            return false;
        };
        let len = u32::from_le_bytes(*len) as usize;
        if len != part.len() || tail.get(..len) != Some(part.as_bytes()) {
            return false;
        }
        rest = &tail[len..];
    }
    rest.is_empty()
}

fn encode<'a>(parts: impl Iterator<Item = &'a str>) -> Box<[u8]> {
    let mut out = Vec::new();
    for part in parts {
        out.extend_from_slice(&(part.len() as u32).to_le_bytes());
        out.extend_from_slice(part.as_bytes());
    }
    out.into_boxed_slice()
}

impl<V: Clone> TtlCache<V> {
    pub fn new(max: usize) -> Self {
        TtlCache {
            map: Mutex::new(HashMap::default()),
            hasher: RandomState::new(),
            max,
        }
    }

    fn hash<'a>(&self, parts: impl Iterator<Item = &'a str>) -> u64 {
        let mut h = self.hasher.build_hasher();
        for part in parts {
            h.write_usize(part.len());
            h.write(part.as_bytes());
        }
        h.finish()
    }

    /// The unexpired value for the key made of `parts`.
    pub fn get<'a, I>(&self, parts: I) -> Option<V>
    where
        I: Iterator<Item = &'a str> + Clone,
    {
        let hash = self.hash(parts.clone());
        let map = self.map.lock().expect("cache lock");
        let now = Instant::now();
        map.get(&hash)?
            .iter()
            .find(|e| e.expires > now && matches(&e.key, parts.clone()))
            .map(|e| e.value.clone())
    }

    /// Stores `value` for `ttl`; a zero TTL stores nothing.
    pub fn insert<'a, I>(&self, parts: I, value: V, ttl: Duration)
    where
        I: Iterator<Item = &'a str> + Clone,
    {
        if ttl.is_zero() {
            return;
        }
        let hash = self.hash(parts.clone());
        let now = Instant::now();
        let mut map = self.map.lock().expect("cache lock");
        if map.len() >= self.max {
            map.retain(|_, bucket| {
                bucket.retain(|e| e.expires > now);
                !bucket.is_empty()
            });
            if map.len() >= self.max {
                map.clear();
            }
        }
        let bucket = map.entry(hash).or_default();
        bucket.retain(|e| e.expires > now && !matches(&e.key, parts.clone()));
        bucket.push(Entry {
            key: encode(parts),
            value,
            expires: now + ttl,
        });
    }

    pub fn len(&self) -> usize {
        self.map.lock().expect("cache lock").values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_expire_and_keys_are_exact() {
        let cache = TtlCache::new(3);
        cache.insert(["a", "bc"].into_iter(), 1, Duration::from_millis(50));
        assert_eq!(cache.get(["a", "bc"].into_iter()), Some(1));
        assert_eq!(cache.get(["ab", "c"].into_iter()), None, "part boundaries count");
        assert_eq!(cache.get(["a"].into_iter()), None);
        cache.insert(["x"].into_iter(), 2, Duration::ZERO);
        assert_eq!(cache.get(["x"].into_iter()), None, "zero TTL caches nothing");
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(cache.get(["a", "bc"].into_iter()), None, "expired");
    }

    #[test]
    fn size_is_bounded() {
        let cache = TtlCache::new(3);
        let keys: Vec<String> = (0..10).map(|i| i.to_string()).collect();
        for k in &keys {
            cache.insert([k.as_str()].into_iter(), (), Duration::from_secs(10));
            assert!(cache.len() <= 3);
        }
        assert_eq!(cache.get(["9"].into_iter()), Some(()));
    }
}
