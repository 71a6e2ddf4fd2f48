//! End-to-end tests: api_orders.
