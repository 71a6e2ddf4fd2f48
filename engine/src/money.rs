//! Money: integer minor units (cents, pence, ...) with a currency. Never floating point.
//!
//! Arithmetic is checked: an overflow is `None`, never a wrap or a panic, and amounts of two
//! different currencies do not add. A tenant's catalog uses one currency (its
//! [`CatalogSettings`](crate::tables::CatalogSettings)), so inside a tenant every price, tier,
//! price-list entry and credit limit shares it.
//!
//! ```
//! use mercato_engine::money::{Currency, Money};
//! let eur = Currency::parse("EUR").unwrap();
//! let unit = Money::new(1_250, eur); // EUR 12.50
//! assert_eq!(unit.checked_mul_qty(4), Some(Money::new(5_000, eur)));
//! assert_eq!(unit.to_string(), "12.50 EUR");
//! ```

use serde::{Deserialize, Serialize};
use std::fmt;

/// A currency code: three ASCII uppercase letters (ISO 4217 shape, e.g. `EUR`, `USD`). The code
/// is checked for shape, not against the ISO list, so a new currency needs no release.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Currency([u8; 3]);

/// Why a currency code is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("currency must be three uppercase ASCII letters (ISO 4217), got {0:?}")]
pub struct CurrencyError(pub String);

impl Currency {
    pub const EUR: Currency = Currency(*b"EUR");
    pub const USD: Currency = Currency(*b"USD");
    pub const GBP: Currency = Currency(*b"GBP");

    /// Parses a code such as `EUR`. Lowercase is refused (not silently fixed) so that stored
    /// and displayed codes are the same bytes as the input.
    pub fn parse(code: &str) -> Result<Currency, CurrencyError> {
        let bytes = code.as_bytes();
        match <[u8; 3]>::try_from(bytes) {
            Ok(array) if array.iter().all(u8::is_ascii_uppercase) => Ok(Currency(array)),
            _ => Err(CurrencyError(code.chars().take(16).collect())),
        }
    }

    /// The code, e.g. `"EUR"`.
    pub fn as_str(&self) -> &str {
        // Invariant: only `parse` and the constants build a `Currency`, and both are ASCII.
        // A decoded record is re-checked: bytes that are not ASCII uppercase show as "???".
        if self.0.iter().all(u8::is_ascii_uppercase) {
            std::str::from_utf8(&self.0).unwrap_or("???")
        } else {
            "???"
        }
    }

    /// True when the bytes are a valid code (records read from disk are re-checked with it).
    pub fn is_valid(&self) -> bool {
        self.0.iter().all(u8::is_ascii_uppercase)
    }

    /// Minor units per major unit used for display: 2 decimals for every currency except a few
    /// well-known zero-decimal ones. Amounts are stored in minor units regardless.
    pub fn decimals(&self) -> u32 {
        match &self.0 {
            b"JPY" | b"KRW" | b"CLP" | b"ISK" | b"VND" | b"XAF" | b"XOF" => 0,
            b"BHD" | b"KWD" | b"OMR" | b"JOD" | b"TND" => 3,
            _ => 2,
        }
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Currency {
    type Err = CurrencyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Currency::parse(s)
    }
}

/// An amount in minor units of a currency (`minor: 1250, currency: EUR` is EUR 12.50).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    /// Amount in the currency's minor unit. Negative amounts exist (refunds, balances); the
    /// catalog refuses them for prices.
    pub minor: i64,
    pub currency: Currency,
}

impl Money {
    pub const fn new(minor: i64, currency: Currency) -> Money {
        Money { minor, currency }
    }

    pub const fn zero(currency: Currency) -> Money {
        Money { minor: 0, currency }
    }

    /// Sum of two amounts of the same currency; `None` on a currency mismatch or overflow.
    pub fn checked_add(self, other: Money) -> Option<Money> {
        if self.currency != other.currency {
            return None;
        }
        Some(Money::new(
            self.minor.checked_add(other.minor)?,
            self.currency,
        ))
    }

    /// Difference of two amounts of the same currency; `None` on a currency mismatch or overflow.
    pub fn checked_sub(self, other: Money) -> Option<Money> {
        if self.currency != other.currency {
            return None;
        }
        Some(Money::new(
            self.minor.checked_sub(other.minor)?,
            self.currency,
        ))
    }

    /// The amount times a quantity (a line total); `None` on overflow.
    pub fn checked_mul_qty(self, qty: u32) -> Option<Money> {
        Some(Money::new(
            self.minor.checked_mul(i64::from(qty))?,
            self.currency,
        ))
    }

    pub fn is_negative(&self) -> bool {
        self.minor < 0
    }

    /// Parses a decimal amount such as `12.50` (at most the currency's decimals; `12.5` and
    /// `12` are fine) into minor units, exactly: no floating point is involved. Used by the CSV
    /// import.
    pub fn parse_decimal(text: &str, currency: Currency) -> Result<Money, MoneyParseError> {
        let text = text.trim();
        let err = || MoneyParseError(text.chars().take(32).collect());
        let (negative, digits) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (whole, frac) = match digits.split_once('.') {
            Some((w, f)) => (w, f),
            None => (digits, ""),
        };
        let decimals = currency.decimals() as usize;
        if whole.is_empty()
            || !whole.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
            || frac.len() > decimals
            || (digits.contains('.') && frac.is_empty())
            || whole.len() > 18
        {
            return Err(err());
        }
        let whole: i64 = whole.parse().map_err(|_| err())?;
        let mut frac_value: i64 = 0;
        for i in 0..decimals {
            let digit = frac.as_bytes().get(i).map_or(0, |b| i64::from(b - b'0'));
            frac_value = frac_value * 10 + digit;
        }
        let scale = 10i64.pow(decimals as u32);
        let minor = whole
            .checked_mul(scale)
            .and_then(|m| m.checked_add(frac_value))
            .ok_or_else(err)?;
        Ok(Money::new(if negative { -minor } else { minor }, currency))
    }

    /// The amount as a plain decimal without the currency (`12.50`), the inverse of
    /// [`Money::parse_decimal`].
    pub fn to_decimal_string(&self) -> String {
        let decimals = self.currency.decimals();
        let sign = if self.minor < 0 { "-" } else { "" };
        let abs = self.minor.unsigned_abs();
        if decimals == 0 {
            return format!("{sign}{abs}");
        }
        let scale = 10u64.pow(decimals);
        format!(
            "{sign}{}.{:0width$}",
            abs / scale,
            abs % scale,
            width = decimals as usize
        )
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.to_decimal_string(), self.currency)
    }
}

/// A decimal amount that does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not a decimal amount with at most the currency's decimals: {0:?}")]
pub struct MoneyParseError(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn currency_codes_are_three_uppercase_letters() {
        assert_eq!(Currency::parse("EUR"), Ok(Currency::EUR));
        for bad in ["eur", "EU", "EURO", "", "E1R", "ÉUR", "E R"] {
            assert!(Currency::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Currency::USD.to_string(), "USD");
        assert_eq!("GBP".parse::<Currency>(), Ok(Currency::GBP));
    }

    #[test]
    fn arithmetic_is_checked() {
        let a = Money::new(i64::MAX - 1, Currency::EUR);
        assert_eq!(
            a.checked_add(Money::new(1, Currency::EUR)),
            Some(Money::new(i64::MAX, Currency::EUR))
        );
        assert_eq!(a.checked_add(Money::new(2, Currency::EUR)), None);
        assert_eq!(
            Money::new(1, Currency::EUR).checked_add(Money::new(1, Currency::USD)),
            None
        );
        assert_eq!(
            Money::new(5, Currency::EUR).checked_sub(Money::new(7, Currency::EUR)),
            Some(Money::new(-2, Currency::EUR))
        );
        assert_eq!(
            Money::new(1, Currency::EUR).checked_sub(Money::new(1, Currency::USD)),
            None
        );
        assert_eq!(
            Money::new(250, Currency::EUR).checked_mul_qty(u32::MAX),
            Some(Money::new(250 * i64::from(u32::MAX), Currency::EUR))
        );
        assert_eq!(
            Money::new(i64::MAX / 2, Currency::EUR).checked_mul_qty(3),
            None
        );
    }

    #[test]
    fn decimal_parsing_is_exact() {
        let eur = Currency::EUR;
        assert_eq!(
            Money::parse_decimal("12.50", eur),
            Ok(Money::new(1250, eur))
        );
        assert_eq!(Money::parse_decimal("12.5", eur), Ok(Money::new(1250, eur)));
        assert_eq!(Money::parse_decimal(" 12 ", eur), Ok(Money::new(1200, eur)));
        assert_eq!(Money::parse_decimal("0.07", eur), Ok(Money::new(7, eur)));
        assert_eq!(
            Money::parse_decimal("-1.01", eur),
            Ok(Money::new(-101, eur))
        );
        let jpy = Currency::parse("JPY").unwrap();
        assert_eq!(Money::parse_decimal("1200", jpy), Ok(Money::new(1200, jpy)));
        for bad in [
            "",
            "1.234",
            "1.",
            ".5",
            "1,50",
            "abc",
            "1e3",
            "--1",
            "+1",
            "12.5.0",
            "99999999999999999999",
        ] {
            assert!(Money::parse_decimal(bad, eur).is_err(), "{bad}");
        }
        assert!(Money::parse_decimal("1.5", jpy).is_err());
        // Overflow of the scaled value is an error, not a wrap.
        assert!(Money::parse_decimal("999999999999999999", eur).is_err());
    }

    #[test]
    fn decimal_strings_roundtrip() {
        let eur = Currency::EUR;
        for minor in [0, 5, 99, 100, 1250, -101, i64::MAX, i64::MIN + 1] {
            let m = Money::new(minor, eur);
            assert_eq!(
                Money::parse_decimal(&m.to_decimal_string(), eur),
                Ok(m),
                "{minor}"
            );
        }
        assert_eq!(Money::new(-5, eur).to_string(), "-0.05 EUR");
        let kwd = Currency::parse("KWD").unwrap();
        assert_eq!(Money::new(1500, kwd).to_decimal_string(), "1.500");
    }
}
