//! End-to-end tests: api_parties.
