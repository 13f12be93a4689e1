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
//!   user, was one plain read (no script, no write, no `nextval`) that took at most
//!   [`QUICK_TIME`] and returned at most [`QUICK_BYTES`]; a run that takes longer or returns
//!   more makes it slow again. So a worker is held at most about [`QUICK_TIME`] by a statement
//!   whose data did not change meanwhile.
//! - **A quick run never waits.** It takes the session's connection only when it is free and
//!   the duckling only when no attachment is being swapped; otherwise the statement goes to a
//!   blocking thread as before. A quick run that finds more than [`QUICK_BYTES`] stops, and
//!   the statement runs again there (a plain read may run twice).
//! - **Bounded.** At most [`MAX_TEXTS`] texts are remembered, each at most [`MAX_TEXT_BYTES`]
//!   long; past that the set starts again empty.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use parking_lot::Mutex;

/// The longest a run may take and its text still count as quick.
pub const QUICK_TIME: Duration = Duration::from_micros(250);
/// The most a quick read may return (Arrow bytes).
pub const QUICK_BYTES: u64 = 64 * 1024;
/// The most texts remembered, of all users.
const MAX_TEXTS: usize = 4096;
/// Longer texts are never quick: a hot point query is short.
const MAX_TEXT_BYTES: usize = 4096;

/// The texts, per user, whose last run was a quick plain read.
#[derive(Default)]
pub struct QuickReads {
    texts: Mutex<Texts>,
}

#[derive(Default)]
struct Texts {
    by_user: HashMap<String, HashSet<String>>,
    count: usize,
}

impl QuickReads {
    /// Whether `user`'s last run of `sql` was a quick plain read.
    pub fn is_quick(&self, user: &str, sql: &str) -> bool {
        self.texts
            .lock()
            .by_user
            .get(user)
            .is_some_and(|texts| texts.contains(sql))
    }

    /// Notes a run of `sql` by `user` that was one plain read, took `took` and returned
    /// `bytes`: the text is quick from now on when both are within bounds, slow otherwise.
    pub fn ran_a_read(&self, user: &str, sql: &str, took: Duration, bytes: u64) {
        let quick = took <= QUICK_TIME && bytes <= QUICK_BYTES && sql.len() <= MAX_TEXT_BYTES;
        let mut t = self.texts.lock();
        if !quick {
            if let Some(texts) = t.by_user.get_mut(user)
                && texts.remove(sql)
            {
                t.count -= 1;
            }
            return;
        }
        if t.by_user.get(user).is_some_and(|texts| texts.contains(sql)) {
            return;
        }
        if t.count >= MAX_TEXTS {
            *t = Texts::default();
        }
        t.by_user.entry(user.to_string()).or_default().insert(sql.to_string());
        t.count += 1;
    }

    /// Forgets `user`'s `sql`: its run failed or was not a plain read.
    pub fn forget(&self, user: &str, sql: &str) {
        self.ran_a_read(user, sql, Duration::MAX, u64::MAX);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POINT: &str = "SELECT v FROM t WHERE k = 1";

    #[test]
    fn a_text_is_quick_after_a_quick_run_until_a_slow_one() {
        let q = QuickReads::default();
        assert!(!q.is_quick("ann", POINT), "never ran");
        q.ran_a_read("ann", POINT, Duration::from_micros(40), 100);
        assert!(q.is_quick("ann", POINT));
        q.ran_a_read("ann", POINT, QUICK_TIME + Duration::from_micros(1), 100);
        assert!(!q.is_quick("ann", POINT), "the last run was slow");
        q.ran_a_read("ann", POINT, Duration::from_micros(40), QUICK_BYTES + 1);
        assert!(!q.is_quick("ann", POINT), "the last run returned too much");
        q.ran_a_read("ann", POINT, QUICK_TIME, QUICK_BYTES);
        assert!(q.is_quick("ann", POINT), "the bounds are inclusive");
        q.forget("ann", POINT);
        assert!(!q.is_quick("ann", POINT));
    }

    #[test]
    fn quickness_belongs_to_one_user() {
        let q = QuickReads::default();
        q.ran_a_read("ann", POINT, Duration::from_micros(40), 100);
        assert!(!q.is_quick("bob", POINT), "bob's tables may be another size");
    }

    #[test]
    fn long_texts_are_never_quick_and_the_set_stays_bounded() {
        let q = QuickReads::default();
        let long = format!("SELECT 1 -- {}", "x".repeat(MAX_TEXT_BYTES));
        q.ran_a_read("ann", &long, Duration::from_micros(1), 1);
        assert!(!q.is_quick("ann", &long));
        for i in 0..MAX_TEXTS {
            q.ran_a_read("ann", &format!("SELECT {i}"), Duration::from_micros(1), 1);
        }
        assert_eq!(q.texts.lock().count, MAX_TEXTS);
        q.ran_a_read("ann", POINT, Duration::from_micros(1), 1);
        let t = q.texts.lock();
        assert_eq!(t.count, 1, "full: started again with the newest text only");
        assert!(t.by_user["ann"].contains(POINT));
    }
}
