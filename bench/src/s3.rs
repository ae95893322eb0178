//! Reading Parquet from S3: requests, bytes and time of glaux and DuckDB's httpfs on the same
//! objects of the same S3 server, both through one counting proxy that can add a round trip to
//! every request. Each run starts cold (a new engine, a new DuckDB connection), as a CLI call or a
//! Lambda invocation does.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use glaux_engine::glaux_catalog::{Catalog, LocalCatalog};
use glaux_engine::{Engine, EngineConfig};
use glaux_testkit::proxy::CountingProxy;

use crate::tpch::{QUERIES, median, request, s3_settings};

#[derive(clap::Args)]
pub struct Args {
    /// The S3 server holding s3://BUCKET/lineitem/ (bench/run starts one and uploads it).
    #[arg(long)]
    endpoint: String,
    #[arg(long, default_value = "bench-s3")]
    bucket: String,
    /// A Python with duckdb and its httpfs extension (bench/run makes one).
    #[arg(long)]
    duckdb_python: PathBuf,
    /// The DuckDB version in use (for the report).
    #[arg(long, default_value = "?")]
    duckdb_version: String,
    /// Added latency per request, in milliseconds; one pass each.
    #[arg(long, value_delimiter = ',', default_value = "0,20")]
    latency: Vec<u64>,
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Where the local catalog keeps the table (made afresh).
    #[arg(long, default_value = "bench-warehouse-s3")]
    warehouse: PathBuf,
    #[arg(long, default_value = "1")]
    scale: String,
    #[arg(long, default_value = "bench/results")]
    out: PathBuf,
    /// Only the queries whose names contain one of these (all when none; the report is then
    /// printed, not written).
    #[arg(long, value_delimiter = ',')]
    query: Vec<String>,
}

/// The queries: one column of sixteen, a few columns with a filter, a point lookup that row
/// group statistics can answer, and two TPC-H queries over lineitem alone.
fn queries() -> Vec<(&'static str, String)> {
    let tpch =
        |name: &str| QUERIES.iter().find(|(n, _)| *n == name).map(|(_, sql)| sql.to_string()).unwrap_or_default();
    vec![
        ("one column", "SELECT sum(l_quantity) FROM lineitem".into()),
        ("three columns, filtered", "SELECT l_shipmode, count(*), sum(l_extendedprice) FROM lineitem WHERE l_discount > 0.05 GROUP BY l_shipmode ORDER BY 1".into()),
        ("point lookup", "SELECT l_partkey, l_quantity FROM lineitem WHERE l_orderkey = 4000000 ORDER BY 1".into()),
        ("q01", tpch("q01")),
        ("q06", tpch("q06")),
    ]
}

struct Measure {
    ms: f64,
    bytes: u64,
    requests: u64,
}

struct Row {
    query: &'static str,
    latency: u64,
    glaux: Measure,
    duckdb: Measure,
}

pub async fn run(args: Args) -> Result<(), String> {
    let proxy = CountingProxy::start(&args.endpoint).await;
    let location = format!("s3://{}/lineitem/", args.bucket);
    let mut rows = vec![];
    for &latency in &args.latency {
        proxy.set_latency(latency);
        for (name, sql) in queries() {
            if !args.query.is_empty() && !args.query.iter().any(|q| name.contains(q.as_str())) {
                continue;
            }
            let mut glaux = vec![];
            for _ in 0..args.runs {
                // a cold engine each run, as a `glaux query` process
                let _ = std::fs::remove_dir_all(&args.warehouse);
                let engine = || {
                    let catalog: Arc<dyn Catalog> =
                        Arc::new(LocalCatalog::open(&args.warehouse).map_err(|e| e.to_string())?);
                    Engine::new(EngineConfig {
                        s3: s3_settings(&proxy.endpoint),
                        catalog: Some(catalog),
                        ..Default::default()
                    })
                    .map_err(|e| e.to_string())
                };
                // the table goes to the catalog from one engine (which reads a footer for the
                // columns) and the query runs on another, which starts with nothing cached
                let ddl = format!("CREATE EXTERNAL TABLE lineitem STORED AS PARQUET LOCATION '{location}'");
                engine()?.run(&request(&ddl)).await.map_err(|f| f.error.to_string())?;
                let engine = engine()?;
                proxy.counts.reset();
                let t = Instant::now();
                let (_, execution) = engine.run(&request(&sql)).await.map_err(|f| format!("{name}: {}", f.error))?;
                let ms = t.elapsed().as_secs_f64() * 1000.0;
                let bytes = proxy.counts.total();
                if execution.statistics.data_scanned_in_bytes != bytes {
                    return Err(format!(
                        "{name}: glaux reported {} bytes scanned, the server sent {bytes}",
                        execution.statistics.data_scanned_in_bytes
                    ));
                }
                glaux.push(Measure { ms, bytes, requests: proxy.counts.gets() });
            }
            let mut duckdb = vec![];
            for _ in 0..args.runs {
                proxy.counts.reset();
                let ms = duckdb_run(&args, &proxy.endpoint, &sql)?;
                duckdb.push(Measure { ms, bytes: proxy.counts.total(), requests: proxy.counts.gets() });
            }
            let row = Row { query: name, latency, glaux: summarize(glaux), duckdb: summarize(duckdb) };
            println!(
                "{:>3} ms  {name:<24} glaux {:8.1} ms {:>4} requests {:>11} bytes | DuckDB {:8.1} ms {:>4} requests {:>11} bytes",
                latency,
                row.glaux.ms,
                row.glaux.requests,
                row.glaux.bytes,
                row.duckdb.ms,
                row.duckdb.requests,
                row.duckdb.bytes
            );
            rows.push(row);
        }
    }
    proxy.set_latency(0);
    if !args.query.is_empty() {
        return Ok(());
    }
    write_reports(&args, &rows)
}

/// The median time; requests and bytes of the last run (they do not vary between cold runs).
fn summarize(runs: Vec<Measure>) -> Measure {
    let last = runs.last().map(|m| (m.bytes, m.requests)).unwrap_or_default();
    Measure { ms: median(runs.iter().map(|m| m.ms).collect()), bytes: last.0, requests: last.1 }
}

/// One cold DuckDB run through the proxy (bench/s3_duckdb.py): its query time in ms.
fn duckdb_run(args: &Args, endpoint: &str, sql: &str) -> Result<f64, String> {
    let script = crate::bench_file("s3_duckdb.py");
    let out = std::process::Command::new(&args.duckdb_python)
        .arg(script)
        .arg(endpoint)
        .arg(format!("s3://{}/lineitem/*.parquet", args.bucket))
        .arg(sql)
        .output()
        .map_err(|e| format!("{}: {e}", args.duckdb_python.display()))?;
    if !out.status.success() {
        return Err(format!("DuckDB: {}", String::from_utf8_lossy(&out.stderr)));
    }
    String::from_utf8_lossy(&out.stdout).trim().parse().map_err(|e| format!("DuckDB's output: {e}"))
}

fn write_reports(args: &Args, rows: &[Row]) -> Result<(), String> {
    let json = serde_json::json!({
        "suite": "s3", "scale": args.scale, "runs": args.runs, "duckdb_version": args.duckdb_version,
        "rows": rows.iter().map(|r| serde_json::json!({
            "query": r.query, "latency_ms": r.latency,
            "glaux_ms": r.glaux.ms, "glaux_requests": r.glaux.requests, "glaux_bytes": r.glaux.bytes,
            "duckdb_ms": r.duckdb.ms, "duckdb_requests": r.duckdb.requests, "duckdb_bytes": r.duckdb.bytes,
        })).collect::<Vec<_>>(),
    });
    std::fs::create_dir_all(&args.out).map_err(|e| e.to_string())?;
    std::fs::write(args.out.join("s3.json"), serde_json::to_string_pretty(&json).unwrap_or_default())
        .map_err(|e| e.to_string())?;
    let mut md = format!(
        "# Parquet from S3 — glaux vs DuckDB {} (httpfs)\n\nTPC-H SF{} `lineitem` (tpchgen-cli, four files) on a local \
         S3 server (s3s-fs), read through a proxy that counts the object bytes and GET requests the server answered \
         and adds a round trip to every request. Each run is cold: a new glaux engine with the table in its local \
         catalog (put there by another engine, so nothing is cached), a new DuckDB connection reading \
         `read_parquet('s3://…')`. Time is the median of {} runs; bytes and requests are the server's count (glaux's \
         DataScannedInBytes equals it in every run). s3s-fs is slow to answer ranged reads (seconds for a few \
         megabytes), so times measure the server as much as the two clients; requests and bytes do not depend on it. \
         Both read each footer with one 64 KiB request. Where the filters rule out some row groups and keep \
         others (the point lookup), glaux also reads the kept file's page index (the part the footer's read did not \
         bring) and then the pages that can match, each column's dictionary and page together with the next \
         column's, where DuckDB reads whole column chunks; where they rule out none (the filtered scans), glaux \
         reads no page index and the same chunks as DuckDB, merged into fewer requests.\n\n\
         | added latency | query | glaux ms | DuckDB ms | time ratio | glaux requests | DuckDB requests | glaux bytes | DuckDB bytes | bytes ratio |\n\
         |---:|---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        args.duckdb_version, args.scale, args.runs
    );
    for r in rows {
        md += &format!(
            "| {} ms | {} | {:.1} | {:.1} | {:.2} | {} | {} | {} | {} | {:.2} |\n",
            r.latency,
            r.query,
            r.glaux.ms,
            r.duckdb.ms,
            r.glaux.ms / r.duckdb.ms,
            r.glaux.requests,
            r.duckdb.requests,
            r.glaux.bytes,
            r.duckdb.bytes,
            r.glaux.bytes as f64 / r.duckdb.bytes.max(1) as f64
        );
    }
    std::fs::write(args.out.join("s3.md"), md).map_err(|e| e.to_string())
}
