//! Every logical table of the domain, in one place: id, name, key type and record type.
//!
//! Table ids are part of the on-disk format (they are in every physical key): never reuse or
//! renumber one. Ranges per domain keep the files independent:
//!
//! | ids | module |
//! |---|---|
//! | 1..=9 | `core`: tenant profile, id sequences, audit log |
//! | 10..=29 | `accounts`: users, credentials, tokens, API keys |
//! | 30..=59 | `catalog`: manufacturers, retailers, categories, products, prices |
//! | 60..=69 | `inventory`: warehouses, stock, adjustments |
//! | 70..=99 | `orders`: orders, sub-orders, idempotency keys, invoices, payments |
//! | 100..=109 | `search`: synonyms and stop words (the index is derived, outside the shards) |
//! | 110..=139 | `verification`: documents, results, review cases, policy, notifications, jobs |
//!
//! Ids from 0xFF00 up belong to the storage engine.

pub mod accounts;
pub mod catalog;
pub mod core;
pub mod inventory;
pub mod orders;
pub mod search;
pub mod verification;

pub use self::accounts::*;
pub use self::catalog::*;
pub use self::core::*;
pub use self::inventory::*;
pub use self::orders::*;
pub use self::search::*;
pub use self::verification::*;
