//! The same tables in every format answer every query as DuckDB does on the same data.

use serde_json::Value;

use crate::support::{self, Env, csv};

pub const EVENTS_COLUMNS: &str = "(id BIGINT, user_id BIGINT, name VARCHAR, category VARCHAR, amount DOUBLE, quantity BIGINT, day VARCHAR, flag BOOLEAN)";
pub const USERS_COLUMNS: &str = "(id BIGINT, country VARCHAR)";

/// `CREATE EXTERNAL TABLE` for `table` stored in `format` (a folder name of the data set).
pub fn ddl(env: &Env, table: &str, columns: &str, format: &str) -> String {
    let location = env.s3(&format!("{table}/{format}/"));
    // No compression is named: glaux detects it from the objects' extensions.
    let (kind, _) = format.split_once('_').unwrap_or((format, ""));
    match kind {
        "parquet" | "orc" => format!("CREATE EXTERNAL TABLE {table} STORED AS {kind} LOCATION '{location}'"),
        "csv" => format!(
            "CREATE EXTERNAL TABLE {table} {columns} STORED AS CSV LOCATION '{location}' OPTIONS ('format.has_header' 'true')"
        ),
        // Hive text: tab-separated, no header, \N for NULL
        "tsv" => format!(
            "CREATE EXTERNAL TABLE {table} {columns} STORED AS CSV LOCATION '{location}' OPTIONS ('format.has_header' 'false', 'format.delimiter' '\t', 'format.null_regex' '\\\\N')"
        ),
        "json" => format!("CREATE EXTERNAL TABLE {table} {columns} STORED AS JSON LOCATION '{location}'"),
        other => panic!("unknown format {other}"),
    }
}

pub fn expected(env: &Env, group: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(env.data.join("expected.json")).expect("expected.json from generate.py");
    let all: Value = serde_json::from_str(&text).unwrap();
    all[group].as_array().unwrap().clone()
}

/// Compares one cell: numbers within rounding, everything else exactly.
fn same(expected: &Value, actual: &Option<String>) -> bool {
    match (expected, actual) {
        (Value::Null, None) => true,
        (Value::Null, Some(_)) | (_, None) => false,
        (Value::Number(n), Some(a)) => match (n.as_f64(), a.parse::<f64>()) {
            (Some(e), Ok(a)) => (e - a).abs() <= 1e-6 * e.abs().max(1.0),
            _ => false,
        },
        (Value::Bool(b), Some(a)) => a == &b.to_string(),
        (Value::String(s), Some(a)) => s == a,
        (other, Some(a)) => &other.to_string() == a,
    }
}

pub fn check(answer: &Value, format: &str, stdout: &str) -> Result<(), String> {
    let name = answer["name"].as_str().unwrap();
    let want = answer["rows"].as_array().unwrap();
    let (_, got) = csv::parse(stdout);
    if want.len() != got.len() {
        return Err(format!("{name} on {format}: {} rows expected, {} returned\n{stdout}", want.len(), got.len()));
    }
    for (i, (w, g)) in want.iter().zip(&got).enumerate() {
        let w = w.as_array().unwrap();
        if w.len() != g.len() || !w.iter().zip(g).all(|(e, a)| same(e, a)) {
            return Err(format!("{name} on {format}, row {i}: expected {w:?}, got {g:?}"));
        }
    }
    Ok(())
}

fn run_all(group: &str, formats: &[&str], tables: &[(&str, &str)]) {
    let env = support::env();
    let answers = expected(&env, group);
    assert!(!answers.is_empty());
    let mut failures = vec![];
    for format in formats {
        let setup: Vec<String> = tables.iter().map(|(t, cols)| ddl(&env, t, cols, format)).collect();
        for answer in &answers {
            let script = format!("{};\n{}", setup.join(";\n"), answer["sql"].as_str().unwrap());
            let run = support::glaux(&env.endpoint, &["--format", "csv"], &script);
            if run.status != 0 {
                failures.push(format!("{} on {format} failed: {}", answer["name"], run.stderr));
                continue;
            }
            if let Err(e) = check(answer, format, &run.stdout) {
                failures.push(e);
            }
        }
    }
    assert!(failures.is_empty(), "{} mismatches:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn every_format_gives_duckdbs_answers() {
    run_all(
        "flat",
        &["parquet", "orc", "csv", "csv_gz", "csv_bz2", "csv_zst", "tsv", "json", "json_gz", "json_zst"],
        &[("events", EVENTS_COLUMNS), ("users", USERS_COLUMNS)],
    );
}

#[test]
fn nested_types_in_parquet_orc_and_json() {
    run_all(
        "nested",
        &["parquet", "orc", "json"],
        // JSON infers the nested schema from the objects themselves.
        &[("nested", "")],
    );
}

#[test]
fn csv_output_keeps_null_apart_from_empty_string() {
    let env = support::env();
    let run = support::glaux(&env.endpoint, &["--format", "csv"], "SELECT NULL AS a, '' AS b, 'x,y' AS c");
    run.assert_ok();
    assert_eq!(run.stdout, "a,b,c\n,\"\",\"x,y\"\n");
}
