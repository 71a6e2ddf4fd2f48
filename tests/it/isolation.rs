//! End-to-end tests: isolation.
