//! Key encodings.
//!
//! All tenant data of a shard lives in one redb table, `data`, under the physical key
//!
//! ```text
//! bucket u16 BE | tenant u64 BE | table u16 BE | logical key (KeyCodec encoding)
//! ```
//!
//! Big-endian so that byte order is numeric order: a tenant's rows are contiguous, a bucket's
//! rows are contiguous (so moving a bucket to another shard is one range copy), and inside a
//! table the logical keys sort as their values do. Logical keys are encoded with [`KeyCodec`],
//! which is order-preserving for every implementation.

use crate::ids::{BucketId, TenantId};
use std::marker::PhantomData;

/// Length of the `bucket | tenant` prefix.
pub const TENANT_PREFIX_LEN: usize = 10;
/// Length of the `bucket | tenant | table` prefix.
pub const TABLE_PREFIX_LEN: usize = 12;
/// Upper bound on an encoded logical key.
pub const KEY_BYTES_MAX: usize = 1024;

/// A logical key that failed to decode.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("malformed key: {0}")]
pub struct KeyError(pub &'static str);

/// Order-preserving key encoding: `a < b` iff `encode(a) < encode(b)` bytewise.
pub trait KeyCodec: Sized {
    fn encode_key(&self, out: &mut Vec<u8>);
    /// Decodes from the front of `bytes`, returning the rest.
    fn decode_key(bytes: &[u8]) -> Result<(Self, &[u8]), KeyError>;
}

macro_rules! int_key {
    ($($t:ty),*) => {$(
        impl KeyCodec for $t {
            fn encode_key(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_be_bytes());
            }
            fn decode_key(bytes: &[u8]) -> Result<(Self, &[u8]), KeyError> {
                const N: usize = std::mem::size_of::<$t>();
                if bytes.len() < N {
                    return Err(KeyError(concat!("truncated ", stringify!($t))));
                }
                let (head, rest) = bytes.split_at(N);
                let mut buf = [0u8; N];
                buf.copy_from_slice(head);
                Ok((<$t>::from_be_bytes(buf), rest))
            }
        }
    )*};
}
int_key!(u8, u16, u32, u64, u128);

impl KeyCodec for () {
    fn encode_key(&self, _out: &mut Vec<u8>) {}
    fn decode_key(bytes: &[u8]) -> Result<(Self, &[u8]), KeyError> {
        Ok(((), bytes))
    }
}

impl<const N: usize> KeyCodec for [u8; N] {
    fn encode_key(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self);
    }
    fn decode_key(bytes: &[u8]) -> Result<(Self, &[u8]), KeyError> {
        if bytes.len() < N {
            return Err(KeyError("truncated byte array"));
        }
        let (head, rest) = bytes.split_at(N);
        let mut buf = [0u8; N];
        buf.copy_from_slice(head);
        Ok((buf, rest))
    }
}

/// Strings: bytes with 0x00 escaped as `00 FF`, terminated by `00 00`. Order-preserving and
/// self-delimiting, so strings can appear anywhere in a composite key.
impl KeyCodec for String {
    fn encode_key(&self, out: &mut Vec<u8>) {
        for &b in self.as_bytes() {
            out.push(b);
            if b == 0 {
                out.push(0xFF);
            }
        }
        out.extend_from_slice(&[0, 0]);
    }
    fn decode_key(bytes: &[u8]) -> Result<(Self, &[u8]), KeyError> {
        let mut raw = Vec::new();
        let mut i = 0;
        loop {
            match bytes.get(i) {
                None => return Err(KeyError("unterminated string")),
                Some(0) => match bytes.get(i + 1) {
                    Some(0) => break,
                    Some(0xFF) => {
                        raw.push(0);
                        i += 2;
                    }
                    _ => return Err(KeyError("bad string escape")),
                },
                Some(&b) => {
                    raw.push(b);
                    i += 1;
                }
            }
        }
        let s = String::from_utf8(raw).map_err(|_| KeyError("string is not UTF-8"))?;
        Ok((s, &bytes[i + 2..]))
    }
}

impl<A: KeyCodec, B: KeyCodec> KeyCodec for (A, B) {
    fn encode_key(&self, out: &mut Vec<u8>) {
        self.0.encode_key(out);
        self.1.encode_key(out);
    }
    fn decode_key(bytes: &[u8]) -> Result<(Self, &[u8]), KeyError> {
        let (a, rest) = A::decode_key(bytes)?;
        let (b, rest) = B::decode_key(rest)?;
        Ok(((a, b), rest))
    }
}

impl<A: KeyCodec, B: KeyCodec, C: KeyCodec> KeyCodec for (A, B, C) {
    fn encode_key(&self, out: &mut Vec<u8>) {
        self.0.encode_key(out);
        self.1.encode_key(out);
        self.2.encode_key(out);
    }
    fn decode_key(bytes: &[u8]) -> Result<(Self, &[u8]), KeyError> {
        let (a, rest) = A::decode_key(bytes)?;
        let (b, rest) = B::decode_key(rest)?;
        let (c, rest) = C::decode_key(rest)?;
        Ok(((a, b, c), rest))
    }
}

/// Decodes a whole logical key, refusing trailing bytes.
pub fn decode_exact<K: KeyCodec>(bytes: &[u8]) -> Result<K, KeyError> {
    let (key, rest) = K::decode_key(bytes)?;
    if rest.is_empty() {
        Ok(key)
    } else {
        Err(KeyError("trailing bytes after key"))
    }
}

/// A logical table: a stable numeric id, a name for humans, and its key and value types.
/// All definitions live together (see `tables.rs` of the crate that owns them).
pub struct TableDef<K, V> {
    pub id: u16,
    pub name: &'static str,
    _types: PhantomData<fn() -> (K, V)>,
}

impl<K, V> TableDef<K, V> {
    pub const fn new(id: u16, name: &'static str) -> Self {
        TableDef {
            id,
            name,
            _types: PhantomData,
        }
    }
}

impl<K, V> Clone for TableDef<K, V> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<K, V> Copy for TableDef<K, V> {}

/// Table ids at or above this are reserved for the storage engine itself.
pub const RESERVED_TABLE_ID_MIN: u16 = 0xFF00;

/// `bucket | tenant` prefix.
pub fn tenant_prefix(tenant: TenantId) -> [u8; TENANT_PREFIX_LEN] {
    let mut out = [0u8; TENANT_PREFIX_LEN];
    out[..2].copy_from_slice(&tenant.bucket().0.to_be_bytes());
    out[2..].copy_from_slice(&tenant.0.to_be_bytes());
    out
}

/// `bucket | tenant | table` prefix.
pub fn table_prefix(tenant: TenantId, table: u16) -> Vec<u8> {
    let mut out = Vec::with_capacity(TABLE_PREFIX_LEN + 32);
    out.extend_from_slice(&tenant_prefix(tenant));
    out.extend_from_slice(&table.to_be_bytes());
    out
}

/// Range of physical keys `[start, end)` of one bucket.
pub fn bucket_range(bucket: BucketId) -> ([u8; 2], Option<[u8; 2]>) {
    let start = bucket.0.to_be_bytes();
    let end = bucket.0.checked_add(1).map(u16::to_be_bytes);
    (start, end)
}

/// The parts of a physical key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhysicalKey<'a> {
    pub bucket: BucketId,
    pub tenant: TenantId,
    pub table: u16,
    pub key: &'a [u8],
}

/// Splits a physical key into its parts.
pub fn split_physical(bytes: &[u8]) -> Result<PhysicalKey<'_>, KeyError> {
    if bytes.len() < TABLE_PREFIX_LEN {
        return Err(KeyError("physical key shorter than its prefix"));
    }
    let bucket = u16::from_be_bytes([bytes[0], bytes[1]]);
    let mut tenant = [0u8; 8];
    tenant.copy_from_slice(&bytes[2..10]);
    let table = u16::from_be_bytes([bytes[10], bytes[11]]);
    Ok(PhysicalKey {
        bucket: BucketId(bucket),
        tenant: TenantId(u64::from_be_bytes(tenant)),
        table,
        key: &bytes[12..],
    })
}

/// Smallest byte string greater than every string starting with `prefix`, if any.
pub fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut out = prefix.to_vec();
    while let Some(last) = out.pop() {
        if last != 0xFF {
            out.push(last + 1);
            return Some(out);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn enc<K: KeyCodec>(k: &K) -> Vec<u8> {
        let mut out = Vec::new();
        k.encode_key(&mut out);
        out
    }

    proptest! {
        #[test]
        fn string_keys_preserve_order_and_roundtrip(a in ".{0,12}", b in ".{0,12}", n in any::<u64>()) {
            let (ka, kb) = ((a.clone(), n), (b.clone(), n));
            prop_assert_eq!(a.cmp(&b), enc(&ka).cmp(&enc(&kb)));
            prop_assert_eq!(decode_exact::<(String, u64)>(&enc(&ka)).unwrap(), ka);
        }

        #[test]
        fn strings_with_nul_bytes_roundtrip(a in proptest::collection::vec(prop_oneof![Just(0u8), 1u8..128], 0..16)) {
            let s = String::from_utf8(a).unwrap();
            prop_assert_eq!(decode_exact::<String>(&enc(&s)).unwrap(), s);
        }

        #[test]
        fn integer_tuples_preserve_order(a in any::<(u32, u64)>(), b in any::<(u32, u64)>()) {
            prop_assert_eq!(a.cmp(&b), enc(&a).cmp(&enc(&b)));
        }
    }

    #[test]
    fn malformed_keys_are_errors_not_panics() {
        assert!(decode_exact::<u64>(&[1, 2, 3]).is_err());
        assert!(decode_exact::<String>(b"abc").is_err());
        assert!(decode_exact::<String>(&[b'a', 0, 7]).is_err());
        assert!(decode_exact::<u16>(&[0, 1, 2]).is_err());
        assert!(split_physical(&[0; 11]).is_err());
    }

    #[test]
    fn prefix_successor_handles_carry() {
        assert_eq!(prefix_successor(&[1, 2]), Some(vec![1, 3]));
        assert_eq!(prefix_successor(&[1, 0xFF]), Some(vec![2]));
        assert_eq!(prefix_successor(&[0xFF, 0xFF]), None);
    }
}
