//! Resource modules. Each exposes one `router()`; [`crate::app::router`] merges them.

pub mod accounts;
pub mod admin;
pub mod catalog;
pub mod docs;
pub mod inventory;
pub mod ops;
pub mod orders;
pub mod parties;
pub mod search;
pub mod verification;
