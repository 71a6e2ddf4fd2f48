//! The one error type of the index crate.

use std::path::PathBuf;

/// What can go wrong opening, writing or querying a [`crate::ShardIndex`].
///
/// `InvalidQuery` is the caller's fault (the server answers 400 naming `field`); every other
/// variant is an internal failure.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// Tantivy failed (I/O below it, a corrupt segment, a lock held by another writer).
    #[error("search index: {0}")]
    Tantivy(#[from] tantivy::TantivyError),
    /// A file-system operation of this crate failed.
    #[error("search index i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The query is out of bounds or malformed; `field` names the offending [`crate::ProductQuery`]
    /// (or [`crate::VendorQuery`], or suggest argument) field.
    #[error("invalid search query: {field}: {reason}")]
    InvalidQuery { field: &'static str, reason: String },
    /// One [`crate::ShardIndex::apply`] call carried more than [`crate::APPLY_OPS_MAX`]
    /// operations: split the batch.
    #[error("{ops} operations in one apply, at most {max} allowed")]
    TooManyOps { ops: usize, max: usize },
    /// An [`crate::IndexConfig`] value is out of its documented bounds.
    #[error("invalid search index configuration: {field}: {reason}")]
    InvalidConfig { field: &'static str, reason: String },
    /// The directory holds an index written with another schema (an older Mercato): it has to be
    /// rebuilt from storage (`mercato reindex`).
    #[error("the search index in {path} has another schema; rebuild it with `mercato reindex`")]
    SchemaMismatch { path: PathBuf },
    /// The last commit's payload is not one this crate writes.
    #[error("the search index commit payload {payload:?} is not a Mercato payload")]
    BadPayload { payload: String },
    /// A thread panicked while holding the index writer; the index must be reopened.
    #[error("the search index writer is unusable after a panic; reopen the index")]
    WriterPoisoned,
}

impl From<tantivy::directory::error::OpenDirectoryError> for IndexError {
    fn from(error: tantivy::directory::error::OpenDirectoryError) -> Self {
        IndexError::Tantivy(error.into())
    }
}
