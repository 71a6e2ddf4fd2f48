//! End-to-end tests of the `mercato` binary: each test starts the real executable on
//! `127.0.0.1:0` with a fresh data directory and talks to it over HTTP.

mod config;
mod errors;
mod lifecycle;
mod ops;
mod storage_admin;
mod support;
mod transport;
