//! `mercato loadgen`: drives a mixed HTTP workload and reports throughput and latency percentiles.
