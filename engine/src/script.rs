//! SQL text: a script split at its top-level `;`, keeping each statement's original text, and
//! statements parsed. The cut points come from sqlparser's tokenizer with the dialect the
//! statements are parsed with, so a script splits exactly where the parser reads statement ends
//! (quotes, quoted identifiers, comments and escapes alike).

use std::collections::VecDeque;

use datafusion::sql::parser::{DFParserBuilder, Statement};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::tokenizer::{Location, Token, Tokenizer};

use crate::error::{Error, Result};

/// The statements of `sql`, trimmed, without their `;`. A script the tokenizer cannot read (an
/// unterminated string, say) stays whole, so the parser reports the error with its position.
pub fn split(sql: &str) -> Vec<String> {
    let Ok(tokens) = Tokenizer::new(&GenericDialect {}, sql).tokenize_with_location() else {
        let mut out = vec![];
        push(&mut out, sql);
        return out;
    };
    let offsets = Offsets::new(sql);
    let mut out = vec![];
    let mut start = 0;
    for token in tokens.iter().filter(|t| t.token == Token::SemiColon) {
        let at = offsets.of(token.span.start);
        push(&mut out, &sql[start..at]);
        start = at + 1;
    }
    push(&mut out, &sql[start.min(sql.len())..]);
    out
}

/// Byte offsets in a text of the line-and-column locations sqlparser's tokenizer gives.
pub(crate) struct Offsets<'a> {
    text: &'a str,
    /// Where each line starts.
    lines: Vec<usize>,
}

impl<'a> Offsets<'a> {
    pub fn new(text: &'a str) -> Self {
        let lines = std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect();
        Self { text, lines }
    }

    /// The byte offset of `location` (1-based line, 1-based column in characters).
    pub fn of(&self, location: Location) -> usize {
        let start = self.lines.get((location.line as usize).saturating_sub(1)).copied().unwrap_or(self.text.len());
        let rest = &self.text[start..];
        start + rest.char_indices().nth((location.column as usize).saturating_sub(1)).map_or(rest.len(), |(b, _)| b)
    }
}

fn push(out: &mut Vec<String>, piece: &str) {
    let piece = piece.trim();
    let only_comments = Tokenizer::new(&GenericDialect {}, piece)
        .tokenize()
        .is_ok_and(|tokens| tokens.iter().all(|t| matches!(t, Token::Whitespace(_) | Token::EOF)));
    if !piece.is_empty() && !only_comments {
        out.push(piece.to_string());
    }
}

/// The one statement `sql` holds.
pub fn single(sql: &str) -> Result<Statement> {
    let mut statements = parse(sql)?;
    match (statements.pop_front(), statements.is_empty()) {
        (Some(s), true) => Ok(s),
        (None, _) => Err(Error::Syntax("empty query".into())),
        (Some(_), false) => Err(Error::Syntax("only one statement per query; split the script at ';'".into())),
    }
}

/// Parses a script into statements; syntax errors keep sqlparser's line and column.
pub fn parse(sql: &str) -> Result<VecDeque<Statement>> {
    let dialect = GenericDialect {};
    DFParserBuilder::new(sql)
        .with_dialect(&dialect)
        .build()
        .and_then(|mut p| p.parse_statements())
        .map_err(|e| Error::Syntax(clean_parser_message(&e.to_string())))
}

/// sqlparser says `sql parser error: Expected: …, found: FORM at Line: 1, Column: 10`; keep the
/// substance and the position.
fn clean_parser_message(message: &str) -> String {
    let m = message.trim();
    let m = m.strip_prefix("SQL error: ").unwrap_or(m);
    let m = m.strip_prefix("ParserError(\"").and_then(|m| m.strip_suffix("\")")).unwrap_or(m);
    let m = m.strip_prefix("sql parser error: ").unwrap_or(m);
    m.replace("\\\"", "\"")
}

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn splits_at_top_level_semicolons_only() {
        let sql = "CREATE EXTERNAL TABLE t (a INT) STORED AS CSV LOCATION 's3://b/x;y/' OPTIONS ('format.delimiter' ';');\n\
                   -- a comment; not a statement\nSELECT 'it''s; fine', \"odd;name\" /* ; */ FROM t;;\n";
        let parts = split(sql);
        assert_eq!(parts.len(), 2, "{parts:?}");
        assert!(parts[0].ends_with("OPTIONS ('format.delimiter' ';')"));
        assert!(parts[1].starts_with("-- a comment; not a statement\nSELECT 'it''s; fine'"));
        assert!(parts[1].ends_with("FROM t"));
        assert!(split("  ;  -- only a comment\n/* and another */").is_empty());
        assert_eq!(split("SELECT 1"), vec!["SELECT 1"]);
    }

    #[test]
    fn splits_where_the_parser_reads_statement_ends() {
        // the parser's dialect takes no backslash escapes: 'a\' ends the string, so the ';'
        // after it ends the statement
        assert_eq!(split(r"SELECT 'a\';SELECT 2"), vec![r"SELECT 'a\'", "SELECT 2"]);
        // a multi-byte character before a ';' does not shift the cut
        assert_eq!(split("SELECT 'é' AS x; SELECT 'ü'"), vec!["SELECT 'é' AS x", "SELECT 'ü'"]);
        // an unterminated string: one piece, for the parser to name the error
        assert_eq!(split("SELECT 'open; SELECT 2"), vec!["SELECT 'open; SELECT 2"]);
    }
}

#[cfg(test)]
mod fuzz {
    use super::*;
    use crate::fuzz::{config, nested, shaped};
    use proptest::prelude::*;

    const SQL: &[&str] = &[
        "SELECT",
        "FROM",
        "WHERE",
        "(",
        ")",
        "'",
        "''",
        "\"",
        ";",
        "--",
        "\n",
        "/*",
        "*/",
        ",",
        "*",
        "1",
        "t",
        "CREATE EXTERNAL TABLE",
        "PARTITIONED BY",
        "LOCATION",
        "WITH",
        "AS",
        "$$",
        "E'",
        "\\",
        "[",
        "]",
    ];

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn any_text_splits_and_parses_or_says_why(sql in "\\PC{0,200}") {
            let pieces = split(&sql);
            prop_assert!(pieces.iter().all(|p| !p.trim().is_empty() && p == p.trim()));
            let _ = parse(&sql);
        }

        #[test]
        fn sql_shaped_text_splits_and_parses_or_says_why(sql in shaped(SQL, 40)) {
            let _ = split(&sql);
            let _ = parse(&sql);
        }
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        for depth in [100, 10_000, 200_000] {
            let sql = format!("SELECT {}", nested("(", "1", ")", depth));
            assert!(parse(&sql).is_err(), "depth {depth}");
        }
    }
}
