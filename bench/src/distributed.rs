//! Scale-out: TPC-H on `glaux worker` processes and a coordinator. The tests check three workers
//! against single-node glaux and DuckDB — same answers, and bytes scanned equal to what the S3
//! server served to all of them; `bench/run distributed` times one process against a
//! coordinator with 1, 2 and 4 workers and reports what crossed the network between them.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use glaux_engine::glaux_catalog::Catalog;
use glaux_engine::{Cluster, Engine, EngineConfig, QueryExecution, S3Settings, WorkerSource, Workers};
use glaux_testkit::{TEST_SECRET, WorkerProcesses};

use crate::tpch::{self, QUERIES, median, request};

#[derive(clap::Args)]
pub struct Args {
    /// Directory with TPC-H Parquet tables (one folder per table).
    #[arg(long)]
    data: PathBuf,
    /// The glaux binary whose `glaux worker` processes are started.
    #[arg(long)]
    glaux: PathBuf,
    /// Worker counts to measure beside one process.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4")]
    workers: Vec<usize>,
    #[arg(long, default_value_t = 1)]
    runs: usize,
    #[arg(long, default_value = "10")]
    scale: String,
    #[arg(long, default_value = "bench-warehouse")]
    warehouse: PathBuf,
    #[arg(long, default_value = "bench/results")]
    out: PathBuf,
    /// The cargo profile the binaries were built with (for the report).
    #[arg(long, default_value = "release")]
    profile: String,
}

/// One query on one configuration: median time, bytes scanned, bytes between processes.
struct Measured {
    ms: f64,
    scanned: u64,
    moved: u64,
}

pub async fn bench(args: Args) -> Result<(), String> {
    let (root, catalog, alone) = tpch::local_tables(&args.data, &args.warehouse).await?;
    let mut columns: Vec<(String, Vec<Measured>)> = vec![("one process".into(), measure(&alone, args.runs).await?)];
    let allow = format!("--allow-local-files={root}");
    for &n in &args.workers {
        let workers =
            WorkerProcesses::start_with(&args.glaux, n, "http://127.0.0.1:1", TEST_SECRET, &[allow.as_str()])?;
        let cluster = cluster(&workers.urls, Some(TEST_SECRET), 0).await?;
        let engine = coordinator(S3Settings::from_env(), Arc::clone(&catalog), cluster)?;
        columns.push((format!("{n} worker{}", if n == 1 { "" } else { "s" }), measure(&engine, args.runs).await?));
    }
    write_report(&args, &columns)
}

/// Runs the 22 queries on `engine`: each `runs` times for the median, once more under EXPLAIN
/// ANALYZE for the bytes its network boundaries carried.
async fn measure(engine: &Engine, runs: usize) -> Result<Vec<Measured>, String> {
    let mut out = vec![];
    for (name, sql) in QUERIES {
        let mut times = vec![];
        let mut scanned = 0;
        for _ in 0..runs.max(1) {
            let start = Instant::now();
            let (_, execution) = run(engine, sql).await.map_err(|e| format!("{name}: {e}"))?;
            times.push(start.elapsed().as_secs_f64() * 1000.0);
            scanned = execution.statistics.data_scanned_in_bytes;
        }
        let (plan, _) = run(engine, &format!("EXPLAIN ANALYZE {sql}")).await.map_err(|e| format!("{name}: {e}"))?;
        let text: String = plan.iter().flatten().flatten().cloned().collect::<Vec<_>>().join("\n");
        let measured = Measured { ms: median(times), scanned, moved: bytes_transferred(&text) };
        println!("{name}  {:9.1} ms  scanned {:>12}  moved {:>12}", measured.ms, measured.scanned, measured.moved);
        out.push(measured);
    }
    Ok(out)
}

/// The sum of the `bytes_transferred=…` metrics in an EXPLAIN ANALYZE text (`20.1 KB`, `3.2 MB`).
fn bytes_transferred(text: &str) -> u64 {
    let mut total = 0.0;
    for piece in text.split("bytes_transferred=").skip(1) {
        let value: String = piece.chars().take_while(|c| *c != ',' && *c != ']').collect();
        let mut parts = value.split_whitespace();
        let Some(Ok(n)) = parts.next().map(str::parse::<f64>) else { continue };
        let factor = match parts.next().unwrap_or("B") {
            "KB" => 1e3,
            "MB" => 1e6,
            "GB" => 1e9,
            "TB" => 1e12,
            _ => 1.0,
        };
        total += n * factor;
    }
    total as u64
}

fn write_report(args: &Args, columns: &[(String, Vec<Measured>)]) -> Result<(), String> {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mut md = format!(
        "# Scale-out: TPC-H SF{} on one process and on a coordinator with workers\n\n\
         {} on {cores} cores, {} build, {} run(s) a query (median), catalog tables (local catalog, Parquet on \
         local disk), workers are `glaux worker` processes on the same machine: the figures show the cost of \
         distribution (planning stages, Arrow Flight, shuffles), not a speedup. \"moved\" is what the \
         plan's network boundaries carried between processes (EXPLAIN ANALYZE's bytes_transferred).\n\n",
        args.scale,
        chrono_date(),
        args.profile,
        args.runs
    );
    md.push_str("| query |");
    for (name, _) in columns {
        md.push_str(&format!(" {name} ms |"));
    }
    for (name, _) in &columns[1..] {
        md.push_str(&format!(" {name} / one |"));
    }
    for (name, _) in &columns[1..] {
        md.push_str(&format!(" {name} moved MB |"));
    }
    md.push_str(" scanned MB |\n|---|");
    md.push_str(&"---:|".repeat(columns.len() * 3 - 1));
    md.push('\n');
    for (i, (query, _)) in QUERIES.iter().enumerate() {
        md.push_str(&format!("| {query} |"));
        for (_, m) in columns {
            md.push_str(&format!(" {:.0} |", m[i].ms));
        }
        for (_, m) in &columns[1..] {
            md.push_str(&format!(" {:.2} |", m[i].ms / columns[0].1[i].ms));
        }
        for (_, m) in &columns[1..] {
            md.push_str(&format!(" {:.1} |", m[i].moved as f64 / 1e6));
        }
        md.push_str(&format!(" {:.1} |\n", columns[0].1[i].scanned as f64 / 1e6));
    }
    let total = |m: &[Measured], f: &dyn Fn(&Measured) -> f64| m.iter().map(f).sum::<f64>();
    md.push_str("| **total** |");
    for (_, m) in columns {
        md.push_str(&format!(" **{:.0}** |", total(m, &|x| x.ms)));
    }
    for (_, m) in &columns[1..] {
        md.push_str(&format!(" **{:.2}** |", total(m, &|x| x.ms) / total(&columns[0].1, &|x| x.ms)));
    }
    for (_, m) in &columns[1..] {
        md.push_str(&format!(" **{:.1}** |", total(m, &|x| x.moved as f64) / 1e6));
    }
    md.push_str(&format!(" **{:.1}** |\n", total(&columns[0].1, &|x| x.scanned as f64) / 1e6));
    let path = args.out.join("distributed.md");
    std::fs::write(&path, md).map_err(|e| format!("{}: {e}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(())
}

fn chrono_date() -> String {
    glaux_engine::chrono::Utc::now().format("%Y-%m-%d").to_string()
}

/// A coordinator's view of `urls`, spreading every plan at least `above` bytes large.
pub async fn cluster(urls: &[String], secret: Option<&str>, above: u64) -> Result<Cluster, String> {
    let source = WorkerSource::parse(&urls.join(",")).map_err(|e| e.to_string())?;
    let workers = Workers::start(source).await.map_err(|e| e.to_string())?;
    Ok(Cluster { workers, secret: secret.map(str::to_string), distribute_above: above })
}

/// An engine over `catalog`'s `tpch` database as a coordinator of `cluster`.
pub fn coordinator(s3: S3Settings, catalog: Arc<dyn Catalog>, cluster: Cluster) -> Result<Engine, String> {
    Engine::new(coordinator_config(s3, catalog, cluster)).map_err(|e| e.to_string())
}

/// The settings of [`coordinator`], for callers that change some.
pub fn coordinator_config(s3: S3Settings, catalog: Arc<dyn Catalog>, cluster: Cluster) -> EngineConfig {
    EngineConfig {
        s3,
        catalog: Some(catalog),
        database: "tpch".into(),
        allow_local_files: true,
        cluster: Some(cluster),
        ..Default::default()
    }
}

/// One query's rows and record, or its error as text.
pub async fn run(engine: &Engine, sql: &str) -> Result<(tpch::Rows, QueryExecution), String> {
    let (batches, execution) = engine.run(&request(sql)).await.map_err(|f| f.error.to_string())?;
    Ok((tpch::rows(&batches)?, execution))
}

#[cfg(test)]
mod tests {
    use glaux_engine::glaux_catalog::LocalCatalog;
    use glaux_testkit::proxy::CountingProxy;
    use std::path::Path;
    use std::time::Duration;

    use super::*;
    use crate::tpch::compare;

    /// Whether `engine` spreads `sql` over workers: its EXPLAIN shows the stages.
    async fn is_spread(engine: &Engine, sql: &str) -> Result<bool, String> {
        let (plan, _) = run(engine, &format!("EXPLAIN {sql}")).await?;
        Ok(plan.iter().flatten().flatten().any(|line| line.contains("DistributedExec")))
    }

    /// The DuckDB answers for the 22 queries over the Parquet tables under `data`.
    fn duckdb_answers(data: &Path) -> Result<serde_json::Value, String> {
        tpch::duckdb(data, 1)
    }

    fn duck_rows(answers: &serde_json::Value, name: &str) -> tpch::Rows {
        serde_json::from_value(answers[name]["rows"].clone()).unwrap()
    }

    /// A counting proxy before the test S3 server, `n` workers reading through it, the TPC-H
    /// tables in a local catalog, and an engine of one process over them.
    struct Fixture {
        proxy: CountingProxy,
        workers: WorkerProcesses,
        catalog: Arc<dyn Catalog>,
        s3: S3Settings,
        single: Engine,
    }

    async fn fixture(tag: &str, n: usize) -> Fixture {
        let env = glaux_testkit::env();
        let proxy = CountingProxy::start(&env.endpoint).await;
        let workers = WorkerProcesses::start(&glaux_testkit::glaux_binary(), n, &proxy.endpoint, TEST_SECRET).unwrap();
        let catalog: Arc<dyn Catalog> = Arc::new(LocalCatalog::open(glaux_testkit::scratch(tag)).unwrap());
        let root = format!("s3://{}/tpch", env.bucket);
        let s3 = tpch::s3_settings(&proxy.endpoint);
        let single = tpch::catalog_engine(s3.clone(), Arc::clone(&catalog), &root, None).await.unwrap();
        Fixture { proxy, workers, catalog, s3, single }
    }

    impl Fixture {
        /// The workers as a cluster that spreads every plan, its requests carrying `secret`.
        async fn cluster(&self, secret: Option<&str>) -> Cluster {
            cluster(&self.workers.urls, secret, 0).await.unwrap()
        }

        /// A coordinator of `cluster` over the same tables.
        fn coordinator(&self, cluster: Cluster) -> Engine {
            coordinator(self.s3.clone(), Arc::clone(&self.catalog), cluster).unwrap()
        }
    }

    /// Three workers and a coordinator: the 22 queries give single-node glaux's and DuckDB's
    /// answers, and each query's bytes scanned are what the S3 server served to all four
    /// processes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tpch_on_three_workers_gives_single_node_answers_and_exact_bytes() {
        let f = fixture("cluster-tpch", 3).await;
        let (proxy, single) = (&f.proxy, &f.single);
        let spread = f.coordinator(f.cluster(Some(TEST_SECRET)).await);
        let duckdb = duckdb_answers(&glaux_testkit::env().data.join("tpch")).unwrap();
        let mut report = vec![];
        for (name, sql) in QUERIES {
            assert!(is_spread(&spread, sql).await.unwrap(), "{name} was not spread over the workers");
            proxy.counts.reset();
            let (one, alone) = run(single, sql).await.unwrap_or_else(|e| panic!("{name} on one process: {e}"));
            let served_alone = proxy.counts.total();
            proxy.counts.reset();
            let (many, spread_run) = run(&spread, sql).await.unwrap_or_else(|e| panic!("{name} on the workers: {e}"));
            let served = proxy.counts.total();
            compare(&many, &one).unwrap_or_else(|e| panic!("{name}: workers vs one process: {e}"));
            compare(&many, &duck_rows(&duckdb, name)).unwrap_or_else(|e| panic!("{name}: workers vs DuckDB: {e}"));
            let (billed_alone, billed) =
                (alone.statistics.data_scanned_in_bytes, spread_run.statistics.data_scanned_in_bytes);
            assert_eq!(billed_alone, served_alone, "{name}: one process's meter vs the server");
            assert_eq!(billed, served, "{name}: the workers' meters vs the server");
            report.push(format!("{name}: one process {billed_alone} B, workers {billed} B"));
        }
        println!("{}", report.join("\n"));
    }

    /// A coordinator without the cluster's secret, or with another, is turned away.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn workers_refuse_coordinators_without_the_secret() {
        // two: a plan is spread over more than one worker
        let f = fixture("cluster-secret", 2).await;
        for secret in [None, Some("not-the-secret")] {
            let engine = f.coordinator(f.cluster(secret).await);
            let error = run(&engine, QUERIES[0].1).await.expect_err("a worker ran a plan without the secret");
            assert!(error.contains("shared secret"), "{secret:?}: {error}");
        }
        let engine = f.coordinator(f.cluster(Some(TEST_SECRET)).await);
        run(&engine, QUERIES[0].1).await.unwrap();
    }

    /// A worker killed in the middle of a query fails that query with an error naming it; the
    /// coordinator goes on, and its next query runs on the workers left.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_worker_killed_mid_query_fails_it_cleanly_and_the_rest_carry_on() {
        let mut f = fixture("cluster-kill", 3).await;
        let cluster = f.cluster(Some(TEST_SECRET)).await;
        let engine = Arc::new(f.coordinator(cluster.clone()));
        let proxy = &f.proxy;
        // every S3 request slowed, so the query is still reading when the worker dies
        proxy.set_latency(800);
        let sql = QUERIES[0].1;
        let running = tokio::spawn({
            let engine = Arc::clone(&engine);
            async move { run(&engine, sql).await }
        });
        // planning reads the four footers of lineitem; once more is read, the workers are at it
        proxy.counts.reset();
        let reading = async {
            while proxy.counts.gets() < 6 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(60), reading).await.expect("the workers never read");
        let killed = f.workers.urls[0].clone();
        f.workers.kill(0);
        let outcome = tokio::time::timeout(Duration::from_secs(120), running).await.expect("the query hung").unwrap();
        proxy.set_latency(0);
        match outcome {
            Err(error) => {
                println!("the query failed: {error}");
                assert!(error.contains(killed.trim_start_matches("http://")), "{error}")
            }
            // the library may have retried the stage elsewhere: then the answer must be right
            Ok((rows, _)) => assert_eq!(rows.len(), 4, "q01's four groups"),
        }
        cluster.workers.refresh().await.unwrap();
        assert_eq!(cluster.workers.live().len(), 2, "the dead worker is no longer handed out");
        let (rows, _) = run(&engine, sql).await.unwrap();
        assert_eq!(rows.len(), 4);
    }

    /// A cancelled query stops reading on every worker, and a scan limit stops the query on all
    /// of them — one smaller than a worker's share, and one that only the workers' total passes:
    /// the S3 server sees the reads stop.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_cancel_and_the_scan_limit_stop_the_reads_on_every_worker() {
        let f = fixture("cluster-cancel", 3).await;
        let proxy = &f.proxy;
        let cluster = f.cluster(Some(TEST_SECRET)).await;
        let sql = QUERIES[0].1;
        let whole = {
            let engine = f.coordinator(cluster.clone());
            proxy.counts.reset();
            run(&engine, sql).await.unwrap();
            proxy.counts.total()
        };
        let quiet = || async {
            // requests already sent finish; then nothing more may come
            tokio::time::sleep(Duration::from_secs(2)).await;
            let before = proxy.counts.gets();
            tokio::time::sleep(Duration::from_secs(3)).await;
            (before, proxy.counts.gets())
        };

        // cancel: the front end lets go of the query (as Ctrl-C, StopQueryExecution, a timeout)
        let engine = Arc::new(f.coordinator(cluster.clone()));
        proxy.set_latency(300);
        proxy.counts.reset();
        let pulling = tokio::spawn({
            let engine = Arc::clone(&engine);
            async move {
                let mut query = engine.start(&request(sql)).await.map_err(|f| f.error.to_string()).unwrap();
                while let Some(Ok(_)) = query.next_batch().await {}
            }
        });
        tokio::time::sleep(Duration::from_millis(2000)).await;
        pulling.abort();
        let (before, after) = quiet().await;
        proxy.set_latency(0);
        assert!(before > 0, "the query had not started reading");
        assert_eq!(before, after, "the workers went on reading after the cancel");
        assert!(proxy.counts.total() < whole, "a cancelled query read everything");

        // the scan limit: each worker's share is larger than the limit
        let mut config = coordinator_config(f.s3.clone(), Arc::clone(&f.catalog), cluster.clone());
        config.bytes_scanned_cutoff = Some(whole / 10);
        let engine = Engine::new(config).unwrap();
        proxy.counts.reset();
        let error = run(&engine, sql).await.expect_err("a query past its scan limit succeeded");
        assert!(error.contains("Bytes scanned limit was exceeded"), "{error}");
        let (before, after) = quiet().await;
        assert_eq!(before, after, "the workers went on reading past the limit");
        assert!(proxy.counts.total() < whole, "the limit did not stop the reads: {} of {whole}", proxy.counts.total());

        // a limit no worker's share passes alone, but their total does: the coordinator adds up
        // the workers' running counts while the query runs and stops it on all of them
        let mut config = coordinator_config(f.s3.clone(), Arc::clone(&f.catalog), cluster);
        let limit = whole * 6 / 10;
        config.bytes_scanned_cutoff = Some(limit);
        let engine = Engine::new(config).unwrap();
        // over a slow link, so the bytes come in over a few seconds and not all at once
        proxy.set_pace(1 << 20);
        proxy.counts.reset();
        let error = run(&engine, sql).await.expect_err("a query past its scan limit succeeded");
        assert!(error.contains("Bytes scanned limit was exceeded"), "{error}");
        let (before, after) = quiet().await;
        proxy.set_pace(0);
        let served = proxy.counts.total();
        println!("limit {limit} of {whole}: the workers were stopped after {served} bytes: {error}");
        assert_eq!(before, after, "the workers went on reading past the limit");
        assert!(served > limit, "the query stopped before its limit: {served} of {limit}");
        assert!(served < whole, "the workers' total did not stop the reads: {served} of {whole}");
    }
}
