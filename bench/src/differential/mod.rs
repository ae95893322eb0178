//! Differential SQL: generated queries run through glaux's catalog tables and through DuckDB on
//! the same Parquet files; every answer is compared (in order under ORDER BY … LIMIT, as a
//! multiset otherwise, numbers within rounding).

mod generate;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use glaux_engine::glaux_catalog::{Catalog, LocalCatalog};
use glaux_engine::{Engine, EngineConfig, S3Settings};

use crate::tpch::{request, rows, same_cell};
use generate::{Generator, TABLES};

#[derive(clap::Args)]
pub struct Args {
    /// How many queries to generate and compare.
    #[arg(long, default_value_t = 10_000)]
    cases: u64,
    /// The generator's seed (query n of a seed is always the same query).
    #[arg(long, default_value_t = DEFAULT_SEED)]
    seed: u64,
    /// Where the data, the catalog and DuckDB's answers go.
    #[arg(long, default_value = "bench-data/differential")]
    work: PathBuf,
    /// A Python with the duckdb package.
    #[arg(long, default_value = "python3")]
    python: String,
    #[arg(long, default_value = "?")]
    duckdb_version: String,
    #[arg(long, default_value = "bench/results")]
    out: PathBuf,
}

pub const DEFAULT_SEED: u64 = 20261129;
const DATABASE: &str = "diff";

/// A query whose answers differ, or that only one engine accepted.
pub struct Mismatch {
    pub n: u64,
    pub sql: String,
    pub detail: String,
}

#[derive(Default)]
pub struct Outcome {
    pub agreed: u64,
    /// Queries both engines refused (the generator's fault, or both engines' limits).
    pub both_rejected: Vec<(u64, String, String)>,
    pub mismatches: Vec<Mismatch>,
    /// Queries glaux refused with the error of a known DataFusion bug.
    pub known: Vec<(u64, String, String)>,
    /// Queries glaux answered and DuckDB failed on with an internal error (its own bug).
    pub peer_bugs: Vec<(u64, String, String)>,
}

fn script() -> PathBuf {
    crate::bench_file("differential_duckdb.py")
}

fn python(python: &str, args: &[&std::ffi::OsStr]) -> Result<Vec<u8>, String> {
    let out =
        std::process::Command::new(python).arg(script()).args(args).output().map_err(|e| format!("{python}: {e}"))?;
    if !out.status.success() {
        return Err(format!("differential_duckdb.py: {}", String::from_utf8_lossy(&out.stderr)));
    }
    Ok(out.stdout)
}

/// An engine over a fresh local catalog holding the schema's tables, registered with Athena DDL.
async fn engine(data: &Path, warehouse: &Path) -> Result<Engine, String> {
    let _ = std::fs::remove_dir_all(warehouse);
    let catalog: Arc<dyn Catalog> =
        Arc::new(LocalCatalog::open(warehouse).map_err(|e| format!("{}: {e}", warehouse.display()))?);
    let engine = Engine::new(EngineConfig {
        s3: S3Settings::from_env(),
        catalog: Some(catalog),
        database: DATABASE.into(),
        allow_local_files: true,
        ..Default::default()
    })
    .map_err(|e| e.to_string())?;
    let mut ddl = vec![format!("CREATE DATABASE {DATABASE}")];
    for t in &TABLES {
        let location = data.join(t.name);
        let location = location.display();
        if t.partitions == 0 {
            ddl.push(format!("CREATE EXTERNAL TABLE {} STORED AS PARQUET LOCATION '{location}/'", t.name));
        } else {
            let (cols, keys) = t.cols.split_at(t.cols.len() - t.partitions);
            let athena = |c: &[(&str, generate::Ty)]| {
                c.iter()
                    .map(|(name, ty)| format!("{name} {}", generate::athena_type(*ty)))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            ddl.push(format!(
                "CREATE EXTERNAL TABLE {} ({}) PARTITIONED BY ({}) STORED AS PARQUET LOCATION '{location}/'",
                t.name,
                athena(cols),
                athena(keys)
            ));
            ddl.push(format!("MSCK REPAIR TABLE {}", t.name));
        }
    }
    for sql in ddl {
        engine.run(&request(&sql)).await.map_err(|f| format!("{sql}: {}", f.error))?;
    }
    Ok(engine)
}

/// Cells in a total order: NULL first, then numbers by value (so rows sort alike whatever
/// their last digits), then text.
fn cmp_cells(a: &Option<String>, b: &Option<String>) -> std::cmp::Ordering {
    let num = |c: &Option<String>| c.as_ref().and_then(|s| s.parse::<f64>().ok());
    match (a, b) {
        (None, None) => std::cmp::Ordering::Equal,
        (None, _) => std::cmp::Ordering::Less,
        (_, None) => std::cmp::Ordering::Greater,
        _ => match (num(a), num(b)) {
            (Some(x), Some(y)) => x.total_cmp(&y),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => a.cmp(b),
        },
    }
}

fn cmp_rows(a: &[Option<String>], b: &[Option<String>]) -> std::cmp::Ordering {
    a.iter().zip(b).map(|(x, y)| cmp_cells(x, y)).find(|o| o.is_ne()).unwrap_or(a.len().cmp(&b.len()))
}

/// Errors of DataFusion bugs already reduced in tests/known-differences.md: a query that meets
/// one is counted apart, not as a new mismatch.
const KNOWN_ERRORS: [&str; 4] = [
    "__datafusion_extracted",
    "does not satisfy order requirements",
    "Projections require unique expression names",
    "Schema contains duplicate unqualified field name",
];

/// Whether two answers agree: in order when `ordered`, as multisets otherwise.
pub fn agree(ours: &[Vec<Option<String>>], theirs: &[Vec<Option<String>>], ordered: bool) -> Result<(), String> {
    if ours.len() != theirs.len() {
        return Err(format!("{} rows vs DuckDB's {}", ours.len(), theirs.len()));
    }
    let (mut a, mut b) = (ours.to_vec(), theirs.to_vec());
    if !ordered {
        a.sort_by(|x, y| cmp_rows(x, y));
        b.sort_by(|x, y| cmp_rows(x, y));
    }
    match a.iter().zip(&b).position(|(x, y)| x.len() != y.len() || !x.iter().zip(y).all(|(p, q)| same_cell(p, q))) {
        None => Ok(()),
        Some(i) => Err(format!("row {i}: glaux {:?}, DuckDB {:?}", a[i], b[i])),
    }
}

/// Generates `cases` queries from `seed`, runs them in glaux and DuckDB and compares.
pub async fn compare_engines(seed: u64, cases: u64, work: &Path, python_bin: &str) -> Result<Outcome, String> {
    let data = work.join("data");
    if !data.join("cust").exists() {
        std::fs::create_dir_all(&data).map_err(|e| format!("{}: {e}", data.display()))?;
        python(python_bin, &["data".as_ref(), data.as_os_str()])?;
    }
    let data = data.canonicalize().map_err(|e| e.to_string())?;
    let queries: Vec<generate::Query> = (0..cases).map(|n| Generator::new(seed, n).query()).collect();
    let file = work.join("queries.json");
    let sqls: Vec<&str> = queries.iter().map(|q| q.sql.as_str()).collect();
    std::fs::write(&file, serde_json::to_vec(&sqls).map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    let answers = python(python_bin, &["run".as_ref(), data.as_os_str(), file.as_os_str()])?;
    let answers: Vec<serde_json::Value> =
        serde_json::from_slice(&answers).map_err(|e| format!("DuckDB's answers: {e}"))?;
    let engine = engine(&data, &work.join("warehouse")).await?;
    let mut outcome = Outcome::default();
    for ((n, query), theirs) in (0..).zip(&queries).zip(&answers) {
        let ours = match engine.run(&request(&query.sql)).await {
            Ok((batches, _)) => rows(&batches),
            Err(f) => Err(f.error.to_string()),
        };
        let their_internal = theirs.get("internal").and_then(serde_json::Value::as_bool).unwrap_or(false);
        let theirs: Result<Vec<Vec<Option<String>>>, String> = match theirs.get("error") {
            Some(e) => Err(e.as_str().unwrap_or_default().to_string()),
            None => serde_json::from_value(theirs["rows"].clone()).map_err(|e| e.to_string()),
        };
        let detail = match (&ours, &theirs) {
            (Ok(a), Ok(b)) => agree(a, b, query.ordered).err(),
            (Err(a), Err(b)) => {
                outcome.both_rejected.push((n, query.sql.clone(), format!("glaux: {a} | DuckDB: {b}")));
                continue;
            }
            (Err(a), Ok(_)) if KNOWN_ERRORS.iter().any(|k| a.contains(k)) => {
                outcome.known.push((n, query.sql.clone(), a.clone()));
                continue;
            }
            (Err(a), Ok(_)) => Some(format!("glaux failed: {a}")),
            (Ok(_), Err(b)) if their_internal => {
                outcome.peer_bugs.push((n, query.sql.clone(), b.clone()));
                continue;
            }
            (Ok(_), Err(b)) => Some(format!("DuckDB failed: {b}")),
        };
        match detail {
            None => outcome.agreed += 1,
            Some(detail) => outcome.mismatches.push(Mismatch { n, sql: query.sql.clone(), detail }),
        }
    }
    Ok(outcome)
}

pub async fn run(args: Args) -> Result<(), String> {
    std::fs::create_dir_all(&args.work).map_err(|e| format!("{}: {e}", args.work.display()))?;
    let start = Instant::now();
    let outcome = compare_engines(args.seed, args.cases, &args.work, &args.python).await?;
    let secs = start.elapsed().as_secs_f64();
    for m in &outcome.mismatches {
        println!("MISMATCH #{}: {}\n  {}", m.n, m.sql, m.detail);
    }
    println!(
        "{} queries (seed {}): {} agree, {} refused by both, {} known DataFusion bugs, {} DuckDB internal errors, {} mismatches, {secs:.0} s",
        args.cases,
        args.seed,
        outcome.agreed,
        outcome.both_rejected.len(),
        outcome.known.len(),
        outcome.peer_bugs.len(),
        outcome.mismatches.len()
    );
    let mut md = format!(
        "# Differential SQL: glaux vs DuckDB {}\n\n\
         Generated by `bench/run differential {}` (seed {}): {} queries over the fixed schema of \
         bench/differential_duckdb.py (six tables: TPC-H-like orders, items and customers, one full of \
         NULLs, one of lists and structs, one Hive-partitioned), each run through glaux's local catalog \
         (tables registered with Athena DDL) and through DuckDB on the same Parquet files, answers \
         compared cell by cell (numbers within 1e-6 relative).\n\n\
         | | queries |\n|---|---:|\n| same answer | {} |\n| refused by both | {} |\n| refused by glaux: a known DataFusion bug | {} |\n| answered by glaux, an internal error in DuckDB | {} |\n| mismatches | {} |\n\n\
         Wall time {secs:.0} s. Constructs left out on purpose, and why: tests/known-differences.md.\n",
        args.duckdb_version,
        args.cases,
        args.seed,
        args.cases,
        outcome.agreed,
        outcome.both_rejected.len(),
        outcome.known.len(),
        outcome.peer_bugs.len(),
        outcome.mismatches.len()
    );
    if !outcome.peer_bugs.is_empty() {
        md.push_str("\n## Internal errors in DuckDB (glaux answered)\n\n");
        for (n, sql, error) in &outcome.peer_bugs {
            md.push_str(&format!("- #{n}: `{sql}` — {error}\n"));
        }
    }
    if !outcome.known.is_empty() {
        md.push_str("\n## Refused by glaux with a known DataFusion bug\n\n");
        for (n, sql, error) in &outcome.known {
            md.push_str(&format!("- #{n}: `{sql}` — {}\n", error.lines().next().unwrap_or_default()));
        }
    }
    if !outcome.mismatches.is_empty() {
        md.push_str("\n## Mismatches\n\n");
        for m in &outcome.mismatches {
            md.push_str(&format!("- #{}: `{}` — {}\n", m.n, m.sql, m.detail));
        }
    }
    std::fs::create_dir_all(&args.out).map_err(|e| e.to_string())?;
    std::fs::write(args.out.join("differential.md"), md).map_err(|e| e.to_string())?;
    if outcome.mismatches.is_empty() { Ok(()) } else { Err(format!("{} mismatches", outcome.mismatches.len())) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A few hundred generated queries give DuckDB's answers (GLAUX_DIFF_CASES for more).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn generated_queries_give_duckdbs_answers() {
        let cases = std::env::var("GLAUX_DIFF_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
        let work = std::env::temp_dir().join(format!("glaux-it-differential-{}", std::process::id()));
        std::fs::create_dir_all(&work).unwrap();
        let outcome = compare_engines(DEFAULT_SEED, cases, &work, "python3").await.unwrap();
        let _ = std::fs::remove_dir_all(&work);
        let report: Vec<String> =
            outcome.mismatches.iter().map(|m| format!("#{}: {}\n  {}", m.n, m.sql, m.detail)).collect();
        assert!(report.is_empty(), "{} of {cases} queries differ:\n{}", report.len(), report.join("\n"));
        // the generator's queries are valid SQL: nearly all run in both engines
        assert!(
            outcome.both_rejected.len() * 50 <= cases as usize,
            "too many refused: {:?}",
            outcome.both_rejected.iter().take(3).collect::<Vec<_>>()
        );
        let apart = outcome.both_rejected.len() + outcome.known.len() + outcome.peer_bugs.len();
        assert_eq!(outcome.agreed + apart as u64, cases);
    }

    #[test]
    fn answers_compare_as_multisets_unless_ordered() {
        let row = |a: &str, b: &str| vec![Some(a.to_string()), Some(b.to_string())];
        let ours = vec![row("1", "0.30000000000000004"), row("2", "x")];
        let theirs = vec![row("2", "x"), row("1", "0.3")];
        // rows that differ only past the rounding of a sort key still pair up by value
        let a = vec![row("11810.1025", "x"), row("11810.1225", "x")];
        assert!(agree(&a, &[a[1].clone(), a[0].clone()], false).is_ok());
        assert!(agree(&ours, &theirs, false).is_ok());
        assert!(agree(&ours, &theirs, true).is_err());
        assert!(agree(&ours, &[row("2", "x"), row("1", "0.31")], false).is_err());
        assert!(agree(&ours, &[row("2", "x")], false).is_err());
    }

    #[test]
    fn casts_are_named_after_their_operand() {
        assert_eq!(generate::cast_free("max(CAST(t1.i_ship AS VARCHAR))"), "max(t1.i_ship)");
    }

    #[test]
    fn a_query_depends_only_on_its_seed_and_number() {
        let a: Vec<String> = (0..50).map(|n| Generator::new(7, n).query().sql).collect();
        let b: Vec<String> = (0..50).map(|n| Generator::new(7, n).query().sql).collect();
        assert_eq!(a, b);
        assert_ne!(Generator::new(7, 1).query().sql, Generator::new(8, 1).query().sql);
    }
}
