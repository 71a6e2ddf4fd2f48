//! End-to-end tests: api_admin.
