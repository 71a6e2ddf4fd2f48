//! Pure checks of catalog input and their bounds. Each check returns the normalized value or a
//! [`Rejection::InvalidField`] naming the field; none reads storage, so the CSV import runs the
//! same checks before writing anything.

use crate::command::Rejection;
use crate::money::{Currency, Money};
use crate::tables::{Address, PriceTier};
use std::collections::BTreeMap;

/// Upper bound on names (manufacturer, retailer, group, category, product, address label), in
/// bytes after trimming.
pub const NAME_BYTES_MAX: usize = 200;
/// Upper bound on a product description, in bytes.
pub const DESCRIPTION_BYTES_MAX: usize = 16 * 1024;
/// Upper bound on a SKU, in characters (all ASCII).
pub const SKU_CHARS_MAX: usize = 64;
/// Upper bound on a category slug, in characters (all ASCII).
pub const SLUG_CHARS_MAX: usize = 64;
/// Upper bound on a unit of measure, in characters (all ASCII).
pub const UNIT_OF_MEASURE_CHARS_MAX: usize = 16;
/// Upper bound on attributes per product.
pub const ATTRIBUTES_MAX: usize = 64;
/// Upper bound on an attribute name, in characters (all ASCII).
pub const ATTRIBUTE_NAME_CHARS_MAX: usize = 64;
/// Upper bound on an attribute value, in bytes.
pub const ATTRIBUTE_VALUE_BYTES_MAX: usize = 1024;
/// Upper bound on images per product.
pub const IMAGES_MAX: usize = 32;
/// Upper bound on volume tiers per product or price-list entry.
pub const TIERS_MAX: usize = 16;
/// Upper bound on case pack, minimum order quantity and tier quantities.
pub const QUANTITY_MAX: u32 = 10_000_000;
/// Upper bound on any price, in minor units (10^12: ten billion major units at 2 decimals), so
/// that `price * quantity` of an order line fits in an `i64` for any `u32` quantity up to
/// about 9 million units, and checked arithmetic catches the rest.
pub const PRICE_MINOR_MAX: i64 = 1_000_000_000_000;
/// Upper bound on a retailer's shipping addresses.
pub const RETAILER_ADDRESSES_MAX: usize = 32;
/// Upper bound on each text field of an address, in bytes.
pub const ADDRESS_FIELD_BYTES_MAX: usize = 200;
/// Depth bound of the category tree: a root is at depth 0, the deepest category at
/// `CATEGORY_DEPTH_MAX - 1`.
pub const CATEGORY_DEPTH_MAX: u8 = 8;
/// Upper bound on categories per tenant (bounds every walk of the tree).
pub const CATEGORIES_MAX: u64 = 10_000;
/// Upper bound on items of one list page.
pub const PAGE_LIMIT_MAX: usize = 500;
/// Upper bound on rows a filtered list examines for one page; a page that hits it is shorter
/// than asked and carries a `next_after` to continue from.
pub const LIST_SCAN_MAX: usize = 10_000;
/// Upper bound on rows of one [`UpsertProducts`](super::CatalogAction::UpsertProducts) command.
pub const UPSERT_BATCH_MAX: usize = 1_000;

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Rejection {
    Rejection::InvalidField {
        field: field.into(),
        reason: reason.into(),
    }
}

/// A display name: trimmed, 1..=[`NAME_BYTES_MAX`] bytes, no control characters.
pub fn name(field: &str, text: &str) -> Result<String, Rejection> {
    bounded_text(field, text, NAME_BYTES_MAX, false)
}

/// Trimmed text of at most `max` bytes without control characters (newlines and tabs allowed
/// when `multiline`); empty allowed only when `max` is for an optional field (see callers).
fn bounded_text(field: &str, text: &str, max: usize, multiline: bool) -> Result<String, Rejection> {
    let text = text.trim();
    if text.is_empty() || text.len() > max {
        return Err(invalid(field, format!("must be 1..={max} bytes")));
    }
    if text
        .chars()
        .any(|c| c.is_control() && !(multiline && (c == '\n' || c == '\t' || c == '\r')))
    {
        return Err(invalid(field, "must not contain control characters"));
    }
    Ok(text.to_string())
}

/// A product description: trimmed, at most [`DESCRIPTION_BYTES_MAX`] bytes, may be empty and
/// may span lines.
pub fn description(text: &str) -> Result<String, Rejection> {
    if text.trim().is_empty() {
        return Ok(String::new());
    }
    bounded_text("description", text, DESCRIPTION_BYTES_MAX, true)
}

/// A SKU: 1..=[`SKU_CHARS_MAX`] characters of `[A-Za-z0-9._-]`, case-sensitive, kept as given.
pub fn sku(text: &str) -> Result<String, Rejection> {
    let ok = !text.is_empty()
        && text.len() <= SKU_CHARS_MAX
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(text.to_string())
    } else {
        Err(invalid(
            "sku",
            format!("must be 1..={SKU_CHARS_MAX} characters of [A-Za-z0-9._-]"),
        ))
    }
}

/// A category slug: 1..=[`SLUG_CHARS_MAX`] characters of `[a-z0-9-]`, not starting or ending
/// with `-`.
pub fn slug(text: &str) -> Result<String, Rejection> {
    let ok = !text.is_empty()
        && text.len() <= SLUG_CHARS_MAX
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !text.starts_with('-')
        && !text.ends_with('-');
    if ok {
        Ok(text.to_string())
    } else {
        Err(invalid(
            "slug",
            format!(
                "must be 1..={SLUG_CHARS_MAX} characters of [a-z0-9-], not starting or ending with -"
            ),
        ))
    }
}

/// A unit of measure such as `each`, `case`, `kg`: 1..=[`UNIT_OF_MEASURE_CHARS_MAX`]
/// characters of `[a-z0-9_]`.
pub fn unit_of_measure(text: &str) -> Result<String, Rejection> {
    let ok = !text.is_empty()
        && text.len() <= UNIT_OF_MEASURE_CHARS_MAX
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(text.to_string())
    } else {
        Err(invalid(
            "unit_of_measure",
            format!("must be 1..={UNIT_OF_MEASURE_CHARS_MAX} characters of [a-z0-9_]"),
        ))
    }
}

/// Attributes: at most [`ATTRIBUTES_MAX`]; names are 1..=[`ATTRIBUTE_NAME_CHARS_MAX`]
/// characters of `[a-z0-9_]` (so that they are also CSV column names, `attr.<name>`), values
/// trimmed, 1..=[`ATTRIBUTE_VALUE_BYTES_MAX`] bytes without control characters.
pub fn attributes(attrs: &BTreeMap<String, String>) -> Result<BTreeMap<String, String>, Rejection> {
    if attrs.len() > ATTRIBUTES_MAX {
        return Err(invalid(
            "attributes",
            format!("at most {ATTRIBUTES_MAX} attributes"),
        ));
    }
    let mut out = BTreeMap::new();
    for (key, value) in attrs {
        let key_ok = !key.is_empty()
            && key.len() <= ATTRIBUTE_NAME_CHARS_MAX
            && key
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !key_ok {
            return Err(invalid(
                format!("attributes.{}", truncate(key, ATTRIBUTE_NAME_CHARS_MAX)),
                format!("names must be 1..={ATTRIBUTE_NAME_CHARS_MAX} characters of [a-z0-9_]"),
            ));
        }
        let value = bounded_text(
            &format!("attributes.{key}"),
            value,
            ATTRIBUTE_VALUE_BYTES_MAX,
            false,
        )?;
        out.insert(key.clone(), value);
    }
    Ok(out)
}

fn truncate(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// Image hashes: at most [`IMAGES_MAX`], no duplicates.
pub fn images(images: &[[u8; 32]]) -> Result<Vec<[u8; 32]>, Rejection> {
    if images.len() > IMAGES_MAX {
        return Err(invalid("images", format!("at most {IMAGES_MAX} images")));
    }
    for (i, image) in images.iter().enumerate() {
        if images[..i].contains(image) {
            return Err(invalid(format!("images[{i}]"), "duplicate image"));
        }
    }
    Ok(images.to_vec())
}

/// A price: in the tenant's currency, `0..=PRICE_MINOR_MAX` minor units.
pub fn price(field: &str, money: Money, currency: Currency) -> Result<Money, Rejection> {
    if money.currency != currency {
        return Err(invalid(
            field,
            format!(
                "must be in the catalog currency {currency}, not {}",
                money.currency
            ),
        ));
    }
    if !(0..=PRICE_MINOR_MAX).contains(&money.minor) {
        return Err(invalid(
            field,
            format!("must be 0..={PRICE_MINOR_MAX} minor units"),
        ));
    }
    Ok(money)
}

/// A quantity bound: `1..=QUANTITY_MAX`.
pub fn quantity(field: &str, qty: u32) -> Result<u32, Rejection> {
    if (1..=QUANTITY_MAX).contains(&qty) {
        Ok(qty)
    } else {
        Err(invalid(field, format!("must be 1..={QUANTITY_MAX}")))
    }
}

/// Case pack and minimum order quantity: both >= 1 and the minimum a multiple of the case pack
/// (a quantity is orderable when it is >= the minimum and a multiple of the case pack).
pub fn pack_and_minimum(case_pack: u32, min_order_qty: u32) -> Result<(), Rejection> {
    quantity("case_pack", case_pack)?;
    quantity("min_order_qty", min_order_qty)?;
    if !min_order_qty.is_multiple_of(case_pack) {
        return Err(invalid(
            "min_order_qty",
            format!("must be a multiple of case_pack ({case_pack})"),
        ));
    }
    Ok(())
}

/// Volume tiers for a base price: at most [`TIERS_MAX`], each `min_qty` at least 1 and
/// strictly increasing, prices valid, each at most the base price and at most the previous
/// tier's price (a larger quantity never costs more per unit, so the highest tier reached is
/// also the cheapest).
pub fn tiers(
    tiers: &[PriceTier],
    base: Money,
    currency: Currency,
) -> Result<Vec<PriceTier>, Rejection> {
    if tiers.len() > TIERS_MAX {
        return Err(invalid("tiers", format!("at most {TIERS_MAX} tiers")));
    }
    let mut previous: Option<&PriceTier> = None;
    for (i, tier) in tiers.iter().enumerate() {
        quantity(&format!("tiers[{i}].min_qty"), tier.min_qty)?;
        price(&format!("tiers[{i}].unit_price"), tier.unit_price, currency)?;
        if tier.unit_price.minor > base.minor {
            return Err(invalid(
                format!("tiers[{i}].unit_price"),
                "must not exceed the base price",
            ));
        }
        if let Some(prev) = previous {
            if tier.min_qty <= prev.min_qty {
                return Err(invalid(
                    format!("tiers[{i}].min_qty"),
                    "must be greater than the previous tier's min_qty",
                ));
            }
            if tier.unit_price.minor > prev.unit_price.minor {
                return Err(invalid(
                    format!("tiers[{i}].unit_price"),
                    "must not exceed the previous tier's price",
                ));
            }
        }
        previous = Some(tier);
    }
    Ok(tiers.to_vec())
}

/// An optional amount (approval threshold) or a credit limit: currency and `0..=PRICE_MINOR_MAX`.
pub fn amount(field: &str, money: Money, currency: Currency) -> Result<Money, Rejection> {
    price(field, money, currency)
}

/// Shipping addresses: at most [`RETAILER_ADDRESSES_MAX`], labels unique, every text field
/// bounded (`line2` and `region` may be absent; empty strings count as absent).
pub fn addresses(addresses: &[Address]) -> Result<Vec<Address>, Rejection> {
    if addresses.len() > RETAILER_ADDRESSES_MAX {
        return Err(invalid(
            "addresses",
            format!("at most {RETAILER_ADDRESSES_MAX} addresses"),
        ));
    }
    let mut out: Vec<Address> = Vec::with_capacity(addresses.len());
    for (i, a) in addresses.iter().enumerate() {
        let field = |f: &str| format!("addresses[{i}].{f}");
        let text = |f: &str, v: &str| bounded_text(&field(f), v, ADDRESS_FIELD_BYTES_MAX, false);
        let optional = |f: &str, v: &Option<String>| match v.as_deref().map(str::trim) {
            None | Some("") => Ok(None),
            Some(v) => text(f, v).map(Some),
        };
        let label = text("label", &a.label)?;
        if out.iter().any(|o| o.label == label) {
            return Err(invalid(field("label"), "duplicate label"));
        }
        if !a.country.0.iter().all(u8::is_ascii_uppercase) {
            return Err(invalid(
                field("country"),
                "must be an ISO 3166 alpha-2 code",
            ));
        }
        out.push(Address {
            label,
            line1: text("line1", &a.line1)?,
            line2: optional("line2", &a.line2)?,
            city: text("city", &a.city)?,
            postal_code: text("postal_code", &a.postal_code)?,
            region: optional("region", &a.region)?,
            country: a.country,
        });
    }
    Ok(out)
}

/// A page size: `1..=PAGE_LIMIT_MAX` (0 is taken as 1, larger values as the maximum).
pub fn page_limit(limit: usize) -> usize {
    limit.clamp(1, PAGE_LIMIT_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tables::CountryCode;

    fn eur(minor: i64) -> Money {
        Money::new(minor, Currency::EUR)
    }

    fn field_of(r: Rejection) -> String {
        match r {
            Rejection::InvalidField { field, .. } => field,
            other => panic!("not an invalid field: {other:?}"),
        }
    }

    #[test]
    fn names_and_descriptions() {
        assert_eq!(name("name", "  Acme  ").unwrap(), "Acme");
        assert_eq!(field_of(name("name", "   ").unwrap_err()), "name");
        assert!(name("name", &"x".repeat(NAME_BYTES_MAX)).is_ok());
        assert!(name("name", &"x".repeat(NAME_BYTES_MAX + 1)).is_err());
        assert!(name("name", "a\nb").is_err());
        assert_eq!(description("  ").unwrap(), "");
        assert_eq!(description("line 1\nline 2").unwrap(), "line 1\nline 2");
        assert!(description("bell\u{7}").is_err());
        assert!(description(&"x".repeat(DESCRIPTION_BYTES_MAX + 1)).is_err());
    }

    #[test]
    fn skus_slugs_and_units() {
        for good in ["A", "abc-DEF_0.9", &"x".repeat(SKU_CHARS_MAX)] {
            assert!(sku(good).is_ok(), "{good}");
        }
        for bad in ["", " A", "a b", "é", "a/b", &"x".repeat(SKU_CHARS_MAX + 1)] {
            assert_eq!(field_of(sku(bad).unwrap_err()), "sku", "{bad}");
        }
        assert!(slug("power-tools-2").is_ok());
        for bad in [
            "",
            "Power",
            "-a",
            "a-",
            "a_b",
            &"a".repeat(SLUG_CHARS_MAX + 1),
        ] {
            assert_eq!(field_of(slug(bad).unwrap_err()), "slug", "{bad}");
        }
        assert!(unit_of_measure("each").is_ok());
        assert!(unit_of_measure("kg_net").is_ok());
        for bad in ["", "KG", "a b", &"a".repeat(UNIT_OF_MEASURE_CHARS_MAX + 1)] {
            assert!(unit_of_measure(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn attributes_are_bounded() {
        let mut a = BTreeMap::new();
        a.insert("colour".to_string(), " red ".to_string());
        assert_eq!(attributes(&a).unwrap()["colour"], "red");
        a.insert("Bad Key".to_string(), "x".to_string());
        assert_eq!(field_of(attributes(&a).unwrap_err()), "attributes.Bad Key");
        let mut a = BTreeMap::new();
        a.insert("k".to_string(), " ".to_string());
        assert_eq!(field_of(attributes(&a).unwrap_err()), "attributes.k");
        a.insert("k".to_string(), "v".repeat(ATTRIBUTE_VALUE_BYTES_MAX + 1));
        assert!(attributes(&a).is_err());
        let many: BTreeMap<String, String> = (0..=ATTRIBUTES_MAX)
            .map(|i| (format!("k{i}"), "v".to_string()))
            .collect();
        assert_eq!(field_of(attributes(&many).unwrap_err()), "attributes");
    }

    #[test]
    fn images_are_bounded_and_unique() {
        assert!(images(&[[1; 32], [2; 32]]).is_ok());
        assert_eq!(
            field_of(images(&[[1; 32], [1; 32]]).unwrap_err()),
            "images[1]"
        );
        let many: Vec<[u8; 32]> = (0..=IMAGES_MAX as u8).map(|i| [i; 32]).collect();
        assert_eq!(field_of(images(&many).unwrap_err()), "images");
    }

    #[test]
    fn prices_quantities_and_tiers() {
        let c = Currency::EUR;
        assert!(price("p", eur(0), c).is_ok());
        assert!(price("p", eur(PRICE_MINOR_MAX), c).is_ok());
        assert!(price("p", eur(-1), c).is_err());
        assert!(price("p", eur(PRICE_MINOR_MAX + 1), c).is_err());
        assert!(price("p", Money::new(1, Currency::USD), c).is_err());
        assert!(pack_and_minimum(6, 12).is_ok());
        assert_eq!(field_of(pack_and_minimum(0, 1).unwrap_err()), "case_pack");
        assert_eq!(
            field_of(pack_and_minimum(6, 0).unwrap_err()),
            "min_order_qty"
        );
        assert_eq!(
            field_of(pack_and_minimum(6, 8).unwrap_err()),
            "min_order_qty"
        );
        assert_eq!(
            field_of(pack_and_minimum(QUANTITY_MAX + 1, 1).unwrap_err()),
            "case_pack"
        );
        let t = |q, p| PriceTier {
            min_qty: q,
            unit_price: eur(p),
        };
        assert!(tiers(&[t(10, 90), t(100, 80)], eur(100), c).is_ok());
        assert!(tiers(&[t(10, 90), t(100, 90)], eur(100), c).is_ok());
        let cases = [
            (vec![t(0, 90)], "tiers[0].min_qty"),
            (vec![t(10, 90), t(10, 80)], "tiers[1].min_qty"),
            (vec![t(10, 90), t(5, 80)], "tiers[1].min_qty"),
            (vec![t(10, 110)], "tiers[0].unit_price"),
            (vec![t(10, 80), t(20, 90)], "tiers[1].unit_price"),
            (vec![t(10, -1)], "tiers[0].unit_price"),
        ];
        for (case, field) in cases {
            assert_eq!(field_of(tiers(&case, eur(100), c).unwrap_err()), field);
        }
        let usd_tier = [PriceTier {
            min_qty: 2,
            unit_price: Money::new(1, Currency::USD),
        }];
        assert!(tiers(&usd_tier, eur(100), c).is_err());
        let many: Vec<PriceTier> = (1..=TIERS_MAX as u32 + 1).map(|q| t(q, 50)).collect();
        assert_eq!(field_of(tiers(&many, eur(100), c).unwrap_err()), "tiers");
    }

    #[test]
    fn addresses_are_checked() {
        let de = CountryCode::parse("DE").unwrap();
        let a = |label: &str| Address {
            label: label.into(),
            line1: "Hauptstr. 1".into(),
            line2: Some("  ".into()),
            city: "Berlin".into(),
            postal_code: "10115".into(),
            region: None,
            country: de,
        };
        let ok = addresses(&[a("Main"), a("Second")]).unwrap();
        assert_eq!(ok[0].line2, None);
        assert_eq!(
            field_of(addresses(&[a("Main"), a(" Main ")]).unwrap_err()),
            "addresses[1].label"
        );
        let mut bad = a("Main");
        bad.city = String::new();
        assert_eq!(
            field_of(addresses(&[bad]).unwrap_err()),
            "addresses[0].city"
        );
        let mut bad = a("Main");
        bad.country = CountryCode(*b"d1");
        assert_eq!(
            field_of(addresses(&[bad]).unwrap_err()),
            "addresses[0].country"
        );
        let many: Vec<Address> = (0..=RETAILER_ADDRESSES_MAX)
            .map(|i| a(&format!("A{i}")))
            .collect();
        assert_eq!(field_of(addresses(&many).unwrap_err()), "addresses");
    }

    #[test]
    fn page_limits_are_clamped() {
        assert_eq!(page_limit(0), 1);
        assert_eq!(page_limit(50), 50);
        assert_eq!(page_limit(usize::MAX), PAGE_LIMIT_MAX);
    }
}
