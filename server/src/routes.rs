//! Resource modules. Each exposes one `router()`; [`crate::app::router`] merges them.

pub mod ops;
