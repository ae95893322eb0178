//! Reads glaux's CSV output keeping NULL (empty, unquoted) apart from "" (quoted).

/// Rows of cells; `None` is NULL.
pub fn parse(text: &str) -> (Vec<String>, Vec<Vec<Option<String>>>) {
    let mut rows = vec![];
    let mut row: Vec<Option<String>> = vec![];
    let mut cell = String::new();
    let (mut quoted, mut in_quotes, mut chars) = (false, false, text.chars().peekable());
    let mut any = false;
    while let Some(c) = chars.next() {
        any = true;
        match (in_quotes, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cell.push('"');
            }
            (true, '"') => in_quotes = false,
            (true, c) => cell.push(c),
            (false, '"') => (in_quotes, quoted) = (true, true),
            (false, ',') => row.push(take(&mut cell, &mut quoted)),
            (false, '\n') => {
                row.push(take(&mut cell, &mut quoted));
                rows.push(std::mem::take(&mut row));
                any = false;
            }
            (false, c) => cell.push(c),
        }
    }
    if any {
        row.push(take(&mut cell, &mut quoted));
        rows.push(row);
    }
    let header =
        if rows.is_empty() { vec![] } else { rows.remove(0).into_iter().map(Option::unwrap_or_default).collect() };
    (header, rows)
}

fn take(cell: &mut String, quoted: &mut bool) -> Option<String> {
    let value = std::mem::take(cell);
    let was_quoted = std::mem::replace(quoted, false);
    if value.is_empty() && !was_quoted { None } else { Some(value) }
}

#[test]
fn null_and_empty_differ() {
    let (h, rows) = parse("a,b\n1,\n\"\",\"x,\"\"y\"\"\"\n");
    assert_eq!(h, vec!["a", "b"]);
    assert_eq!(rows[0], vec![Some("1".into()), None]);
    assert_eq!(rows[1], vec![Some(String::new()), Some("x,\"y\"".into())]);
}
