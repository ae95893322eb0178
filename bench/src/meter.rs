//! The meter: for every TPC-H query and format, the bytes glaux reports as scanned against the
//! object bytes the S3 server sent, counted by a proxy between them. They must be equal.
//!
//! With `--faults PERCENT` (`bench/run faults`), each query runs a second time with that share
//! of its object reads failing as S3 fails (503, 500, resets, cuts, late first bytes, lying
//! Content-Lengths): the answer must be the same, each byte received billed once (never more
//! than without faults, nor than the server sent, to 64 KiB per body broken off).

use std::path::PathBuf;

use glaux_engine::arrow::datatypes::DataType;

use crate::tpch::{QUERIES, TABLES, compare, engine_with_tables, request, rows, s3_settings};

use glaux_testkit::proxy::{self, Fault, FaultPlan};

#[derive(clap::Args)]
pub struct Args {
    /// The S3 server holding s3://BUCKET/<format>/<table>/ for each format (bench/run uploads them).
    #[arg(long)]
    endpoint: String,
    #[arg(long, default_value = "bench-meter")]
    bucket: String,
    /// Formats to check, each a folder under the bucket.
    #[arg(long, value_delimiter = ',', default_value = "parquet,orc,csv,json")]
    formats: Vec<String>,
    /// The scale factor the data was generated at (for the report).
    #[arg(long, default_value = "0.1")]
    scale: String,
    #[arg(long, default_value = "bench/results")]
    out: PathBuf,
    /// Also run every query with this percentage of its object reads failing; report faults.md.
    #[arg(long)]
    faults: Option<u64>,
}

/// SQL type of an Arrow type, for the column lists of text formats.
fn sql_type(t: &DataType) -> Result<String, String> {
    Ok(match t {
        DataType::Int64 => "BIGINT".into(),
        DataType::Int32 => "INT".into(),
        DataType::Float64 => "DOUBLE".into(),
        DataType::Decimal128(p, s) => format!("DECIMAL({p},{s})"),
        DataType::Date32 => "DATE".into(),
        DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 => "VARCHAR".into(),
        other => return Err(format!("no SQL type for {other}")),
    })
}

struct Check {
    format: String,
    query: &'static str,
    reported: u64,
    served: u64,
    /// With faults: how many were injected, and whether answer and bill came out the same.
    faulted: Option<(u64, Result<(), String>)>,
}

pub async fn run(args: Args) -> Result<(), String> {
    let proxy = proxy::CountingProxy::start(&args.endpoint).await;
    let root = |format: &str| format!("s3://{}/{format}", args.bucket);
    // column lists for the text formats come from the Parquet tables' schemas
    let parquet = engine_with_tables(s3_settings(&proxy.endpoint), &root("parquet"), &|t, location| {
        format!("CREATE EXTERNAL TABLE {t} STORED AS PARQUET LOCATION '{location}'")
    })
    .await?;
    let mut columns = std::collections::HashMap::new();
    for table in TABLES {
        let query = parquet
            .start(&request(&format!("SELECT * FROM {table} LIMIT 0")))
            .await
            .map_err(|f| f.error.to_string())?;
        let schema = query.schema().ok_or_else(|| format!("{table} has no schema"))?;
        query.succeed();
        let list: Vec<String> = schema
            .fields()
            .iter()
            .map(|f| sql_type(f.data_type()).map(|t| format!("{} {t}", f.name())))
            .collect::<Result<_, _>>()?;
        columns.insert(table, list.join(", "));
    }
    let mut checks = vec![];
    for format in &args.formats {
        let ddl = |t: &str, location: &str| match format.as_str() {
            "parquet" | "orc" => format!("CREATE EXTERNAL TABLE {t} STORED AS {format} LOCATION '{location}'"),
            "csv" => format!(
                "CREATE EXTERNAL TABLE {t} ({}) STORED AS CSV LOCATION '{location}' OPTIONS ('format.has_header' 'true')",
                columns[t]
            ),
            _ => format!("CREATE EXTERNAL TABLE {t} ({}) STORED AS JSON LOCATION '{location}'", columns[t]),
        };
        let engine = engine_with_tables(s3_settings(&proxy.endpoint), &root(format), &ddl).await?;
        for (n, (query, sql)) in (0u64..).zip(QUERIES) {
            proxy.counts.reset();
            let (batches, execution) =
                engine.run(&request(sql)).await.map_err(|f| format!("{format} {query}: {}", f.error))?;
            let reported = execution.statistics.data_scanned_in_bytes;
            let served = proxy.counts.total();
            let faulted = match args.faults {
                None => None,
                Some(percent) => {
                    let plan = FaultPlan {
                        percent,
                        kinds: Fault::ALL.to_vec(),
                        prefix: format!("/{}/", args.bucket),
                        seed: 20261129 + n,
                        slow_ms: 300,
                    };
                    proxy.set_faults(plan);
                    proxy.counts.reset();
                    let outcome = engine.run(&request(sql)).await;
                    proxy.set_faults(FaultPlan::default());
                    let injected = proxy.counts.get("faults");
                    let check = match outcome {
                        Err(f) => Err(format!("failed: {}", f.error)),
                        Ok((faulty, e)) => compare(&rows(&faulty)?, &rows(&batches)?)
                            .and_then(|_| proxy.counts.bill_holds(e.statistics.data_scanned_in_bytes, reported)),
                    };
                    Some((injected, check))
                }
            };
            let check = Check { format: format.clone(), query, reported, served, faulted };
            println!(
                "{:8} {query}  reported {:>12}  served {:>12}  {}{}",
                check.format,
                check.reported,
                check.served,
                if check.reported == check.served { "equal" } else { "DIFFERENT" },
                match &check.faulted {
                    None => String::new(),
                    Some((n, Ok(()))) => format!("  {n} faults: same answer and bill"),
                    Some((n, Err(e))) => format!("  {n} faults: {e}"),
                }
            );
            checks.push(check);
        }
    }
    if args.faults.is_some() {
        return write_fault_report(&args, &checks);
    }
    write_reports(&args, &checks)?;
    let wrong = checks.iter().filter(|c| c.reported != c.served).count();
    if wrong == 0 {
        Ok(())
    } else {
        Err(format!("{wrong} of {} queries reported other bytes than served", checks.len()))
    }
}

fn write_reports(args: &Args, checks: &[Check]) -> Result<(), String> {
    let json = serde_json::json!({
        "suite": "meter", "scale": args.scale,
        "checks": checks.iter().map(|c| serde_json::json!({
            "format": c.format, "query": c.query, "reported_bytes": c.reported, "served_bytes": c.served,
            "equal": c.reported == c.served,
        })).collect::<Vec<_>>(),
    });
    std::fs::create_dir_all(&args.out).map_err(|e| e.to_string())?;
    std::fs::write(args.out.join("meter.json"), serde_json::to_string_pretty(&json).unwrap_or_default())
        .map_err(|e| e.to_string())?;
    let equal = checks.iter().filter(|c| c.reported == c.served).count();
    let mut md = format!(
        "# The scan meter vs the bytes S3 served\n\nTPC-H SF{}, every query in every format, through a counting proxy in \
         front of a local S3 server (moto). {equal} of {} equal.\n\n| format | query | reported bytes | served bytes | equal |\n|---|---|---:|---:|---|\n",
        args.scale,
        checks.len()
    );
    for c in checks {
        md += &format!(
            "| {} | {} | {} | {} | {} |\n",
            c.format,
            c.query,
            c.reported,
            c.served,
            if c.reported == c.served { "yes" } else { "**no**" }
        );
    }
    std::fs::write(args.out.join("meter.md"), md).map_err(|e| e.to_string())
}

fn write_fault_report(args: &Args, checks: &[Check]) -> Result<(), String> {
    let faulted: Vec<(&Check, u64, &Result<(), String>)> =
        checks.iter().filter_map(|c| c.faulted.as_ref().map(|(n, r)| (c, *n, r))).collect();
    let injected: u64 = faulted.iter().map(|(_, n, _)| n).sum();
    let held = faulted.iter().filter(|(_, _, r)| r.is_ok()).count();
    let mut md = format!(
        "# S3 faults: every TPC-H query in every format\n\nTPC-H SF{}, each query run once as is and once with {}% of its object \
         reads failing as S3 fails (503 SlowDown, 500, a reset or a cut in the middle of a body, a first byte 300 ms late, \
         Content-Lengths that lie either way), through testkit's fault proxy in front of a local S3 server (moto), \
         glaux's default retry policy (3 retries, 15 s). {injected} faults injected; {held} of {} queries gave the same \
         answer and a bill of each byte received once (never more than without faults, nor than was sent, to 64 KiB per \
         body broken off; exactly both when no body broke off).\n\n| format | query | faults | same answer, bill holds |\n|---|---|---:|---|\n",
        args.scale,
        args.faults.unwrap_or(0),
        faulted.len()
    );
    for (c, n, r) in &faulted {
        md += &format!(
            "| {} | {} | {n} | {} |\n",
            c.format,
            c.query,
            r.as_ref().map_or_else(|e| format!("**no**: {e}"), |_| "yes".into())
        );
    }
    std::fs::create_dir_all(&args.out).map_err(|e| e.to_string())?;
    std::fs::write(args.out.join("faults.md"), md).map_err(|e| e.to_string())?;
    if held == faulted.len() {
        Ok(())
    } else {
        Err(format!("{} of {} queries did not hold", faulted.len() - held, faulted.len()))
    }
}
