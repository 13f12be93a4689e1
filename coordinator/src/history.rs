//! Query history: one record per statement a client ran, kept durably where the catalog keeps
//! its state, for `pond_information_schema.query_history`.
//!
//! Invariants:
//! - A record is written off its query's path: the coordinator hands it to a writer thread
//!   through a bounded channel and never waits (`coordinator/history.rs`).
//! - The text of a statement that may carry a secret (any that names `SECRET`) is kept with
//!   its literals removed ([`history_text`]); a text the lexer cannot read that mentions a
//!   secret is withheld whole.
//! - On disk, records are JSON lines in one file per UTC day ([`HistoryFiles`]); a batch is
//!   appended and fsynced in one write, and a torn last line (a crash mid-append) is skipped
//!   when read. Retention drops whole days.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::error::Result;

/// How a statement ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QueryStatus {
    /// Ran to the end (a query: its client read every row).
    Ok,
    /// Failed with an error.
    Error,
    /// Interrupted, timed out, or its client went away before the end.
    Cancelled,
}

impl QueryStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Error => "error",
            Self::Cancelled => "cancelled",
        }
    }
}

/// One statement a client ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryRecord {
    /// The id its result is fetched by (`<session>.q<n>`), unique on the server.
    pub query_id: String,
    pub user_name: String,
    pub session_id: String,
    /// The session's database when the statement started.
    pub database_name: String,
    /// The text as run, or with its literals removed ([`history_text`]).
    pub query_text: String,
    /// The statement's first keyword, upper case (`SELECT`, `INSERT`, …), or `INGEST`.
    pub kind: String,
    /// Wall-clock microseconds since the Unix epoch.
    pub start_us: u64,
    pub end_us: u64,
    /// Rows returned (a query) or changed (an update or ingest).
    pub rows: u64,
    /// Arrow bytes returned.
    pub bytes: u64,
    pub status: QueryStatus,
    pub error: Option<String>,
    /// The duckling that ran it.
    pub duckling_id: String,
    /// The Flight SQL transaction it ran in, if any.
    pub transaction_id: Option<String>,
}

impl QueryRecord {
    pub fn duration_ms(&self) -> f64 {
        self.end_us.saturating_sub(self.start_us) as f64 / 1000.0
    }
}

/// The longest query text kept; longer texts are cut (on a character boundary) and marked.
pub const MAX_TEXT_BYTES: usize = 64 << 10;

/// Most records a read returns: the newest.
pub const MAX_READ_RECORDS: usize = 100_000;

/// Most query text a read returns, in bytes: the newest records' (a reply travels in one gRPC
/// message between processes).
pub const MAX_READ_TEXT_BYTES: usize = 64 << 20;

/// What one read of the history may return: [`MAX_READ_RECORDS`] records and
/// [`MAX_READ_TEXT_BYTES`] of their text, whichever ends first (newest records first).
#[derive(Debug, Default)]
pub(crate) struct ReadBudget {
    records: usize,
    text_bytes: usize,
}

impl ReadBudget {
    /// Whether `r` still fits; counts it if so.
    pub(crate) fn take(&mut self, r: &QueryRecord) -> bool {
        self.text_bytes += r.query_text.len() + r.error.as_ref().map_or(0, String::len);
        self.records += 1;
        self.records <= MAX_READ_RECORDS && self.text_bytes <= MAX_READ_TEXT_BYTES
    }
}

/// The text history keeps of `sql` (see [`shown_text`]).
pub fn history_text(sql: &str) -> String {
    shown_text(sql, true)
}

/// What a history record (`keep_literals`) or a trace span (not) may show of `sql`, cut to
/// [`MAX_TEXT_BYTES`]:
/// - a text that names `SECRET` keeps only what comes before its first `(`, without literals:
///   a secret's options hold keys, written as strings or as names;
/// - a text that names a share URL (`…_share/…`, a capability) loses its literals;
/// - without `keep_literals`, every text loses its literals.
///
/// A text the lexer cannot read is withheld where it would lose something.
pub fn shown_text(sql: &str, keep_literals: bool) -> String {
    use pond_duckling::lexer::{tokenize, without_literals};
    const WITHHELD: &str = "-- withheld: a statement that could not be read";
    let names = |needle: &[u8]| {
        sql.as_bytes()
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle))
    };
    let text = if names(b"secret") {
        match tokenize(sql) {
            Ok(tokens) => match tokens.iter().find(|t| t.is_punct('(')) {
                Some(paren) => format!(
                    "{} (…)",
                    without_literals(&sql[..paren.span.start])
                        .unwrap_or_default()
                        .trim_end()
                ),
                None => without_literals(sql).unwrap_or_default(),
            },
            Err(_) => WITHHELD.to_string(),
        }
    } else if !keep_literals || names(b"_share/") {
        without_literals(sql).unwrap_or_else(|| WITHHELD.to_string())
    } else {
        sql.to_string()
    };
    cut(text, MAX_TEXT_BYTES)
}

/// `text` cut to at most `max` bytes (on a character boundary) and marked.
pub(crate) fn cut(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push_str(" …");
    }
    text
}

pub(crate) const MICROS_PER_DAY: u64 = 86_400 * 1_000_000;

/// Query history as JSON lines, one file per UTC day (`day-<days since the epoch>.jsonl`).
pub struct HistoryFiles {
    dir: PathBuf,
    /// Serializes appends, so two batches never interleave their lines.
    append: Mutex<()>,
}

impl HistoryFiles {
    pub fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            append: Mutex::new(()),
        })
    }

    fn day_file(&self, day: u64) -> PathBuf {
        self.dir.join(format!("day-{day}.jsonl"))
    }

    /// The days that have a file, newest first.
    fn days(&self) -> Result<Vec<u64>> {
        let mut days: Vec<u64> = std::fs::read_dir(&self.dir)?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                name.strip_prefix("day-")?.strip_suffix(".jsonl")?.parse().ok()
            })
            .collect();
        days.sort_unstable_by(|a, b| b.cmp(a));
        Ok(days)
    }

    /// Appends `records`, durably, each to the file of the day it ended.
    pub fn append(&self, records: &[QueryRecord]) -> Result<()> {
        let _one_at_a_time = self.append.lock();
        let mut by_day: std::collections::BTreeMap<u64, Vec<u8>> = Default::default();
        for r in records {
            let lines = by_day.entry(r.end_us / MICROS_PER_DAY).or_default();
            serde_json::to_writer(&mut *lines, r).map_err(|e| crate::CoordinatorError::Internal(e.to_string()))?;
            lines.push(b'\n');
        }
        for (day, mut lines) in by_day {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .read(true)
                .open(self.day_file(day))?;
            // After a crash mid-append the file ends in a torn line: start on a line of our own.
            let len = f.metadata()?.len();
            if len > 0 {
                let mut last = [0u8];
                std::os::unix::fs::FileExt::read_exact_at(&f, &mut last, len - 1)?;
                if last[0] != b'\n' {
                    lines.insert(0, b'\n');
                }
            }
            f.write_all(&lines)?;
            f.sync_data()?;
        }
        Ok(())
    }

    /// The newest records that `keep` accepts (at most [`MAX_READ_RECORDS`] and
    /// [`MAX_READ_TEXT_BYTES`] of text), oldest first.
    pub fn read(&self, keep: impl Fn(&QueryRecord) -> bool) -> Result<Vec<QueryRecord>> {
        let mut newest_first: Vec<QueryRecord> = Vec::new();
        let mut budget = ReadBudget::default();
        'days: for day in self.days()? {
            let file = match std::fs::File::open(self.day_file(day)) {
                Ok(f) => f,
                // Pruned meanwhile.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e.into()),
            };
            let mut of_day = Vec::new();
            let mut reader = std::io::BufReader::new(file);
            let mut line = Vec::new();
            while reader.read_until(b'\n', &mut line)? > 0 {
                // A torn line (a crash mid-append) does not parse: skipped.
                if let Ok(r) = serde_json::from_slice::<QueryRecord>(&line)
                    && keep(&r)
                {
                    of_day.push(r);
                }
                line.clear();
            }
            for r in of_day.into_iter().rev() {
                if !budget.take(&r) {
                    break 'days;
                }
                newest_first.push(r);
            }
        }
        newest_first.reverse();
        Ok(newest_first)
    }

    /// Deletes the days that ended before `before_us`. Returns how many files went.
    pub fn prune(&self, before_us: u64) -> Result<usize> {
        let mut removed = 0;
        for day in self.days()? {
            if (day + 1) * MICROS_PER_DAY <= before_us {
                std::fs::remove_file(self.day_file(day))?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

/// A finished `SELECT 1` of `user` that ended at `end_us`, for tests of what keeps records.
#[cfg(test)]
pub(crate) fn test_record(user: &str, end_us: u64) -> QueryRecord {
    QueryRecord {
        query_id: format!("s.q{end_us}"),
        user_name: user.into(),
        session_id: "s".into(),
        database_name: "my_db".into(),
        query_text: "SELECT 1".into(),
        kind: "SELECT".into(),
        start_us: end_us.saturating_sub(5),
        end_us,
        rows: 1,
        bytes: 8,
        status: QueryStatus::Ok,
        error: None,
        duckling_id: "d".into(),
        transaction_id: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_survive_reopen_in_order_and_a_torn_line_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let files = HistoryFiles::open(dir.path()).unwrap();
        let day = MICROS_PER_DAY;
        files
            .append(&[test_record("a", 3 * day + 1), test_record("b", 3 * day + 2)])
            .unwrap();
        files.append(&[test_record("a", 4 * day + 1)]).unwrap();
        // A crash in the middle of an append.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join("day-4.jsonl"))
            .unwrap();
        f.write_all("{\"query_id\":\"torn \u{e9}".as_bytes().split_last().unwrap().1)
            .unwrap();
        let files = HistoryFiles::open(dir.path()).unwrap();
        // The next append starts on a line of its own: nothing after the torn line is lost.
        files.append(&[test_record("b", 4 * day + 2)]).unwrap();
        let all = files.read(|_| true).unwrap();
        let ends: Vec<u64> = all.iter().map(|r| r.end_us).collect();
        assert_eq!(ends, vec![3 * day + 1, 3 * day + 2, 4 * day + 1, 4 * day + 2]);
        let mine = files.read(|r| r.user_name == "a").unwrap();
        assert_eq!(mine.len(), 2);
        assert!(mine.iter().all(|r| r.user_name == "a"));
    }

    #[test]
    fn retention_drops_only_whole_days_that_ended() {
        let dir = tempfile::tempdir().unwrap();
        let files = HistoryFiles::open(dir.path()).unwrap();
        let day = MICROS_PER_DAY;
        files
            .append(&[
                test_record("a", 2 * day + 7),
                test_record("a", 3 * day + 7),
                test_record("a", 5 * day),
            ])
            .unwrap();
        // Day 3 has not ended before 3 days and a half: it stays.
        assert_eq!(files.prune(3 * day + day / 2).unwrap(), 1);
        let ends: Vec<u64> = files.read(|_| true).unwrap().iter().map(|r| r.end_us).collect();
        assert_eq!(ends, vec![3 * day + 7, 5 * day]);
    }

    #[test]
    fn secrets_and_share_tokens_never_reach_the_history_nor_a_trace() {
        for sql in [
            "CREATE SECRET s IN POND (TYPE s3, KEY_ID 'AKIA123', SECRET 'hush', REGION 'eu')",
            "CREATE SECRET s IN POND (TYPE s3, KEY_ID \"AKIA123\", SECRET hush)",
            "create persistent secret s (type s3, key_id $$AKIA123$$, secret E'hush')",
        ] {
            for keep_literals in [true, false] {
                let kept = shown_text(sql, keep_literals);
                assert!(!kept.contains("AKIA123") && !kept.contains("hush"), "{kept}");
                assert!(kept.to_lowercase().contains("secret s"), "{kept}");
            }
        }
        let attach = "ATTACH 'pond:_share/db/0123456789abcdef' AS x";
        assert_eq!(history_text(attach), "ATTACH ? AS x");
        assert_eq!(history_text("SELECT 'a', 2"), "SELECT 'a', 2");
        assert_eq!(shown_text("SELECT 'a', 2", false), "SELECT ?, ?");
        // Unreadable and about secrets: withheld whole.
        assert!(!history_text("create secret x (secret 'oops").contains("oops"));
    }

    #[test]
    fn long_texts_are_cut_on_a_character_boundary() {
        let text = format!("SELECT '{}'", "é".repeat(MAX_TEXT_BYTES));
        let kept = history_text(&text);
        assert!(kept.len() <= MAX_TEXT_BYTES + " …".len());
        assert!(kept.ends_with(" …"));
    }
}
