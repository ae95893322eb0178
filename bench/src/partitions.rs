//! Partition pruning at scale: a table of 10,000 partitions queried for one of them, from the
//! local catalog, from Glue (a server speaking its API) and with partition projection, beside
//! DuckDB's `read_parquet(…, hive_partitioning = true)` over the same files in the same run.
//!
//! The data (`p=00000/ … p=09999/`, one small Parquet file each) is written by bench/run.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use glaux_engine::glaux_catalog::{Catalog, GlueCatalog, LocalCatalog, Partition, StorageDescriptor};
use glaux_engine::{Engine, EngineConfig};

use crate::tpch::{median, request};

#[derive(clap::Args)]
pub struct Args {
    /// Directory holding `p=NNNNN/data.parquet` for NNNNN in 0..partitions.
    #[arg(long)]
    data: PathBuf,
    #[arg(long, default_value_t = 10_000)]
    partitions: usize,
    /// Also measure the Glue catalog (AWS_ENDPOINT_URL_GLUE / AWS_ENDPOINT_URL must name a server).
    #[arg(long)]
    glue: bool,
    #[arg(long, default_value_t = 7)]
    runs: usize,
    #[arg(long, default_value = "bench/results")]
    out: PathBuf,
}

/// The partition every query asks for; each file holds ten rows with v = p * 10 + row.
/// The partition the query picks: the same share of the way through for every N.
fn pick(n: usize) -> usize {
    n * 4242 / 10_000
}

fn columns_ddl(name: &str, location: &str, properties: &str) -> String {
    format!(
        "CREATE EXTERNAL TABLE IF NOT EXISTS {name} (k bigint, v bigint) PARTITIONED BY (p string) STORED AS PARQUET LOCATION '{location}' {properties}"
    )
}

/// Registers the partitions through the catalog API (a 10,000-partition ALTER TABLE is no fun).
async fn register(catalog: &dyn Catalog, db: &str, table: &str, data: &str, n: usize) -> Result<(), String> {
    let existing = catalog.get_partitions(db, table, None).await.map_err(|e| e.to_string())?.len();
    if existing == n {
        return Ok(());
    }
    let partitions = (0..n)
        .map(|i| Partition {
            values: vec![format!("{i:05}")],
            storage_descriptor: Some(StorageDescriptor {
                location: Some(format!("{data}/p={i:05}/")),
                ..Default::default()
            }),
            ..Default::default()
        })
        .collect();
    catalog.add_partitions(db, table, partitions, true).await.map_err(|e| e.to_string())?;
    Ok(())
}

struct Measured {
    name: &'static str,
    planning_ms: f64,
    total_ms: f64,
    scanned: u64,
    answer: String,
}

async fn measure(name: &'static str, engine: &Engine, sql: &str, runs: usize) -> Result<Measured, String> {
    let (mut planning, mut total, mut scanned, mut answer) = (vec![], vec![], 0, String::new());
    for _ in 0..runs {
        let t = Instant::now();
        let (batches, execution) = engine.run(&request(sql)).await.map_err(|f| format!("{name}: {}", f.error))?;
        total.push(t.elapsed().as_secs_f64() * 1000.0);
        planning.push(execution.statistics.query_planning_time_in_millis as f64);
        scanned = execution.statistics.data_scanned_in_bytes;
        let table = glaux_engine::arrow::util::pretty::pretty_format_batches(&batches).map_err(|e| e.to_string())?;
        // the one result row's values, e.g. "10, 424245"
        let row = table.to_string().lines().nth(3).unwrap_or_default().to_string();
        answer = row.split('|').map(str::trim).filter(|v| !v.is_empty()).collect::<Vec<_>>().join(", ");
    }
    Ok(Measured { name, planning_ms: median(planning), total_ms: median(total), scanned, answer })
}

/// DuckDB on the same files: median wall time of the same query, and its answer.
fn duckdb(data: &str, runs: usize, pick: usize) -> Result<(f64, String), String> {
    let script = format!(
        r#"
import duckdb, json, time
con = duckdb.connect()
sql = "SELECT count(*), sum(v) FROM read_parquet('{data}/*/*.parquet', hive_partitioning = true) WHERE p = {pick}"
times, answer = [], None
for _ in range({runs}):
    t = time.perf_counter()
    answer = con.sql(sql).fetchall()[0]
    times.append((time.perf_counter() - t) * 1000)
times.sort()
print(json.dumps({{"ms": times[len(times) // 2], "answer": [int(x) for x in answer]}}))
"#
    );
    let out = Command::new("python3").arg("-c").arg(script).output().map_err(|e| format!("python3: {e}"))?;
    if !out.status.success() {
        return Err(format!("duckdb: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
    Ok((v["ms"].as_f64().unwrap_or(0.0), v["answer"].to_string()))
}

pub async fn run(args: Args) -> Result<(), String> {
    let data = args.data.canonicalize().map_err(|e| format!("{}: {e}", args.data.display()))?;
    let data = data.display().to_string();
    let n = args.partitions;
    let warehouse = std::env::temp_dir().join(format!("glaux-bench-partitions-{}", std::process::id()));
    let local: Arc<dyn Catalog> = Arc::new(LocalCatalog::open(&warehouse).map_err(|e| e.to_string())?);
    let projection = format!(
        "TBLPROPERTIES ('projection.enabled'='true', 'projection.p.type'='integer', 'projection.p.range'='0,{}', 'projection.p.digits'='5')",
        n - 1
    );
    let local_engine = Engine::new(EngineConfig { catalog: Some(Arc::clone(&local)), ..Default::default() })
        .map_err(|e| e.to_string())?;
    for sql in [columns_ddl("parts", &data, ""), columns_ddl("parts_projected", &data, &projection)] {
        local_engine.run(&request(&sql)).await.map_err(|f| f.error.to_string())?;
    }
    register(local.as_ref(), "default", "parts", &data, n).await?;
    let pick = pick(n);
    let query = |table: &str| format!("SELECT count(*), sum(v) FROM {table} WHERE p = '{pick:05}'");
    let mut results = vec![
        measure("local catalog", &local_engine, &query("parts"), args.runs).await?,
        measure("projection", &local_engine, &query("parts_projected"), args.runs).await?,
    ];
    if args.glue {
        let glue: Arc<dyn Catalog> = Arc::new(GlueCatalog::from_env().await);
        let engine = Engine::new(EngineConfig { catalog: Some(Arc::clone(&glue)), ..Default::default() })
            .map_err(|e| e.to_string())?;
        engine.run(&request("CREATE DATABASE IF NOT EXISTS default")).await.map_err(|f| f.error.to_string())?;
        engine.run(&request(&columns_ddl("parts", &data, ""))).await.map_err(|f| f.error.to_string())?;
        register(glue.as_ref(), "default", "parts", &data, n).await?;
        results.push(measure("glue catalog", &engine, &query("parts"), args.runs).await?);
    }
    let (duck_ms, duck_answer) = duckdb(&data, args.runs, pick)?;
    let _ = std::fs::remove_dir_all(&warehouse);

    let numbers = |s: &str| -> Vec<String> {
        s.split(|c: char| !c.is_ascii_digit()).filter(|t| !t.is_empty()).map(str::to_string).collect()
    };
    for m in &results {
        if numbers(&m.answer) != numbers(&duck_answer) {
            return Err(format!("{}: glaux answered {}, DuckDB {duck_answer}", m.name, m.answer));
        }
    }
    let expected = format!("10 and {}", (0..10).map(|r| pick * 10 + r).sum::<usize>());
    let mut md = format!(
        "# Partition pruning: one partition of {n}\n\nQuery: `SELECT count(*), sum(v) FROM t WHERE p = '{pick:05}'` (expected {expected}); median of {} runs. DuckDB: `read_parquet('…/*/*.parquet', hive_partitioning = true)`, {duck_ms:.1} ms, answer {duck_answer}.\n\n| catalog | planning ms | total ms | total / DuckDB | scanned bytes | answer |\n|---|---:|---:|---:|---:|---|\n",
        args.runs
    );
    let mut rows = vec![];
    for m in &results {
        println!(
            "{:14} planning {:7.1} ms  total {:7.1} ms  ratio to duckdb {:.3}  scanned {} B  {}",
            m.name,
            m.planning_ms,
            m.total_ms,
            m.total_ms / duck_ms,
            m.scanned,
            m.answer
        );
        md += &format!(
            "| {} | {:.1} | {:.1} | {:.3} | {} | `{}` |\n",
            m.name,
            m.planning_ms,
            m.total_ms,
            m.total_ms / duck_ms,
            m.scanned,
            m.answer
        );
        rows.push(serde_json::json!({"catalog": m.name, "planning_ms": m.planning_ms, "total_ms": m.total_ms, "ratio_to_duckdb": m.total_ms / duck_ms, "scanned_bytes": m.scanned, "answer": m.answer}));
    }
    println!("duckdb         total {duck_ms:7.1} ms  {duck_answer}");
    let json = serde_json::json!({"suite": "partitions", "partitions": n, "runs": args.runs, "duckdb_ms": duck_ms, "duckdb_answer": duck_answer, "glaux": rows});
    std::fs::create_dir_all(&args.out).map_err(|e| e.to_string())?;
    std::fs::write(
        args.out.join(format!("partitions-{n}.json")),
        serde_json::to_string_pretty(&json).unwrap_or_default(),
    )
    .map_err(|e| e.to_string())?;
    std::fs::write(args.out.join(format!("partitions-{n}.md")), md).map_err(|e| e.to_string())
}
