//! Vendor verification (issue 5): text extraction from uploaded documents, the versioned rules
//! that assess them, and a generator of realistic sample documents for tests and benches.
//!
//! Everything here is pure: bytes and text in, [`extract::Extraction`] and
//! [`rules::Assessment`] out. Storage, the job queue, review cases and HTTP live elsewhere.
//!
//! - [`extract`]: format sniffing and text extraction (PDF text layer, plain text, OCR).
//! - [`rules`]: document types, checks, confidence and the policy decision.
//! - [`formats`]: registration, tax and bank numbers per country, with their check digits.
//! - [`dates`]: civil dates as day numbers and the date spellings documents use.
//! - [`samples`]: deterministic sample documents (text, PDF, PNG scans).

pub mod actions;
pub mod dates;
pub mod extract;
pub mod formats;
pub mod rules;
pub mod samples;
pub mod service;

#[cfg(test)]
mod worker_tests;
