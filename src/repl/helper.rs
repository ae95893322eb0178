//! The prompt's editing help: completion of keywords, meta commands, databases, tables and
//! columns, and multi-line input that ends at `;`.

use std::sync::{Arc, Mutex};

use glaux_engine::glaux_catalog::Catalog;
use rustyline::Context;
use rustyline::completion::{Completer, Pair};
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};

const KEYWORDS: &[&str] = &[
    "SELECT",
    "FROM",
    "WHERE",
    "GROUP",
    "BY",
    "ORDER",
    "HAVING",
    "LIMIT",
    "OFFSET",
    "JOIN",
    "LEFT",
    "RIGHT",
    "FULL",
    "INNER",
    "OUTER",
    "CROSS",
    "ON",
    "USING",
    "AS",
    "AND",
    "OR",
    "NOT",
    "IN",
    "IS",
    "NULL",
    "LIKE",
    "BETWEEN",
    "CASE",
    "WHEN",
    "THEN",
    "ELSE",
    "END",
    "DISTINCT",
    "UNION",
    "ALL",
    "EXCEPT",
    "INTERSECT",
    "WITH",
    "VALUES",
    "CAST",
    "COUNT",
    "SUM",
    "AVG",
    "MIN",
    "MAX",
    "ASC",
    "DESC",
    "CREATE",
    "EXTERNAL",
    "TABLE",
    "DATABASE",
    "DROP",
    "ALTER",
    "ADD",
    "PARTITION",
    "PARTITIONED",
    "STORED",
    "LOCATION",
    "TBLPROPERTIES",
    "SHOW",
    "TABLES",
    "DATABASES",
    "PARTITIONS",
    "DESCRIBE",
    "EXPLAIN",
    "USE",
    "MSCK",
    "REPAIR",
    "IF",
    "EXISTS",
    "PARQUET",
    "ORC",
    "TEXTFILE",
    "JSON",
    "CSV",
];

const META: &[&str] = &["\\l", "\\dt", "\\d", "\\use", "\\timing", "\\format", "\\cost", "\\x", "\\q", "\\?"];

/// Databases, tables and columns.
pub type NameLists = (Vec<String>, Vec<String>, Vec<String>);

/// The catalog's names, shared with the loop that refreshes them after DDL and `USE`.
#[derive(Clone, Default)]
pub struct Names(Arc<Mutex<NameLists>>);

impl Names {
    pub async fn refresh(&self, catalog: &dyn Catalog, database: &str) {
        let names = super::catalog_names(catalog, database).await;
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = names;
    }

    fn all(&self) -> Vec<String> {
        let guard = self.0.lock().unwrap_or_else(|p| p.into_inner());
        guard.0.iter().chain(&guard.1).chain(&guard.2).cloned().collect()
    }
}

pub struct Helper {
    names: Names,
}

impl Helper {
    pub fn new(names: Names) -> Self {
        Self { names }
    }
}

/// Keywords in the case the user typed them in.
fn in_case_of(typed: &str, keyword: &str) -> String {
    if typed.chars().any(|c| c.is_ascii_lowercase()) { keyword.to_ascii_lowercase() } else { keyword.to_string() }
}

impl Completer for Helper {
    type Candidate = Pair;

    fn complete(&self, line: &str, pos: usize, _ctx: &Context<'_>) -> rustyline::Result<(usize, Vec<Pair>)> {
        let before = &line[..pos];
        let start = before
            .char_indices()
            .rev()
            .find(|(_, c)| !(c.is_alphanumeric() || *c == '_' || *c == '\\'))
            .map_or(0, |(i, c)| i + c.len_utf8());
        let word = &before[start..];
        if word.is_empty() {
            return Ok((pos, vec![]));
        }
        let lower = word.to_ascii_lowercase();
        let mut out: Vec<String> = if word.starts_with('\\') {
            META.iter().filter(|m| m.starts_with(word)).map(|m| m.to_string()).collect()
        } else {
            let names = self.names.all().into_iter().filter(|n| n.to_ascii_lowercase().starts_with(&lower));
            let keywords =
                KEYWORDS.iter().filter(|k| k.to_ascii_lowercase().starts_with(&lower)).map(|k| in_case_of(word, k));
            names.chain(keywords).collect()
        };
        out.sort();
        out.dedup();
        Ok((start, out.into_iter().map(|c| Pair { display: c.clone(), replacement: c }).collect()))
    }
}

impl Hinter for Helper {
    type Hint = String;
}

impl Highlighter for Helper {}

/// Whether `text` ends with a `;` outside quotes and comments.
fn ends_statement(text: &str) -> bool {
    let (mut quote, mut last) = (None::<char>, None::<char>);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '\'' || c == '"' || c == '`' => quote = Some(c),
            None if c == '-' && chars.peek() == Some(&'-') => {
                // a line comment runs to the end of its line
                for d in chars.by_ref() {
                    if d == '\n' {
                        break;
                    }
                }
                continue;
            }
            None => {}
        }
        if !c.is_whitespace() {
            last = Some(c);
        }
    }
    quote.is_none() && last == Some(';')
}

impl Validator for Helper {
    fn validate(&self, ctx: &mut ValidationContext) -> rustyline::Result<ValidationResult> {
        let input = ctx.input().trim();
        // meta commands are one line; SQL goes on until its `;`
        if input.is_empty() || input.starts_with('\\') || ends_statement(input) {
            Ok(ValidationResult::Valid(None))
        } else {
            Ok(ValidationResult::Incomplete)
        }
    }
}

impl rustyline::Helper for Helper {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_end_at_a_semicolon_outside_quotes_and_comments() {
        assert!(ends_statement("SELECT 1;"));
        assert!(ends_statement("SELECT 1\nFROM t ;  "));
        assert!(!ends_statement("SELECT 1"));
        assert!(!ends_statement("SELECT ';"));
        assert!(ends_statement("SELECT ';';"));
        assert!(!ends_statement("SELECT 1 -- done;"));
        assert!(ends_statement("SELECT 1 -- note\n;"));
    }
}
