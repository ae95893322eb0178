//! Splits a SQL script at its top-level `;`, keeping each statement's original text. The cut
//! points come from sqlparser's tokenizer with the dialect the statements are parsed with, so a
//! script splits exactly where the parser reads statement ends (quotes, quoted identifiers,
//! comments and escapes alike).

use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};

/// The statements of `sql`, trimmed, without their `;`. A script the tokenizer cannot read (an
/// unterminated string, say) stays whole, so the parser reports the error with its position.
pub fn split(sql: &str) -> Vec<String> {
    let Ok(tokens) = Tokenizer::new(&GenericDialect {}, sql).tokenize_with_location() else {
        let mut out = vec![];
        push(&mut out, sql);
        return out;
    };
    let lines: Vec<usize> = std::iter::once(0).chain(sql.match_indices('\n').map(|(i, _)| i + 1)).collect();
    let offset = |line: u64, column: u64| -> usize {
        let start = lines.get((line as usize).saturating_sub(1)).copied().unwrap_or(sql.len());
        let rest = &sql[start..];
        start + rest.char_indices().nth((column as usize).saturating_sub(1)).map_or(rest.len(), |(b, _)| b)
    };
    let mut out = vec![];
    let mut start = 0;
    for token in tokens.iter().filter(|t| t.token == Token::SemiColon) {
        let at = offset(token.span.start.line, token.span.start.column);
        push(&mut out, &sql[start..at]);
        start = at + 1;
    }
    push(&mut out, &sql[start.min(sql.len())..]);
    out
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
