//! Results for a person at a terminal: an aligned table cut to the terminal's width (long values
//! shortened, columns that do not fit named), or one row at a time with `\x`.

use std::io::Write;

use glaux_engine::arrow::array::RecordBatch;
use glaux_engine::arrow::datatypes::SchemaRef;
use glaux_engine::arrow::util::display::{ArrayFormatter, FormatOptions};
use glaux_engine::{OutputFormat, ResultWriter};

use super::Settings;

/// Longest value shown in a table cell.
const CELL_MAX: usize = 40;
/// Rows shown in a table; the rest are counted.
const ROWS_MAX: usize = 1000;

fn terminal_width() -> usize {
    console::Term::stdout()
        .size_checked()
        .map(|(_, cols)| cols as usize)
        .or_else(|| std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok()))
        .unwrap_or(120)
        .max(20)
}

/// Every value as text, NULL spelled out.
fn texts(batches: &[RecordBatch], columns: usize, limit: usize) -> Result<Vec<Vec<String>>, String> {
    let options = FormatOptions::default().with_null("NULL");
    let mut rows = vec![];
    for batch in batches {
        let formatters = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        for r in 0..batch.num_rows() {
            if rows.len() == limit {
                return Ok(rows);
            }
            rows.push((0..columns).map(|c| formatters[c].value(r).to_string()).collect());
        }
    }
    Ok(rows)
}

fn shorten(value: &str, max: usize) -> String {
    let one_line = value.replace(['\n', '\r', '\t'], " ");
    if one_line.chars().count() <= max {
        return one_line;
    }
    let kept: String = one_line.chars().take(max.saturating_sub(1)).collect();
    format!("{kept}…")
}

pub fn print(schema: &SchemaRef, batches: &[RecordBatch], settings: &Settings) -> Result<(), String> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match settings.format {
        OutputFormat::Table => {}
        other => {
            let mut writer = ResultWriter::new(&mut out, other, schema.clone());
            for batch in batches {
                writer.write(batch).map_err(|e| e.to_string())?;
            }
            writer.finish().map_err(|e| e.to_string())?;
            return Ok(());
        }
    }
    let total: usize = batches.iter().map(|b| b.num_rows()).sum();
    let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    let rows = texts(batches, names.len(), ROWS_MAX)?;
    let text = if settings.vertical { vertical(&names, &rows) } else { table(&names, &rows, terminal_width()) };
    write!(out, "{text}").map_err(|e| e.to_string())?;
    if total > rows.len() {
        writeln!(out, "({} of {total} rows shown)", rows.len()).map_err(|e| e.to_string())?;
    }
    out.flush().map_err(|e| e.to_string())
}

/// `| a | b |` tables, as many leading columns as fit in `width`.
pub fn table(names: &[String], rows: &[Vec<String>], width: usize) -> String {
    let cells: Vec<Vec<String>> = rows.iter().map(|r| r.iter().map(|v| shorten(v, CELL_MAX)).collect()).collect();
    let mut widths: Vec<usize> = names.iter().map(|n| shorten(n, CELL_MAX).chars().count()).collect();
    for row in &cells {
        for (w, v) in widths.iter_mut().zip(row) {
            *w = (*w).max(v.chars().count());
        }
    }
    // each column takes its width plus "| " and " "; the line ends with "|"
    let mut shown = 0;
    let mut used = 1;
    for w in &widths {
        if used + w + 3 > width && shown > 0 {
            break;
        }
        used += w + 3;
        shown += 1;
    }
    let border = format!("+{}+\n", widths[..shown].iter().map(|w| "-".repeat(w + 2)).collect::<Vec<_>>().join("+"));
    let line = |values: Vec<String>| {
        let padded: Vec<String> = values.iter().zip(&widths).map(|(v, w)| format!(" {v:<w$} ")).collect();
        format!("|{}|\n", padded.join("|"))
    };
    let mut out = border.clone();
    out += &line(names.iter().take(shown).map(|n| shorten(n, CELL_MAX)).collect());
    out += &border;
    for row in &cells {
        out += &line(row.iter().take(shown).cloned().collect());
    }
    out += &border;
    if shown < names.len() {
        out += &format!(
            "({} more column{} not shown: {}; \\x shows rows vertically)\n",
            names.len() - shown,
            if names.len() - shown == 1 { "" } else { "s" },
            names[shown..].join(", ")
        );
    }
    out
}

/// One block per row: `name | value` lines.
pub fn vertical(names: &[String], rows: &[Vec<String>]) -> String {
    let width = names.iter().map(|n| n.chars().count()).max().unwrap_or(0);
    let mut out = String::new();
    for (i, row) in rows.iter().enumerate() {
        out += &format!("-[ RECORD {} ]{}\n", i + 1, "-".repeat(width.saturating_sub(8).max(4)));
        for (name, value) in names.iter().zip(row) {
            out += &format!("{name:<width$} | {value}\n");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn wide_tables_keep_the_columns_that_fit_and_name_the_rest() {
        let names = s(&["id", "a_rather_long_column", "c", "d"]);
        let rows = vec![s(&["1", &"x".repeat(100), "3", "4"])];
        // id takes 6 columns with its borders, the long one 43 (cut to 40): c and d do not fit
        let text = table(&names, &rows, 50);
        let drawn = text.lines().filter(|l| l.starts_with(['+', '|']));
        assert!(drawn.clone().count() == 5 && drawn.clone().all(|l| l.chars().count() <= 50), "{text}");
        assert!(text.contains(&format!("{}…", "x".repeat(39))), "{text}");
        assert!(text.contains("(2 more columns not shown: c, d;"), "{text}");
        let text = table(&names, &rows, 200);
        assert!(!text.contains("more column"), "{text}");
        assert_eq!(text.lines().nth(1).unwrap().matches('|').count(), 5);
    }

    #[test]
    fn vertical_shows_whole_values() {
        let text = vertical(&s(&["id", "note"]), &[s(&["1", &"y".repeat(100)])]);
        assert!(text.starts_with("-[ RECORD 1 ]"));
        assert!(text.contains(&format!("note | {}", "y".repeat(100))));
    }
}
