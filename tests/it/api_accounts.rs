//! End-to-end tests: api_accounts.
