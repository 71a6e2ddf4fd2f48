//! Failed sign-in attempts per account and per client address, bounded in time.
