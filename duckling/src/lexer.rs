//! DuckDB's SQL lexer, as far as Pond's decisions need it: where words, quoted names, string
//! literals, comments and punctuation begin and end.
//!
//! Invariant: a text splits into tokens exactly where DuckDB's own scanner (PostgreSQL's) splits
//! it, so nothing DuckDB reads as code can hide inside what this lexer calls a string or a
//! comment. The cases that differ from a naive scanner, each checked against DuckDB 1.5:
//! - block comments nest (`/* /* */ x */` is one comment);
//! - `$$…$$` and `$tag$…$tag$` are strings, while `$` inside a word (`a$b`) and `$1` are not;
//! - `E'…'`/`e'…'` strings take backslash escapes (`E'\''` is one quote), other strings do not;
//! - `''` inside a string and `""` inside a quoted name stand for one quote.
//!
//! A text DuckDB could not read either (an unterminated string, comment or name) is an error.

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
}

fn is_word_start(c: char) -> bool {
    c.is_alphabetic() || c == '_' || !c.is_ascii() && !c.is_whitespace()
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
    while let Some(c) = char_at(i) {
        let start = i;
        let next = char_at(i + c.len_utf8());
        match c {
            c if c.is_whitespace() => i += c.len_utf8(),
            '-' if next == Some('-') => {
                i = sql[i..].find('\n').map_or(sql.len(), |n| i + n + 1);
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
            }
            '\'' => {
                i = end_of_quoted(bytes, i + 1, b'\'', false).ok_or(LexError::UnterminatedString)?;
                out.push(Token {
                    kind: TokenKind::String,
                    span: start..i,
                });
            }
            'e' | 'E' if next == Some('\'') => {
                i = end_of_quoted(bytes, i + 2, b'\'', true).ok_or(LexError::UnterminatedString)?;
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
                    i += w.len_utf8();
                }
                out.push(Token {
                    kind: TokenKind::Word(sql[start..i].to_lowercase()),
                    span: start..i,
                });
            }
            c if c.is_ascii_digit() || (c == '.' && next.is_some_and(|n| n.is_ascii_digit())) => {
                while char_at(i).is_some_and(|d| d.is_ascii_alphanumeric() || d == '.' || d == '_') {
                    i += 1;
                }
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
