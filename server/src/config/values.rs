//! Value types of the configuration that need more than a primitive: byte sizes with units,
//! listen addresses, log formats. Each parses once, at the edge, and is typed from then on.

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

/// A number of bytes. Deserializes from a non-negative integer or from a string with a unit
/// (`"512KiB"`, `"8MiB"`, `"1GB"`, `"100B"`); serializes back to the shortest exact form.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

/// Units accepted after the number, longest first so that "KiB" is not read as "B".
const BYTE_UNITS: [(&str, u64); 7] = [
    ("KiB", 1 << 10),
    ("MiB", 1 << 20),
    ("GiB", 1 << 30),
    ("kB", 1_000),
    ("MB", 1_000_000),
    ("GB", 1_000_000_000),
    ("B", 1),
];

/// Units used when printing, largest first; only exact multiples are printed with a unit.
const BYTE_UNITS_DISPLAY: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];

impl ByteSize {
    pub const fn bytes(self) -> u64 {
        self.0
    }
}

/// Why a string is not a byte size.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ByteSizeError {
    #[error(
        "`{0}` is not a byte size: expected a number of bytes or a number with a unit (B, KiB, MiB, GiB, kB, MB, GB), like \"8MiB\""
    )]
    Syntax(String),
    #[error("`{0}` is too large a byte size")]
    Overflow(String),
}

impl FromStr for ByteSize {
    type Err = ByteSizeError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let trimmed = text.trim();
        let digits_end = trimmed
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(trimmed.len());
        let (digits, unit) = trimmed.split_at(digits_end);
        if digits.is_empty() {
            return Err(ByteSizeError::Syntax(text.to_owned()));
        }
        let unit = unit.trim();
        let multiplier = if unit.is_empty() {
            1
        } else {
            BYTE_UNITS
                .iter()
                .find(|(name, _)| *name == unit)
                .map(|(_, multiplier)| *multiplier)
                .ok_or_else(|| ByteSizeError::Syntax(text.to_owned()))?
        };
        let number: u64 = digits
            .parse()
            .map_err(|_| ByteSizeError::Overflow(text.to_owned()))?;
        number
            .checked_mul(multiplier)
            .map(ByteSize)
            .ok_or_else(|| ByteSizeError::Overflow(text.to_owned()))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, multiplier) in BYTE_UNITS_DISPLAY {
            if self.0 != 0 && self.0.is_multiple_of(multiplier) {
                return write!(f, "{}{name}", self.0 / multiplier);
            }
        }
        write!(f, "{}B", self.0)
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ByteSizeVisitor;

        impl Visitor<'_> for ByteSizeVisitor {
            type Value = ByteSize;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a byte size: a non-negative integer or a string like \"8MiB\"")
            }

            fn visit_u64<E: de::Error>(self, value: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(value))
            }

            fn visit_i64<E: de::Error>(self, value: i64) -> Result<ByteSize, E> {
                u64::try_from(value)
                    .map(ByteSize)
                    .map_err(|_| E::custom(format!("a byte size cannot be negative, got {value}")))
            }

            fn visit_str<E: de::Error>(self, value: &str) -> Result<ByteSize, E> {
                if value.trim_start().starts_with('-') {
                    return Err(E::custom(format!(
                        "a byte size cannot be negative, got `{value}`"
                    )));
                }
                value.parse().map_err(E::custom)
            }
        }

        deserializer.deserialize_any(ByteSizeVisitor)
    }
}

/// The socket address the server binds. Deserializes from a string like `127.0.0.1:8080` or
/// `[::]:8080`; host names are refused, since which address they resolve to is ambiguous.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListenAddr(pub SocketAddr);

impl Serialize for ListenAddr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ListenAddr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.trim().parse().map(ListenAddr).map_err(|_| {
            de::Error::custom(format!(
                "`{text}` is not a listen address: expected IP:PORT such as 127.0.0.1:8080 or [::]:8080"
            ))
        })
    }
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sizes_parse_with_and_without_units() {
        assert_eq!("0".parse(), Ok(ByteSize(0)));
        assert_eq!("100".parse(), Ok(ByteSize(100)));
        assert_eq!("100B".parse(), Ok(ByteSize(100)));
        assert_eq!("8MiB".parse(), Ok(ByteSize(8 << 20)));
        assert_eq!("8 MiB".parse(), Ok(ByteSize(8 << 20)));
        assert_eq!("512KiB".parse(), Ok(ByteSize(512 << 10)));
        assert_eq!("1GiB".parse(), Ok(ByteSize(1 << 30)));
        assert_eq!("3kB".parse(), Ok(ByteSize(3_000)));
        assert_eq!("2MB".parse(), Ok(ByteSize(2_000_000)));
        assert_eq!("1GB".parse(), Ok(ByteSize(1_000_000_000)));
    }

    #[test]
    fn byte_sizes_refuse_garbage_and_overflow() {
        for bad in ["", "MiB", "8 mebibytes", "1.5MiB", "-1", "8mib", "0x10"] {
            assert!(
                bad.parse::<ByteSize>().is_err(),
                "{bad:?} should be refused"
            );
        }
        assert!(matches!(
            "99999999999999999999GiB".parse::<ByteSize>(),
            Err(ByteSizeError::Overflow(_))
        ));
        assert!(matches!(
            "18446744073709551615KiB".parse::<ByteSize>(),
            Err(ByteSizeError::Overflow(_))
        ));
    }

    #[test]
    fn byte_sizes_print_exactly_and_round_trip() {
        for (size, text) in [
            (0, "0B"),
            (1000, "1000B"),
            (1024, "1KiB"),
            (8 << 20, "8MiB"),
            (3 << 30, "3GiB"),
        ] {
            assert_eq!(ByteSize(size).to_string(), text);
            assert_eq!(text.parse(), Ok(ByteSize(size)));
        }
        assert_eq!(ByteSize((1 << 20) + 1).to_string(), "1048577B");
    }
}
