//! Unit prices: base price, volume tiers and customer-group price lists.
//!
//! The rule, in one place so that the order path and the catalog agree:
//! 1. A price-list entry of the buyer's customer group for the product, when there is one,
//!    replaces the product's base price **and** its tiers (the group's tiers apply, not the
//!    product's).
//! 2. Among the chosen base price and the tiers whose `min_qty <= qty`, the lowest unit price
//!    applies. Validation guarantees tier prices never rise with quantity and never exceed the
//!    base price, so this is also "the tier with the highest quantity break reached".
//! 3. A quantity below every tier (including 0) pays the base price.

use crate::money::Money;
use crate::tables::{PRICE_LIST, PriceListEntry, Product};
use mercato_storage::{StorageError, TenantReads};

/// The unit price of `qty` units of `product` for a buyer whose group's price-list entry for
/// the product is `list_entry` (`None`: no group or no entry). Pure and total.
pub fn resolve_unit_price(
    product: &Product,
    list_entry: Option<&PriceListEntry>,
    qty: u32,
) -> Money {
    let (base, tiers) = match list_entry {
        Some(entry) => (entry.unit_price, entry.tiers.as_slice()),
        None => (product.base_price, product.tiers.as_slice()),
    };
    tiers
        .iter()
        .filter(|t| t.min_qty <= qty && t.unit_price.currency == base.currency)
        .map(|t| t.unit_price)
        .fold(base, |best, p| if p.minor < best.minor { p } else { best })
}

/// [`resolve_unit_price`] with the price-list entry looked up for `group` (a retailer's
/// `customer_group_id`). Usable from another domain's `apply` with its write handle.
pub fn price_for_group(
    read: &impl TenantReads,
    product: &Product,
    group: Option<u64>,
    qty: u32,
) -> Result<Money, StorageError> {
    let entry = match group {
        Some(g) => read.get(&PRICE_LIST, &(g, product.id))?,
        None => None,
    };
    Ok(resolve_unit_price(product, entry.as_ref(), qty))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Currency;
    use crate::tables::{PriceTier, ProductStatus};
    use std::collections::BTreeMap;

    fn eur(minor: i64) -> Money {
        Money::new(minor, Currency::EUR)
    }

    fn tier(min_qty: u32, minor: i64) -> PriceTier {
        PriceTier {
            min_qty,
            unit_price: eur(minor),
        }
    }

    fn product(base: i64, tiers: Vec<PriceTier>) -> Product {
        Product {
            id: 1,
            manufacturer_id: 1,
            sku: "SKU-1".into(),
            name: "Widget".into(),
            description: String::new(),
            category_id: None,
            attributes: BTreeMap::new(),
            images: Vec::new(),
            status: ProductStatus::Active,
            unit_of_measure: "each".into(),
            case_pack: 1,
            min_order_qty: 1,
            base_price: eur(base),
            tiers,
            created_at_ms: 0,
            updated_at_ms: 0,
            version: 1,
        }
    }

    fn entry(unit: i64, tiers: Vec<PriceTier>) -> PriceListEntry {
        PriceListEntry {
            unit_price: eur(unit),
            tiers,
            updated_at_ms: 0,
        }
    }

    #[test]
    fn base_price_without_tiers_or_list() {
        let p = product(1000, vec![]);
        for qty in [0, 1, 7, 1000, u32::MAX] {
            assert_eq!(resolve_unit_price(&p, None, qty), eur(1000), "{qty}");
        }
    }

    #[test]
    fn tiers_apply_from_their_break_on() {
        let p = product(1000, vec![tier(10, 900), tier(100, 800), tier(1000, 700)]);
        let cases = [
            (0, 1000),
            (1, 1000),
            (9, 1000),
            (10, 900),
            (11, 900),
            (99, 900),
            (100, 800),
            (999, 800),
            (1000, 700),
            (u32::MAX, 700),
        ];
        for (qty, want) in cases {
            assert_eq!(resolve_unit_price(&p, None, qty), eur(want), "qty {qty}");
        }
    }

    #[test]
    fn a_tier_at_quantity_one_replaces_the_base_price() {
        let p = product(1000, vec![tier(1, 950)]);
        assert_eq!(resolve_unit_price(&p, None, 1), eur(950));
        assert_eq!(resolve_unit_price(&p, None, 0), eur(1000));
    }

    #[test]
    fn the_price_list_replaces_base_price_and_tiers() {
        let p = product(1000, vec![tier(10, 900), tier(100, 800)]);
        // The group's entry has no tiers: its price applies at every quantity, even where the
        // product's own tiers would be cheaper.
        let flat = entry(850, vec![]);
        assert_eq!(resolve_unit_price(&p, Some(&flat), 1), eur(850));
        assert_eq!(resolve_unit_price(&p, Some(&flat), 100), eur(850));
        // The group's own tiers apply instead of the product's.
        let tiered = entry(950, vec![tier(5, 900), tier(50, 600)]);
        assert_eq!(resolve_unit_price(&p, Some(&tiered), 4), eur(950));
        assert_eq!(resolve_unit_price(&p, Some(&tiered), 5), eur(900));
        assert_eq!(resolve_unit_price(&p, Some(&tiered), 10), eur(900));
        assert_eq!(resolve_unit_price(&p, Some(&tiered), 50), eur(600));
        assert_eq!(resolve_unit_price(&p, Some(&tiered), 100), eur(600));
    }

    #[test]
    fn a_price_list_may_be_dearer_than_the_base_price() {
        // A group surcharge (e.g. small retailers) is a valid price list.
        let p = product(1000, vec![tier(10, 900)]);
        let surcharge = entry(1100, vec![]);
        assert_eq!(resolve_unit_price(&p, Some(&surcharge), 10), eur(1100));
    }

    #[test]
    fn the_cheapest_applicable_price_wins_even_on_unvalidated_data() {
        // Validation refuses rising tiers; if such a record is ever read (older data, a bug),
        // the buyer still gets the best price reached, never a higher one for more units.
        let p = product(1000, vec![tier(10, 800), tier(20, 900), tier(30, 1200)]);
        assert_eq!(resolve_unit_price(&p, None, 25), eur(800));
        assert_eq!(resolve_unit_price(&p, None, 35), eur(800));
        // Tiers in a foreign currency are ignored rather than mixed in.
        let mut odd = product(1000, vec![]);
        odd.tiers.push(PriceTier {
            min_qty: 1,
            unit_price: Money::new(1, Currency::USD),
        });
        assert_eq!(resolve_unit_price(&odd, None, 5), eur(1000));
    }

    #[test]
    fn zero_prices_are_allowed() {
        let p = product(0, vec![]);
        assert_eq!(resolve_unit_price(&p, None, 3), eur(0));
        let free_sample = product(1000, vec![]);
        assert_eq!(
            resolve_unit_price(&free_sample, Some(&entry(0, vec![])), 3),
            eur(0)
        );
    }

    #[test]
    fn resolution_agrees_with_a_brute_force_model() {
        // For many tier sets and quantities, the result equals "the price of the last tier
        // whose break is reached, else the base" when tiers are valid.
        let sets: Vec<Vec<PriceTier>> = vec![
            vec![],
            vec![tier(2, 990)],
            vec![tier(3, 990), tier(6, 980), tier(12, 500)],
            vec![tier(1, 1000), tier(2, 1000), tier(48, 1)],
        ];
        for tiers in sets {
            let p = product(1000, tiers.clone());
            for qty in 0..60 {
                let model = tiers
                    .iter()
                    .rev()
                    .find(|t| t.min_qty <= qty)
                    .map_or(eur(1000), |t| t.unit_price);
                assert_eq!(resolve_unit_price(&p, None, qty), model, "{tiers:?} {qty}");
            }
        }
    }
}
