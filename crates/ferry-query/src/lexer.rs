//! Splits query text into tokens (names, literals, punctuation), each with its position, and
//! reads the literal spellings: strings with '' escapes, numbers, dates, date-times, GUIDs and
//! enum members. Also the token cursor the parsers walk with.

use crate::QueryError;
use crate::ast::Literal;
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use uuid::Uuid;

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Tok {
    /// A name: property, keyword or function (may contain '.', which the parsers reject).
    Ident(String),
    Literal(Literal),
    LParen,
    RParen,
    Comma,
    Equals,
    End,
}

#[derive(Clone, Debug)]
pub(crate) struct Token {
    pub tok: Tok,
    /// Position of the first character, counted from 1.
    pub pos: usize,
    /// The text as written.
    pub raw: String,
}

impl Token {
    /// The token for "(found …)" in messages.
    pub fn describe(&self) -> String {
        if self.tok == Tok::End {
            return "end of input".into();
        }
        let cut: String = self.raw.chars().take(40).collect();
        let cut = if cut.len() < self.raw.len() { format!("{cut}…") } else { cut };
        if cut.starts_with('\'') { cut } else { format!("'{cut}'") }
    }

    /// Whether this is the name `word` (keywords are case-insensitive).
    pub fn is_word(&self, word: &str) -> bool {
        matches!(&self.tok, Tok::Ident(name) if name.eq_ignore_ascii_case(word))
    }
}

/// Keywords that may be written directly before a quote (`Name eq'x'`) without forming an enum.
const KEYWORDS: &[&str] = &["and", "or", "not", "eq", "ne", "gt", "ge", "lt", "le", "in", "has"];

/// OData v3 typed literal prefixes (`guid'…'`, `datetime'…'`), answered with the v4 spelling.
const V3_PREFIXES: &[&str] = &["guid", "datetime", "datetimeoffset", "time", "binary", "x"];

/// Splits `text` into tokens, ending with [`Tok::End`]. `clause` prefixes error messages.
pub(crate) fn lex(clause: &str, text: &str) -> Result<Vec<Token>, QueryError> {
    Lexer { clause, chars: text.chars().collect(), i: 0 }.run()
}

struct Lexer<'a> {
    clause: &'a str,
    chars: Vec<char>,
    i: usize,
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

impl Lexer<'_> {
    fn fail(&self, message: String) -> QueryError {
        QueryError::new(format!("{}: {message}", self.clause))
    }

    fn at(&self, i: usize) -> Option<char> {
        self.chars.get(i).copied()
    }

    fn text(&self, from: usize, to: usize) -> String {
        self.chars[from..to].iter().collect()
    }

    fn run(mut self) -> Result<Vec<Token>, QueryError> {
        let mut out = Vec::new();
        loop {
            while self.at(self.i).is_some_and(char::is_whitespace) {
                self.i += 1;
            }
            let start = self.i;
            let Some(c) = self.at(start) else {
                out.push(Token { tok: Tok::End, pos: start + 1, raw: String::new() });
                return Ok(out);
            };
            let tok = match c {
                '(' | ')' | ',' | '=' => {
                    self.i += 1;
                    match c {
                        '(' => Tok::LParen,
                        ')' => Tok::RParen,
                        ',' => Tok::Comma,
                        _ => Tok::Equals,
                    }
                }
                '\'' => Tok::Literal(Literal::String(self.string()?)),
                _ if self.guid_ahead() => self.guid()?,
                _ if self.date_ahead() => self.temporal()?,
                _ if c.is_ascii_digit() || (c == '-' && self.at(start + 1).is_some_and(|d| d.is_ascii_digit())) => {
                    self.number()?
                }
                _ if c.is_ascii_alphabetic() || c == '_' => self.name()?,
                '"' => {
                    return Err(self.fail(format!(
                        "unexpected '\"' at position {}: strings are quoted with single quotes ('...')",
                        start + 1
                    )));
                }
                _ => return Err(self.fail(format!("unexpected character '{c}' at position {}", start + 1))),
            };
            out.push(Token { tok, pos: start + 1, raw: self.text(start, self.i) });
        }
    }

    /// Reads a quoted string from the quote at `self.i`; `''` stands for one quote.
    fn string(&mut self) -> Result<String, QueryError> {
        let start = self.i;
        let mut value = String::new();
        self.i += 1;
        loop {
            match self.at(self.i) {
                None => {
                    return Err(self.fail(format!(
                        "unterminated string starting at position {} (a quote inside a string is written '')",
                        start + 1
                    )));
                }
                Some('\'') if self.at(self.i + 1) == Some('\'') => {
                    value.push('\'');
                    self.i += 2;
                }
                Some('\'') => {
                    self.i += 1;
                    return Ok(value);
                }
                Some(c) => {
                    value.push(c);
                    self.i += 1;
                }
            }
        }
    }

    /// Whether a GUID (8-4-4-4-12 hex digits) starts at `self.i` and ends there.
    fn guid_ahead(&self) -> bool {
        let i = self.i;
        let shape_ok = (0..36).all(|k| match self.at(i + k) {
            Some(c) if [8, 13, 18, 23].contains(&k) => c == '-',
            Some(c) => c.is_ascii_hexdigit(),
            None => false,
        });
        shape_ok && !self.at(i + 36).is_some_and(|c| is_name_char(c) || c == '-' || c == '.')
    }

    fn guid(&mut self) -> Result<Tok, QueryError> {
        let text = self.text(self.i, self.i + 36);
        let guid = Uuid::parse_str(&text)
            .map_err(|_| self.fail(format!("'{text}' at position {} is not a GUID", self.i + 1)))?;
        self.i += 36;
        Ok(Tok::Literal(Literal::Guid(guid)))
    }

    /// Whether a date (`dddd-d…`) starts at `self.i`.
    fn date_ahead(&self) -> bool {
        (0..4).all(|k| self.at(self.i + k).is_some_and(|c| c.is_ascii_digit()))
            && self.at(self.i + 4) == Some('-')
            && self.at(self.i + 5).is_some_and(|c| c.is_ascii_digit())
    }

    fn temporal(&mut self) -> Result<Tok, QueryError> {
        let start = self.i;
        while self.at(self.i).is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '.' | '+' | '-')) {
            self.i += 1;
        }
        let text = self.text(start, self.i);
        parse_temporal(&text).map(Tok::Literal).ok_or_else(|| {
            self.fail(format!(
                "'{text}' at position {} is not a valid date (YYYY-MM-DD) or date and time (YYYY-MM-DDThh:mm:ssZ)",
                start + 1
            ))
        })
    }

    /// Reads `-?digits(.digits)?([eE][+-]?digits)?` and keeps it as written.
    fn number(&mut self) -> Result<Tok, QueryError> {
        let start = self.i;
        let digit = |c: Option<char>| c.is_some_and(|c| c.is_ascii_digit());
        if self.at(self.i) == Some('-') {
            self.i += 1;
        }
        while digit(self.at(self.i)) {
            self.i += 1;
        }
        if self.at(self.i) == Some('.') && digit(self.at(self.i + 1)) {
            self.i += 1;
            while digit(self.at(self.i)) {
                self.i += 1;
            }
        }
        if matches!(self.at(self.i), Some('e' | 'E')) {
            let sign = usize::from(matches!(self.at(self.i + 1), Some('+' | '-')));
            if digit(self.at(self.i + 1 + sign)) {
                self.i += 1 + sign;
                while digit(self.at(self.i)) {
                    self.i += 1;
                }
            }
        }
        if self.at(self.i).is_some_and(|c| is_name_char(c) || c == '.') {
            while self.at(self.i).is_some_and(|c| is_name_char(c) || c == '.') {
                self.i += 1;
            }
            return Err(self.fail(format!(
                "'{}' at position {} is not a valid number",
                self.text(start, self.i),
                start + 1
            )));
        }
        Ok(Tok::Literal(Literal::Number(self.text(start, self.i))))
    }

    /// Reads a name; a qualified name directly followed by a quote is an enum literal.
    fn name(&mut self) -> Result<Tok, QueryError> {
        let start = self.i;
        while self.at(self.i).is_some_and(|c| is_name_char(c) || c == '.') {
            self.i += 1;
        }
        let name = self.text(start, self.i);
        match self.at(self.i) {
            Some('/') => {
                let mut end = self.i + 1;
                while self.at(end).is_some_and(|c| is_name_char(c) || c == '/' || c == '.') {
                    end += 1;
                }
                Err(self.fail(format!(
                    "'{}' at position {}: property paths with '/' are not supported; use the entity's own properties",
                    self.text(start, end),
                    start + 1
                )))
            }
            Some('\'') if name.contains('.') => {
                if name.split('.').any(str::is_empty) {
                    return Err(self.fail(format!("'{name}' at position {} is not a valid enum type name", start + 1)));
                }
                let member = self.string()?;
                Ok(Tok::Literal(Literal::Enum { type_name: name, member }))
            }
            Some('\'') if V3_PREFIXES.iter().any(|p| p.eq_ignore_ascii_case(&name)) => Err(self.fail(format!(
                "{name}'...' at position {} is OData v3 syntax; in OData v4 write the value without a prefix or quotes, \
                 e.g. 2024-01-31T12:00:00Z or 00000000-0000-0000-0000-000000000001",
                start + 1
            ))),
            Some('\'') if !KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(&name)) => Err(self.fail(format!(
                "{name}'...' at position {}: an enum value needs its qualified type name, \
                 e.g. Microsoft.Dynamics.DataEntities.NoYes'Yes'",
                start + 1
            ))),
            _ => Ok(Tok::Ident(name)),
        }
    }
}

/// Parses `YYYY-MM-DD` as a date, or a date and time (seconds and offset optional; without an
/// offset, UTC).
pub(crate) fn parse_temporal(text: &str) -> Option<Literal> {
    if !text.contains(['T', 't']) {
        if text.len() != 10 {
            return None;
        }
        return NaiveDate::parse_from_str(text, "%Y-%m-%d").ok().map(Literal::Date);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(Literal::DateTime(t.with_timezone(&Utc)));
    }
    if let Ok(t) = DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M%:z") {
        return Some(Literal::DateTime(t.with_timezone(&Utc)));
    }
    let local = text.strip_suffix(['Z', 'z']).unwrap_or(text);
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(local, format).ok())
        .map(|t| Literal::DateTime(t.and_utc()))
}

/// Walks a token list; all parsers share its error spelling.
pub(crate) struct Cursor<'a> {
    pub clause: &'a str,
    tokens: Vec<Token>,
    at: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(clause: &'a str, tokens: Vec<Token>) -> Cursor<'a> {
        Cursor { clause, tokens, at: 0 }
    }

    pub fn peek(&self) -> &Token {
        &self.tokens[self.at.min(self.tokens.len() - 1)]
    }

    /// The token after the next one.
    pub fn peek2(&self) -> &Token {
        &self.tokens[(self.at + 1).min(self.tokens.len() - 1)]
    }

    pub fn next(&mut self) -> Token {
        let token = self.peek().clone();
        if self.at < self.tokens.len() - 1 {
            self.at += 1;
        }
        token
    }

    /// "`clause`: expected `what` at position N (found X)" for the next token.
    pub fn expected(&self, what: &str) -> QueryError {
        let token = self.peek();
        QueryError::new(format!(
            "{}: expected {what} at position {} (found {})",
            self.clause,
            token.pos,
            token.describe()
        ))
    }

    /// Consumes the next token if it is `tok`, or fails with [`Cursor::expected`].
    pub fn expect(&mut self, tok: Tok, what: &str) -> Result<Token, QueryError> {
        if self.peek().tok == tok { Ok(self.next()) } else { Err(self.expected(what)) }
    }

    /// "`clause`: `message`" (the message names the position itself).
    pub fn fail(&self, message: String) -> QueryError {
        QueryError::new(format!("{}: {message}", self.clause))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(text: &str) -> Vec<Tok> {
        lex("$filter", text).unwrap().into_iter().map(|t| t.tok).collect()
    }

    fn lit(text: &str) -> Literal {
        match toks(text).remove(0) {
            Tok::Literal(l) => l,
            other => panic!("{text}: {other:?}"),
        }
    }

    fn fails(text: &str) -> String {
        lex("$filter", text).unwrap_err().message
    }

    #[test]
    fn splits_into_tokens_with_positions() {
        let tokens = lex("$filter", "Name  eq 'a b'").unwrap();
        let summary: Vec<(usize, String)> = tokens.iter().map(|t| (t.pos, t.describe())).collect();
        assert_eq!(
            summary,
            [(1, "'Name'".into()), (7, "'eq'".into()), (10, "'a b'".into()), (15, "end of input".into())]
        );
        assert_eq!(
            toks("(a,b=c)"),
            [
                Tok::LParen,
                Tok::Ident("a".into()),
                Tok::Comma,
                Tok::Ident("b".into()),
                Tok::Equals,
                Tok::Ident("c".into()),
                Tok::RParen,
                Tok::End,
            ]
        );
        // Positions count characters, not bytes.
        assert_eq!(lex("$filter", "'äöü' x").unwrap()[1].pos, 7);
    }

    #[test]
    fn reads_every_literal_kind() {
        assert_eq!(lit("'it''s'"), Literal::String("it's".into()));
        assert_eq!(lit("''"), Literal::String(String::new()));
        for n in ["5", "-12.50", "1e3", "2.5E-3", "-0"] {
            assert_eq!(lit(n), Literal::Number(n.into()));
        }
        assert_eq!(lit("2024-01-31"), Literal::Date(NaiveDate::from_ymd_opt(2024, 1, 31).unwrap()));
        let noon = NaiveDate::from_ymd_opt(2024, 1, 31).unwrap().and_hms_opt(12, 0, 0).unwrap().and_utc();
        for t in ["2024-01-31T12:00:00Z", "2024-01-31T14:00:00+02:00", "2024-01-31T12:00Z", "2024-01-31T12:00:00"] {
            assert_eq!(lit(t), Literal::DateTime(noon), "{t}");
        }
        assert!(matches!(lit("2024-01-31T12:00:00.125Z"), Literal::DateTime(t) if t.timestamp_subsec_millis() == 125));
        let g = "a0000000-0000-0000-0000-00000000000F";
        assert_eq!(lit(g), Literal::Guid(Uuid::parse_str(g).unwrap()));
        assert_eq!(
            lit("12345678-0000-0000-0000-000000000001"),
            Literal::Guid(Uuid::from_u128(0x12345678_0000_0000_0000_000000000001))
        );
        assert_eq!(
            lit("Microsoft.Dynamics.DataEntities.NoYes'Yes'"),
            Literal::Enum { type_name: "Microsoft.Dynamics.DataEntities.NoYes".into(), member: "Yes".into() }
        );
    }

    #[test]
    fn keyword_directly_before_a_quote_is_still_a_keyword() {
        assert_eq!(toks("eq'x'"), [Tok::Ident("eq".into()), Tok::Literal(Literal::String("x".into())), Tok::End]);
    }

    #[test]
    fn rejects_bad_text_with_positions() {
        assert_eq!(
            fails("Name eq 'abc"),
            "$filter: unterminated string starting at position 9 (a quote inside a string is written '')"
        );
        assert_eq!(fails("X eq 5L"), "$filter: '5L' at position 6 is not a valid number");
        assert_eq!(fails("X eq 1.2.3"), "$filter: '1.2.3' at position 6 is not a valid number");
        assert!(fails("X eq 2024-13-01").contains("'2024-13-01' at position 6 is not a valid date"));
        assert!(fails("X eq 2024-01-31T25:00Z").contains("is not a valid date"));
        assert_eq!(fails("X eq #"), "$filter: unexpected character '#' at position 6");
        assert!(fails("X eq \"a\"").contains("single quotes"));
        assert!(
            fails("Address/City eq 'x'")
                .contains("'Address/City' at position 1: property paths with '/' are not supported")
        );
        assert!(fails("X eq guid'00000000-0000-0000-0000-000000000001'").contains("OData v3 syntax"));
        assert!(fails("X eq NoYes'Yes'").contains("needs its qualified type name"));
        assert!(fails("X eq A..B'Yes'").contains("not a valid enum type name"));
    }

    #[test]
    fn cursor_reports_expectations() {
        let mut c = Cursor::new("$orderby", lex("$orderby", "a b").unwrap());
        assert!(c.next().is_word("A"));
        assert_eq!(c.expected("','").message, "$orderby: expected ',' at position 3 (found 'b')");
        c.next();
        assert_eq!(
            c.expect(Tok::Comma, "','").unwrap_err().message,
            "$orderby: expected ',' at position 4 (found end of input)"
        );
        assert_eq!(c.next().tok, Tok::End, "the cursor stays on End");
        assert_eq!(c.peek2().tok, Tok::End);
    }
}
