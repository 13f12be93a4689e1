//! Mapping DuckDB's errors back to the user's text.
//!
//! Dual execution runs the user's text with relation names spliced in; DuckDB's errors then
//! end with a pointer (`LINE n: …` and a caret) into the rewritten text. This module keeps
//! where each splice went and redraws the pointer under what the user typed, exactly as DuckDB
//! would have drawn it there (`QueryErrorContext::Format`).
//!
//! Invariants:
//! - Only the pointer changes; the rest of DuckDB's message is kept as DuckDB wrote it.
//! - A pointer that cannot be placed is dropped rather than shown on the rewritten text.

use crate::ClientError;

/// Replaces byte ranges of `sql`; an edit that overlaps an earlier one (by start) is dropped.
pub(super) fn splice(sql: &str, edits: Vec<((usize, usize), String)>) -> String {
    splice_mapped(sql, edits).sql
}

/// [`splice`], remembering where each edit went so DuckDB's errors can point into the user's
/// text.
pub(super) fn splice_mapped(sql: &str, mut edits: Vec<((usize, usize), String)>) -> Spliced {
    edits.sort_by_key(|e| e.0.0);
    let mut out = String::with_capacity(sql.len());
    let mut applied = Vec::with_capacity(edits.len());
    let mut at = 0;
    for ((start, end), text) in edits {
        if start < at || end > sql.len() || !sql.is_char_boundary(start) || !sql.is_char_boundary(end) {
            continue;
        }
        out.push_str(&sql[at..start]);
        let spliced_start = out.len();
        out.push_str(&text);
        applied.push(((start, end), (spliced_start, out.len())));
        at = end;
    }
    out.push_str(&sql[at..]);
    Spliced {
        sql: out,
        edits: applied,
    }
}

/// A statement as it runs once Pond spliced names into the user's text.
#[derive(Debug)]
pub(super) struct Spliced {
    pub sql: String,
    /// Each applied edit in order: its byte range in the user's text, then in `sql`.
    edits: Vec<((usize, usize), (usize, usize))>,
}

impl Spliced {
    /// The byte of the user's text that byte `at` of `sql` came from; a byte of a spliced-in
    /// name maps to the start of the name the user wrote.
    fn user_offset(&self, at: usize) -> usize {
        let mut shift = 0isize;
        for &((user_start, user_end), (start, end)) in &self.edits {
            if at < start {
                break;
            }
            if at < end {
                return user_start;
            }
            shift = end as isize - user_end as isize;
        }
        at.saturating_add_signed(-shift)
    }

    /// `error` as the user's own text would have given it: DuckDB ends a message with the line
    /// of the statement it points at, and users should see what they typed there, not Pond's
    /// rewrite. The rest of the message is DuckDB's, untouched.
    pub fn user_error(&self, user: &str, error: ClientError) -> ClientError {
        if self.sql == user {
            return error;
        }
        match error {
            ClientError::Local(pond_duckdb::DuckdbError::Sql { kind, message }) => {
                ClientError::Local(pond_duckdb::DuckdbError::Sql {
                    kind,
                    message: self.user_message(user, &message),
                })
            }
            ClientError::Server(status) => ClientError::Server(tonic::Status::with_details_and_metadata(
                status.code(),
                self.user_message(user, status.message()),
                status.details().to_vec().into(),
                status.metadata().clone(),
            )),
            other => other,
        }
    }

    /// DuckDB's `message` about `sql`, its pointer (`LINE n: …` and a caret) moved to the same
    /// place in `user`. A pointer that cannot be placed is dropped rather than shown on the
    /// rewritten text.
    fn user_message(&self, user: &str, message: &str) -> String {
        let Some(cut) = message.rfind("\n\nLINE ") else {
            return message.to_string();
        };
        let (body, pointer) = message.split_at(cut);
        let Some(number) = pointer["\n\nLINE ".len()..]
            .split_once(':')
            .and_then(|(n, _)| n.parse::<usize>().ok())
        else {
            return message.to_string();
        };
        let Some(line) = ErrorLine::numbered(&self.sql, number) else {
            return body.to_string();
        };
        let Some(at) = line.locate(pointer) else {
            tracing::debug!(%message, "could not place DuckDB's pointer in the statement that ran");
            return body.to_string();
        };
        let user_at = self.user_offset(at);
        match ErrorLine::at(user, user_at) {
            Some(line) => format!("{body}{}", line.pointer(line.cluster_of(user_at))),
            None => body.to_string(),
        }
    }
}

/// One line of a statement as DuckDB shows it under an error (`QueryErrorContext::Format`):
/// its grapheme clusters with their render widths, so a pointer can be drawn, or found.
struct ErrorLine<'q> {
    number: usize,
    /// Byte offset of the line in the statement.
    start: usize,
    text: &'q str,
    /// Each cluster's byte offset in `text`, render width, and whether DuckDB may cut the line
    /// there (a space or an operator character).
    clusters: Vec<(usize, usize, bool)>,
}

/// DuckDB shows at most this many columns on either side of the error.
const HALF_LINE_WIDTH: usize = 60;

impl<'q> ErrorLine<'q> {
    /// The line holding byte `at`, numbered as DuckDB numbers it.
    fn at(query: &'q str, at: usize) -> Option<Self> {
        if at >= query.len() {
            return None;
        }
        let bytes = query.as_bytes();
        let mut number = 1;
        let mut start = 0;
        for i in 0..at {
            let newline = match bytes[i] {
                b'\r' => i + 1 >= at || bytes[i + 1] != b'\n',
                b'\n' => true,
                _ => false,
            };
            if newline {
                number += 1;
                start = i + 1;
            }
        }
        let end = query[at..].find(['\n', '\r']).map_or(query.len(), |e| at + e);
        let text = query.get(start..end)?;
        Some(Self {
            number,
            start,
            text,
            clusters: clusters(text),
        })
    }

    /// Line `number` of `query`.
    fn numbered(query: &'q str, number: usize) -> Option<Self> {
        let bytes = query.as_bytes();
        let mut start = 0;
        let mut seen = 1;
        let mut i = 0;
        while seen < number {
            match bytes.get(i)? {
                b'\r' if bytes.get(i + 1) == Some(&b'\n') => {}
                b'\r' | b'\n' => {
                    seen += 1;
                    start = i + 1;
                }
                _ => {}
            }
            i += 1;
        }
        // An empty last line holds no byte DuckDB could point at.
        if start >= query.len() {
            return None;
        }
        Self::at(query, start)
    }

    /// The cluster DuckDB points at for byte `at` of the statement.
    fn cluster_of(&self, at: usize) -> usize {
        let relative = at.saturating_sub(self.start);
        self.clusters.iter().position(|c| c.0 >= relative).unwrap_or(0)
    }

    /// The byte of the statement whose pointer DuckDB drew as `pointer`, if any.
    fn locate(&self, pointer: &str) -> Option<usize> {
        (0..self.clusters.len().max(1))
            .find(|&c| self.pointer(c) == pointer)
            .map(|c| self.start + self.clusters.get(c).map_or(0, |c| c.0))
    }

    /// DuckDB's pointer at cluster `error`: a blank line, the line (cut to about 120 columns
    /// around the error, marked with `...`), and a caret under the error.
    fn pointer(&self, error: usize) -> String {
        let width_of = |i: usize| self.clusters[i].1;
        let (mut from, mut to) = (0, self.text.len());
        let (mut first, mut cut_start, mut cut_end) = (0, false, false);
        let mut width = 0;
        let mut i = error;
        while i > 0 {
            width += width_of(i);
            if width >= HALF_LINE_WIDTH {
                let scan = i.saturating_sub(4)..(i + 4).min(error);
                if let Some(k) = scan.into_iter().find(|&k| self.clusters[k].2) {
                    i = k;
                }
                cut_start = true;
                from = self.clusters[i].0;
                first = i;
                break;
            }
            i -= 1;
        }
        width = 0;
        for mut i in error..self.clusters.len() {
            width += width_of(i);
            if width >= HALF_LINE_WIDTH {
                let scan = if i > error + 4 { i - 4 } else { error }..(i + 4).min(self.clusters.len());
                if let Some(k) = scan.into_iter().find(|&k| self.clusters[k].2) {
                    i = k;
                }
                cut_end = true;
                to = self.clusters[i].0;
                break;
            }
        }
        let indicator = format!("LINE {}: ", self.number);
        let dots = |cut: bool| if cut { "..." } else { "" };
        let caret = indicator.len() + dots(cut_start).len() + (first..error).map(width_of).sum::<usize>();
        format!(
            "\n\n{indicator}{}{}{}\n{}^",
            dots(cut_start),
            self.text.get(from..to).unwrap_or_default(),
            dots(cut_end),
            " ".repeat(caret)
        )
    }
}

/// The grapheme clusters of `line` as DuckDB's utf8proc sees them, approximately outside ASCII:
/// combining marks, joiners and variation selectors join the cluster before them; East Asian
/// wide characters and emoji are two columns; control characters none.
fn clusters(line: &str) -> Vec<(usize, usize, bool)> {
    let mut out: Vec<(usize, usize, bool)> = Vec::new();
    let mut joined = false;
    for (i, c) in line.char_indices() {
        let code = c as u32;
        let extends = matches!(code, 0x300..=0x36F | 0x1AB0..=0x1AFF | 0x1DC0..=0x1DFF | 0x20D0..=0x20FF
            | 0xFE00..=0xFE0F | 0xFE20..=0xFE2F | 0x200C..=0x200D | 0x1F3FB..=0x1F3FF | 0xE0100..=0xE01EF);
        if (extends || joined) && !out.is_empty() {
            joined = code == 0x200D;
            continue;
        }
        joined = false;
        let width = match code {
            0..=0x1F | 0x7F..=0x9F => 0,
            0x1100..=0x115F
            | 0x2E80..=0x303E
            | 0x3041..=0x33FF
            | 0x3400..=0x4DBF
            | 0x4E00..=0x9FFF
            | 0xA000..=0xA4CF
            | 0xAC00..=0xD7A3
            | 0xF900..=0xFAFF
            | 0xFE30..=0xFE4F
            | 0xFF00..=0xFF60
            | 0xFFE0..=0xFFE6
            | 0x1F300..=0x1F64F
            | 0x1F900..=0x1F9FF
            | 0x20000..=0x3FFFD => 2,
            _ => 1,
        };
        let cut = c.is_ascii()
            && (matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r') || (c.is_ascii_punctuation() && c != '_'));
        out.push((i, width, cut));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::local::LocalDb;

    /// DuckDB's message for `sql` on `db`.
    fn local_error(db: &LocalDb, sql: &str) -> String {
        db.query(sql).expect_err(sql).to_string()
    }

    /// `user` with every whole word `t` read as `memory.main.t AS "t"`, as Pond splices names.
    fn spliced_t(user: &str) -> Spliced {
        let edits = user
            .match_indices('t')
            .filter(|(i, _)| {
                let word = |c: char| c.is_alphanumeric() || c == '_' || c == '\'';
                !user[..*i].ends_with(word) && !user[i + 1..].starts_with(word)
            })
            .map(|(i, _)| ((i, i + 1), r#"memory.main.t AS "t""#.to_string()))
            .collect();
        splice_mapped(user, edits)
    }

    #[test]
    fn errors_point_into_the_users_text() {
        let db = LocalDb::open(None).unwrap();
        db.execute("CREATE TABLE t(x INTEGER)").unwrap();
        let long_select: String = (0..30).map(|i| format!("x + {i} AS c{i}, ")).collect();
        let long_where: String = (0..30).map(|i| format!("x <> {i} AND ")).collect();
        let users = [
            "SELECT nope FROM t",
            "SELECT x FROM t WHERE nope > 1",
            "SELECT x\nFROM t\nWHERE x > 1 AND\n  nope > 1",
            "SELECT x FROM t\r\nWHERE nope > 1",
            "SELECT x FROM t WHERE x >> FROMM",
            &format!("SELECT {long_select}nope FROM t"),
            &format!("SELECT x FROM t WHERE {long_where}nope > 1"),
            &format!("SELECT x FROM t WHERE {long_where}{long_where}nope > 1 AND {long_where}x > 0"),
            "SELECT '日本語 é', x FROM t WHERE '🦆' = 'x' AND nope > 1",
        ];
        for user in users {
            let spliced = spliced_t(user);
            assert_ne!(spliced.sql, user, "the test rewrites {user:?}");
            let ran = local_error(&db, &spliced.sql);
            assert!(ran.contains("LINE "), "DuckDB points at the error: {ran}");
            assert_eq!(
                spliced.user_message(user, &ran),
                local_error(&db, user),
                "{user:?} ran as {:?}",
                spliced.sql
            );
        }
    }

    #[test]
    fn an_error_in_a_spliced_name_points_at_the_name_typed() {
        let db = LocalDb::open(None).unwrap();
        let user = "SELECT *\nFROM my_db.t JOIN u USING (k)";
        let edit = (user.find("my_db.t").unwrap(), user.find(" JOIN").unwrap());
        let spliced = splice_mapped(user, vec![(edit, r#""memory"."main"."no_such_t" AS "t""#.to_string())]);
        let ran = local_error(&db, &spliced.sql);
        assert!(ran.contains(r#"LINE 2: FROM "memory"."main"."no_such_t""#), "{ran}");
        let shown = spliced.user_message(user, &ran);
        assert!(
            shown.ends_with("\n\nLINE 2: FROM my_db.t JOIN u USING (k)\n             ^"),
            "{shown}"
        );
        assert!(!shown.contains("AS \"t\""), "{shown}");
        let body = &ran[..ran.rfind("\n\nLINE").unwrap()];
        assert!(shown.starts_with(body), "DuckDB's message is kept: {shown}");
    }

    #[test]
    fn a_pointer_that_cannot_be_placed_is_dropped() {
        let spliced = splice_mapped("SELECT * FROM t", vec![((14, 15), "x AS \"t\"".into())]);
        let message = "Binder Error: odd\n\nLINE 1: SELECT * FROM elsewhere\n              ^";
        assert_eq!(spliced.user_message("SELECT * FROM t", message), "Binder Error: odd");
        assert_eq!(spliced.user_message("SELECT * FROM t", "no pointer"), "no pointer");
        let unchanged = splice_mapped("SELECT 1", Vec::new());
        let error = ClientError::Invalid("kept".into());
        assert_eq!(unchanged.user_error("SELECT 1", error).to_string(), "kept");
    }

    #[test]
    fn overlapping_edits_keep_the_first() {
        assert_eq!(
            splice("abcdef", vec![((1, 4), "X".into()), ((2, 3), "Y".into())]),
            "aXef"
        );
    }
}
