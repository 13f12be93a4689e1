//! Quick reads: statements whose last run was a plain read that took DuckDB a few hundred
//! microseconds and returned a few kilobytes run at once on the async worker that received
//! them, instead of on a blocking thread.
//!
//! A point query costs DuckDB about 30 µs; handing it to tokio's blocking pool and back costs
//! more than that in wake-ups, and under load each wake-up waits for a core. Under 64 k6
//! clients GetFlightInfo took 120 µs at the median and 2.4–4 ms at p99 with the hand-off, and
//! 30 µs and 0.13–0.26 ms without it.
//!
//! Invariants:
//! - **Only what ran quickly runs here.** A text is quick only after a run of it, by the same
//!   user at the same database and schema, was one plain read (no script, no write, no
//!   `nextval`) that took at most `--quick-read-time` (250 µs by default; 0 turns quick reads
//!   off) and returned at most [`QUICK_BYTES`], all of it delivered; a run that takes longer or
//!   returns more makes it slow again.
//! - **A worker is held at most about [`LIMIT_FACTOR`] times that.** Data changes, so a quick
//!   text may have become slow: a watchdog thread interrupts a quick run still going after its
//!   limit (checked every [`WATCH_TICK`]), and the statement runs again on a blocking thread, as
//!   does one that returns more than [`QUICK_BYTES`]. A plain read may so run twice.
//! - **A quick run never waits.** It takes the session's connection only when it is free and
//!   ready (no setting to apply again), and the duckling only when no attachment is being
//!   swapped; otherwise the statement goes to a blocking thread as before.
//! - **Bounded.** At most [`MAX_TEXTS_PER_USER`] texts per user, each at most
//!   [`MAX_TEXT_BYTES`] long, for at most [`MAX_USERS`] users; past a bound its set starts
//!   again empty.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use pond_duckling::InterruptHandle;

/// The most a quick read may return (Arrow bytes).
pub const QUICK_BYTES: u64 = 64 * 1024;
/// A quick run still going after this many times the quick time (2 ms at the default 250 µs)
/// is interrupted, to run again on a blocking thread: a text quick once may have become slow.
pub const LIMIT_FACTOR: u32 = 8;
/// The longest a quick run is let go on, whatever `--quick-read-time` says.
const MAX_LIMIT: Duration = Duration::from_secs(3600);
/// How often the watchdog looks at the quick runs going on.
const WATCH_TICK: Duration = Duration::from_millis(2);
/// The watchdog sleeps until woken once no quick run started for this long.
const WATCH_LINGER: Duration = Duration::from_secs(1);
/// The most texts remembered per user.
const MAX_TEXTS_PER_USER: usize = 256;
/// The most users whose texts are remembered.
const MAX_USERS: usize = 1024;
/// Longer texts are never quick: a hot point query is short.
const MAX_TEXT_BYTES: usize = 4096;

/// Where a text ran: the same text reads other tables at another database or schema.
pub struct Place<'a> {
    pub user: &'a str,
    pub database: &'a str,
    pub schema: Option<&'a str>,
}

impl Place<'_> {
    fn key(&self, sql: &str) -> String {
        format!("{}\u{0}{}\u{0}{sql}", self.database, self.schema.unwrap_or(""))
    }
}

/// The texts whose last run was a quick plain read, and the watchdog of quick runs.
pub struct QuickReads {
    /// The longest a run may take and its text still count as quick; zero: none is.
    quick_time: Duration,
    /// When the watchdog interrupts a quick run.
    limit: Duration,
    texts: Mutex<HashMap<String, HashSet<String>>>,
    watchdog: Arc<Watchdog>,
    /// Statements run on an async worker.
    pub ran: AtomicU64,
    /// Quick runs declined to run again on a blocking thread: too long, too large, or no
    /// longer one plain read the connection kept prepared.
    pub declined: AtomicU64,
}

impl QuickReads {
    /// Quick reads of runs that took at most `quick_time` (zero: none runs quickly).
    pub fn new(quick_time: Duration) -> Self {
        Self {
            quick_time,
            limit: quick_time.saturating_mul(LIMIT_FACTOR).min(MAX_LIMIT),
            texts: Default::default(),
            watchdog: Default::default(),
            ran: Default::default(),
            declined: Default::default(),
        }
    }

    /// Whether the last run of `sql` at `place` was a quick plain read.
    pub fn is_quick(&self, place: &Place<'_>, sql: &str) -> bool {
        !self.quick_time.is_zero()
            && sql.len() <= MAX_TEXT_BYTES
            && self
                .texts
                .lock()
                .get(place.user)
                .is_some_and(|texts| texts.contains(&place.key(sql)))
    }

    /// Notes a run of `sql` at `place` that was one plain read, took `took` and returned
    /// `bytes`, all delivered: the text is quick from now on when both are within bounds,
    /// slow otherwise.
    pub fn ran_a_read(&self, place: &Place<'_>, sql: &str, took: Duration, bytes: u64) {
        if sql.len() > MAX_TEXT_BYTES {
            return;
        }
        let quick = took <= self.quick_time && bytes <= QUICK_BYTES;
        let key = place.key(sql);
        let mut users = self.texts.lock();
        if !quick {
            if let Some(texts) = users.get_mut(place.user) {
                texts.remove(&key);
            }
            return;
        }
        if !users.contains_key(place.user) && users.len() >= MAX_USERS {
            users.clear();
        }
        let texts = users.entry(place.user.to_string()).or_default();
        if texts.len() >= MAX_TEXTS_PER_USER && !texts.contains(&key) {
            texts.clear();
        }
        texts.insert(key);
    }

    /// Forgets `sql` at `place`: a quick run of it was stopped, failed or was not a plain read.
    pub fn forget(&self, place: &Place<'_>, sql: &str) {
        self.ran_a_read(place, sql, Duration::MAX, u64::MAX);
    }

    /// Watches a quick run of the connection `interrupt` stops: interrupted once it outlives
    /// [`LIMIT_FACTOR`] times the quick time. `None` when no watchdog can run (its thread could not start): the
    /// statement then must not run quickly.
    pub fn watch(&self, interrupt: InterruptHandle) -> Option<Watch<'_>> {
        let dog = &self.watchdog;
        let mut w = dog.state.lock();
        if !w.thread_started {
            let weak = Arc::downgrade(dog);
            let spawned = std::thread::Builder::new()
                .name("pond-quick-reads".into())
                .spawn(move || watch_runs(weak));
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "could not start the quick reads' watchdog; every read runs on a blocking thread");
                return None;
            }
            w.thread_started = true;
        }
        let now = Instant::now();
        let id = w.next_id;
        w.next_id += 1;
        w.last_start = now;
        w.runs.push(Run {
            id,
            deadline: now + self.limit,
            interrupt,
            fired: false,
        });
        if w.parked {
            dog.wake.notify_one();
        }
        Some(Watch { dog, id })
    }
}

/// A quick run under watch; [`Watch::end`] says whether the watchdog stopped it.
pub struct Watch<'a> {
    dog: &'a Watchdog,
    id: u64,
}

impl Watch<'_> {
    /// Stops watching; true when the watchdog interrupted the run.
    pub fn end(self) -> bool {
        let mut w = self.dog.state.lock();
        let fired = w.runs.iter().find(|r| r.id == self.id).is_some_and(|r| r.fired);
        w.runs.retain(|r| r.id != self.id);
        drop(w);
        std::mem::forget(self);
        fired
    }
}

impl Drop for Watch<'_> {
    fn drop(&mut self) {
        self.dog.state.lock().runs.retain(|r| r.id != self.id);
    }
}

#[derive(Default)]
struct Watchdog {
    state: Mutex<Watched>,
    wake: Condvar,
}

struct Watched {
    runs: Vec<Run>,
    next_id: u64,
    last_start: Instant,
    /// The thread waits to be woken (no run for [`WATCH_LINGER`]).
    parked: bool,
    thread_started: bool,
}

impl Default for Watched {
    fn default() -> Self {
        Self {
            runs: Vec::new(),
            next_id: 0,
            last_start: Instant::now(),
            parked: false,
            thread_started: false,
        }
    }
}

struct Run {
    id: u64,
    deadline: Instant,
    interrupt: InterruptHandle,
    fired: bool,
}

/// The watchdog's thread: every [`WATCH_TICK`] while quick runs start, it interrupts those past
/// their deadline; it ends once the [`QuickReads`] is gone.
fn watch_runs(dog: Weak<Watchdog>) {
    loop {
        let Some(dog) = dog.upgrade() else { return };
        {
            let mut w = dog.state.lock();
            let now = Instant::now();
            // Every tick while past its deadline: DuckDB forgets an interrupt that arrives
            // between the checks before a statement and its start.
            for r in w.runs.iter_mut().filter(|r| r.deadline <= now) {
                r.interrupt.interrupt();
                r.fired = true;
            }
            if w.runs.is_empty() && now.duration_since(w.last_start) >= WATCH_LINGER {
                w.parked = true;
                // Woken by the next run, or after a while to see whether the QuickReads is gone.
                dog.wake.wait_for(&mut w, WATCH_LINGER);
                w.parked = false;
                continue;
            }
        }
        drop(dog);
        std::thread::sleep(WATCH_TICK);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POINT: &str = "SELECT v FROM t WHERE k = 1";
    const QUICK_TIME: Duration = Duration::from_micros(250);
    const ANN: Place<'static> = Place {
        user: "ann",
        database: "my_db",
        schema: None,
    };

    #[test]
    fn a_text_is_quick_after_a_quick_run_until_a_slow_one() {
        let q = QuickReads::new(QUICK_TIME);
        assert!(!q.is_quick(&ANN, POINT), "never ran");
        q.ran_a_read(&ANN, POINT, Duration::from_micros(40), 100);
        assert!(q.is_quick(&ANN, POINT));
        q.ran_a_read(&ANN, POINT, QUICK_TIME + Duration::from_micros(1), 100);
        assert!(!q.is_quick(&ANN, POINT), "the last run was slow");
        q.ran_a_read(&ANN, POINT, Duration::from_micros(40), QUICK_BYTES + 1);
        assert!(!q.is_quick(&ANN, POINT), "the last run returned too much");
        q.ran_a_read(&ANN, POINT, QUICK_TIME, QUICK_BYTES);
        assert!(q.is_quick(&ANN, POINT), "the bounds are inclusive");
        q.forget(&ANN, POINT);
        assert!(!q.is_quick(&ANN, POINT));
    }

    #[test]
    fn a_zero_quick_time_turns_quick_reads_off() {
        let q = QuickReads::new(Duration::ZERO);
        q.ran_a_read(&ANN, POINT, Duration::ZERO, 0);
        assert!(!q.is_quick(&ANN, POINT));
    }

    #[test]
    fn a_huge_quick_time_gives_a_bounded_limit() {
        let q = QuickReads::new(Duration::MAX);
        assert_eq!(q.limit, MAX_LIMIT);
        let db = pond_duckling::Database::open(None, &[]).unwrap();
        let conn = db.connect().unwrap();
        assert!(!q.watch(conn.interrupt_handle()).unwrap().end());
    }

    #[test]
    fn quickness_belongs_to_one_user_at_one_database_and_schema() {
        let q = QuickReads::new(QUICK_TIME);
        q.ran_a_read(&ANN, POINT, Duration::from_micros(40), 100);
        let elsewhere = [
            Place { user: "bob", ..ANN },
            Place {
                database: "big_db",
                ..ANN
            },
            Place {
                schema: Some("archive"),
                ..ANN
            },
        ];
        for place in &elsewhere {
            assert!(!q.is_quick(place, POINT), "its tables may be another size");
        }
    }

    #[test]
    fn long_texts_are_never_quick_and_each_user_is_bounded() {
        let q = QuickReads::new(QUICK_TIME);
        let long = format!("SELECT 1 -- {}", "x".repeat(MAX_TEXT_BYTES));
        q.ran_a_read(&ANN, &long, Duration::from_micros(1), 1);
        assert!(!q.is_quick(&ANN, &long));
        let bob = Place { user: "bob", ..ANN };
        q.ran_a_read(&bob, POINT, Duration::from_micros(1), 1);
        for i in 0..MAX_TEXTS_PER_USER {
            q.ran_a_read(&ANN, &format!("SELECT {i}"), Duration::from_micros(1), 1);
        }
        assert_eq!(q.texts.lock()["ann"].len(), MAX_TEXTS_PER_USER);
        q.ran_a_read(&ANN, POINT, Duration::from_micros(1), 1);
        assert_eq!(
            q.texts.lock()["ann"].len(),
            1,
            "full: started again with the newest text only"
        );
        assert!(q.is_quick(&ANN, POINT));
        assert!(q.is_quick(&bob, POINT), "another user's texts stay");
    }

    /// A run that outlives its limit (2 ms) is interrupted (DuckDB would scan for minutes); one
    /// that ends in time is not.
    #[test]
    fn the_watchdog_interrupts_a_run_past_its_limit_only() {
        let db = pond_duckling::Database::open(None, &[]).unwrap();
        let conn = db.connect().unwrap();
        let q = QuickReads::new(QUICK_TIME);

        // In time at least once in twenty tries (a loaded machine may pause any one of them).
        let in_time = (0..20).any(|_| {
            let watch = q.watch(conn.interrupt_handle()).unwrap();
            let answered = conn.query_all("SELECT 42").is_ok();
            !watch.end() && answered
        });
        assert!(in_time, "SELECT 42 never ended within its limit");

        let watch = q.watch(conn.interrupt_handle()).unwrap();
        let long = conn.query_all("SELECT count(*) FROM range(1000000000000) a(x) WHERE x % 7 = 3");
        assert!(
            long.is_err(),
            "a scan of 10^12 rows ended without an interrupt: {long:?}"
        );
        assert!(watch.end(), "the watchdog fired");
        assert!(q.watchdog.state.lock().runs.is_empty());

        // The connection is usable again, and a watch dropped without `end` is gone too.
        drop(q.watch(conn.interrupt_handle()).unwrap());
        assert!(q.watchdog.state.lock().runs.is_empty());
        conn.query_all("SELECT 1").unwrap();
    }
}
