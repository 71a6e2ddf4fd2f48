//! `mercato demo`: a data directory filled with a realistic synthetic marketplace, then served.
