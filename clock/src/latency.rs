//! Durations counted into fixed buckets, for metrics: lock-free to observe, and plain words to
//! send, so a process can report its histograms to another (a duckling's heartbeat) and the
//! receiver can add them up.
//!
//! Invariants:
//! - Every Pond latency histogram has the same bounds ([`LATENCY_BOUNDS_MICROS`]), so two
//!   processes' counts add bucket by bucket.
//! - Each bucket counts only its own observations (not cumulative); a duration on a bound falls
//!   in the bucket that bound closes, as Prometheus's `le` says.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the buckets, in microseconds: 100 µs, doubling, to about 52 s; a last bucket
/// holds everything longer.
pub const LATENCY_BOUNDS_MICROS: [u64; 20] = {
    let mut bounds = [0; 20];
    let mut i = 0;
    while i < bounds.len() {
        bounds[i] = 100 << i;
        i += 1;
    }
    bounds
};

/// The words a [`LatencyHistogram`] is sent as: each bucket's count (the last past every
/// bound), then the sum of the observations in microseconds.
pub const LATENCY_WORDS: usize = LATENCY_BOUNDS_MICROS.len() + 2;

/// A histogram of durations.
#[derive(Debug, Default)]
pub struct LatencyHistogram {
    buckets: [AtomicU64; LATENCY_BOUNDS_MICROS.len() + 1],
    sum_micros: AtomicU64,
}

impl LatencyHistogram {
    /// Counts one duration.
    pub fn observe(&self, took: Duration) {
        // Rounded up: a duration just past a bound is past it (100.9 µs is not ≤ 100 µs).
        let micros = u64::try_from(took.as_nanos().div_ceil(1000)).unwrap_or(u64::MAX);
        let bucket = LATENCY_BOUNDS_MICROS.partition_point(|&bound| bound < micros);
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// What it holds now, as words ([`LATENCY_WORDS`]).
    pub fn words(&self) -> [u64; LATENCY_WORDS] {
        let mut words = [0; LATENCY_WORDS];
        for (word, bucket) in words.iter_mut().zip(&self.buckets) {
            *word = bucket.load(Ordering::Relaxed);
        }
        words[LATENCY_WORDS - 1] = self.sum_micros.load(Ordering::Relaxed);
        words
    }
}

/// A histogram's words read back: the view an exporter needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LatencyCounts<'a>(pub &'a [u64]);

impl LatencyCounts<'_> {
    /// Observations in all.
    pub fn count(&self) -> u64 {
        self.0[..=LATENCY_BOUNDS_MICROS.len()].iter().sum()
    }

    /// Their sum, in seconds.
    pub fn sum_seconds(&self) -> f64 {
        self.0[LATENCY_WORDS - 1] as f64 / 1e6
    }

    /// (upper bound in seconds, observations in that bucket alone), ending with +∞: what
    /// Prometheus's encoder takes (it accumulates them into `le` buckets itself).
    pub fn buckets(&self) -> Vec<(f64, u64)> {
        let bounds = LATENCY_BOUNDS_MICROS
            .iter()
            .map(|&b| b as f64 / 1e6)
            .chain([f64::INFINITY]);
        bounds
            .zip(self.0[..=LATENCY_BOUNDS_MICROS.len()].iter().copied())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_fall_in_the_bucket_their_bound_closes() {
        let h = LatencyHistogram::default();
        h.observe(Duration::from_micros(100)); // on the first bound
        h.observe(Duration::from_nanos(100_001)); // just past it
        h.observe(Duration::from_secs(3600)); // past every bound
        let words = h.words();
        assert_eq!(words[0], 1);
        assert_eq!(words[1], 1);
        assert_eq!(words[LATENCY_BOUNDS_MICROS.len()], 1);
        assert_eq!(words[LATENCY_WORDS - 1], 100 + 101 + 3_600_000_000);
        let counts = LatencyCounts(&words);
        assert_eq!(counts.count(), 3);
        let buckets = counts.buckets();
        assert_eq!(buckets[0], (0.0001, 1));
        assert_eq!(buckets[1], (0.0002, 1));
        assert_eq!(buckets[2], (0.0004, 0));
        assert_eq!(buckets.last(), Some(&(f64::INFINITY, 1)));
        assert!((counts.sum_seconds() - 3600.000201).abs() < 1e-9);
    }

    #[test]
    fn bounds_double_from_a_hundred_microseconds() {
        assert_eq!(LATENCY_BOUNDS_MICROS[0], 100);
        assert_eq!(LATENCY_BOUNDS_MICROS[19], 100 << 19);
    }
}
