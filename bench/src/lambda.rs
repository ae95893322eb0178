//! The Lambda function: cold start (process start to the first poll of the Runtime API), the
//! first small query, the package's size, and the peak memory of queries over about 1 GB of
//! Parquet with 256 MB of function memory — beside DuckDB running the same queries with the
//! same memory limit.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use glaux_engine::glaux_catalog::{self, CatalogKind};
use glaux_engine::{Engine, EngineConfig};
use glaux_testkit::Guarded;
use glaux_testkit::runtime_api::{Outcome, RuntimeApi};
use serde_json::{Value, json};

use crate::tpch::{median, request};

#[derive(clap::Args)]
pub struct Args {
    /// The `bootstrap` binary (bench/run takes it out of the deployment zip).
    #[arg(long)]
    bootstrap: PathBuf,
    /// The deployment package (`cargo lambda build --profile lambda --output-format zip`).
    #[arg(long)]
    zip: Option<PathBuf>,
    /// TPC-H Parquet (lineitem/, nation/ … as tpchgen-cli writes them).
    #[arg(long)]
    data: PathBuf,
    /// Cold starts to time (the median is reported).
    #[arg(long, default_value_t = 20)]
    starts: usize,
    /// The function memory for the large scans, in MB.
    #[arg(long, default_value_t = 256)]
    memory_mb: u64,
    #[arg(long, default_value = "bench/results")]
    out: PathBuf,
}

const SMALL: &str = "SELECT count(*) AS nations, sum(n_regionkey) AS regions FROM nation";

/// The large scans: a streaming aggregation, a top-N, and a high-cardinality aggregation whose
/// hash table does not fit in the pool and has to spill.
const LARGE: [(&str, &str); 3] = [
    (
        "q1_pricing_summary",
        "SELECT l_returnflag, l_linestatus, sum(l_quantity) AS sum_qty, sum(l_extendedprice * (1 - l_discount)) AS sum_disc_price, avg(l_discount) AS avg_disc, count(*) AS count_order FROM lineitem GROUP BY l_returnflag, l_linestatus ORDER BY l_returnflag, l_linestatus",
    ),
    (
        "top_prices",
        "SELECT l_orderkey, l_linenumber, l_extendedprice FROM lineitem ORDER BY l_extendedprice DESC LIMIT 10",
    ),
    (
        "orders_by_lines",
        "SELECT l_orderkey, count(*) AS lines, sum(l_quantity) AS qty FROM lineitem GROUP BY l_orderkey ORDER BY lines DESC, qty DESC, l_orderkey LIMIT 10",
    ),
];

struct Function {
    api: RuntimeApi,
    child: Guarded,
    started: Instant,
}

impl Function {
    async fn start(args: &Args, warehouse: &Path, data: &Path, memory_mb: u64) -> Result<Self, String> {
        let api = RuntimeApi::start().await.map_err(|e| e.to_string())?;
        let started = Instant::now();
        let child = api
            .function_command(&args.bootstrap, memory_mb)
            .env("AWS_ACCESS_KEY_ID", "bench")
            .env("AWS_SECRET_ACCESS_KEY", "bench")
            .env("GLAUX_CATALOG", "local")
            .env("GLAUX_WAREHOUSE", warehouse)
            .env("GLAUX_SPILL_DIR", warehouse.join("spill"))
            .env("GLAUX_ALLOW_LOCAL_FILES", data)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("{}: {e}", args.bootstrap.display()))?;
        Ok(Self { api, child: Guarded(child), started })
    }

    async fn ready_ms(&self) -> Result<f64, String> {
        let at = self.api.ready(Duration::from_secs(30)).await.ok_or("the function never polled for an event")?;
        Ok(at.duration_since(self.started).as_secs_f64() * 1000.0)
    }

    /// Runs `sql`; returns the milliseconds from invocation to reply, and the reply.
    async fn query(&self, sql: &str) -> Result<(f64, Value), String> {
        let t = Instant::now();
        let reply = match self.api.invoke(json!({"QueryString": sql, "MaxRows": 100}), Duration::from_secs(900)).await {
            Outcome::Response(r) => r,
            Outcome::Error { error_type, body } => return Err(format!("function error {error_type:?}: {body}")),
        };
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        let state = &reply["QueryExecution"]["Status"]["State"];
        if state != "SUCCEEDED" {
            return Err(format!("{sql}: {reply}"));
        }
        Ok((ms, reply))
    }

    /// The process's peak resident memory so far (VmHWM), in MB.
    fn peak_rss_mb(&self) -> Result<f64, String> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).map_err(|e| e.to_string())?;
        let kb: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or("no VmHWM in /proc status")?;
        Ok(kb / 1024.0)
    }
}

fn size_of(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|e| if e.path().is_dir() { size_of(&e.path()) } else { e.metadata().map(|m| m.len()).unwrap_or(0) })
        .sum()
}

/// DuckDB on the same files with the same memory limit: its timings and peak RSS.
fn duckdb(data: &Path, pool_mb: u64) -> Result<Value, String> {
    let queries: Vec<Value> = std::iter::once(("small", SMALL))
        .chain(LARGE.iter().copied())
        .map(|(name, sql)| json!({"name": name, "sql": sql}))
        .collect();
    let script = r#"
import json, resource, sys, time, duckdb
data, pool, queries = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
con = duckdb.connect()
con.execute(f"SET memory_limit='{pool}MB'")
con.execute("SET threads=2")
con.execute("SET enable_progress_bar=false")
for t in ["lineitem", "nation"]:
    con.execute(f"CREATE VIEW {t} AS SELECT * FROM read_parquet('{data}/{t}/*.parquet')")
out = {}
for q in queries:
    t = time.perf_counter()
    rows = con.execute(q["sql"]).fetchall()
    out[q["name"]] = {"ms": (time.perf_counter() - t) * 1000, "rows": len(rows)}
out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"#;
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(data)
        .arg(pool_mb.to_string())
        .arg(Value::Array(queries).to_string())
        .output()
        .map_err(|e| format!("python3: {e}"))?;
    if !out.status.success() {
        return Err(format!("DuckDB: {}", String::from_utf8_lossy(&out.stderr)));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("DuckDB's output: {e}"))
}

pub async fn run(args: Args) -> Result<(), String> {
    let data = args.data.canonicalize().map_err(|e| format!("{}: {e}", args.data.display()))?;
    let warehouse = std::env::temp_dir().join(format!("glaux-bench-lambda-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&warehouse);
    // the tables, in a local catalog the function opens
    let catalog = glaux_catalog::open(CatalogKind::Local, &warehouse).await.map_err(|e| e.to_string())?;
    let engine =
        Engine::new(EngineConfig { catalog: Some(catalog), ..Default::default() }).map_err(|e| e.to_string())?;
    for table in ["lineitem", "nation"] {
        let sql = format!("CREATE EXTERNAL TABLE {table} STORED AS PARQUET LOCATION '{}/{table}/'", data.display());
        engine.run(&request(&sql)).await.map_err(|f| format!("{table}: {}", f.error))?;
    }
    let lineitem_bytes = size_of(&data.join("lineitem"));

    // cold starts and first queries, each in a new process
    let (mut starts, mut firsts) = (vec![], vec![]);
    for _ in 0..args.starts {
        let function = Function::start(&args, &warehouse, &data, 1024).await?;
        starts.push(function.ready_ms().await?);
        firsts.push(function.query(SMALL).await?.0);
    }
    let cold_ms = median(starts.clone());
    let first_ms = median(firsts.clone());
    eprintln!("cold start {cold_ms:.1} ms, first query {first_ms:.1} ms");

    // the large scans in one function with `memory_mb`
    let function = Function::start(&args, &warehouse, &data, args.memory_mb).await?;
    function.ready_ms().await?;
    let mut large = vec![];
    for (name, sql) in LARGE {
        let (ms, reply) = function.query(sql).await?;
        let scanned = reply["QueryExecution"]["Statistics"]["DataScannedInBytes"].as_u64().unwrap_or(0);
        eprintln!("{name}: {ms:.0} ms, {scanned} bytes scanned");
        large.push(json!({"name": name, "ms": ms, "scanned": scanned, "rows": reply["TotalRows"]}));
    }
    let peak = function.peak_rss_mb()?;
    drop(function);
    let pool_mb = args.memory_mb / 2;
    let duck = duckdb(&data, pool_mb)?;
    let zip_bytes = args.zip.as_ref().and_then(|z| std::fs::metadata(z).ok()).map(|m| m.len());
    let binary_bytes = std::fs::metadata(&args.bootstrap).map(|m| m.len()).ok();

    let report = json!({
        "cold_start_ms": {"median": cold_ms, "samples": starts},
        "first_query_ms": {"median": first_ms, "samples": firsts, "sql": SMALL},
        "duckdb_first_query_ms": duck["small"]["ms"],
        "zip_bytes": zip_bytes,
        "bootstrap_bytes": binary_bytes,
        "memory_mb": args.memory_mb,
        "pool_mb": pool_mb,
        "lineitem_bytes": lineitem_bytes,
        "large": large,
        "peak_rss_mb": peak,
        "duckdb": duck,
    });
    std::fs::create_dir_all(&args.out).map_err(|e| e.to_string())?;
    std::fs::write(args.out.join("lambda.json"), serde_json::to_string_pretty(&report).unwrap_or_default())
        .map_err(|e| e.to_string())?;
    let mb = |b: Option<u64>| b.map(|b| format!("{:.1} MB", b as f64 / 1e6)).unwrap_or_else(|| "not built".into());
    let mut md = String::from("# Lambda function\n\n");
    md.push_str(&format!(
        "`bench/run lambda`: `{}` under a Runtime API on loopback, beside DuckDB (Python) on the same files.\n\n",
        args.bootstrap.display()
    ));
    md.push_str("| measure | glaux | target / peer |\n|---|---|---|\n");
    md.push_str(&format!(
        "| cold start (process start → first poll), median of {} | {cold_ms:.1} ms | ≤ 50 ms |\n",
        args.starts
    ));
    md.push_str(&format!(
        "| first small query after a cold start (`{SMALL}`) | {first_ms:.1} ms | DuckDB in a warm process: {:.1} ms |\n",
        duck["small"]["ms"].as_f64().unwrap_or(0.0)
    ));
    md.push_str(&format!("| deployment zip | {} | ≤ 30 MB |\n", mb(zip_bytes)));
    md.push_str(&format!("| bootstrap binary (unzipped) | {} | |\n", mb(binary_bytes)));
    md.push_str(&format!(
        "| peak RSS, the three scans below with {} MB of function memory (pool {pool_mb} MB) | {peak:.0} MB | ≤ {} MB; DuckDB with memory_limit {pool_mb} MB: {:.0} MB |\n\n",
        args.memory_mb,
        args.memory_mb,
        duck["peak_rss_mb"].as_f64().unwrap_or(0.0)
    ));
    md.push_str(&format!("Scans over lineitem ({:.2} GB of Parquet):\n\n", lineitem_bytes as f64 / 1e9));
    md.push_str("| query | glaux ms | DuckDB ms | glaux / DuckDB | bytes scanned |\n|---|---|---|---|---|\n");
    for q in &large {
        let name = q["name"].as_str().unwrap_or_default();
        let (g, d) = (q["ms"].as_f64().unwrap_or(0.0), duck[name]["ms"].as_f64().unwrap_or(f64::NAN));
        md.push_str(&format!("| {name} | {g:.0} | {d:.0} | {:.2}× | {} |\n", g / d, q["scanned"]));
    }
    std::fs::write(args.out.join("lambda.md"), md).map_err(|e| e.to_string())?;
    if peak > args.memory_mb as f64 {
        return Err(format!("peak RSS {peak:.0} MB is over the function's {} MB", args.memory_mb));
    }
    Ok(())
}
