//! TPC-H: the 22 queries through glaux, from disk and from a local S3 server, and through DuckDB
//! from disk, on the same Parquet files in one run. Results are checked equal cell by cell;
//! the report gives wall times (median of runs), the ratio glaux/DuckDB and bytes scanned.

use std::path::{Path, PathBuf};
use std::time::Instant;

use glaux_engine::arrow::array::RecordBatch;
use glaux_engine::arrow::util::display::{ArrayFormatter, FormatOptions};
use glaux_engine::{Engine, EngineConfig, S3Settings, StartQueryExecution};

#[derive(clap::Args)]
pub struct Args {
    /// Directory with TPC-H Parquet tables (lineitem/, orders/, … as tpchgen-cli writes them).
    #[arg(long)]
    data: PathBuf,
    /// The S3 server holding the same tables under s3://BUCKET/PREFIX/ (bench/run starts one).
    #[arg(long)]
    s3_endpoint: Option<String>,
    #[arg(long, default_value = "bench-tpch")]
    bucket: String,
    /// The folder in the bucket holding the tables (default: its root).
    #[arg(long, default_value = "")]
    prefix: String,
    /// Runs per query and engine (the median is reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// The scale factor the data was generated at (for the report).
    #[arg(long, default_value = "1")]
    scale: String,
    #[arg(long, default_value = "bench/results")]
    out: PathBuf,
    /// A DataFusion setting for glaux's sessions (`KEY=VALUE`, as SET takes it); repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    settings: Vec<String>,
}

pub const TABLES: [&str; 8] = ["lineitem", "orders", "customer", "part", "partsupp", "supplier", "nation", "region"];

macro_rules! queries {
    ($($n:literal),*) => {
        [$((concat!("q", $n), include_str!(concat!("../tpch/q", $n, ".sql")))),*]
    };
}

/// The 22 queries, by name (`q01` … `q22`).
pub const QUERIES: [(&str, &str); 22] = queries!(
    "01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "11", "12", "13", "14", "15", "16", "17", "18", "19",
    "20", "21", "22"
);

pub fn request(sql: &str) -> StartQueryExecution {
    StartQueryExecution { query_string: sql.into(), ..Default::default() }
}

/// S3 settings for a local S3-compatible server with test credentials.
pub fn s3_settings(endpoint: &str) -> S3Settings {
    let vars = [
        ("AWS_ENDPOINT_URL", endpoint.to_string()),
        ("AWS_ACCESS_KEY_ID", "testing".to_string()),
        ("AWS_SECRET_ACCESS_KEY", "testing".to_string()),
        ("AWS_REGION", "us-east-1".to_string()),
    ];
    S3Settings::from_lookup(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone()))
}

/// An engine with the eight tables registered from `root` (a folder or `s3://bucket/prefix`)
/// by `ddl(table, location)`, the location being `<root>/<table>/`.
pub async fn engine_with_tables(
    s3: S3Settings,
    root: &str,
    ddl: &dyn Fn(&str, &str) -> String,
) -> Result<Engine, String> {
    let engine =
        Engine::new(EngineConfig { s3, allow_local_files: true, ..Default::default() }).map_err(|e| e.to_string())?;
    for table in TABLES {
        let sql = ddl(table, &format!("{root}/{table}/"));
        engine.run(&request(&sql)).await.map_err(|f| format!("{table}: {}", f.error))?;
    }
    Ok(engine)
}

/// Result rows as text, NULL as None.
pub fn rows(batches: &[RecordBatch]) -> Result<Vec<Vec<Option<String>>>, String> {
    let options = FormatOptions::default();
    let mut out = vec![];
    for batch in batches {
        let formatters: Vec<ArrayFormatter> = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?;
        for r in 0..batch.num_rows() {
            out.push(
                batch
                    .columns()
                    .iter()
                    .zip(&formatters)
                    .map(|(c, f)| (!c.is_null(r)).then(|| f.value(r).to_string()))
                    .collect(),
            );
        }
    }
    Ok(out)
}

/// Two cells agree: both NULL, the same text, or numbers equal to within rounding of the
/// engines' decimal and float arithmetic.
fn same_cell(a: &Option<String>, b: &Option<String>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) if a == b => true,
        (Some(a), Some(b)) => match (a.parse::<f64>(), b.parse::<f64>()) {
            (Ok(x), Ok(y)) => (x - y).abs() <= (1e-6 * x.abs().max(y.abs())).max(5e-5),
            _ => false,
        },
        _ => false,
    }
}

/// Whether two results agree, in order or (for ties an ORDER BY leaves open) as sorted rows.
pub fn compare(ours: &[Vec<Option<String>>], theirs: &[Vec<Option<String>>]) -> Result<(), String> {
    if ours.len() != theirs.len() {
        return Err(format!("{} rows vs {}", ours.len(), theirs.len()));
    }
    let agree = |a: &[Vec<Option<String>>], b: &[Vec<Option<String>>]| {
        a.iter().zip(b).position(|(x, y)| x.len() != y.len() || !x.iter().zip(y).all(|(p, q)| same_cell(p, q)))
    };
    let Some(first) = agree(ours, theirs) else { return Ok(()) };
    let (mut a, mut b) = (ours.to_vec(), theirs.to_vec());
    a.sort();
    b.sort();
    match agree(&a, &b) {
        None => Ok(()),
        Some(_) => Err(format!("row {first}: {:?} vs {:?}", ours[first], theirs[first])),
    }
}

pub fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

struct Row {
    name: &'static str,
    disk_ms: f64,
    s3_ms: Option<f64>,
    duckdb_ms: f64,
    scanned: u64,
    check: Result<(), String>,
}

pub async fn run(args: Args) -> Result<(), String> {
    let data = args.data.canonicalize().map_err(|e| format!("{}: {e}", args.data.display()))?;
    let parquet =
        |t: &str, location: &str| format!("CREATE EXTERNAL TABLE {t} STORED AS PARQUET LOCATION '{location}'");
    let disk = engine_with_tables(S3Settings::from_env(), &data.display().to_string(), &parquet).await?;
    let s3 = match &args.s3_endpoint {
        Some(endpoint) => Some(
            engine_with_tables(
                s3_settings(endpoint),
                format!("s3://{}/{}", args.bucket, args.prefix).trim_end_matches('/'),
                &parquet,
            )
            .await?,
        ),
        None => None,
    };
    for setting in &args.settings {
        let (key, value) = setting.split_once('=').ok_or_else(|| format!("--set {setting}: expected KEY=VALUE"))?;
        for engine in std::iter::once(&disk).chain(&s3) {
            engine
                .run(&request(&format!("SET {key} = '{value}'")))
                .await
                .map_err(|f| format!("--set {setting}: {}", f.error))?;
        }
    }
    let duckdb = duckdb(&data, args.runs)?;
    let mut table = vec![];
    for (name, sql) in QUERIES {
        let (mut times, mut s3_times, mut scanned, mut result) = (vec![], vec![], 0, vec![]);
        for _ in 0..args.runs {
            let t = Instant::now();
            let (batches, execution) = disk.run(&request(sql)).await.map_err(|f| format!("{name}: {}", f.error))?;
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            scanned = execution.statistics.data_scanned_in_bytes;
            result = rows(&batches)?;
            if let Some(s3) = &s3 {
                let t = Instant::now();
                s3.run(&request(sql)).await.map_err(|f| format!("{name} from S3: {}", f.error))?;
                s3_times.push(t.elapsed().as_secs_f64() * 1000.0);
            }
        }
        let theirs = &duckdb[name];
        let their_rows: Vec<Vec<Option<String>>> =
            serde_json::from_value(theirs["rows"].clone()).map_err(|e| e.to_string())?;
        let their_ms: Vec<f64> = serde_json::from_value(theirs["ms"].clone()).map_err(|e| e.to_string())?;
        let row = Row {
            name,
            disk_ms: median(times),
            s3_ms: (!s3_times.is_empty()).then(|| median(s3_times)),
            duckdb_ms: median(their_ms),
            scanned,
            check: compare(&result, &their_rows),
        };
        println!(
            "{name}  glaux {:8.1} ms  S3 {:>8}  duckdb {:8.1} ms  ratio {:.2}  scanned {:>12}  {}",
            row.disk_ms,
            row.s3_ms.map(|m| format!("{m:.1} ms")).unwrap_or_default(),
            row.duckdb_ms,
            row.disk_ms / row.duckdb_ms,
            row.scanned,
            row.check.as_ref().map(|_| "equal".to_string()).unwrap_or_else(|e| format!("DIFFERENT: {e}"))
        );
        table.push(row);
    }
    write_reports(&args, &table)?;
    let wrong: Vec<&str> = table.iter().filter(|r| r.check.is_err()).map(|r| r.name).collect();
    if wrong.is_empty() { Ok(()) } else { Err(format!("results differ from DuckDB's for {wrong:?}")) }
}

/// Runs DuckDB on the same files (bench/tpch_duckdb.py): per query its times and rows.
fn duckdb(data: &Path, runs: usize) -> Result<serde_json::Value, String> {
    let bench = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new("python3")
        .arg(bench.join("tpch_duckdb.py"))
        .arg(data)
        .arg(bench.join("tpch"))
        .arg(runs.to_string())
        .output()
        .map_err(|e| format!("python3: {e}"))?;
    if !out.status.success() {
        return Err(format!("DuckDB: {}", String::from_utf8_lossy(&out.stderr)));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("DuckDB's output: {e}"))
}

fn write_reports(args: &Args, table: &[Row]) -> Result<(), String> {
    let total = |f: &dyn Fn(&Row) -> f64| table.iter().map(f).sum::<f64>();
    let (g, d) = (total(&|r| r.disk_ms), total(&|r| r.duckdb_ms));
    let s3_total = table.iter().map(|r| r.s3_ms).sum::<Option<f64>>();
    let json = serde_json::json!({
        "suite": "tpch", "scale": args.scale, "runs": args.runs, "settings": args.settings,
        "queries": table.iter().map(|r| serde_json::json!({
            "query": r.name, "glaux_disk_ms": r.disk_ms, "glaux_s3_ms": r.s3_ms, "duckdb_ms": r.duckdb_ms,
            "ratio": r.disk_ms / r.duckdb_ms, "scanned_bytes": r.scanned,
            "results_equal": r.check.is_ok(), "difference": r.check.as_ref().err(),
        })).collect::<Vec<_>>(),
        "total_glaux_disk_ms": g, "total_glaux_s3_ms": s3_total, "total_duckdb_ms": d, "ratio": g / d,
    });
    std::fs::create_dir_all(&args.out).map_err(|e| e.to_string())?;
    std::fs::write(args.out.join("tpch.json"), serde_json::to_string_pretty(&json).unwrap_or_default())
        .map_err(|e| e.to_string())?;
    let mut md = format!(
        "# TPC-H SF{} — glaux vs DuckDB\n\nThe 22 queries on the same Parquet files (tpchgen-cli), median of {} runs, one \
         process after the other in the same run. glaux reads them from disk and from a local S3 server (moto); \
         DuckDB from disk. Ratio = glaux disk / DuckDB. Results compared cell by cell.\n\n\
         | query | glaux disk ms | glaux S3 ms | DuckDB ms | ratio | scanned bytes | results |\n|---|---:|---:|---:|---:|---:|---|\n",
        args.scale, args.runs
    );
    if !args.settings.is_empty() {
        md = md.replacen("\n\n| query", &format!(" Settings: `{}`.\n\n| query", args.settings.join("`, `")), 1);
    }
    for r in table {
        md += &format!(
            "| {} | {:.1} | {} | {:.1} | {:.2} | {} | {} |\n",
            r.name,
            r.disk_ms,
            r.s3_ms.map(|m| format!("{m:.1}")).unwrap_or_else(|| "–".into()),
            r.duckdb_ms,
            r.disk_ms / r.duckdb_ms,
            r.scanned,
            if r.check.is_ok() { "equal" } else { "DIFFERENT" }
        );
    }
    md += &format!(
        "| **total** | {g:.1} | {} | {d:.1} | {:.2} | | |\n",
        s3_total.map(|m| format!("{m:.1}")).unwrap_or_else(|| "–".into()),
        g / d
    );
    std::fs::write(args.out.join("tpch.md"), md).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cells(v: &[&str]) -> Vec<Option<String>> {
        v.iter().map(|s| (*s != "NULL").then(|| s.to_string())).collect()
    }

    #[test]
    fn results_compare_by_value_and_catch_differences() {
        let ours = vec![cells(&["A", "0.050000", "1995-03-15", "NULL"]), cells(&["B", "10", "x", "1"])];
        let theirs = vec![cells(&["A", "0.05", "1995-03-15", "NULL"]), cells(&["B", "10.0", "x", "1"])];
        assert_eq!(compare(&ours, &theirs), Ok(()));
        // rows tied under ORDER BY may come in either order
        assert_eq!(compare(&ours, &[theirs[1].clone(), theirs[0].clone()]), Ok(()));
        assert!(compare(&ours, &theirs[..1]).is_err());
        assert!(compare(&ours, &[cells(&["A", "0.06", "1995-03-15", "NULL"]), theirs[1].clone()]).is_err());
        assert!(compare(&ours, &[cells(&["A", "0.05", "1995-03-15", "0"]), theirs[1].clone()]).is_err());
    }

    #[test]
    fn all_twenty_two_queries_are_there() {
        assert!(
            QUERIES
                .iter()
                .enumerate()
                .all(|(i, (name, sql))| { *name == format!("q{:02}", i + 1) && sql.contains(&format!("Q{}", i + 1)) })
        );
    }
}
