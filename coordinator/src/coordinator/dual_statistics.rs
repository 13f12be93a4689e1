//! Dual execution's statistics of cloud tables, kept per version of the data they describe.
//!
//! Measuring a table (its row count, DuckDB's per-column statistics, the width of its
//! variable-width columns) reads it; a session plans a mixed query up to three times, and a
//! user runs many over tables that do not change between them. So a table is measured once
//! per snapshot of its database: the key is the user, the database's id and snapshot sequence
//! (equal versions hold equal committed data) and the table's quoted name. The user is part of
//! it because what a name reads may depend on who reads it (a view over a file read with the
//! owner's secrets, attached by a share's reader under the same name).
//!
//! Invariants:
//! - An entry is found only at the exact version it was measured at: the first commit a
//!   database stores after it makes the table measured again.
//! - Only the newest measured version of a table is kept, and at most [`CAPACITY`] tables: the
//!   cache never grows with the number of commits.
//! - Statistics are estimates for the cost model, never part of an answer: a view whose
//!   tables live in another database keeps its entry until its own database commits.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use pond_planner::TableStatistics;

/// Tables kept at most; past it the cache starts again empty.
const CAPACITY: usize = 4096;

/// A database's data version: its id and snapshot sequence.
pub(crate) type DataVersion = (String, u64);

/// Whose reading of which table: the user, the database's id, the table's quoted name.
type TableKey = (String, String, String);

#[derive(Default)]
pub(crate) struct StatisticsCache {
    /// (user, database id, quoted table name) → the version measured at and what was measured.
    entries: Mutex<HashMap<TableKey, (u64, TableStatistics)>>,
    /// Tables measured, and tables answered from the cache (for metrics).
    pub(crate) measured: AtomicU64,
    pub(crate) reused: AtomicU64,
}

impl StatisticsCache {
    /// What `source` measured for `user` at `version`, if it was.
    pub(crate) fn get(&self, user: &str, version: &DataVersion, source: &str) -> Option<TableStatistics> {
        let entries = self.entries.lock();
        let (seq, stats) = entries.get(&(user.to_string(), version.0.clone(), source.to_string()))?;
        (*seq == version.1).then(|| {
            self.reused.fetch_add(1, Ordering::Relaxed);
            stats.clone()
        })
    }

    /// Counts a table measured (kept or not).
    pub(crate) fn counted_a_measure(&self) {
        self.measured.fetch_add(1, Ordering::Relaxed);
    }

    /// Keeps what `source` measured for `user` at `version`, in place of an older version's.
    pub(crate) fn put(&self, user: &str, version: DataVersion, source: &str, stats: TableStatistics) {
        let mut entries = self.entries.lock();
        let key = (user.to_string(), version.0, source.to_string());
        if entries.len() >= CAPACITY && !entries.contains_key(&key) {
            entries.clear();
        }
        entries.insert(key, (version.1, stats));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(rows: f64) -> TableStatistics {
        TableStatistics {
            rows,
            ..Default::default()
        }
    }

    fn version(seq: u64) -> DataVersion {
        ("db1".to_string(), seq)
    }

    #[test]
    fn a_table_is_found_only_at_the_version_it_was_measured_at() {
        let cache = StatisticsCache::default();
        let t = "\"shop\".\"main\".\"sales\"";
        assert!(cache.get("ann", &version(3), t).is_none());
        cache.put("ann", version(3), t, stats(10.0));
        assert_eq!(cache.get("ann", &version(3), t).map(|s| s.rows), Some(10.0));
        // A commit since: measured again, and the newer measure replaces the older.
        assert!(cache.get("ann", &version(4), t).is_none());
        cache.put("ann", version(4), t, stats(11.0));
        assert_eq!(cache.get("ann", &version(4), t).map(|s| s.rows), Some(11.0));
        assert!(cache.get("ann", &version(3), t).is_none());
        // Another database with the same table name is another table; another user's reading
        // of the same table is theirs.
        assert!(cache.get("ann", &("db2".to_string(), 4), t).is_none());
        assert!(cache.get("bob", &version(4), t).is_none());
        assert_eq!(cache.reused.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn the_cache_stays_bounded() {
        let cache = StatisticsCache::default();
        for i in 0..CAPACITY + 10 {
            cache.put("ann", version(1), &format!("\"db\".\"main\".\"t{i}\""), stats(i as f64));
        }
        assert!(cache.entries.lock().len() <= CAPACITY);
        let last = format!("\"db\".\"main\".\"t{}\"", CAPACITY + 9);
        assert!(cache.get("ann", &version(1), &last).is_some());
    }
}
