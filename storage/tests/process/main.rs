//! Storage tests that run child processes: the SIGKILL crash test and write-ahead log recovery
//! after a process ends without closing. The child is this same test binary, re-executed with
//! an environment variable that names its role.
//!
//! A binary of its own, and its tests run one at a time (`serial`): a child is forked with a
//! copy of the parent's file descriptors, and until it execs it holds the `LOCK` of any data
//! directory that another thread of the parent has open, so a test reopening its directory at
//! that moment would be refused.

#[path = "../it/common.rs"]
#[allow(dead_code)]
mod common;
mod crash;
mod recovery;

use std::sync::{Mutex, MutexGuard};

static SERIAL: Mutex<()> = Mutex::new(());

/// Held for the whole of every test of this binary.
pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
