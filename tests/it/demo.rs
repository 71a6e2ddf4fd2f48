//! End-to-end tests: demo.
