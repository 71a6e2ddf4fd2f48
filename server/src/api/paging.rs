//! List parameters and pages.
//!
//! Lists are keyset-paginated: a page ends with `next_cursor`, an opaque string that encodes
//! the last id returned; the next page starts strictly after it. Ids only grow, so a page never
//! repeats or skips a row because of inserts made between two requests (stable under
//! concurrent inserts, unlike offsets).

use crate::problem::ApiError;
use mercato_engine::catalog::IdOrder;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Rows per page when `limit` is not given.
pub const PAGE_LIMIT_DEFAULT: usize = 50;
/// Largest `limit` accepted.
pub const PAGE_LIMIT_MAX: usize = 500;
/// Longest `fields=` value accepted, and most fields in it.
pub const FIELDS_BYTES_MAX: usize = 1024;
pub const FIELDS_COUNT_MAX: usize = 64;
/// Prefix of every cursor, so that a cursor is recognisably one.
const CURSOR_PREFIX: &str = "c";
/// Prefix of the cursors of lists sorted newest first (`sort=-id`): a cursor continues the
/// list in the order it came from, and is refused by a list in the other order.
const CURSOR_PREFIX_DESC: &str = "d";

/// `?limit=&cursor=&fields=` of every list route.
#[derive(Clone, Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Rows per page, 1..=500 (default 50).
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page; absent for the first page.
    pub cursor: Option<String>,
    /// Comma-separated top-level fields to return for each item (default: all).
    pub fields: Option<String>,
}

impl ListParams {
    /// The bounded page size.
    pub fn limit(&self) -> Result<usize, ApiError> {
        match self.limit {
            None => Ok(PAGE_LIMIT_DEFAULT),
            Some(n) if (1..=PAGE_LIMIT_MAX).contains(&n) => Ok(n),
            Some(n) => Err(ApiError::invalid_field(
                "limit",
                format!("{n} is outside 1..={PAGE_LIMIT_MAX}"),
            )),
        }
    }

    /// The id to continue after, decoded from `cursor`.
    pub fn after(&self) -> Result<Option<u64>, ApiError> {
        self.cursor.as_deref().map(decode_cursor).transpose()
    }

    /// The id to continue from in a list in `order` (after it ascending, below it descending).
    pub fn after_in(&self, order: IdOrder) -> Result<Option<u64>, ApiError> {
        match order {
            IdOrder::Ascending => self.after(),
            IdOrder::Descending => self
                .cursor
                .as_deref()
                .map(|c| decode_with(CURSOR_PREFIX_DESC, c))
                .transpose(),
        }
    }

    /// The `fields=` selection, if any.
    pub fn fields(&self) -> Result<Option<FieldSet>, ApiError> {
        self.fields.as_deref().map(FieldSet::parse).transpose()
    }
}

/// Encodes the last id of a page as a cursor.
pub fn encode_cursor(after: u64) -> String {
    format!("{CURSOR_PREFIX}{after:x}")
}

/// Decodes a cursor made by [`encode_cursor`].
pub fn decode_cursor(cursor: &str) -> Result<u64, ApiError> {
    decode_with(CURSOR_PREFIX, cursor)
}

fn decode_with(prefix: &str, cursor: &str) -> Result<u64, ApiError> {
    cursor
        .strip_prefix(prefix)
        .filter(|hex| !hex.is_empty() && hex.len() <= 16)
        .and_then(|hex| u64::from_str_radix(hex, 16).ok())
        .ok_or_else(|| {
            ApiError::invalid_field(
                "cursor",
                "not a cursor returned by this list in this sort order",
            )
        })
}

/// `?sort=` of the lists that can be sorted.
///
/// Lists are keyset-paginated by id, so they sort by id only: `id` (oldest first, the
/// default) or `-id` (newest first; ids are allocated in creation order). Sorting by another
/// key (name, SKU) would need an index per key for a cursor that stays stable under inserts
/// at bounded cost; `/v1/search/products` sorts by name, price and relevance instead.
#[derive(Clone, Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SortParam {
    /// `id` (oldest first, the default) or `-id` (newest first). Keep the same `sort` for
    /// every page: a cursor is refused by the list in the other order.
    pub sort: Option<String>,
}

impl SortParam {
    /// The requested order; anything but `id` and `-id` is a 422 naming `sort`.
    pub fn order(&self) -> Result<IdOrder, ApiError> {
        match self.sort.as_deref() {
            None | Some("id") => Ok(IdOrder::Ascending),
            Some("-id") => Ok(IdOrder::Descending),
            Some(other) => Err(ApiError::invalid_field(
                "sort",
                format!("`{other}` is not a sort of this list: use `id` or `-id`"),
            )),
        }
    }
}

/// One page of a list.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ListResponse<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

impl<T> ListResponse<T> {
    pub fn new(items: Vec<T>, next_after: Option<u64>) -> Self {
        ListResponse {
            items,
            next_cursor: next_after.map(encode_cursor),
        }
    }

    /// A page of a list in `order`, whose cursor only that order accepts.
    pub fn new_in(items: Vec<T>, next_after: Option<u64>, order: IdOrder) -> Self {
        ListResponse {
            items,
            next_cursor: next_after.map(|id| match order {
                IdOrder::Ascending => encode_cursor(id),
                IdOrder::Descending => format!("{CURSOR_PREFIX_DESC}{id:x}"),
            }),
        }
    }
}

/// The fields a client asked for with `fields=`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldSet(Vec<String>);

impl FieldSet {
    pub fn parse(text: &str) -> Result<FieldSet, ApiError> {
        if text.len() > FIELDS_BYTES_MAX {
            return Err(ApiError::invalid_field(
                "fields",
                format!("longer than {FIELDS_BYTES_MAX} bytes"),
            ));
        }
        let fields: Vec<String> = text
            .split(',')
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .map(str::to_owned)
            .collect();
        if fields.is_empty() {
            return Err(ApiError::invalid_field("fields", "names no field"));
        }
        if fields.len() > FIELDS_COUNT_MAX {
            return Err(ApiError::invalid_field(
                "fields",
                format!("names more than {FIELDS_COUNT_MAX} fields"),
            ));
        }
        if let Some(bad) = fields
            .iter()
            .find(|f| !f.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        {
            return Err(ApiError::invalid_field(
                "fields",
                format!("`{bad}` is not a field name"),
            ));
        }
        Ok(FieldSet(fields))
    }

    /// Keeps only the selected members of a JSON object (other values are left alone).
    pub fn apply(&self, value: &mut serde_json::Value) {
        if let serde_json::Value::Object(map) = value {
            map.retain(|key, _| self.0.iter().any(|f| f == key));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        for id in [0, 1, 255, u64::MAX] {
            assert_eq!(decode_cursor(&encode_cursor(id)).expect("decodes"), id);
        }
        for bad in ["", "c", "x10", "c1g", "c11111111111111111"] {
            assert!(decode_cursor(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sorts_and_their_cursors() {
        let sort = |s: Option<&str>| SortParam {
            sort: s.map(str::to_owned),
        };
        assert_eq!(sort(None).order().expect("default"), IdOrder::Ascending);
        assert_eq!(sort(Some("id")).order().expect("id"), IdOrder::Ascending);
        assert_eq!(sort(Some("-id")).order().expect("-id"), IdOrder::Descending);
        for bad in ["name", "-name", "created_at", "ID", ""] {
            assert!(sort(Some(bad)).order().is_err(), "{bad}");
        }
        let page = ListResponse::new_in(vec![1], Some(42), IdOrder::Descending);
        let cursor = page.next_cursor.expect("cursor");
        let params = ListParams {
            cursor: Some(cursor),
            ..ListParams::default()
        };
        assert_eq!(
            params.after_in(IdOrder::Descending).expect("desc"),
            Some(42)
        );
        assert!(params.after_in(IdOrder::Ascending).is_err());
        let page = ListResponse::new_in(vec![1], Some(42), IdOrder::Ascending);
        let params = ListParams {
            cursor: page.next_cursor,
            ..ListParams::default()
        };
        assert_eq!(params.after_in(IdOrder::Ascending).expect("asc"), Some(42));
        assert!(params.after_in(IdOrder::Descending).is_err());
    }

    #[test]
    fn limit_is_bounded() {
        let params = |limit| ListParams {
            limit,
            ..ListParams::default()
        };
        assert_eq!(params(None).limit().expect("default"), PAGE_LIMIT_DEFAULT);
        assert_eq!(params(Some(500)).limit().expect("max"), 500);
        assert!(params(Some(0)).limit().is_err());
        assert!(params(Some(501)).limit().is_err());
    }

    #[test]
    fn fields_select_top_level_members() {
        let set = FieldSet::parse("id, name").expect("parses");
        let mut value = json!({"id": 1, "name": "a", "price": 3});
        set.apply(&mut value);
        assert_eq!(value, json!({"id": 1, "name": "a"}));
        assert!(FieldSet::parse(" , ").is_err());
        assert!(FieldSet::parse("a.b").is_err());
    }
}
