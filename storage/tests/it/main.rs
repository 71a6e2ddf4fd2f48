//! Integration tests of the storage engine (one test binary, modules per concern). Tests that
//! run child processes are in `tests/process/`, a binary of their own: a child forked while
//! another test holds a data directory's lock would keep that lock until it execs.

mod basics;
mod blobs;
mod changelog;
mod common;
mod failure;
mod model;
mod overlay;
mod reshard;
mod wal;
