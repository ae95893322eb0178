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
    /// Runs per query of Glue + S3 and the CLI, after the rounds (the median is reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Rounds over the queries: in each, four runs of each query on the catalog path and
    /// ListingTable (A B B A), then DuckDB's; each query's ratio is the median of its rounds'.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..))]
    rounds: u16,
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
    paired: Paired,
    glue_ms: Option<f64>,
    cli_ms: Option<f64>,
    check: Result<(), String>,
}

/// A median and the 95% interval it lies in (distribution-free: order statistics of the
/// samples, as the binomial distribution places them).
#[derive(Clone, Copy, Debug, PartialEq)]
struct Interval {
    median: f64,
    low: f64,
    high: f64,
}

impl Interval {
    /// The median of `xs` and the interval between the order statistics at ranks k and n+1-k,
    /// k the largest with P(Binomial(n, ½) < k) ≤ 2.5%: the sample median's 95% confidence
    /// interval, whatever the distribution (too few samples give the whole range).
    fn of(mut xs: Vec<f64>) -> Self {
        xs.sort_by(f64::total_cmp);
        let n = xs.len();
        let mut below = 0.0; // P(Binomial(n, ½) < k)
        let mut k = 0; // the rank, 0 for none yet
        let mut choose = 1.0; // C(n, k)
        while k < n / 2 {
            below += choose / 2f64.powi(n as i32);
            if below > 0.025 {
                break;
            }
            choose = choose * (n - k) as f64 / (k + 1) as f64;
            k += 1;
        }
        let k = k.max(1);
        Self { median: xs[n / 2], low: xs[k - 1], high: xs[n - k] }
    }
}

impl std::fmt::Display for Interval {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.3} ({:.3}–{:.3})", self.median, self.low, self.high)
    }
}

/// One query on the catalog path beside ListingTable over the rounds: each path's median run
/// and the ratio catalog / ListingTable round by round (wall and process CPU time).
struct Paired {
    catalog_ms: f64,
    listing_ms: f64,
    /// The process's CPU time over the runs (medians), catalog and ListingTable: the work each
    /// path does, without the time it waited (on a shared VM a slowed CPU still shows in both;
    /// `--control` gives the spread of two equal paths)
    catalog_cpu_ms: f64,
    listing_cpu_ms: f64,
    wall: Interval,
    cpu: Interval,
    catalog_rows: Rows,
    listing_rows: Rows,
    scanned: u64,
    /// Whether both paths ran the same physical plan (EXPLAIN ANALYZE's, without its figures)
    same_plan: bool,
    /// DuckDB's median run, and its answer
    duckdb_ms: f64,
    duckdb_rows: Rows,
}

/// The physical plan `sql` ran with on `engine` (EXPLAIN ANALYZE's, which has the file
/// statistics a run plans with, unlike EXPLAIN's), without what differs from run to run: the
/// operators' metrics and the values dynamic filters held.
async fn executed_plan(engine: &Engine, sql: &str, what: &str) -> Result<String, String> {
    let (batches, _) =
        engine.run(&request(&format!("EXPLAIN ANALYZE {sql}"))).await.map_err(|f| format!("{what}: {}", f.error))?;
    let plan = rows(&batches)?
        .into_iter()
        .find(|row| row.first().is_some_and(|kind| kind.as_deref() == Some("Plan with Metrics")))
        .and_then(|row| row.into_iter().nth(1).flatten())
        .ok_or_else(|| format!("{what}: EXPLAIN ANALYZE gave no plan"))?;
    Ok(without_bracketed(&without_bracketed(&plan, ", metrics=[", ""), "DynamicFilter [", "DynamicFilter"))
}

/// `text` with each `opening` (which ends in `[`) and what follows up to its matching `]`
/// replaced by `by`.
fn without_bracketed(text: &str, opening: &str, by: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(opening) {
        out.push_str(&rest[..at]);
        out.push_str(by);
        let mut depth = 1;
        let after = &rest[at + opening.len()..];
        let end = after
            .char_indices()
            .find(|&(_, c)| {
                depth += match c {
                    '[' => 1,
                    ']' => -1,
                    _ => 0,
                };
                depth == 0
            })
            .map_or(after.len(), |(i, _)| i + 1);
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// All the queries of a round together, catalog / ListingTable and catalog / DuckDB: the
/// rounds' median and interval.
struct Totals {
    wall: Interval,
    cpu: Interval,
    duckdb: Interval,
}

/// The catalog path beside ListingTable (or the control's second engine) and DuckDB on
/// `queries` (index in QUERIES, name, SQL). Each query first runs once untimed on each; then
/// come `rounds` rounds over all of them. In each round each query runs four times on glaux,
/// A B B A, A alternating from query to query and round to round, and then DuckDB runs the
/// queries one after the other, each twice back to back (the second timed), as it runs a suite
/// alone. A round's ratio is the catalog's two runs over ListingTable's two, and each query
/// reports the median of its rounds' ratios with the 95% interval around it; each path's time
/// is the median of its runs.
///
/// Why so: on a shared 2-core VM the machine's pace drifts by a tenth within minutes and
/// stalls for a second at times. A B B A cancels a steady drift within the four runs and any
/// advantage of running first or second; a round spreads a query's runs over the whole suite,
/// so a stall spoils one round of it, not a block of its runs; the median of the rounds then
/// discards that round. (Blocks of a query's runs back to back, the earlier scheme, left two
/// identical engines up to 1.24 apart on a query.) DuckDB takes part in every round, so the
/// machine's drift over the run weighs on both engines alike; within a round it runs apart
/// from glaux, since taking turns with glaux run by run slowed it by a quarter at SF1.
async fn in_rounds(
    catalog: &Engine,
    listing: &Engine,
    duckdb: &mut DuckDbProcess,
    queries: &[(usize, &str, &str)],
    rounds: usize,
) -> Result<(Vec<Paired>, Totals), String> {
    struct Runs {
        ms: [Vec<f64>; 2],
        cpu: [Vec<f64>; 2],
        wall_ratios: Vec<f64>,
        cpu_ratios: Vec<f64>,
        rows: [Rows; 2],
        scanned: u64,
        same_plan: bool,
        duckdb_ms: Vec<f64>,
        duckdb_rows: Rows,
    }
    let mut all = vec![];
    for &(_, name, sql) in queries {
        let run = measure(catalog, sql, name).await?;
        let rows = [run.rows, measure(listing, sql, name).await?.rows];
        let same_plan = executed_plan(catalog, sql, name).await? == executed_plan(listing, sql, name).await?;
        let duckdb_rows = duckdb.run(name)?.1;
        let (ms, cpu) = Default::default();
        let (wall_ratios, cpu_ratios, duckdb_ms) = (vec![], vec![], vec![]);
        let scanned = run.scanned;
        all.push(Runs { ms, cpu, wall_ratios, cpu_ratios, rows, scanned, same_plan, duckdb_ms, duckdb_rows });
    }
    let (mut total_wall, mut total_cpu, mut total_duckdb) = (vec![], vec![], vec![]);
    for round in 0..rounds {
        let started = Instant::now();
        let mut sums = [[0.0; 2]; 2]; // [wall, cpu][catalog, listing], over the round
        for (&(i, name, sql), runs) in queries.iter().zip(&mut all) {
            let first = (round + i) % 2;
            let mut these = [[0.0; 2]; 2];
            for path in [first, 1 - first, 1 - first, first] {
                let run = measure(if path == 0 { catalog } else { listing }, sql, name).await?;
                these[0][path] += run.ms;
                these[1][path] += run.cpu_ms;
                runs.ms[path].push(run.ms);
                runs.cpu[path].push(run.cpu_ms);
                if path == 0 {
                    runs.scanned = run.scanned;
                }
                runs.rows[path] = run.rows;
            }
            runs.wall_ratios.push(these[0][0] / these[0][1]);
            runs.cpu_ratios.push(these[1][0] / these[1][1]);
            for (sum, this) in sums.iter_mut().zip(these) {
                sum[0] += this[0];
                sum[1] += this[1];
            }
        }
        let mut theirs = 0.0;
        for (&(_, name, _), runs) in queries.iter().zip(&mut all) {
            // twice, the second timed: warm from its own run of the query, as glaux's runs are
            // (run once each, q22 took 82 ms where back to back it takes 53)
            duckdb.run(name)?;
            let (ms, rows) = duckdb.run(name)?;
            theirs += ms;
            runs.duckdb_ms.push(ms);
            runs.duckdb_rows = rows;
        }
        total_wall.push(sums[0][0] / sums[0][1]);
        total_cpu.push(sums[1][0] / sums[1][1]);
        // the catalog's two runs of each query against DuckDB's one
        total_duckdb.push(sums[0][0] / 2.0 / theirs);
        eprintln!(
            "round {}/{rounds}: {:.1} s, catalog / ListingTable {:.3} (CPU {:.3}), catalog / DuckDB {:.3}",
            round + 1,
            started.elapsed().as_secs_f64(),
            sums[0][0] / sums[0][1],
            sums[1][0] / sums[1][1],
            sums[0][0] / 2.0 / theirs
        );
    }
    let totals =
        Totals { wall: Interval::of(total_wall), cpu: Interval::of(total_cpu), duckdb: Interval::of(total_duckdb) };
    eprintln!(
        "all queries, round by round: catalog / ListingTable {} (CPU {}), catalog / DuckDB {}",
        totals.wall, totals.cpu, totals.duckdb
    );
    let paired = all
        .into_iter()
        .map(|runs| {
            let [catalog_ms, listing_ms] = runs.ms.map(median);
            let [catalog_cpu_ms, listing_cpu_ms] = runs.cpu.map(median);
            let [catalog_rows, listing_rows] = runs.rows;
            Paired {
                catalog_ms,
                listing_ms,
                catalog_cpu_ms,
                listing_cpu_ms,
                wall: Interval::of(runs.wall_ratios),
                cpu: Interval::of(runs.cpu_ratios),
                catalog_rows,
                listing_rows,
                scanned: runs.scanned,
                same_plan: runs.same_plan,
                duckdb_ms: median(runs.duckdb_ms),
                duckdb_rows: runs.duckdb_rows,
            }
        })
        .collect();
    Ok((paired, totals))
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
    let chosen: Vec<(usize, &str, &str)> = QUERIES
        .iter()
        .enumerate()
        .filter(|(_, (name, _))| args.query.is_empty() || args.query.iter().any(|q| q == name))
        .map(|(i, &(name, sql))| (i, name, sql))
        .collect();
    let mut duckdb = DuckDbProcess::start(Path::new(&root))?;
    let (paired, totals) = in_rounds(&catalog, &listing, &mut duckdb, &chosen, args.rounds.into()).await?;
    let mut table = vec![];
    for (&(_, name, sql), paired) in chosen.iter().zip(paired) {
        // the CLI and Glue + S3 each take their runs of the query back to back
        let their_rows = &paired.duckdb_rows;
        let mut check =
            compare(&paired.catalog_rows, their_rows).and_then(|_| compare(&paired.listing_rows, their_rows));
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
        let mut glue_runs = vec![];
        if let Some(glue) = &glue {
            for _ in 0..args.runs {
                glue_runs.push(measure(glue, sql, name).await?.ms);
            }
        }
        let glue_ms = (!glue_runs.is_empty()).then(|| median(glue_runs));
        let row = Row { name, paired, glue_ms, cli_ms, check };
        let p = &row.paired;
        println!(
            "{name}  catalog {:8.1} ms  ListingTable {:8.1} ms ({}, CPU {}, {} plan)  Glue+S3 {:>10}  CLI {:>10}  duckdb {:8.1} ms  ratio {:.2}  scanned {:>12}  {}",
            p.catalog_ms,
            p.listing_ms,
            p.wall,
            p.cpu,
            if p.same_plan { "same" } else { "other" },
            row.glue_ms.map(|m| format!("{m:.1} ms")).unwrap_or_default(),
            row.cli_ms.map(|m| format!("{m:.1} ms")).unwrap_or_default(),
            p.duckdb_ms,
            p.catalog_ms / p.duckdb_ms,
            p.scanned,
            row.check.as_ref().map(|_| "equal".to_string()).unwrap_or_else(|e| format!("DIFFERENT: {e}"))
        );
        table.push(row);
    }
    if args.query.is_empty() && !args.control {
        write_reports(&args, &table, &totals)?;
    }
    let wrong: Vec<&str> = table.iter().filter(|r| r.check.is_err()).map(|r| r.name).collect();
    if wrong.is_empty() { Ok(()) } else { Err(format!("results differ from DuckDB's for {wrong:?}")) }
}

/// `bench/tpch_duckdb.py` on the TPC-H files under `data`, in `mode` (a run count, or
/// `requests`).
fn duckdb_script(data: &Path, mode: &str) -> std::process::Command {
    let mut command = std::process::Command::new("python3");
    command.arg(crate::bench_file("tpch_duckdb.py")).arg(data).arg(crate::bench_file("tpch")).arg(mode);
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

fn write_reports(args: &Args, table: &[Row], totals: &Totals) -> Result<(), String> {
    let total = |f: &dyn Fn(&Row) -> f64| table.iter().map(f).sum::<f64>();
    let optional = |f: &dyn Fn(&Row) -> Option<f64>| table.iter().map(f).sum::<Option<f64>>();
    let (c, l, d) = (total(&|r| r.paired.catalog_ms), total(&|r| r.paired.listing_ms), total(&|r| r.paired.duckdb_ms));
    let (c_cpu, l_cpu) = (total(&|r| r.paired.catalog_cpu_ms), total(&|r| r.paired.listing_cpu_ms));
    let (g, cli) = (optional(&|r| r.glue_ms), optional(&|r| r.cli_ms));
    let machine = machine();
    let interval = |i: &Interval| serde_json::json!({ "median": i.median, "low": i.low, "high": i.high });
    let json = serde_json::json!({
        "suite": "tpch", "scale": args.scale, "runs": args.runs, "rounds": args.rounds, "settings": args.settings,
        "duckdb_version": args.duckdb_version, "machine": machine,
        "queries": table.iter().map(|r| {
            let p = &r.paired;
            serde_json::json!({
                "query": r.name, "glaux_catalog_ms": p.catalog_ms, "glaux_listing_ms": p.listing_ms,
                "glaux_glue_s3_ms": r.glue_ms, "glaux_cli_ms": r.cli_ms, "duckdb_ms": p.duckdb_ms,
                "catalog_vs_listing": interval(&p.wall),
                "glaux_catalog_cpu_ms": p.catalog_cpu_ms, "glaux_listing_cpu_ms": p.listing_cpu_ms,
                "catalog_vs_listing_cpu": interval(&p.cpu), "same_plan": p.same_plan, "ratio": p.catalog_ms / p.duckdb_ms,
                "scanned_bytes": p.scanned, "results_equal": r.check.is_ok(), "difference": r.check.as_ref().err(),
            })
        }).collect::<Vec<_>>(),
        "total_glaux_catalog_ms": c, "total_glaux_listing_ms": l, "total_glaux_glue_s3_ms": g,
        "total_glaux_cli_ms": cli, "total_duckdb_ms": d, "catalog_vs_listing": interval(&totals.wall),
        "total_glaux_catalog_cpu_ms": c_cpu, "total_glaux_listing_cpu_ms": l_cpu,
        "catalog_vs_listing_cpu": interval(&totals.cpu), "ratio": c / d, "ratio_by_rounds": interval(&totals.duckdb),
    });
    std::fs::create_dir_all(&args.out).map_err(|e| e.to_string())?;
    let name = format!("tpch-sf{}", args.scale);
    std::fs::write(args.out.join(format!("{name}.json")), serde_json::to_string_pretty(&json).unwrap_or_default())
        .map_err(|e| e.to_string())?;
    let ms = |m: Option<f64>| m.map(|m| format!("{m:.1}")).unwrap_or_else(|| "–".into());
    let mut md = format!(
        "# TPC-H SF{} — glaux vs DuckDB {}\n\nThe 22 queries on the same Parquet files (tpchgen-cli). \
         **glaux catalog**: the tables registered in the local catalog with \
         Athena's `CREATE EXTERNAL TABLE … STORED AS PARQUET LOCATION` and analyzed (`ANALYZE`: each column's \
         distinct count, which the planner's estimates use), run through the engine as `glaux query` and \
         `glaux serve` run them (ratio = this / DuckDB). **ListingTable**: the same files as DataFusion's own \
         tables in the same engine (`… OPTIONS (…)`, no distinct counts), to show what the catalog path costs. \
         These two and DuckDB take {} rounds over the 22 queries after one untimed run of each: in a round \
         each query runs four times on glaux, A B B A, A alternating from query to query and round to round, \
         then DuckDB runs the 22 one after the other, each twice back to back (the second timed: warm from its \
         own run of the query, as glaux's runs are), as it runs a suite alone. A round's ratio is \
         the catalog's two runs over ListingTable's two. **catalog / ListingTable** is the median of the \
         rounds' ratios with its 95% interval (order statistics: no assumption about the noise); the times \
         are the medians of each path's runs. **CPU**: the same ratio of the process's CPU time, the work each \
         path does without the time it waited (a slowed CPU still shows in it). **plan**: whether both paths \
         ran the same physical plan (EXPLAIN ANALYZE's, without its figures); where not, the catalog's \
         distinct counts gave the optimizer another join order. The control run, \
         `GLAUX_BENCH_CONTROL=1`, puts a second engine on the same catalog tables in ListingTable's place and \
         gives the spread of two equal paths. **Glue + S3**: the \
         tables in Glue and the files on a local S3 server (moto), which measures that server as much as glaux. \
         **CLI**: whole `glaux query` processes on the catalog tables. DuckDB reads the files with `read_parquet`. \
         After the rounds the CLI and Glue + S3 take {} runs of each query back to back (median). \
         Results compared cell by cell.\n\n\
         | query | glaux catalog ms | ListingTable ms | catalog / ListingTable (95%) | CPU (95%) | plan | Glue + S3 ms | CLI ms | DuckDB ms | glaux / DuckDB | scanned bytes | results |\n\
         |---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---|\n",
        args.scale, args.duckdb_version, args.rounds, args.runs
    );
    md = md.replacen("\n\n| query", &format!(" Machine: {machine}.\n\n| query"), 1);
    if !args.settings.is_empty() {
        md = md.replacen("\n\n| query", &format!(" Settings: `{}`.\n\n| query", args.settings.join("`, `")), 1);
    }
    for r in table {
        let p = &r.paired;
        md += &format!(
            "| {} | {:.1} | {:.1} | {} | {} | {} | {} | {} | {:.1} | {:.2} | {} | {} |\n",
            r.name,
            p.catalog_ms,
            p.listing_ms,
            p.wall,
            p.cpu,
            if p.same_plan { "same" } else { "other" },
            ms(r.glue_ms),
            ms(r.cli_ms),
            p.duckdb_ms,
            p.catalog_ms / p.duckdb_ms,
            p.scanned,
            if r.check.is_ok() { "equal" } else { "DIFFERENT" }
        );
    }
    md += &format!(
        "| **total** | {c:.1} | {l:.1} | {} | {} | {}/{} same | {} | {} | {d:.1} | {:.2} | | |\n",
        totals.wall,
        totals.cpu,
        table.iter().filter(|r| r.paired.same_plan).count(),
        table.len(),
        ms(g),
        ms(cli),
        c / d
    );
    md += &format!(
        "\nRound by round, the 22 queries together: catalog / ListingTable {} (CPU {}), catalog / DuckDB {}.\n",
        totals.wall, totals.cpu, totals.duckdb
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

    #[test]
    fn a_median_s_interval_takes_the_ranks_the_binomial_gives() {
        let ten: Vec<f64> = (1..=10).rev().map(f64::from).collect();
        // P(Binomial(10, ½) < 2) = 1.1%, < 3 = 5.5%: ranks 2 and 9
        assert_eq!(Interval::of(ten), Interval { median: 6.0, low: 2.0, high: 9.0 });
        // 20 samples: P(< 6) = 2.1%, P(< 7) = 5.8%: ranks 6 and 15
        let twenty: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(Interval::of(twenty), Interval { median: 11.0, low: 6.0, high: 15.0 });
        // five samples are too few for 95%: the whole range
        assert_eq!(Interval::of(vec![3.0, 1.0, 2.0, 5.0, 4.0]), Interval { median: 3.0, low: 1.0, high: 5.0 });
        assert_eq!(Interval::of(vec![7.0]), Interval { median: 7.0, low: 7.0, high: 7.0 });
    }

    #[test]
    fn plans_compare_without_their_figures() {
        let plan = "HashJoinExec: on=[(a@0, b@0)], metrics=[output_rows=5, time=[1ms]]\n  FilterExec: DynamicFilter [ a@0 >= 4 AND a@0 IN [1, 2] ] AND x, metrics=[output_rows=2]";
        assert_eq!(
            without_bracketed(&without_bracketed(plan, ", metrics=[", ""), "DynamicFilter [", "DynamicFilter"),
            "HashJoinExec: on=[(a@0, b@0)]\n  FilterExec: DynamicFilter AND x"
        );
        // an unclosed bracket drops the rest, and text without the opening stays as it is
        assert_eq!(without_bracketed("a, metrics=[x", ", metrics=[", ""), "a");
        assert_eq!(without_bracketed("plain", ", metrics=[", ""), "plain");
    }
}
