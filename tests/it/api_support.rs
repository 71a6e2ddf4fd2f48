//! Shared set-up of the `/v1` end-to-end tests.
#![allow(dead_code)]
