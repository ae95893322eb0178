//! Overhead of glaux (metered stores, Athena records, per-query sessions) over bare DataFusion.
//!
//! Both run the same queries on the same TPC-H Parquet files, interleaved in one process, each
//! query several times; the report gives medians and the ratio glaux / DataFusion.

use std::path::PathBuf;
use std::time::Instant;

use datafusion::prelude::{SessionConfig, SessionContext};
use glaux_engine::{Engine, EngineConfig};

use crate::tpch::{median, request};

#[derive(clap::Args)]
pub struct Args {
    /// Directory with TPC-H Parquet tables (lineitem/, orders/, … as written by tpchgen-cli).
    #[arg(long)]
    data: PathBuf,
    /// Runs per query and engine (the median is reported).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Where the markdown and JSON reports go.
    #[arg(long, default_value = "bench/results")]
    out: PathBuf,
}

const TABLES: [&str; 3] = ["lineitem", "orders", "customer"];

const QUERIES: [(&str, &str); 5] = [
    (
        "q1_pricing_summary",
        "SELECT l_returnflag, l_linestatus, sum(l_quantity) AS sum_qty, sum(l_extendedprice) AS sum_base_price, sum(l_extendedprice * (1 - l_discount)) AS sum_disc_price, avg(l_discount) AS avg_disc, count(*) AS count_order FROM lineitem WHERE l_shipdate <= DATE '1998-09-02' GROUP BY l_returnflag, l_linestatus ORDER BY l_returnflag, l_linestatus",
    ),
    (
        "q6_forecast_revenue",
        "SELECT sum(l_extendedprice * l_discount) AS revenue FROM lineitem WHERE l_shipdate >= DATE '1994-01-01' AND l_shipdate < DATE '1995-01-01' AND l_discount BETWEEN 0.05 AND 0.07 AND l_quantity < 24",
    ),
    ("count_star", "SELECT count(*) FROM lineitem"),
    (
        "q3_shipping_priority",
        "SELECT l_orderkey, sum(l_extendedprice * (1 - l_discount)) AS revenue, o_orderdate, o_shippriority FROM customer, orders, lineitem WHERE c_mktsegment = 'BUILDING' AND c_custkey = o_custkey AND l_orderkey = o_orderkey AND o_orderdate < DATE '1995-03-15' AND l_shipdate > DATE '1995-03-15' GROUP BY l_orderkey, o_orderdate, o_shippriority ORDER BY revenue DESC, o_orderdate LIMIT 10",
    ),
    (
        "top_orders",
        "SELECT o_orderpriority, count(*) FROM orders WHERE o_totalprice > 100000 GROUP BY o_orderpriority ORDER BY o_orderpriority",
    ),
];

fn ddl(data: &std::path::Path, table: &str) -> String {
    format!("CREATE EXTERNAL TABLE {table} STORED AS PARQUET LOCATION '{}/{table}/'", data.display())
}

pub async fn run(args: Args) -> Result<(), String> {
    let data = args.data.canonicalize().map_err(|e| format!("{}: {e}", args.data.display()))?;
    let engine = Engine::new(EngineConfig::default()).map_err(|e| e.to_string())?;
    // the same DataFusion settings as glaux's sessions, so the ratio is glaux's own overhead
    let mut config = SessionConfig::new();
    glaux_engine::tune_session(&mut config, None);
    let bare = SessionContext::new_with_config(config);
    for table in TABLES {
        let sql = ddl(&data, table);
        engine.run(&request(&sql)).await.map_err(|f| f.error.to_string())?;
        bare.sql(&sql).await.map_err(|e| e.to_string())?.collect().await.map_err(|e| e.to_string())?;
    }
    let mut rows = vec![];
    for (name, sql) in QUERIES {
        let (mut g, mut d, mut scanned) = (vec![], vec![], 0);
        for _ in 0..args.runs {
            // interleaved so both see the same cache and machine state
            let t = Instant::now();
            let (batches, execution) = engine.run(&request(sql)).await.map_err(|f| f.error.to_string())?;
            g.push(t.elapsed().as_secs_f64() * 1000.0);
            scanned = execution.statistics.data_scanned_in_bytes;
            let t = Instant::now();
            let theirs = bare.sql(sql).await.map_err(|e| e.to_string())?.collect().await.map_err(|e| e.to_string())?;
            d.push(t.elapsed().as_secs_f64() * 1000.0);
            let (a, b): (usize, usize) =
                (batches.iter().map(|b| b.num_rows()).sum(), theirs.iter().map(|b| b.num_rows()).sum());
            if a != b {
                return Err(format!("{name}: glaux returned {a} rows, DataFusion {b}"));
            }
        }
        let (gm, dm) = (median(g), median(d));
        println!("{name:24} glaux {gm:9.1} ms   datafusion {dm:9.1} ms   ratio {:.3}   scanned {scanned} B", gm / dm);
        rows.push(serde_json::json!({"query": name, "glaux_ms": gm, "datafusion_ms": dm, "ratio": gm / dm, "scanned_bytes": scanned}));
    }
    let total_g: f64 = rows.iter().map(|r| r["glaux_ms"].as_f64().unwrap_or(0.0)).sum();
    let total_d: f64 = rows.iter().map(|r| r["datafusion_ms"].as_f64().unwrap_or(0.0)).sum();
    println!("total: glaux {total_g:.1} ms, datafusion {total_d:.1} ms, ratio {:.3}", total_g / total_d);
    write_reports(&args.out, &data, args.runs, &rows, total_g, total_d)
}

fn write_reports(
    out: &std::path::Path,
    data: &std::path::Path,
    runs: usize,
    rows: &[serde_json::Value],
    g: f64,
    d: f64,
) -> Result<(), String> {
    std::fs::create_dir_all(out).map_err(|e| e.to_string())?;
    let json = serde_json::json!({"suite": "overhead", "data": data.display().to_string(), "runs": runs, "queries": rows, "total_glaux_ms": g, "total_datafusion_ms": d, "ratio": g / d});
    std::fs::write(out.join("overhead.json"), serde_json::to_string_pretty(&json).unwrap_or_default())
        .map_err(|e| e.to_string())?;
    let mut md = format!(
        "# glaux overhead vs bare DataFusion\n\nData: `{}`, median of {runs} runs, interleaved in one process.\n\n| query | glaux ms | DataFusion ms | ratio | scanned bytes |\n|---|---:|---:|---:|---:|\n",
        data.display()
    );
    for r in rows {
        md += &format!(
            "| {} | {:.1} | {:.1} | {:.3} | {} |\n",
            r["query"].as_str().unwrap_or(""),
            r["glaux_ms"].as_f64().unwrap_or(0.0),
            r["datafusion_ms"].as_f64().unwrap_or(0.0),
            r["ratio"].as_f64().unwrap_or(0.0),
            r["scanned_bytes"]
        );
    }
    md += &format!("| **total** | {g:.1} | {d:.1} | {:.3} | |\n", g / d);
    std::fs::write(out.join("overhead.md"), md).map_err(|e| e.to_string())
}
