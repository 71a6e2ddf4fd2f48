//! End-to-end tests: api_catalog.
