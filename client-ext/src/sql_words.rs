//! A statement's words as the client reads them, over the workspace's one SQL lexer
//! ([`pond_duckdb::lexer`]).
//!
//! Invariant: the client decides nothing by substring. Every keyword, name and string it acts
//! on is a token of DuckDB's own splitting, so a keyword inside a string, a comment, a dollar
//! quote or a quoted name is never taken for one. A text the lexer cannot read (an unterminated
//! string, name or comment) has no tokens: the client then decides nothing from it and lets
//! DuckDB report the error.

use pond_duckdb::lexer::{self, Token, TokenKind};

/// A statement's text and its tokens.
pub(crate) struct Lexed<'s> {
    pub text: &'s str,
    pub tokens: Vec<Token>,
}

impl<'s> Lexed<'s> {
    pub fn new(text: &'s str) -> Self {
        Self {
            text,
            tokens: lexer::tokenize(text).unwrap_or_default(),
        }
    }

    /// The first `n` names (keywords and identifiers, quoted or not), lowercased.
    pub fn words(&self, n: usize) -> Vec<String> {
        self.tokens.iter().filter_map(Token::name).take(n).collect()
    }

    /// The first keyword or bare identifier, lowercased.
    pub fn first_word(&self) -> Option<&str> {
        self.tokens.iter().find_map(|t| match &t.kind {
            TokenKind::Word(w) => Some(w.as_str()),
            _ => None,
        })
    }

    /// Whether the statement starts with the keywords `words`.
    pub fn starts_with(&self, words: &[&str]) -> bool {
        words.iter().enumerate().all(|(i, w)| self.is_word(i, w))
    }

    pub fn is_word(&self, at: usize, word: &str) -> bool {
        self.tokens.get(at).is_some_and(|t| t.is_word(word))
    }

    pub fn is_punct(&self, at: usize, c: char) -> bool {
        self.tokens.get(at).is_some_and(|t| t.is_punct(c))
    }

    /// The index of the first token at or after `from` that is the keyword `word`.
    pub fn find_word(&self, word: &str, from: usize) -> Option<usize> {
        (from..self.tokens.len()).find(|&i| self.is_word(i, word))
    }

    /// The index of the token that starts at byte `at` (an offset DuckDB's parser reported).
    pub fn token_at(&self, at: usize) -> Option<usize> {
        self.tokens.binary_search_by_key(&at, |t| t.span.start).ok()
    }

    /// The index of the token that starts at or before byte `at`: a location DuckDB reports is
    /// a token's start, or inside one (an operator's).
    pub fn token_containing(&self, at: usize) -> Option<usize> {
        self.tokens.partition_point(|t| t.span.start <= at).checked_sub(1)
    }

    /// The text from token `at` to the end (empty past the last token).
    pub fn rest_from(&self, at: usize) -> &'s str {
        self.tokens.get(at).map_or("", |t| &self.text[t.span.start..])
    }

    /// The text of tokens `from..to`.
    pub fn text_of(&self, from: usize, to: usize) -> &'s str {
        &self.text[self.tokens[from].span.start..self.tokens[to - 1].span.end]
    }

    /// Token `at` as an identifier: a bare word as written, or a quoted name unquoted.
    pub fn identifier(&self, at: usize) -> Option<String> {
        let token = self.tokens.get(at)?;
        match &token.kind {
            TokenKind::Word(_) => Some(self.text[token.span.clone()].to_string()),
            TokenKind::QuotedName(name) => Some(name.clone()),
            _ => None,
        }
    }

    /// The index just past the (possibly qualified) name that starts at token `at`.
    pub fn qualified_name_end(&self, at: usize) -> Option<usize> {
        self.identifier(at)?;
        let mut end = at + 1;
        while self.is_punct(end, '.') && self.identifier(end + 1).is_some() {
            end += 2;
        }
        Some(end)
    }

    /// The index just past the parenthesized list that opens at token `at`.
    pub fn parenthesized_end(&self, at: usize) -> Option<usize> {
        let mut depth = 0usize;
        for (i, t) in self.tokens.iter().enumerate().skip(at) {
            if t.is_punct('(') {
                depth += 1;
            } else if t.is_punct(')') {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
        }
        None
    }

    /// Where what starts at token `from` ends: the first token from there that `ends` accepts
    /// at the starting depth of parentheses, or the `)` that closes one opened before `from`,
    /// or the end of the text.
    pub fn end_at_depth(&self, from: usize, ends: impl Fn(usize) -> bool) -> usize {
        let mut depth = 0usize;
        for at in from..self.tokens.len() {
            if self.is_punct(at, '(') {
                depth += 1;
            } else if self.is_punct(at, ')') {
                match depth.checked_sub(1) {
                    Some(d) => depth = d,
                    None => return at,
                }
            } else if depth == 0 && ends(at) {
                return at;
            }
        }
        self.tokens.len()
    }

    /// The index of the first string literal.
    pub fn first_string(&self) -> Option<usize> {
        self.tokens.iter().position(|t| t.kind == TokenKind::String)
    }

    /// Token `at`'s value, if it is a string literal.
    pub fn string_value(&self, at: usize) -> Option<String> {
        let token = self.tokens.get(at).filter(|t| t.kind == TokenKind::String)?;
        Some(string_value(&self.text[token.span.clone()]))
    }

    /// Qualifiers: names followed by `.` that do not themselves follow a `.`, as written
    /// (unquoted), with their byte spans.
    pub fn qualifiers(&self) -> Vec<(String, (usize, usize))> {
        (0..self.tokens.len())
            .filter(|&i| self.is_punct(i + 1, '.') && !(i > 0 && self.is_punct(i - 1, '.')))
            .filter_map(|i| {
                let span = &self.tokens[i].span;
                Some((self.identifier(i)?, (span.start, span.end)))
            })
            .collect()
    }
}

/// The value of a string literal as written: `'…'`, `E'…'` with backslash escapes, or
/// `$tag$…$tag$`.
fn string_value(written: &str) -> String {
    if let Some(after_dollar) = written.strip_prefix('$') {
        let tag = after_dollar.find('$').map_or(1, |end| end + 2);
        return written
            .get(tag..written.len().saturating_sub(tag))
            .unwrap_or_default()
            .to_string();
    }
    if let Some(body) = written.strip_prefix(['e', 'E']) {
        let body = body
            .strip_prefix('\'')
            .and_then(|b| b.strip_suffix('\''))
            .unwrap_or(body);
        let mut out = String::with_capacity(body.len());
        let mut chars = body.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some('r') => out.push('\r'),
                    Some('b') => out.push('\x08'),
                    Some('f') => out.push('\x0c'),
                    Some(other) => out.push(other),
                    None => {}
                },
                '\'' => {
                    chars.next();
                    out.push('\'');
                }
                c => out.push(c),
            }
        }
        return out;
    }
    let body = written
        .strip_prefix('\'')
        .and_then(|b| b.strip_suffix('\''))
        .unwrap_or(written);
    body.replace("''", "'")
}

/// A statement's text from its first token to its last, without comments around it or
/// terminators; a text the lexer cannot read, trimmed.
pub(crate) fn statement_text(sql: &str) -> &str {
    let Ok(tokens) = lexer::tokenize(sql) else {
        return sql.trim();
    };
    let Some(last) = tokens.iter().rposition(|t| !t.is_punct(';')) else {
        return "";
    };
    &sql[tokens[0].span.start..tokens[last].span.end]
}

/// Splits a script into statements at semicolons outside strings, names and comments, as
/// DuckDB splits it; statements without tokens are dropped. A script DuckDB could not read
/// either stays whole, so DuckDB reports its error before any of it runs.
pub fn split_statements(script: &str) -> Vec<String> {
    match lexer::statements(script) {
        Some(statements) => statements.into_iter().map(str::to_string).collect(),
        None if script.trim().is_empty() => Vec::new(),
        None => vec![script.trim().to_string()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_scripts_outside_quotes_and_comments() {
        let s = split_statements("select ';' ; -- a ; comment\nselect \"x;\" from t;; /* ; */ ");
        assert_eq!(s, vec!["select ';'", "-- a ; comment\nselect \"x;\" from t"]);
        assert_eq!(
            split_statements("select $$a;b$$; select E'\\';'; select /* /* ; */ ; */ 1"),
            vec!["select $$a;b$$", "select E'\\';'", "select /* /* ; */ ; */ 1"]
        );
        assert_eq!(
            split_statements("select 1; select 'oops"),
            vec!["select 1; select 'oops"]
        );
        assert!(split_statements(" -- nothing\n").is_empty());
    }

    #[test]
    fn statement_text_drops_comments_and_terminators() {
        assert_eq!(statement_text(" /* a /* b */ */ select 1 ;; "), "select 1");
        assert_eq!(statement_text("-- c\nselect 1; -- done"), "select 1");
        assert_eq!(statement_text(" select 'x "), "select 'x");
        assert_eq!(statement_text(" ; "), "");
    }

    #[test]
    fn strings_are_read_in_every_quoting() {
        let value = |sql: &str| {
            let lexed = Lexed::new(sql);
            lexed.string_value(lexed.first_string().unwrap()).unwrap()
        };
        assert_eq!(value("attach 'it''s'"), "it's");
        assert_eq!(value(r"attach E'a\'b\\c\n'"), "a'b\\c\n");
        assert_eq!(value("attach $$pond:x$$"), "pond:x");
        assert_eq!(value("attach $t$a$$b$t$"), "a$$b");
    }

    #[test]
    fn names_and_keywords_come_from_tokens() {
        let lexed = Lexed::new(r#"/* use */ USE "My db" . main"#);
        assert!(lexed.starts_with(&["use"]));
        assert_eq!(lexed.identifier(1).as_deref(), Some("My db"));
        assert_eq!(lexed.qualified_name_end(1), Some(4));
        assert_eq!(lexed.text_of(1, 4), r#""My db" . main"#);
        assert_eq!(Lexed::new("select 'unterminated").words(8), Vec::<String>::new());
        let q = Lexed::new("select a.x, 'b.y', \"c d\".z, $$e.f$$ from cloud.main.t -- g.h\n").qualifiers();
        let names: Vec<&str> = q.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, vec!["a", "c d", "cloud"]);
        assert_eq!(
            Lexed::new("insert into t (a, (b)) select").parenthesized_end(3),
            Some(10)
        );
    }
}
