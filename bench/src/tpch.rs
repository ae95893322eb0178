//! TPC-H: the 22 queries the way users run them — tables registered in the catalog with
//! Athena's DDL (the local catalog on disk; Glue with the data on a local S3 server) — beside
//! DataFusion's own ListingTable on the same files in the same engine (what the catalog path
//! costs) and DuckDB on the same files, in one run. Results are checked equal cell by cell; the
//! report gives wall times (median of runs), the ratios and bytes scanned. `--cli` also times
//! whole `glaux query` processes on the catalog tables.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use glaux_engine::arrow::array::RecordBatch;
use glaux_engine::arrow::util::display::{ArrayFormatter, FormatOptions};
use glaux_engine::glaux_catalog::{Catalog, GlueCatalog, LocalCatalog};
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
    /// The Glue catalog's endpoint (a server speaking its API); with --s3-endpoint, a column of
    /// the same tables registered in Glue and read from S3.
    #[arg(long)]
    glue_endpoint: Option<String>,
    /// Also time `glaux query` processes (this binary) on the local catalog's tables.
    #[arg(long, value_name = "GLAUX")]
    cli: Option<PathBuf>,
    /// Where the local catalog keeps the tables (made afresh).
    #[arg(long, default_value = "bench-warehouse")]
    warehouse: PathBuf,
    /// The DuckDB version in use (for the report).
    #[arg(long, default_value = "?")]
    duckdb_version: String,
    /// Only these queries (`q11,q12`; all when none), and no report written: a closer look at a
    /// few with more runs.
    #[arg(long, value_delimiter = ',')]
    query: Vec<String>,
    /// A control run: the ListingTable column becomes a second engine on the same catalog
    /// tables, so its ratio shows how far two equal paths drift apart on this machine (no
    /// report written).
    #[arg(long)]
    control: bool,
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
    register(&engine, root, ddl).await?;
    Ok(engine)
}

async fn register(engine: &Engine, root: &str, ddl: &dyn Fn(&str, &str) -> String) -> Result<(), String> {
    for table in TABLES {
        let sql = ddl(table, &format!("{root}/{table}/"));
        engine.run(&request(&sql)).await.map_err(|f| format!("{table}: {}", f.error))?;
    }
    Ok(())
}

/// An engine over `catalog` whose unqualified names resolve in database `tpch`, as it stands.
fn engine_over(
    s3: S3Settings,
    catalog: Arc<dyn Catalog>,
    cluster: Option<glaux_engine::Cluster>,
) -> Result<Engine, String> {
    let config = EngineConfig {
        s3,
        catalog: Some(catalog),
        database: DATABASE.into(),
        allow_local_files: true,
        cluster,
        ..Default::default()
    };
    Engine::new(config).map_err(|e| e.to_string())
}

/// An engine over `catalog` with database `tpch` holding the eight tables, registered as users
/// register them: Athena's `CREATE EXTERNAL TABLE … STORED AS PARQUET LOCATION` (columns read
/// from the files). With `cluster`, large plans go to its workers.
pub async fn catalog_engine(
    s3: S3Settings,
    catalog: Arc<dyn Catalog>,
    root: &str,
    cluster: Option<glaux_engine::Cluster>,
) -> Result<Engine, String> {
    let engine = engine_over(s3, catalog, cluster)?;
    engine
        .run(&request(&format!("DROP DATABASE IF EXISTS {DATABASE} CASCADE")))
        .await
        .map_err(|f| f.error.to_string())?;
    engine.run(&request(&format!("CREATE DATABASE {DATABASE}"))).await.map_err(|f| f.error.to_string())?;
    let athena = |t: &str, location: &str| {
        format!("CREATE EXTERNAL TABLE {DATABASE}.{t} STORED AS PARQUET LOCATION '{location}'")
    };
    register(&engine, root, &athena).await?;
    // each table's distinct counts, as a team gives its tables column statistics for the
    // optimizer (ANALYZE; Glue's column statistics for Athena's): the planner's estimates use them
    let started = std::time::Instant::now();
    for table in TABLES {
        engine
            .run(&request(&format!("ANALYZE {DATABASE}.{table}")))
            .await
            .map_err(|f| format!("ANALYZE {table}: {}", f.error))?;
    }
    eprintln!("ANALYZE of the {} tables: {:.1} s", TABLES.len(), started.elapsed().as_secs_f64());
    Ok(engine)
}

const DATABASE: &str = "tpch";

/// A result as text, row by row (`None` for NULL), as both engines' answers are compared.
pub type Rows = Vec<Vec<Option<String>>>;

/// Result rows as text, NULL as None.
pub fn rows(batches: &[RecordBatch]) -> Result<Rows, String> {
    let options = FormatOptions::default();
    let mut out = vec![];
    for batch in batches {
        let formatters: Vec<ArrayFormatter> = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?;
        // logical nulls: a NullArray (`SELECT NULL`) has no null buffer, yet every value is NULL
        let nulls: Vec<_> = batch.columns().iter().map(|c| c.logical_nulls()).collect();
        for r in 0..batch.num_rows() {
            out.push(
                nulls
                    .iter()
                    .zip(&formatters)
                    .map(|(n, f)| n.as_ref().is_none_or(|n| n.is_valid(r)).then(|| f.value(r).to_string()))
                    .collect(),
            );
        }
    }
    Ok(out)
}

/// Two cells agree: both NULL, the same text, or numbers equal to within rounding of the
/// engines' decimal and float arithmetic.
pub fn same_cell(a: &Option<String>, b: &Option<String>) -> bool {
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
    catalog_ms: f64,
    listing_ms: f64,
    /// The process's CPU time over the runs (medians), catalog and ListingTable: the work each
    /// path does, without the time it waited (on a shared VM a slowed CPU still shows in both;
    /// `--control` gives the spread of two equal paths)
    catalog_cpu_ms: f64,
    listing_cpu_ms: f64,
    glue_ms: Option<f64>,
    cli_ms: Option<f64>,
    duckdb_ms: f64,
    scanned: u64,
    check: Result<(), String>,
}

/// One run of a query in this process.
struct Run {
    ms: f64,
    /// CPU time of the whole process meanwhile (every runtime thread; nothing else runs then)
    cpu_ms: f64,
    rows: Rows,
    scanned: u64,
}

/// Runs `sql` once: its wall and CPU time, its rows and the bytes it scanned.
async fn measure(engine: &Engine, sql: &str, what: &str) -> Result<Run, String> {
    let (t, cpu) = (Instant::now(), process_cpu_ms());
    let (batches, execution) = engine.run(&request(sql)).await.map_err(|f| format!("{what}: {}", f.error))?;
    let (ms, cpu_ms) = (t.elapsed().as_secs_f64() * 1000.0, process_cpu_ms() - cpu);
    Ok(Run { ms, cpu_ms, rows: rows(&batches)?, scanned: execution.statistics.data_scanned_in_bytes })
}

/// The CPU time this process has used, in ms (every thread, nanosecond resolution).
fn process_cpu_ms() -> f64 {
    let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `t` is a valid timespec for the call to fill
    let ok = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut t) } == 0;
    if ok { t.tv_sec as f64 * 1000.0 + t.tv_nsec as f64 / 1e6 } else { f64::NAN }
}

/// Times `glaux query` processes on the warehouse's tables: the median wall time and the rows
/// printed (CSV lines after the header).
fn measure_cli(glaux: &Path, warehouse: &Path, sql: &str, runs: usize, what: &str) -> Result<(f64, usize), String> {
    use std::io::Write;
    let (mut times, mut lines) = (vec![], 0);
    for _ in 0..runs {
        let t = Instant::now();
        let mut child = std::process::Command::new(glaux)
            .args(["query", "--database", DATABASE, "--format", "csv", "--warehouse"])
            .arg(warehouse)
            .arg("-")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| format!("{}: {e}", glaux.display()))?;
        child.stdin.take().expect("stdin").write_all(sql.as_bytes()).map_err(|e| e.to_string())?;
        let out = child.wait_with_output().map_err(|e| e.to_string())?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        if !out.status.success() {
            return Err(format!("{what} through the CLI: {}", String::from_utf8_lossy(&out.stderr)));
        }
        lines = out.stdout.iter().filter(|b| **b == b'\n').count().saturating_sub(1);
    }
    Ok((median(times), lines))
}

/// The data folder as a location, and an engine with its tables in a new local catalog at
/// `warehouse` (made afresh) — the catalog too, for more engines over the same tables.
pub async fn local_tables(data: &Path, warehouse: &Path) -> Result<(String, Arc<dyn Catalog>, Engine), String> {
    let data = data.canonicalize().map_err(|e| format!("{}: {e}", data.display()))?;
    let root = data.display().to_string();
    let _ = std::fs::remove_dir_all(warehouse);
    let local: Arc<dyn Catalog> =
        Arc::new(LocalCatalog::open(warehouse).map_err(|e| format!("{}: {e}", warehouse.display()))?);
    let engine = catalog_engine(S3Settings::from_env(), Arc::clone(&local), &root, None).await?;
    Ok((root, local, engine))
}

pub async fn run(args: Args) -> Result<(), String> {
    if let Some(unknown) = args.query.iter().find(|q| !QUERIES.iter().any(|(name, _)| name == q)) {
        return Err(format!("--query {unknown}: no such query (q01 … q22)"));
    }
    let (root, local, catalog) = local_tables(&args.data, &args.warehouse).await?;
    // DataFusion's own tables on the same files, in the same engine
    let listing_ddl = |t: &str, location: &str| {
        format!(
            "CREATE EXTERNAL TABLE {t} STORED AS PARQUET LOCATION '{location}' OPTIONS ('format.pushdown_filters' 'false')"
        )
    };
    let listing = if args.control {
        // the catalog engine's tables as they stand: no DDL, no second ANALYZE
        engine_over(S3Settings::from_env(), local, None)?
    } else {
        engine_with_tables(S3Settings::from_env(), &root, &listing_ddl).await?
    };
    let glue = match (&args.s3_endpoint, &args.glue_endpoint) {
        (Some(s3), Some(glue)) => {
            // SAFETY: set before any other thread reads the environment (the engines above
            // were built with their settings already read)
            unsafe {
                std::env::set_var("AWS_ENDPOINT_URL_GLUE", glue);
                std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
                std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
                std::env::set_var("AWS_REGION", "us-east-1");
            }
            let glue_catalog: Arc<dyn Catalog> = Arc::new(GlueCatalog::from_env().await);
            let root = format!("s3://{}/{}", args.bucket, args.prefix);
            Some(catalog_engine(s3_settings(s3), glue_catalog, root.trim_end_matches('/'), None).await?)
        }
        _ => None,
    };
    for setting in &args.settings {
        let (key, value) = setting.split_once('=').ok_or_else(|| format!("--set {setting}: expected KEY=VALUE"))?;
        for engine in [&catalog, &listing].into_iter().chain(&glue) {
            engine
                .run(&request(&format!("SET {key} = '{value}'")))
                .await
                .map_err(|f| format!("--set {setting}: {}", f.error))?;
        }
    }
    let mut duckdb = DuckDbProcess::start(Path::new(&root))?;
    let mut table = vec![];
    for (i, &(name, sql)) in QUERIES.iter().enumerate() {
        if !args.query.is_empty() && !args.query.iter().any(|q| q == name) {
            continue;
        }
        // each engine takes its runs of the query back to back, then the next engine's, DuckDB's
        // last: every engine meets the machine within seconds of the others (its pace drifts by a
        // tenth within minutes) and each runs warm from its own previous run, as DuckDB does when
        // it runs alone (taking turns run by run slowed DuckDB by a quarter at SF1). glaux's
        // catalog and ListingTable paths, one engine in one process, each first run the query
        // once untimed, then take their runs in four blocks, A B B A, A alternating from query to
        // query: the machine's pace drifts within a query's runs (q01, the process's first query:
        // 1.16-1.20 with the catalog's block first, 0.95 with ListingTable's, plans and scans
        // equal), and A B B A gives both paths the same share of early and late runs. Without the
        // warm-up the first path took the query's warm-up for both (SF1: catalog / ListingTable
        // 1.03, where one `glaux query` shows none); taking turns run by run cost whichever path
        // a query's scans favour less (q09 at SF1: 1.03-1.09 in turns against 1.015 in blocks,
        // plans and operator times equal)
        let (mut catalog_runs, mut listing_runs, mut glue_runs, mut their_ms) = (vec![], vec![], vec![], vec![]);
        let (mut catalog_cpu, mut listing_cpu) = (vec![], vec![]);
        let (mut result, mut listing_result, mut their_rows, mut scanned) = (vec![], vec![], vec![], 0);
        measure(&catalog, sql, name).await?;
        measure(&listing, sql, name).await?;
        let (early, late) = (args.runs.div_ceil(2), args.runs / 2);
        let blocks = [(true, early), (false, late), (false, early), (true, late)];
        for (first_path, runs) in blocks {
            for _ in 0..runs {
                if first_path == (i % 2 == 0) {
                    let run = measure(&catalog, sql, name).await?;
                    (result, scanned) = (run.rows, run.scanned);
                    catalog_runs.push(run.ms);
                    catalog_cpu.push(run.cpu_ms);
                } else {
                    let run = measure(&listing, sql, name).await?;
                    listing_result = run.rows;
                    listing_runs.push(run.ms);
                    listing_cpu.push(run.cpu_ms);
                }
            }
        }
        if let Some(glue) = &glue {
            for _ in 0..args.runs {
                glue_runs.push(measure(glue, sql, name).await?.ms);
            }
        }
        for _ in 0..args.runs {
            let (ms, rows) = duckdb.run(name)?;
            their_ms.push(ms);
            their_rows = rows;
        }
        let (catalog_ms, listing_ms) = (median(catalog_runs), median(listing_runs));
        let glue_ms = (!glue_runs.is_empty()).then(|| median(glue_runs));
        let mut check = compare(&result, &their_rows).and_then(|_| compare(&listing_result, &their_rows));
        let cli_ms = match &args.cli {
            Some(glaux) => {
                let (ms, lines) = measure_cli(glaux, &args.warehouse, sql, args.runs, name)?;
                if check.is_ok() && lines != their_rows.len() {
                    check = Err(format!("the CLI printed {lines} rows, DuckDB gave {}", their_rows.len()));
                }
                Some(ms)
            }
            None => None,
        };
        let (catalog_cpu_ms, listing_cpu_ms) = (median(catalog_cpu), median(listing_cpu));
        let duckdb_ms = median(their_ms);
        let row = Row {
            name,
            catalog_ms,
            listing_ms,
            catalog_cpu_ms,
            listing_cpu_ms,
            glue_ms,
            cli_ms,
            duckdb_ms,
            scanned,
            check,
        };
        println!(
            "{name}  catalog {:8.1} ms  ListingTable {:8.1} ms ({:.2}, CPU {:.2})  Glue+S3 {:>10}  CLI {:>10}  duckdb {:8.1} ms  ratio {:.2}  scanned {:>12}  {}",
            row.catalog_ms,
            row.listing_ms,
            row.catalog_ms / row.listing_ms,
            row.catalog_cpu_ms / row.listing_cpu_ms,
            row.glue_ms.map(|m| format!("{m:.1} ms")).unwrap_or_default(),
            row.cli_ms.map(|m| format!("{m:.1} ms")).unwrap_or_default(),
            row.duckdb_ms,
            row.catalog_ms / row.duckdb_ms,
            row.scanned,
            row.check.as_ref().map(|_| "equal".to_string()).unwrap_or_else(|e| format!("DIFFERENT: {e}"))
        );
        table.push(row);
    }
    if args.query.is_empty() && !args.control {
        write_reports(&args, &table)?;
    }
    let wrong: Vec<&str> = table.iter().filter(|r| r.check.is_err()).map(|r| r.name).collect();
    if wrong.is_empty() { Ok(()) } else { Err(format!("results differ from DuckDB's for {wrong:?}")) }
}

/// `bench/tpch_duckdb.py` on the TPC-H files under `data`, in `mode` (a run count, or
/// `requests`).
fn duckdb_script(data: &Path, mode: &str) -> std::process::Command {
    let bench = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut command = std::process::Command::new("python3");
    command.arg(bench.join("tpch_duckdb.py")).arg(data).arg(bench.join("tpch")).arg(mode);
    command
}

/// DuckDB on the same files in a process of its own, running one query each time it is asked.
struct DuckDbProcess {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    stdout: std::io::BufReader<std::process::ChildStdout>,
}

impl DuckDbProcess {
    fn start(data: &Path) -> Result<Self, String> {
        let mut child = duckdb_script(data, "requests")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| format!("python3: {e}"))?;
        let stdin = child.stdin.take().ok_or("DuckDB's stdin")?;
        let stdout = std::io::BufReader::new(child.stdout.take().ok_or("DuckDB's stdout")?);
        Ok(Self { child, stdin, stdout })
    }

    /// One run of query `name`: its time in ms (as DuckDB's process measured it) and its rows.
    fn run(&mut self, name: &str) -> Result<(f64, Rows), String> {
        use std::io::{BufRead, Write};
        writeln!(self.stdin, "{name}").and_then(|_| self.stdin.flush()).map_err(|e| format!("DuckDB, {name}: {e}"))?;
        let mut line = String::new();
        self.stdout.read_line(&mut line).map_err(|e| format!("DuckDB, {name}: {e}"))?;
        if line.is_empty() {
            let status = self.child.try_wait().ok().flatten();
            return Err(format!("DuckDB stopped at {name} ({status:?}); its errors are above"));
        }
        let bad = |e: String| format!("DuckDB's answer to {name}: {e}");
        let mut run: serde_json::Value = serde_json::from_str(&line).map_err(|e| bad(e.to_string()))?;
        let ms = run["ms"].as_f64().ok_or_else(|| bad("no time".into()))?;
        let rows = serde_json::from_value(run["rows"].take()).map_err(|e| bad(e.to_string()))?;
        Ok((ms, rows))
    }
}

/// Runs DuckDB on the same files (bench/tpch_duckdb.py): per query its times and rows (the
/// answers the distributed suite's tests compare with).
#[cfg(test)]
pub fn duckdb(data: &Path, runs: usize) -> Result<serde_json::Value, String> {
    let out = duckdb_script(data, &runs.to_string()).output().map_err(|e| format!("python3: {e}"))?;
    if !out.status.success() {
        return Err(format!("DuckDB: {}", String::from_utf8_lossy(&out.stderr)));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("DuckDB's output: {e}"))
}

fn write_reports(args: &Args, table: &[Row]) -> Result<(), String> {
    let total = |f: &dyn Fn(&Row) -> f64| table.iter().map(f).sum::<f64>();
    let optional = |f: &dyn Fn(&Row) -> Option<f64>| table.iter().map(f).sum::<Option<f64>>();
    let (c, l, d) = (total(&|r| r.catalog_ms), total(&|r| r.listing_ms), total(&|r| r.duckdb_ms));
    let (c_cpu, l_cpu) = (total(&|r| r.catalog_cpu_ms), total(&|r| r.listing_cpu_ms));
    let (g, cli) = (optional(&|r| r.glue_ms), optional(&|r| r.cli_ms));
    let machine = machine();
    let json = serde_json::json!({
        "suite": "tpch", "scale": args.scale, "runs": args.runs, "settings": args.settings,
        "duckdb_version": args.duckdb_version, "machine": machine,
        "queries": table.iter().map(|r| serde_json::json!({
            "query": r.name, "glaux_catalog_ms": r.catalog_ms, "glaux_listing_ms": r.listing_ms,
            "glaux_glue_s3_ms": r.glue_ms, "glaux_cli_ms": r.cli_ms, "duckdb_ms": r.duckdb_ms,
            "catalog_vs_listing": r.catalog_ms / r.listing_ms,
            "glaux_catalog_cpu_ms": r.catalog_cpu_ms, "glaux_listing_cpu_ms": r.listing_cpu_ms,
            "catalog_vs_listing_cpu": r.catalog_cpu_ms / r.listing_cpu_ms, "ratio": r.catalog_ms / r.duckdb_ms,
            "scanned_bytes": r.scanned, "results_equal": r.check.is_ok(), "difference": r.check.as_ref().err(),
        })).collect::<Vec<_>>(),
        "total_glaux_catalog_ms": c, "total_glaux_listing_ms": l, "total_glaux_glue_s3_ms": g,
        "total_glaux_cli_ms": cli, "total_duckdb_ms": d, "catalog_vs_listing": c / l,
        "total_glaux_catalog_cpu_ms": c_cpu, "total_glaux_listing_cpu_ms": l_cpu, "catalog_vs_listing_cpu": c_cpu / l_cpu,
        "ratio": c / d,
    });
    std::fs::create_dir_all(&args.out).map_err(|e| e.to_string())?;
    let name = format!("tpch-sf{}", args.scale);
    std::fs::write(args.out.join(format!("{name}.json")), serde_json::to_string_pretty(&json).unwrap_or_default())
        .map_err(|e| e.to_string())?;
    let ms = |m: Option<f64>| m.map(|m| format!("{m:.1}")).unwrap_or_else(|| "–".into());
    let mut md = format!(
        "# TPC-H SF{} — glaux vs DuckDB {}\n\nThe 22 queries on the same Parquet files (tpchgen-cli), median of {} runs; \
         query by query, each way of running it takes its runs back to back, then the next (glaux's catalog and \
         ListingTable after one untimed run of each, in four blocks A B B A, A alternating from query to query; Glue + S3, DuckDB, then the CLI). **glaux catalog**: the tables registered in the local catalog with \
         Athena's `CREATE EXTERNAL TABLE … STORED AS PARQUET LOCATION` and analyzed (`ANALYZE`: each column's \
         distinct count, which the planner's estimates use), run through the engine as `glaux query` and \
         `glaux serve` run them (ratio = this / DuckDB). **ListingTable**: the same files as DataFusion's own \
         tables in the same engine (`… OPTIONS (…)`, no distinct counts), to show what the catalog path costs; \
         **CPU**: the same ratio of the process's CPU time (medians), the work each path does without the \
         time it waited (a slowed CPU still shows in it; the control run, `GLAUX_BENCH_CONTROL=1`, gives \
         the spread of two equal paths). **Glue + S3**: the \
         tables in Glue and the files on a local S3 server (moto), which measures that server as much as glaux. \
         **CLI**: whole `glaux query` processes on the catalog tables. DuckDB reads the files with `read_parquet`. \
         Results compared cell by cell.\n\n\
         | query | glaux catalog ms | ListingTable ms | catalog / ListingTable | CPU | Glue + S3 ms | CLI ms | DuckDB ms | glaux / DuckDB | scanned bytes | results |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n",
        args.scale, args.duckdb_version, args.runs
    );
    md = md.replacen("\n\n| query", &format!(" Machine: {machine}.\n\n| query"), 1);
    if !args.settings.is_empty() {
        md = md.replacen("\n\n| query", &format!(" Settings: `{}`.\n\n| query", args.settings.join("`, `")), 1);
    }
    for r in table {
        md += &format!(
            "| {} | {:.1} | {:.1} | {:.2} | {:.2} | {} | {} | {:.1} | {:.2} | {} | {} |\n",
            r.name,
            r.catalog_ms,
            r.listing_ms,
            r.catalog_ms / r.listing_ms,
            r.catalog_cpu_ms / r.listing_cpu_ms,
            ms(r.glue_ms),
            ms(r.cli_ms),
            r.duckdb_ms,
            r.catalog_ms / r.duckdb_ms,
            r.scanned,
            if r.check.is_ok() { "equal" } else { "DIFFERENT" }
        );
    }
    md += &format!(
        "| **total** | {c:.1} | {l:.1} | {:.2} | {:.2} | {} | {} | {d:.1} | {:.2} | | |\n",
        c / l,
        c_cpu / l_cpu,
        ms(g),
        ms(cli),
        c / d
    );
    std::fs::write(args.out.join(format!("{name}.md")), md).map_err(|e| e.to_string())
}

/// The CPU the figures come from and the instructions glaux was built to use, since both move them.
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name").and_then(|v| v.split_once(':')).map(|(_, v)| v.trim().to_string()))
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let features = glaux_engine::build_cpu_features();
    let build = if features.is_empty() { "the baseline instruction set".to_string() } else { features.join(", ") };
    format!("{model}, {cores} cores; glaux built for {build}")
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
