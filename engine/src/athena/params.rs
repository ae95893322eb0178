//! Athena's ExecutionParameters: each `?` outside strings, identifiers and comments is replaced,
//! in order, by one parameter's SQL text (`'2024'`, `42`, `DATE '2024-01-01'`).

use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};

use crate::error::{Error, Result};

/// A parameter's text checked to be exactly one SQL literal (`'O''Brien'`, `42`, `-1.5`,
/// `DATE '2024-01-01'`, `TRUE`, `NULL`), returned as SQL text: a parameter is a value, never
/// more SQL, so `x' OR '1'='1` is refused rather than spliced in.
pub fn literal(value: &str) -> Result<String> {
    let not_a_value = || {
        Error::InvalidInput(format!(
            "parameter {value} is not a single SQL literal (a quoted string such as 'text', a number, TRUE, FALSE, NULL or DATE '2024-01-01')"
        ))
    };
    let mut cursor = super::cursor::Cursor::new(value).map_err(|_| not_a_value())?;
    let text = cursor.literal().map_err(|_| not_a_value())?;
    if !cursor.at_end() || matches!(cursor.peek(), Some(Token::SemiColon)) {
        return Err(not_a_value());
    }
    Ok(text)
}

/// The query with its placeholders replaced; the counts must match.
pub fn bind(sql: &str, parameters: &[String]) -> Result<String> {
    let dialect = GenericDialect {};
    let tokens = Tokenizer::new(&dialect, sql).tokenize_with_location().map_err(|e| Error::Syntax(e.to_string()))?;
    // where each `?` stands in the text: the rest is kept exactly as written
    let offsets = crate::script::Offsets::new(sql);
    let spots: Vec<usize> = tokens
        .iter()
        .filter(|t| matches!(&t.token, Token::Placeholder(p) if p == "?"))
        .map(|t| offsets.of(t.span.start))
        .collect();
    let placeholders = spots.len();
    if placeholders != parameters.len() {
        return Err(Error::InvalidInput(format!(
            "the query has {placeholders} parameter placeholder(s) '?' but {} ExecutionParameters were given",
            parameters.len()
        )));
    }
    let mut out = String::with_capacity(sql.len());
    let mut from = 0;
    for (at, value) in spots.into_iter().zip(parameters) {
        out.push_str(&sql[from..at]);
        out.push_str(&literal(value)?);
        from = at + 1;
    }
    out.push_str(&sql[from..]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_replaced_in_order_outside_strings() {
        let sql = "SELECT * FROM t WHERE a = ? AND b = '?' AND c > ? -- ?";
        let bound = bind(sql, &["'x'".into(), "42".into()]).unwrap();
        assert_eq!(bound, "SELECT * FROM t WHERE a = 'x' AND b = '?' AND c > 42 -- ?");
    }

    #[test]
    fn counts_must_match_and_values_stay_values() {
        let err = bind("SELECT ?", &[]).unwrap_err().to_string();
        assert!(err.contains("1 parameter placeholder(s) '?' but 0"), "{err}");
        assert!(bind("SELECT ?", &["1; DROP TABLE t".into()]).is_err());
        assert_eq!(bind("SELECT 1", &[]).unwrap(), "SELECT 1");
    }

    #[test]
    fn parameters_are_single_literals() {
        assert_eq!(bind("SELECT ?", &["'O''Brien'".into()]).unwrap(), "SELECT 'O''Brien'");
        // a quoted string holding an injection attempt stays one string
        let quoted = "'x'' OR ''1''=''1'";
        assert_eq!(bind("SELECT ?", &[quoted.into()]).unwrap(), format!("SELECT {quoted}"));
        for bad in ["x' OR '1'='1", "' OR '1'='1", "'a' OR 1=1", "1 + 1", "(SELECT 1)", "", "'a'; DROP TABLE t"] {
            let err = bind("SELECT ?", &[bad.into()]).unwrap_err().to_string();
            assert!(err.contains("not a single SQL literal"), "{bad}: {err}");
        }
        assert_eq!(literal("DATE '2024-01-01'").unwrap(), "DATE '2024-01-01'");
        assert_eq!(literal(" -42 ").unwrap(), "-42");
        assert_eq!(literal("null").unwrap(), "NULL");
        // the rest of the query stays as written, quotes and all
        let sql = "SELECT 'it''s', \"a\"\"b\" FROM t WHERE x = ?\n  AND y = 'é?' AND z = ?";
        assert_eq!(
            bind(sql, &["'O''Brien'".into(), "2".into()]).unwrap(),
            "SELECT 'it''s', \"a\"\"b\" FROM t WHERE x = 'O''Brien'\n  AND y = 'é?' AND z = 2"
        );
    }
}
