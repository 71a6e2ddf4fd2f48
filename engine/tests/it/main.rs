//! The engine's integration tests, in one binary: each module drives one capability through
//! the engine's public API on real storage, real indexes and the real job queue in a temp dir.
//! One binary instead of one per module keeps the test build small and quick to link.

mod accounts;
mod cache;
mod catalog;
mod inventory;
mod orders;
mod search;
mod verification;
