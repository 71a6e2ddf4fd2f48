//! End-to-end tests of the `mercato` binary: each test starts the real executable on
//! `127.0.0.1:0` with a fresh data directory and talks to it over HTTP.

mod api_accounts;
mod api_admin;
mod api_catalog;
mod api_conventions;
mod api_inventory;
mod api_orders;
mod api_parties;
mod api_search;
mod api_support;
mod api_verification;
mod config;
mod demo;
mod errors;
mod import_cli;
mod isolation;
mod lifecycle;
mod ops;
mod storage_admin;
mod support;
mod transport;
