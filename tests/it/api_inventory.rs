//! End-to-end tests: api_inventory.
