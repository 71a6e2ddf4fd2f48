//! Integration tests of the storage engine (one test binary, modules per concern).

mod basics;
mod blobs;
mod changelog;
mod common;
mod crash;
mod failure;
mod model;
mod reshard;
