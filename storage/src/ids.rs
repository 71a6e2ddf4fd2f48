//! Identifiers and the fixed routing hash.
//!
//! Everything here is part of the on-disk format: a tenant's bucket is computed from its id with
//! [`stable_hash`], and the bucket map in `meta.redb` sends buckets to shards. Changing the hash
//! would silently send tenants to the wrong shard, so it is pinned by a test vector.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Number of routing buckets. Fixed for the life of a data directory.
pub const BUCKET_COUNT: u16 = 4096;

/// Upper bound on the number of shards in one data directory.
pub const SHARD_COUNT_MAX: u16 = 256;

/// One distributor's marketplace. Ids are assigned by the caller (time-ordered in practice).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TenantId(pub u64);

impl TenantId {
    /// The routing bucket of this tenant: `stable_hash(id) % 4096`.
    pub fn bucket(self) -> BucketId {
        BucketId((stable_hash(&self.0.to_be_bytes()) % u64::from(BUCKET_COUNT)) as u16)
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A routing bucket, `0..BUCKET_COUNT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct BucketId(pub u16);

impl fmt::Display for BucketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A shard: one redb file under `shards/NNNN.redb`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ShardId(pub u16);

impl fmt::Display for ShardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}", self.0)
    }
}

/// Log sequence number: the position of a change-log entry within its shard. Starts at 1; 0
/// means "before the first entry".
pub type Lsn = u64;

/// The routing hash: 64-bit FNV-1a over the given bytes (offset basis 0xcbf29ce484222325, prime
/// 0x100000001b3). Chosen because it is tiny, fixed and documented everywhere; it is never used
/// where an adversary could choose inputs to overload a shard (tenant ids are assigned by us).
pub fn stable_hash(bytes: &[u8]) -> u64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = OFFSET_BASIS;
    for &byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(PRIME);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_hash_matches_published_fnv1a_vectors() {
        // Vectors from the FNV reference test suite.
        assert_eq!(stable_hash(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(stable_hash(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(stable_hash(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn bucket_of_tenant_is_pinned() {
        // If this changes, every existing data directory routes tenants to the wrong shard.
        assert_eq!(
            TenantId(1).bucket(),
            BucketId((stable_hash(&1u64.to_be_bytes()) % 4096) as u16)
        );
        let buckets: Vec<u16> = (1..=4).map(|t| TenantId(t).bucket().0).collect();
        assert_eq!(buckets, PINNED_BUCKETS_1_TO_4);
    }

    const PINNED_BUCKETS_1_TO_4: [u16; 4] = [2066, 1631, 1196, 761];
}
