//! DuckDB's SQL lexer, as far as Pond's decisions need it: where words, quoted names, string
//! literals, comments and punctuation begin and end.
//!
//! Invariant: a text splits into tokens exactly where DuckDB's own scanner (PostgreSQL's) splits
//! it, so nothing DuckDB reads as code can hide inside what this lexer calls a string or a
//! comment. The cases that differ from a naive scanner, each checked against DuckDB 1.5:
//! - block comments nest (`/* /* */ x */` is one comment);
//! - `$$…$$` and `$tag$…$tag$` are strings, while `$` inside a word (`a$b`) and `$1` are not;
//! - `E'…'`/`e'…'` strings take backslash escapes (`E'\''` is one quote), other strings do not;
//! - `''` inside a string and `""` inside a quoted name stand for one quote;
//! - a string continues across whitespace holding a newline (`'a'\n'b'` is one string, and the
//!   continuation of an `E''` string keeps its backslash escapes);
//! - a `--` comment ends at `\n` or `\r`;
//! - only ASCII spaces separate tokens: every other character can be part of a word;
//! - numbers end where PostgreSQL's do (`1x` is `1` then `x`, `1e$` is `1` then `e$`).
//!
//! DuckDB turns some Unicode spaces into ASCII ones before it lexes, by a pre-pass whose idea of
//! quotes differs from its lexer's; a text holding one of those outside a string is refused
//! ([`LexError::UnicodeSpace`]) rather than guessed at. A text DuckDB could not read either (an
//! unterminated string, comment or name) is an error.

use std::ops::Range;

/// What a token is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenKind {
    /// A keyword or unquoted identifier, lowercased.
    Word(String),
    /// A `"quoted"` identifier, unquoted, case kept.
    QuotedName(String),
    /// A string literal of any kind, with its contents as written (escapes not applied).
    String,
    /// A numeric literal.
    Number,
    /// A positional or named parameter: `?`, `$1`, `$name` is not one (see [`TokenKind::String`]).
    Parameter,
    /// Any other character: punctuation and operators, one character per token.
    Punct(char),
}

/// A token and where it is in the text (byte offsets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub kind: TokenKind,
    pub span: Range<usize>,
}

impl Token {
    /// The token's name if it can name something (a word or a quoted name), lowercased.
    pub fn name(&self) -> Option<String> {
        match &self.kind {
            TokenKind::Word(w) => Some(w.clone()),
            TokenKind::QuotedName(n) => Some(n.to_lowercase()),
            _ => None,
        }
    }

    pub fn is_punct(&self, c: char) -> bool {
        self.kind == TokenKind::Punct(c)
    }

    pub fn is_word(&self, word: &str) -> bool {
        matches!(&self.kind, TokenKind::Word(w) if w == word)
    }
}

/// Why a text could not be split into tokens.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LexError {
    #[error("unterminated quoted string")]
    UnterminatedString,
    #[error("unterminated quoted identifier")]
    UnterminatedName,
    #[error("unterminated /* comment")]
    UnterminatedComment,
    #[error("unterminated dollar-quoted string")]
    UnterminatedDollarString,
    #[error("the Unicode space U+{0:04X} outside a string")]
    UnicodeSpace(u32),
}

/// Spaces DuckDB's pre-pass rewrites or that other scanners call whitespace; refused outside
/// strings (see the module's invariant).
fn is_unicode_space(c: char) -> bool {
    matches!(
        c as u32,
        0x85 | 0xA0 | 0x1680 | 0x2000..=0x200B | 0x2028 | 0x2029 | 0x202F | 0x205F | 0x2060 | 0x3000 | 0xFEFF
    )
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c')
}

fn is_word_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || !c.is_ascii()
}

fn is_word_char(c: char) -> bool {
    is_word_start(c) || c.is_ascii_digit() || c == '$'
}

/// Splits `sql` into tokens, dropping whitespace and comments.
pub fn tokenize(sql: &str) -> Result<Vec<Token>, LexError> {
    let bytes = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let char_at = |i: usize| sql[i..].chars().next();
    let no_unicode_space = |text: &str| match text.chars().find(|&c| is_unicode_space(c)) {
        Some(c) => Err(LexError::UnicodeSpace(c as u32)),
        None => Ok(()),
    };
    while let Some(c) = char_at(i) {
        let start = i;
        let next = char_at(i + c.len_utf8());
        match c {
            c if is_space(c) => i += 1,
            c if is_unicode_space(c) => return Err(LexError::UnicodeSpace(c as u32)),
            '-' if next == Some('-') => {
                i = end_of_line_comment(sql, i);
                no_unicode_space(&sql[start..i])?;
            }
            '/' if next == Some('*') => {
                let mut depth = 0usize;
                loop {
                    if i + 1 >= bytes.len() {
                        return Err(LexError::UnterminatedComment);
                    }
                    match (bytes[i], bytes[i + 1]) {
                        (b'/', b'*') => {
                            depth += 1;
                            i += 2;
                        }
                        (b'*', b'/') => {
                            depth -= 1;
                            i += 2;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => i += 1,
                    }
                }
                no_unicode_space(&sql[start..i])?;
            }
            '\'' => {
                i = end_of_string(sql, i + 1, false)?;
                out.push(Token {
                    kind: TokenKind::String,
                    span: start..i,
                });
            }
            'e' | 'E' if next == Some('\'') => {
                i = end_of_string(sql, i + 2, true)?;
                out.push(Token {
                    kind: TokenKind::String,
                    span: start..i,
                });
            }
            '"' => {
                i = end_of_quoted(bytes, i + 1, b'"', false).ok_or(LexError::UnterminatedName)?;
                let name = sql[start + 1..i - 1].replace("\"\"", "\"");
                out.push(Token {
                    kind: TokenKind::QuotedName(name),
                    span: start..i,
                });
            }
            '$' => match dollar_tag(sql, i) {
                Some(tag) => {
                    let body = i + tag.len();
                    let close = sql[body..].find(tag).ok_or(LexError::UnterminatedDollarString)?;
                    i = body + close + tag.len();
                    out.push(Token {
                        kind: TokenKind::String,
                        span: start..i,
                    });
                }
                None if next.is_some_and(|n| n.is_ascii_digit()) => {
                    i += 1;
                    while char_at(i).is_some_and(|d| d.is_ascii_digit()) {
                        i += 1;
                    }
                    out.push(Token {
                        kind: TokenKind::Parameter,
                        span: start..i,
                    });
                }
                None => {
                    i += 1;
                    out.push(Token {
                        kind: TokenKind::Punct('$'),
                        span: start..i,
                    });
                }
            },
            '?' => {
                i += 1;
                out.push(Token {
                    kind: TokenKind::Parameter,
                    span: start..i,
                });
            }
            c if is_word_start(c) => {
                while let Some(w) = char_at(i).filter(|&w| is_word_char(w)) {
                    if is_unicode_space(w) {
                        return Err(LexError::UnicodeSpace(w as u32));
                    }
                    i += w.len_utf8();
                }
                out.push(Token {
                    kind: TokenKind::Word(sql[start..i].to_lowercase()),
                    span: start..i,
                });
            }
            c if c.is_ascii_digit() || (c == '.' && next.is_some_and(|n| n.is_ascii_digit())) => {
                i = end_of_number(bytes, i);
                out.push(Token {
                    kind: TokenKind::Number,
                    span: start..i,
                });
            }
            c => {
                i += c.len_utf8();
                out.push(Token {
                    kind: TokenKind::Punct(c),
                    span: start..i,
                });
            }
        }
    }
    Ok(out)
}

/// The offset just past a `--` comment starting at `at` (its line end included).
fn end_of_line_comment(sql: &str, at: usize) -> usize {
    sql[at..].find(['\n', '\r']).map_or(sql.len(), |n| at + n + 1)
}

/// The offset just past a string literal whose body starts at `from`, following its
/// continuations (`'a'\n'b'`), which keep its escape mode.
fn end_of_string(sql: &str, from: usize, backslash: bool) -> Result<usize, LexError> {
    let bytes = sql.as_bytes();
    let mut end = end_of_quoted(bytes, from, b'\'', backslash).ok_or(LexError::UnterminatedString)?;
    loop {
        // Whitespace (and `--` comments) holding a newline, then a quote, continue the string.
        let mut j = end;
        let mut newline = false;
        loop {
            match bytes.get(j) {
                Some(b'\n' | b'\r') => {
                    newline = true;
                    j += 1;
                }
                Some(b' ' | b'\t' | b'\x0b' | b'\x0c') => j += 1,
                Some(b'-') if bytes.get(j + 1) == Some(&b'-') => {
                    j = end_of_line_comment(sql, j);
                    newline = true;
                }
                _ => break,
            }
        }
        if !(newline && bytes.get(j) == Some(&b'\'')) {
            return Ok(end);
        }
        end = end_of_quoted(bytes, j + 1, b'\'', backslash).ok_or(LexError::UnterminatedString)?;
    }
}

/// The offset just past a number starting at `at`, as PostgreSQL's scanner ends it: digits
/// (with `_` between them), a fraction, an exponent only when digits follow its `e`.
fn end_of_number(bytes: &[u8], at: usize) -> usize {
    let digits = |mut j: usize| {
        while j < bytes.len()
            && (bytes[j].is_ascii_digit() || (bytes[j] == b'_' && bytes.get(j + 1).is_some_and(u8::is_ascii_digit)))
        {
            j += 1;
        }
        j
    };
    let mut j = digits(at);
    if bytes.get(j) == Some(&b'.') && bytes.get(j + 1) != Some(&b'.') {
        j = digits(j + 1);
    }
    if matches!(bytes.get(j), Some(b'e' | b'E')) {
        let mut k = j + 1;
        if matches!(bytes.get(k), Some(b'+' | b'-')) {
            k += 1;
        }
        if bytes.get(k).is_some_and(u8::is_ascii_digit) {
            j = digits(k);
        }
    }
    j
}

/// The offset just past the closing `quote` of a quoted text whose body starts at `from`, or
/// `None` if it never closes. A doubled quote stands for one; with `backslash`, so does `\'`.
fn end_of_quoted(bytes: &[u8], from: usize, quote: u8, backslash: bool) -> Option<usize> {
    let mut i = from;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if backslash => i += 2,
            b if b == quote => {
                if bytes.get(i + 1) == Some(&quote) {
                    i += 2;
                } else {
                    return Some(i + 1);
                }
            }
            _ => i += 1,
        }
    }
    None
}

/// The opening `$tag$` (or `$$`) of a dollar-quoted string at `at`, if there is one. A tag is
/// a word that does not start with a digit.
fn dollar_tag(sql: &str, at: usize) -> Option<&str> {
    let rest = &sql[at + 1..];
    let end = rest.find('$')?;
    let tag = &rest[..end];
    let valid = tag.is_empty()
        || (tag.chars().next().is_some_and(is_word_start)
            && tag.chars().all(|c| is_word_start(c) || c.is_ascii_digit()));
    valid.then(|| &sql[at..at + end + 2])
}

/// The names of what `sql` calls as a function: every name directly followed by `(`, with
/// schema qualifiers dropped, lowercased. Over-approximates (type modifiers such as
/// `DECIMAL(10, 2)` are included), never misses a call DuckDB would see.
pub fn called_names(tokens: &[Token]) -> impl Iterator<Item = String> + '_ {
    tokens
        .windows(2)
        .filter(|pair| pair[1].is_punct('('))
        .filter_map(|pair| pair[0].name())
}

/// Whether `tokens` call `nextval` or `setval`: a statement that advances a sequence, which
/// writes though DuckDB may call it a read, and which no rollback undoes.
pub fn advances_a_sequence(tokens: &[Token]) -> bool {
    called_names(tokens).any(|name| name == "nextval" || name == "setval")
}

/// Where each statement of a text begins: the first token, and each one after a `;`.
pub fn statement_starts(tokens: &[Token]) -> impl Iterator<Item = usize> + '_ {
    std::iter::once(0).chain(
        tokens
            .iter()
            .enumerate()
            .filter(|(_, t)| t.is_punct(';'))
            .map(|(i, _)| i + 1),
    )
}

/// The texts of the statements of `sql` (split at `;`, which DuckDB's grammar allows only
/// between statements), trimmed, without terminators; `None` when `sql` cannot be read.
pub fn statements(sql: &str) -> Option<Vec<&str>> {
    let tokens = tokenize(sql).ok()?;
    let mut out = Vec::new();
    let mut start = 0;
    let mut has_tokens = false;
    for t in &tokens {
        if t.is_punct(';') {
            if has_tokens {
                out.push(sql[start..t.span.start].trim());
            }
            start = t.span.end;
            has_tokens = false;
        } else {
            has_tokens = true;
        }
    }
    if has_tokens {
        out.push(sql[start..].trim());
    }
    Some(out)
}

/// The text of the last statement of `sql` (see [`statements`]).
pub fn last_statement(sql: &str) -> Option<&str> {
    statements(sql)?.pop()
}

/// `sql` with every string and number literal replaced by `?` and every comment by a space,
/// for texts that must not keep what they were given (a secret's keys; a trace's
/// `db.query.text`); `None` when `sql` cannot be read.
pub fn without_literals(sql: &str) -> Option<String> {
    let tokens = tokenize(sql).ok()?;
    let mut out = String::with_capacity(sql.len());
    let mut at = 0;
    for t in &tokens {
        let gap = &sql[at..t.span.start];
        // Between tokens lie only whitespace and comments.
        out.push_str(if gap.chars().all(is_space) { gap } else { " " });
        match t.kind {
            TokenKind::String | TokenKind::Number => out.push('?'),
            _ => out.push_str(&sql[t.span.clone()]),
        }
        at = t.span.end;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(sql: &str) -> Vec<String> {
        tokenize(sql).unwrap().iter().filter_map(Token::name).collect()
    }

    fn calls(sql: &str) -> Vec<String> {
        called_names(&tokenize(sql).unwrap()).collect()
    }

    #[test]
    fn literals_and_comments_are_removed_and_the_rest_kept() {
        assert_eq!(
            without_literals("SELECT 'key', E'\\'x', $$s$$, 42, x.\"Name\" /* hush */ -- note\nFROM t").as_deref(),
            Some("SELECT ?, ?, ?, ?, x.\"Name\" FROM t")
        );
        assert_eq!(without_literals("SELECT 'open"), None);
    }

    #[test]
    fn comments_nest_like_duckdbs() {
        assert_eq!(names("SELECT /* /* */ ' */ query() /* ' */"), vec!["select", "query"]);
        assert_eq!(tokenize("SELECT /* /* */ 2"), Err(LexError::UnterminatedComment));
        assert_eq!(names("SELECT 1 -- query()\n, x"), vec!["select", "x"]);
    }

    #[test]
    fn dollar_strings_hide_their_body_and_only_it() {
        assert_eq!(calls("SELECT $$'$$, * FROM query('x') -- '"), vec!["query"]);
        assert_eq!(calls("SELECT $t$ query() $$ $t$, range(3)"), vec!["range"]);
        assert_eq!(names("SELECT a$b$ FROM t"), vec!["select", "a$b$", "from", "t"]);
        assert_eq!(
            tokenize("SELECT $1, ?")
                .unwrap()
                .iter()
                .filter(|t| t.kind == TokenKind::Parameter)
                .count(),
            2
        );
    }

    #[test]
    fn escape_strings_take_backslashes_and_plain_strings_do_not() {
        assert_eq!(calls(r"SELECT E'\'', query('x')"), vec!["query"]);
        assert_eq!(calls(r"SELECT 'a\', query('x')"), vec!["query"]);
        assert_eq!(calls(r"SELECT de'x', f(1)"), vec!["f"]);
    }

    #[test]
    fn the_last_statement_is_found_past_strings_and_comments() {
        assert_eq!(
            last_statement("CREATE TABLE t(a INT); SELECT ';' AS x;  "),
            Some("SELECT ';' AS x")
        );
        assert_eq!(last_statement("SELECT 1; SELECT 2 -- ;\n"), Some("SELECT 2 -- ;"));
        assert_eq!(last_statement("SELECT 1"), Some("SELECT 1"));
        assert_eq!(last_statement("SELECT 1; -- done"), Some("SELECT 1"));
        assert_eq!(
            statements("SET x = 1;; SELECT 2;").unwrap(),
            vec!["SET x = 1", "SELECT 2"]
        );
        assert_eq!(last_statement("SELECT 'unterminated"), None);
    }

    #[test]
    fn edges_where_other_scanners_differ_from_duckdbs() {
        // A `--` comment ends at a carriage return.
        assert_eq!(calls("SELECT 1 --\r, * FROM query('SELECT 42')"), vec!["query"]);
        // Numbers end early; the rest is a word (and `$` may follow inside it).
        assert_eq!(calls("SELECT 1x$a$, * FROM query('SELECT 42') --$a$"), vec!["query"]);
        assert_eq!(calls("SELECT 1e$$, * FROM query('SELECT 42') --$$"), vec!["query"]);
        assert_eq!(calls("SELECT 1.x$a$, * FROM query('x') --$a$"), vec!["query"]);
        // `1E'…'` is `1` then an escape string, which swallows the would-be call.
        assert!(calls("SELECT 1E'\\', query('x') -- '").is_empty());
        // Continued strings keep their escapes.
        assert_eq!(
            calls("SELECT E'a'\n'\\' AS x, ' , * FROM query('SELECT 42') --'"),
            vec!["query"]
        );
        assert_eq!(calls("SELECT 'a'\n'b', query('x')"), vec!["query"]);
        // Non-ASCII characters are word characters, Unicode spaces are refused.
        assert_eq!(names("SELECT 1 AS xé$a$"), vec!["select", "as", "xé$a$"]);
        assert_eq!(
            tokenize("SELECT 1 AS x\u{2028}$a$"),
            Err(LexError::UnicodeSpace(0x2028))
        );
        for space in ['\u{200b}', '\u{a0}', '\u{feff}', '\u{3000}', '\u{85}'] {
            let sql = format!("SELECT * FROM{space}query('SELECT 42')");
            assert_eq!(tokenize(&sql), Err(LexError::UnicodeSpace(space as u32)), "{sql}");
            assert!(tokenize(&format!("SELECT '{space}'")).is_ok());
            assert!(tokenize(&format!("SELECT 1 /* {space} */")).is_err());
        }
    }

    #[test]
    fn quoted_names_are_names() {
        assert_eq!(
            calls(r#"SELECT * FROM "Query"('x'), main.range /* c */ (3)"#),
            vec!["query", "range"]
        );
        assert_eq!(names(r#"SELECT "a""b""#), vec!["select", "a\"b"]);
    }

    proptest::proptest! {
        /// The lexer answers every input without panicking, and its spans are in order.
        #[test]
        fn never_panics(sql in "\\PC{0,200}") {
            if let Ok(tokens) = tokenize(&sql) {
                for pair in tokens.windows(2) {
                    proptest::prop_assert!(pair[0].span.end <= pair[1].span.start);
                }
            }
        }
    }
}
