//! The latency histogram of the request metrics: `oxka-log`'s, which also
//! times the log's flushes (one mechanism for both).

pub use oxka_log::latency::{Histogram, HistogramSnapshot, BUCKETS_MS};
