//! A cursor over sqlparser's tokens for Athena's DDL: keywords, names, strings, and errors that
//! carry the line and column of the offending token.

use datafusion::sql::sqlparser::dialect::HiveDialect;
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer};

use crate::error::{Error, Result};

/// A CTAS or UNLOAD property's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Property {
    Text(String),
    List(Vec<String>),
}

pub struct Cursor {
    tokens: Vec<TokenWithSpan>,
    pos: usize,
}

impl Cursor {
    pub fn new(sql: &str) -> Result<Self> {
        let tokens = Tokenizer::new(&HiveDialect {}, sql)
            .tokenize_with_location()
            .map_err(|e| Error::Syntax(e.to_string()))?
            .into_iter()
            .filter(|t| !matches!(t.token, Token::Whitespace(_)))
            .collect();
        Ok(Self { tokens, pos: 0 })
    }

    pub fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos).map(|t| &t.token)
    }

    pub fn at_end(&self) -> bool {
        matches!(self.peek(), None | Some(Token::EOF) | Some(Token::SemiColon))
    }

    /// A syntax error at the current token.
    pub fn error(&self, what: &str) -> Error {
        match self.tokens.get(self.pos) {
            Some(t) if t.token != Token::EOF => Error::Syntax(format!(
                "{what}, found: {} at Line: {}, Column: {}",
                t.token, t.span.start.line, t.span.start.column
            )),
            _ => Error::Syntax(format!("{what}, found: end of statement")),
        }
    }

    fn word_at(&self, offset: usize) -> Option<String> {
        match self.tokens.get(self.pos + offset).map(|t| &t.token) {
            Some(Token::Word(w)) if w.quote_style.is_none() => Some(w.value.to_ascii_uppercase()),
            _ => None,
        }
    }

    /// Whether the next tokens are these keywords (case-insensitive); consumes them if so.
    pub fn keywords(&mut self, words: &[&str]) -> bool {
        let all = words.iter().enumerate().all(|(i, w)| self.word_at(i).as_deref() == Some(*w));
        if all {
            self.pos += words.len();
        }
        all
    }

    pub fn keyword(&mut self, word: &str) -> bool {
        self.keywords(&[word])
    }

    pub fn expect_keywords(&mut self, words: &[&str]) -> Result<()> {
        if self.keywords(words) { Ok(()) } else { Err(self.error(&format!("Expected: {}", words.join(" ")))) }
    }

    pub fn token(&mut self, token: &Token) -> bool {
        if self.peek() == Some(token) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    pub fn expect(&mut self, token: &Token) -> Result<()> {
        if self.token(token) { Ok(()) } else { Err(self.error(&format!("Expected: {token}"))) }
    }

    /// A name: a plain or quoted identifier (quoted with "" or ``).
    pub fn name(&mut self) -> Result<String> {
        match self.peek() {
            Some(Token::Word(w)) => {
                let v = w.value.clone();
                self.pos += 1;
                Ok(v)
            }
            _ => Err(self.error("Expected: a name")),
        }
    }

    /// `name` or `db.name` (a leading `awsdatacatalog.` is accepted and dropped).
    pub fn qualified_name(&mut self) -> Result<(Option<String>, String)> {
        let mut parts = vec![self.name()?];
        while self.token(&Token::Period) {
            parts.push(self.name()?);
        }
        if parts.len() == 3 && parts[0].eq_ignore_ascii_case("awsdatacatalog") {
            parts.remove(0);
        }
        match parts.len() {
            1 => Ok((None, parts.remove(0))),
            2 => Ok((Some(parts.remove(0)), parts.remove(0))),
            _ => Err(self.error("Expected: [database.]table")),
        }
    }

    pub fn string(&mut self) -> Result<String> {
        match self.peek() {
            Some(Token::SingleQuotedString(s)) | Some(Token::DoubleQuotedString(s)) => {
                let v = s.clone();
                self.pos += 1;
                Ok(v)
            }
            _ => Err(self.error("Expected: a quoted string")),
        }
    }

    /// A partition value: a quoted string or a bare number.
    pub fn value(&mut self) -> Result<String> {
        match self.peek() {
            Some(Token::Number(n, _)) => {
                let v = n.clone();
                self.pos += 1;
                Ok(v)
            }
            _ => self.string(),
        }
    }

    /// `('k' = 'v', …)`
    pub fn properties(&mut self) -> Result<Vec<(String, String)>> {
        self.expect(&Token::LParen)?;
        let mut out = vec![];
        loop {
            let k = self.string()?;
            self.expect(&Token::Eq)?;
            out.push((k, self.string()?));
            if !self.token(&Token::Comma) {
                break;
            }
        }
        self.expect(&Token::RParen)?;
        Ok(out)
    }

    /// The raw text of a type (`array<struct<a:int>>`, `decimal(10, 2)`) up to `,` or `)` at depth 0.
    pub fn type_text(&mut self) -> Result<String> {
        let mut out = String::new();
        let mut depth = 0i32;
        loop {
            match self.peek() {
                None | Some(Token::EOF) => break,
                Some(Token::Comma | Token::RParen) if depth == 0 => break,
                Some(Token::Word(w)) if depth == 0 && w.value.eq_ignore_ascii_case("COMMENT") => break,
                Some(t) => {
                    match t {
                        Token::Lt | Token::LParen => depth += 1,
                        Token::Gt | Token::RParen => depth -= 1,
                        // `>>` closes two levels of nesting
                        Token::ShiftRight => depth -= 2,
                        _ => {}
                    }
                    out.push_str(&t.to_string());
                    self.pos += 1;
                }
            }
        }
        if out.is_empty() || depth != 0 {
            return Err(self.error("Expected: a column type"));
        }
        Ok(out)
    }

    /// One SQL literal, as SQL text: a string, a number (with its sign), TRUE/FALSE/NULL, or a
    /// typed literal such as `DATE '2024-01-01'` — never an expression.
    pub fn literal(&mut self) -> Result<String> {
        let start = self.pos;
        let mut text = String::new();
        if self.token(&Token::Minus) {
            text.push('-');
        }
        match self.peek().cloned() {
            Some(Token::Number(n, _)) => {
                self.pos += 1;
                text.push_str(&n);
                return Ok(text);
            }
            _ if !text.is_empty() => {
                self.pos = start;
                return Err(self.error("Expected: a literal value"));
            }
            Some(Token::SingleQuotedString(s)) => {
                self.pos += 1;
                return Ok(quoted(&s));
            }
            Some(Token::Word(w)) if w.quote_style.is_none() => {
                let word = w.value.to_ascii_uppercase();
                if matches!(word.as_str(), "TRUE" | "FALSE" | "NULL") {
                    self.pos += 1;
                    return Ok(word);
                }
                if matches!(word.as_str(), "DATE" | "TIME" | "TIMESTAMP" | "DECIMAL" | "VARCHAR" | "CHAR" | "VARBINARY")
                    && let Some(Token::SingleQuotedString(s)) = self.tokens.get(self.pos + 1).map(|t| t.token.clone())
                {
                    self.pos += 2;
                    return Ok(format!("{word} {}", quoted(&s)));
                }
            }
            _ => {}
        }
        Err(self.error("Expected: a literal value (a quoted string, a number, TRUE, FALSE, NULL or DATE '…')"))
    }

    /// The SQL text from the current token to the end, as written.
    pub fn rest<'s>(&self, sql: &'s str) -> &'s str {
        let Some(t) = self.tokens.get(self.pos).filter(|t| t.token != Token::EOF) else { return "" };
        sql.get(crate::script::Offsets::new(sql).of(t.span.start)..).unwrap_or_default()
    }

    /// Whether the token after a `(` here is one of these keywords.
    pub fn word_after_paren(&self, words: &[&str]) -> bool {
        self.peek() == Some(&Token::LParen)
            && matches!(self.tokens.get(self.pos + 1).map(|t| &t.token),
                Some(Token::Word(w)) if words.iter().any(|k| w.value.eq_ignore_ascii_case(k)))
    }

    /// The text between a `(` here and its matching `)`, as written; the cursor moves past both.
    pub fn parenthesized<'s>(&mut self, sql: &'s str) -> Result<&'s str> {
        let open = self.tokens.get(self.pos).filter(|t| t.token == Token::LParen).map(|t| t.span.end);
        let Some(open) = open else { return Err(self.error("Expected: (")) };
        self.pos += 1;
        let mut depth = 1;
        while let Some(t) = self.tokens.get(self.pos) {
            match t.token {
                Token::LParen => depth += 1,
                Token::RParen => depth -= 1,
                Token::EOF => break,
                _ => {}
            }
            if depth == 0 {
                let offsets = crate::script::Offsets::new(sql);
                let text = sql.get(offsets.of(open)..offsets.of(t.span.start)).unwrap_or_default();
                self.pos += 1;
                return Ok(text);
            }
            self.pos += 1;
        }
        Err(self.error("Expected: ) to close the ("))
    }

    /// `key = value` pairs in parentheses, as CTAS and UNLOAD take them: a value is a string,
    /// a number, a word, or `ARRAY['a', …]`.
    pub fn with_properties(&mut self) -> Result<Vec<(String, Property)>> {
        self.expect(&Token::LParen)?;
        let mut out = vec![];
        loop {
            let key = self.name()?.to_ascii_lowercase();
            self.expect(&Token::Eq)?;
            let value = if self.keyword("ARRAY") {
                self.expect(&Token::LBracket)?;
                let mut items = vec![];
                if !self.token(&Token::RBracket) {
                    loop {
                        items.push(self.string()?);
                        if !self.token(&Token::Comma) {
                            break;
                        }
                    }
                    self.expect(&Token::RBracket)?;
                }
                Property::List(items)
            } else if let Some(Token::Word(w)) = self.peek().cloned() {
                self.pos += 1;
                Property::Text(w.value)
            } else {
                Property::Text(self.value()?)
            };
            out.push((key, value));
            if !self.token(&Token::Comma) {
                break;
            }
        }
        self.expect(&Token::RParen)?;
        Ok(out)
    }

    pub fn expect_end(&mut self) -> Result<()> {
        self.token(&Token::SemiColon);
        if self.at_end() { Ok(()) } else { Err(self.error("Expected: end of statement")) }
    }
}

/// A string as an SQL literal: in quotes, quotes inside doubled.
fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}
