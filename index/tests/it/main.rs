//! Integration tests of `mercato-index`: real Tantivy indexes in temp directories.

mod commits;
mod facets;
mod filters;
mod isolation;
mod malformed;
mod snippets;
mod sorting;
mod suggest;
mod support;
mod text;
mod vendors;
