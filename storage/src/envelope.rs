//! The versioned record envelope.
//!
//! Every value the engine stores (records, change-log entries, commands) is a serde type encoded
//! with postcard inside this envelope:
//!
//! ```text
//! offset size field
//! 0      1    magic 0xE5
//! 1      1    envelope format version (1)
//! 2      2    record kind, u16 little-endian (a stable id per record type)
//! 4      2    record schema version, u16 little-endian
//! 6      ..   postcard payload
//! ```
//!
//! postcard is not self-describing, so a struct that gains a field cannot decode the bytes of the
//! older struct directly. Instead each type says which version it writes, and decoding an older
//! version goes through [`Record::upgrade`], which decodes the old shape and converts it.

use serde::Serialize;
use serde::de::DeserializeOwned;

const MAGIC: u8 = 0xE5;
const ENVELOPE_VERSION: u8 = 1;
/// Bytes before the payload.
pub const HEADER_LEN: usize = 6;

/// A type stored inside the envelope.
pub trait Record: Serialize + DeserializeOwned {
    /// Stable identifier of the record type; never reused for another type.
    const KIND: u16;
    /// The schema version this build writes.
    const VERSION: u16;

    /// Decodes a payload written by an older schema version (`version < VERSION`).
    /// Types that never changed keep the default, which refuses.
    fn upgrade(version: u16, payload: &[u8]) -> Result<Self, EnvelopeError> {
        let _ = payload;
        Err(EnvelopeError::UnsupportedVersion {
            kind: Self::KIND,
            version,
            current: Self::VERSION,
        })
    }
}

/// Why bytes could not be decoded as a record.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvelopeError {
    #[error("record envelope too short ({len} bytes)")]
    Truncated { len: usize },
    #[error("record envelope has bad magic byte {magic:#04x} or format version {format}")]
    BadHeader { magic: u8, format: u8 },
    #[error("expected record kind {expected}, found {found}")]
    WrongKind { expected: u16, found: u16 },
    #[error(
        "record kind {kind} version {version} is not readable by this build (it writes version {current})"
    )]
    UnsupportedVersion {
        kind: u16,
        version: u16,
        current: u16,
    },
    #[error("record kind {kind} version {version} payload does not decode: {reason}")]
    Payload {
        kind: u16,
        version: u16,
        reason: String,
    },
}

/// Encodes a record inside the envelope.
pub fn encode<R: Record>(record: &R) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    encode_into(record, &mut out);
    out
}

/// [`encode`] into a buffer the caller reuses (its contents are replaced), so that a loop
/// encoding many records allocates once.
pub fn encode_into<R: Record>(record: &R, out: &mut Vec<u8>) {
    out.clear();
    out.push(MAGIC);
    out.push(ENVELOPE_VERSION);
    out.extend_from_slice(&R::KIND.to_le_bytes());
    out.extend_from_slice(&R::VERSION.to_le_bytes());
    // postcard only fails for types serde cannot describe (maps with non-string keys are
    // fine, sequences of unknown length are not produced by derived types).
    postcard::to_io(record, &mut *out)
        .expect("invariant: derived serde types always encode with postcard");
}

/// Reads the kind and version of an envelope without decoding the payload.
pub fn peek(bytes: &[u8]) -> Result<(u16, u16, &[u8]), EnvelopeError> {
    if bytes.len() < HEADER_LEN {
        return Err(EnvelopeError::Truncated { len: bytes.len() });
    }
    if bytes[0] != MAGIC || bytes[1] != ENVELOPE_VERSION {
        return Err(EnvelopeError::BadHeader {
            magic: bytes[0],
            format: bytes[1],
        });
    }
    let kind = u16::from_le_bytes([bytes[2], bytes[3]]);
    let version = u16::from_le_bytes([bytes[4], bytes[5]]);
    Ok((kind, version, &bytes[HEADER_LEN..]))
}

/// Decodes a record, upgrading older versions.
pub fn decode<R: Record>(bytes: &[u8]) -> Result<R, EnvelopeError> {
    let (kind, version, payload) = peek(bytes)?;
    if kind != R::KIND {
        return Err(EnvelopeError::WrongKind {
            expected: R::KIND,
            found: kind,
        });
    }
    if version == R::VERSION {
        decode_payload(kind, version, payload)
    } else if version < R::VERSION {
        R::upgrade(version, payload)
    } else {
        Err(EnvelopeError::UnsupportedVersion {
            kind,
            version,
            current: R::VERSION,
        })
    }
}

/// Decodes a postcard payload of a given shape; used by [`Record::upgrade`] implementations to
/// read the old shape.
pub fn decode_payload<T: DeserializeOwned>(
    kind: u16,
    version: u16,
    payload: &[u8],
) -> Result<T, EnvelopeError> {
    postcard::from_bytes(payload).map_err(|e| EnvelopeError::Payload {
        kind,
        version,
        reason: e.to_string(),
    })
}

/// A `Vec<u8>` field as one byte string: `#[serde(with = "mercato_storage::envelope::byte_string")]`.
/// In postcard a byte string and a sequence of `u8` are the same bytes (a varint length, then the
/// bytes), so this changes nothing on disk; but a sequence is written and read one element at a
/// time (one `write_all` per byte), a byte string in one copy. Encoding each change-log entry's
/// command that way was ~5% of the shard writer's time at 64 writers; records with byte payloads
/// should use it too. Self-describing formats (JSON) may present either form.
pub mod byte_string {
    use serde::de::{self, SeqAccess, Visitor};
    use serde::{Deserializer, Serializer};
    use std::fmt;

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(bytes)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        deserializer.deserialize_byte_buf(BytesVisitor)
    }

    struct BytesVisitor;

    impl<'de> Visitor<'de> for BytesVisitor {
        type Value = Vec<u8>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a byte string")
        }

        fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<Vec<u8>, E> {
            Ok(bytes.to_vec())
        }

        fn visit_byte_buf<E: de::Error>(self, bytes: Vec<u8>) -> Result<Vec<u8>, E> {
            Ok(bytes)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
            let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
            while let Some(byte) = seq.next_element()? {
                bytes.push(byte);
            }
            Ok(bytes)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};

    /// Version 1 of a record, as an older build wrote it.
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct WidgetV1 {
        name: String,
        count: u32,
    }
    impl Record for WidgetV1 {
        const KIND: u16 = 0xFFF0;
        const VERSION: u16 = 1;
    }

    /// Version 2 of the same record: a field was added.
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Widget {
        name: String,
        count: u32,
        colour: Option<String>,
    }
    impl Record for Widget {
        const KIND: u16 = 0xFFF0;
        const VERSION: u16 = 2;
        fn upgrade(version: u16, payload: &[u8]) -> Result<Self, EnvelopeError> {
            match version {
                1 => {
                    let old: WidgetV1 = decode_payload(Self::KIND, version, payload)?;
                    Ok(Widget {
                        name: old.name,
                        count: old.count,
                        colour: None,
                    })
                }
                _ => Err(EnvelopeError::UnsupportedVersion {
                    kind: Self::KIND,
                    version,
                    current: Self::VERSION,
                }),
            }
        }
    }

    #[test]
    fn record_written_by_version_1_decodes_after_a_field_is_added() {
        let old_bytes = encode(&WidgetV1 {
            name: "bolt".into(),
            count: 7,
        });
        let upgraded: Widget = decode(&old_bytes).expect("v1 bytes decode as v2");
        assert_eq!(
            upgraded,
            Widget {
                name: "bolt".into(),
                count: 7,
                colour: None
            }
        );
        // And the current version round-trips.
        let new = Widget {
            name: "nut".into(),
            count: 1,
            colour: Some("red".into()),
        };
        assert_eq!(decode::<Widget>(&encode(&new)).expect("v2 roundtrip"), new);
    }

    #[test]
    fn newer_versions_and_foreign_bytes_are_refused() {
        let new_bytes = encode(&Widget {
            name: "x".into(),
            count: 1,
            colour: None,
        });
        assert_eq!(
            decode::<WidgetV1>(&new_bytes),
            Err(EnvelopeError::UnsupportedVersion {
                kind: 0xFFF0,
                version: 2,
                current: 1
            })
        );
        assert!(matches!(
            decode::<Widget>(b"hello world"),
            Err(EnvelopeError::BadHeader { .. })
        ));
        assert!(matches!(
            decode::<Widget>(&[0xE5]),
            Err(EnvelopeError::Truncated { len: 1 })
        ));
        let mut truncated = new_bytes.clone();
        truncated.truncate(HEADER_LEN + 1);
        assert!(matches!(
            decode::<Widget>(&truncated),
            Err(EnvelopeError::Payload { .. })
        ));
    }
}
