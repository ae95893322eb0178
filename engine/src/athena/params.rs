//! Athena's ExecutionParameters: each `?` outside strings, identifiers and comments is replaced,
//! in order, by one parameter's SQL text (`'2024'`, `42`, `DATE '2024-01-01'`).

use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};

use crate::error::{Error, Result};

/// The query with its placeholders replaced; the counts must match.
pub fn bind(sql: &str, parameters: &[String]) -> Result<String> {
    let dialect = GenericDialect {};
    let tokens = Tokenizer::new(&dialect, sql).tokenize().map_err(|e| Error::Syntax(e.to_string()))?;
    let placeholders = tokens.iter().filter(|t| matches!(t, Token::Placeholder(p) if p == "?")).count();
    if placeholders != parameters.len() {
        return Err(Error::Config(format!(
            "the query has {placeholders} parameter placeholder(s) '?' but {} ExecutionParameters were given",
            parameters.len()
        )));
    }
    let mut values = parameters.iter();
    let mut out = String::with_capacity(sql.len());
    for token in &tokens {
        match token {
            Token::Placeholder(p) if p == "?" => {
                let value = values.next().map(String::as_str).unwrap_or_default();
                // a parameter is one value, not more SQL
                let inner = Tokenizer::new(&dialect, value).tokenize().map_err(|e| Error::Syntax(e.to_string()))?;
                if value.trim().is_empty() || inner.iter().any(|t| matches!(t, Token::SemiColon)) {
                    return Err(Error::Config(format!("execution parameter '{value}' is not a single SQL value")));
                }
                out.push_str(value);
            }
            other => out.push_str(&other.to_string()),
        }
    }
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
}
