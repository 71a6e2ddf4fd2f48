//! Vendor verification (issue 5): text extraction from uploaded documents, the versioned rules
//! that assess them, and a generator of realistic sample documents for tests and benches.

pub mod dates;
pub mod extract;
pub mod formats;
pub mod rules;
pub mod samples;
