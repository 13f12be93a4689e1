//! Time as a dependency: what Pond decides by time reads a [`Clock`] it was given, the way
//! SlateDB injects its `SystemClock`. Production shares [`SystemClock`]; tests use a
//! [`ManualClock`] they move by hand, so timeouts, horizons and deadlines are tested in
//! microseconds, without sleeping. Durations measured for metrics are bucketed here too
//! ([`LatencyHistogram`]), the one bucketing every process shares.
//!
//! Invariants:
//! - The decisions storage, the cluster's pool and sessions make by time (GC's grace and
//!   retention horizons, manifests' creation times, the pool's heartbeat deadline, sessions'
//!   idle timeouts) read an injected `Arc<dyn Clock>`, never `SystemTime::now()` or
//!   `Instant::now()`. Tokio timers that only schedule work (a sweep's interval) or bound a wait
//!   may keep tokio's time: they decide nothing. Not yet injected: the coordinator's idle
//!   duckling stop, a duckling process's deadline for a silent coordinator, the catalog's and
//!   tokens' timestamps.
//! - [`Clock::instant`] never goes backwards: durations (idle, silent) are measured with it.
//!   [`Clock::now`] is wall time, which may jump when the system clock is set, so it is used
//!   only for times that are stored or compared with stored ones (a manifest's `created_ms`, an
//!   object's last-modified time).
//! - A [`ManualClock`] moves only when advanced, and then its wall and monotonic time move by
//!   the same amount.

mod latency;

pub use latency::{LATENCY_BOUNDS_MICROS, LATENCY_WORDS, LatencyCounts, LatencyHistogram};

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A source of wall and monotonic time.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Wall time.
    fn now(&self) -> SystemTime;

    /// Monotonic time: only differences between two readings mean anything.
    fn instant(&self) -> Instant;

    /// Wall time as milliseconds since the Unix epoch (0 for a clock set before it).
    fn unix_ms(&self) -> i64 {
        self.now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    }

    /// Monotonic time passed since `earlier` (zero if `earlier` is later).
    fn since(&self, earlier: Instant) -> Duration {
        self.instant().saturating_duration_since(earlier)
    }
}

/// The operating system's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    fn instant(&self) -> Instant {
        Instant::now()
    }
}

/// The process's one [`SystemClock`], shared: what constructors use when nobody injects a clock.
pub fn system() -> Arc<dyn Clock> {
    static SYSTEM: OnceLock<Arc<dyn Clock>> = OnceLock::new();
    Arc::clone(SYSTEM.get_or_init(|| Arc::new(SystemClock)))
}

/// A clock that stands still until [`ManualClock::advance`] moves it.
#[derive(Debug)]
pub struct ManualClock {
    wall_start: SystemTime,
    instant_start: Instant,
    /// Nanoseconds advanced since the start (u64 nanoseconds last 584 years).
    advanced_ns: AtomicU64,
}

impl ManualClock {
    /// A clock standing at the current system time, so the times it reports are comparable
    /// with those an object store stamps.
    pub fn new() -> Self {
        Self::starting_at(SystemTime::now())
    }

    /// A clock standing at wall time `wall`.
    pub fn starting_at(wall: SystemTime) -> Self {
        Self {
            wall_start: wall,
            instant_start: Instant::now(),
            advanced_ns: AtomicU64::new(0),
        }
    }

    /// Moves wall and monotonic time forward by `by`.
    pub fn advance(&self, by: Duration) {
        let ns = u64::try_from(by.as_nanos()).expect("a ManualClock advances by less than 584 years");
        self.advanced_ns.fetch_add(ns, Ordering::SeqCst);
    }

    fn advanced(&self) -> Duration {
        Duration::from_nanos(self.advanced_ns.load(Ordering::SeqCst))
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        self.wall_start + self.advanced()
    }

    fn instant(&self) -> Instant {
        self.instant_start + self.advanced()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_advanced_and_both_times_together() {
        let start = UNIX_EPOCH + Duration::from_secs(1_000);
        let clock = ManualClock::starting_at(start);
        let t0 = clock.instant();
        assert_eq!(clock.now(), start);
        assert_eq!(clock.unix_ms(), 1_000_000);
        assert_eq!(clock.since(t0), Duration::ZERO);

        clock.advance(Duration::from_millis(1_500));
        assert_eq!(clock.now(), start + Duration::from_millis(1_500));
        assert_eq!(clock.unix_ms(), 1_001_500);
        assert_eq!(clock.since(t0), Duration::from_millis(1_500));
        assert_eq!(clock.instant(), t0 + Duration::from_millis(1_500));
    }

    #[test]
    fn a_clock_before_the_epoch_reads_zero_ms_and_elapsed_never_goes_negative() {
        let clock = ManualClock::starting_at(UNIX_EPOCH - Duration::from_secs(1));
        assert_eq!(clock.unix_ms(), 0);
        let later = clock.instant() + Duration::from_secs(1);
        assert_eq!(clock.since(later), Duration::ZERO);
    }

    #[test]
    fn the_system_clock_is_shared_and_moves() {
        let clock = system();
        assert!(Arc::ptr_eq(&clock, &system()));
        let t0 = clock.instant();
        assert!(clock.unix_ms() > 1_600_000_000_000);
        assert!(clock.instant() >= t0);
    }
}
