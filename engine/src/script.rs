//! Splits a SQL script at its top-level `;`, keeping each statement's original text.

/// The statements of `sql`, trimmed, without their `;`. Semicolons inside quotes, quoted
/// identifiers and comments do not split.
pub fn split(sql: &str) -> Vec<String> {
    let mut out = vec![];
    let mut start = 0;
    let bytes = sql.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            q @ (b'\'' | b'"' | b'`') => {
                i += 1;
                while i < bytes.len() {
                    if bytes[i] == q {
                        // a doubled quote is an escaped quote
                        if bytes.get(i + 1) == Some(&q) {
                            i += 1;
                        } else {
                            break;
                        }
                    }
                    i += 1;
                }
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < bytes.len() && !(bytes[i] == b'*' && bytes[i + 1] == b'/') {
                    i += 1;
                }
                i += 1;
            }
            b';' => {
                push(&mut out, &sql[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    push(&mut out, &sql[start.min(sql.len())..]);
    out
}

fn push(out: &mut Vec<String>, piece: &str) {
    let piece = piece.trim();
    if !piece.is_empty() && !only_comments(piece) {
        out.push(piece.to_string());
    }
}

fn only_comments(piece: &str) -> bool {
    piece.lines().all(|l| {
        let l = l.trim();
        l.is_empty() || l.starts_with("--")
    })
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
        assert!(split("  ;  -- only a comment\n").is_empty());
        assert_eq!(split("SELECT 1"), vec!["SELECT 1"]);
    }
}
