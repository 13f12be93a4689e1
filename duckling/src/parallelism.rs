//! How many threads the ducklings' DuckDB instances run: their configured number while the
//! CPUs have room, one while threads queue for a CPU.
//!
//! Why: an instance with worker threads wakes one for each task a statement schedules, and a
//! statement whose only task a worker took spins on its own thread until the worker is done
//! (`NO_TASKS_AVAILABLE` in DuckDB's executor). While a CPU is idle that costs nothing anyone
//! sees. When every CPU is taken it is work done for nothing: under 64 clients sending point
//! queries it was a quarter of the server's CPU (about 400 µs per query, against 300 µs with
//! `--duckling-threads 1`, in one run). A parallel plan gains nothing then either: no CPU is
//! free to run its threads.
//!
//! The signal is Linux's pressure stall information for CPUs (the share of time some thread
//! was ready to run but waited for a CPU), the cgroup's own when it has one. It stays near
//! zero while one large query keeps every core busy with its own threads (measured: 1–3%),
//! and rises when more threads want CPUs than there are (measured under 64 clients: 35–50%).
//! A container that cannot read its cgroup's file reads the host's, where other tenants'
//! load counts too.
//!
//! DuckDB applies a new thread count at the end of the instance's next statement, which
//! joins the workers it stops; instances schedule work in parts
//! (`scheduler_process_partial`, see [`crate::sandbox::open_options`]), so that join waits
//! for a few chunks, never for a long scan. A change never runs beside an ATTACH: DuckDB
//! replays an attached file's log with a query whose end needs the lock the join holds, at
//! times on a worker the join waits for ([`Duckling::set_threads`]).
//!
//! Invariants: [`Contention`] decides from samples alone (no clock, no I/O), so its
//! hysteresis is unit-tested; a duckling registered while narrowed starts narrowed; a change
//! reaches a duckling in the order the changes were decided ([`Threads`]); a dropped duckling
//! is forgotten; the watcher thread starts with the first duckling that adapts, and never
//! where no pressure file can be read (other systems keep the configured threads).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tracing::{debug, warn};

use crate::Duckling;

/// How often the pressure is read.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(100);
/// Narrow when more than this share of the time some thread waited for a CPU …
pub const NARROW_ABOVE: f64 = 0.20;
/// … in this many samples in a row (300 ms).
pub const NARROW_AFTER: u32 = 3;
/// Widen again when less than this share waited …
pub const WIDEN_BELOW: f64 = 0.05;
/// … in this many samples in a row (2 s: load that comes and goes does not make every
/// instance start and stop its threads each time).
pub const WIDEN_AFTER: u32 = 20;

/// Whether the ducklings should run narrowed, from one pressure sample after another.
#[derive(Debug, Default, Clone)]
pub struct Contention {
    narrowed: bool,
    /// Samples in a row that argue for a change.
    streak: u32,
}

impl Contention {
    /// Takes the share of the last interval some thread waited for a CPU; returns the new
    /// state (`true`: narrowed) when it changes.
    pub fn observe(&mut self, stalled: f64) -> Option<bool> {
        let (for_change, needed) = if self.narrowed {
            (stalled < WIDEN_BELOW, WIDEN_AFTER)
        } else {
            (stalled > NARROW_ABOVE, NARROW_AFTER)
        };
        if !for_change {
            self.streak = 0;
            return None;
        }
        self.streak += 1;
        if self.streak < needed {
            return None;
        }
        self.streak = 0;
        self.narrowed = !self.narrowed;
        Some(self.narrowed)
    }

    pub fn narrowed(&self) -> bool {
        self.narrowed
    }
}

/// The `some … total=<µs>` figure of a pressure file: microseconds some thread waited.
pub fn stalled_micros(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("some "))?;
    line.split_whitespace()
        .find_map(|field| field.strip_prefix("total="))
        .and_then(|v| v.parse().ok())
}

/// The CPU pressure file that speaks for this process: its cgroup's (v2) if it has one, else
/// the system's. `None` where neither can be read (not Linux, or a kernel without PSI).
fn pressure_file() -> Option<PathBuf> {
    let cgroup = std::fs::read_to_string("/proc/self/cgroup").ok().and_then(|text| {
        text.lines().find_map(|l| l.strip_prefix("0::")).map(|path| {
            Path::new("/sys/fs/cgroup")
                .join(path.trim_start_matches('/'))
                .join("cpu.pressure")
        })
    });
    cgroup
        .into_iter()
        .chain(std::iter::once(PathBuf::from("/proc/pressure/cpu")))
        .find(|path| {
            std::fs::read_to_string(path)
                .ok()
                .as_deref()
                .and_then(stalled_micros)
                .is_some()
        })
}

/// The thread count a duckling has been given, and the decision that gave it.
#[derive(Debug)]
pub struct Threads {
    /// What it runs when the CPUs have room (its configured count, or DuckDB's default).
    pub wide: usize,
    /// The newest decision applied (see [`Watcher::decisions`]); older ones are ignored.
    applied: Mutex<u64>,
}

impl Threads {
    pub fn new(wide: usize) -> Self {
        Self {
            wide,
            applied: Mutex::new(0),
        }
    }
}

/// The ducklings that adapt, and the decision in force.
struct Watcher {
    members: Mutex<Vec<Weak<Duckling>>>,
    /// Even: wide; odd: narrowed. Each change adds one, so a later decision is a larger number.
    decisions: AtomicU64,
}

static WATCHER: OnceLock<Option<Arc<Watcher>>> = OnceLock::new();

/// Makes `duckling` follow the CPUs' contention from now on (narrowed at once if they are
/// contended now).
pub fn adapt(duckling: &Arc<Duckling>) {
    let Some(watcher) = WATCHER.get_or_init(start) else {
        return;
    };
    let decision = {
        let mut members = watcher.members.lock();
        // Ducklings stop and start without a decision in between on a calm host.
        members.retain(|m| m.strong_count() > 0);
        members.push(Arc::downgrade(duckling));
        watcher.decisions.load(Ordering::SeqCst)
    };
    if narrows(decision) {
        apply(duckling, decision);
    }
}

/// Whether `decision` (see [`Watcher::decisions`]) narrows: the odd ones do.
fn narrows(decision: u64) -> bool {
    decision % 2 == 1
}

/// Gives `duckling` the thread count `decision` stands for, unless a later one reached it.
fn apply(duckling: &Duckling, decision: u64) {
    let Some(threads) = duckling.threads() else {
        return;
    };
    let mut applied = threads.applied.lock();
    if *applied > decision || duckling.is_closed() {
        return;
    }
    let count = if narrows(decision) { 1 } else { threads.wide };
    // The statement that sets it also applies it, joining the workers it stops once they
    // finish their part of a task (see the module's comment).
    match duckling.set_threads(count) {
        Ok(()) => *applied = decision,
        Err(e) => warn!(error = %e, count, "could not change a duckling's DuckDB threads"),
    }
}

fn start() -> Option<Arc<Watcher>> {
    let Some(path) = pressure_file() else {
        debug!("no CPU pressure information: ducklings keep their configured threads");
        return None;
    };
    let watcher = Arc::new(Watcher {
        members: Mutex::new(Vec::new()),
        decisions: AtomicU64::new(0),
    });
    let watching = Arc::clone(&watcher);
    let spawned = std::thread::Builder::new()
        .name("pond-threads".into())
        .spawn(move || watch(&watching, &path));
    match spawned {
        Ok(_) => Some(watcher),
        Err(e) => {
            warn!(error = %e, "could not start the CPU contention watcher");
            None
        }
    }
}

fn watch(watcher: &Watcher, path: &Path) {
    let read = || std::fs::read_to_string(path).ok().as_deref().and_then(stalled_micros);
    let mut contention = Contention::default();
    let mut last = (read(), Instant::now());
    loop {
        std::thread::sleep(SAMPLE_EVERY);
        let now = (read(), Instant::now());
        let (Some(before), Some(after)) = (last.0, now.0) else {
            last = now;
            continue;
        };
        let elapsed = now.1.duration_since(last.1).as_micros().max(1) as f64;
        last = now;
        let Some(narrowed) = contention.observe(after.saturating_sub(before) as f64 / elapsed) else {
            continue;
        };
        let (decision, members) = {
            let mut members = watcher.members.lock();
            members.retain(|m| m.strong_count() > 0);
            let decision = watcher.decisions.fetch_add(1, Ordering::SeqCst) + 1;
            (decision, members.iter().filter_map(Weak::upgrade).collect::<Vec<_>>())
        };
        debug_assert_eq!(narrows(decision), narrowed);
        debug!(
            narrowed,
            ducklings = members.len(),
            "CPU contention changed the ducklings' threads"
        );
        for duckling in members {
            apply(&duckling, decision);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(c: &mut Contention, samples: &[f64]) -> Vec<Option<bool>> {
        samples.iter().map(|s| c.observe(*s)).collect()
    }

    #[test]
    fn narrows_only_after_sustained_contention() {
        let mut c = Contention::default();
        // Two contended samples, then a calm one: the streak starts again.
        assert_eq!(feed(&mut c, &[0.5, 0.5, 0.01]), vec![None, None, None]);
        assert!(!c.narrowed());
        assert_eq!(feed(&mut c, &[0.3, 0.4, 0.45]), vec![None, None, Some(true)]);
        assert!(c.narrowed());
        // Exactly at the bound is not above it.
        let mut at_bound = Contention::default();
        assert_eq!(feed(&mut at_bound, &[NARROW_ABOVE; 5]), vec![None; 5]);
    }

    #[test]
    fn widens_only_after_a_long_calm() {
        let mut c = Contention::default();
        feed(&mut c, &[0.9; NARROW_AFTER as usize]);
        assert!(c.narrowed());
        // Moderate pressure (between the bounds) keeps it narrowed, however long it lasts.
        assert!(feed(&mut c, &[0.1; 100]).iter().all(Option::is_none));
        let mut calm = vec![0.0; WIDEN_AFTER as usize - 1];
        calm.push(0.3);
        assert!(
            feed(&mut c, &calm).iter().all(Option::is_none),
            "one busy sample restarts the calm"
        );
        let changes = feed(&mut c, &[0.01; WIDEN_AFTER as usize]);
        assert_eq!(changes.last(), Some(&Some(false)));
        assert!(changes[..changes.len() - 1].iter().all(Option::is_none));
        assert!(!c.narrowed());
    }

    #[test]
    fn reads_the_kernels_pressure_format() {
        let text = "some avg10=4.87 avg60=24.41 avg300=20.99 total=4603214530\n\
                    full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n";
        assert_eq!(stalled_micros(text), Some(4_603_214_530));
        assert_eq!(stalled_micros("full avg10=0.00 total=7\n"), None);
        assert_eq!(stalled_micros("some avg10=0.00\n"), None);
        assert_eq!(stalled_micros(""), None);
    }
}
