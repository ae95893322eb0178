//! `glaux report`: scan-cost reports from the warehouse's query history, as a table, CSV, JSON
//! or one self-contained HTML page with a chart of cost per day.

use std::io::Write;

use clap::Args;
use glaux_engine::arrow::array::RecordBatch;
use glaux_engine::{OutputFormat, QueryHistory, ResultWriter, WorkGroups};

mod compute;
mod html;

use compute::{Report, ReportBy, ReportRequest};

#[derive(Args)]
pub struct ReportArgs {
    /// First day included (YYYY-MM-DD, UTC); default: the oldest day in the history.
    #[arg(long)]
    since: Option<String>,
    /// Last day included (YYYY-MM-DD, UTC); default: today.
    #[arg(long)]
    until: Option<String>,
    /// What each row stands for: day, workgroup, user, table or query.
    #[arg(long, default_value = "day")]
    by: String,
    /// How many of the most expensive queries to list.
    #[arg(long, default_value_t = 10)]
    top: usize,
    /// Only queries of this workgroup.
    #[arg(long)]
    workgroup: Option<String>,
    /// table, csv (the grouped rows), json (the whole report) or html (one page with a chart).
    #[arg(long, short, default_value = "table")]
    format: String,
    /// Write the report to this file instead of standard output.
    #[arg(long)]
    out: Option<std::path::PathBuf>,
    /// The warehouse whose history is reported.
    #[arg(long, env = "GLAUX_WAREHOUSE", default_value = "./warehouse")]
    warehouse: std::path::PathBuf,
}

fn date(flag: &str, value: &Option<String>) -> Result<Option<glaux_engine::chrono::NaiveDate>, String> {
    value
        .as_deref()
        .map(|v| {
            glaux_engine::chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d")
                .map_err(|e| format!("{flag} '{v}' is not a date (YYYY-MM-DD): {e}"))
        })
        .transpose()
}

pub fn run(args: ReportArgs) -> Result<(), String> {
    let by: ReportBy = args.by.parse().map_err(|e: glaux_engine::Error| e.to_string())?;
    let request = ReportRequest {
        since: date("--since", &args.since)?,
        until: date("--until", &args.until)?,
        by,
        top: args.top,
        workgroup: args.workgroup.clone(),
    };
    let format = args.format.to_ascii_lowercase();
    if !matches!(format.as_str(), "table" | "csv" | "json" | "html") {
        return Err(format!("unknown report format '{}' (table, csv, json or html)", args.format));
    }
    let history = QueryHistory::existing(&args.warehouse).map_err(|e| e.to_string())?;
    let entries = history.entries().map_err(|e| e.to_string())?;
    if let Some(name) = &args.workgroup {
        // a deleted workgroup's queries can still be reported
        let known = WorkGroups::open(&args.warehouse).and_then(|w| w.get(name)).map_err(|e| e.to_string())?.is_some()
            || entries.iter().any(|e| &e.execution.work_group == name);
        if !known {
            return Err(format!("workgroup {name} does not exist and has no queries in the history"));
        }
    }
    let report = Report::build(&entries, &request).map_err(|e| e.to_string())?;
    let mut out: Box<dyn Write> = match &args.out {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).map_err(|e| format!("cannot write {}: {e}", path.display()))?,
        )),
        None => Box::new(std::io::stdout().lock()),
    };
    let written = match format.as_str() {
        "html" => out.write_all(report.html().as_bytes()).map_err(|e| e.to_string()),
        "json" => serde_json::to_writer_pretty(&mut out, &report)
            .map_err(|e| e.to_string())
            .and_then(|_| writeln!(out).map_err(|e| e.to_string())),
        "csv" => write_rows(&mut out, OutputFormat::Csv, &report.groups_batch().map_err(|e| e.to_string())?),
        _ => write_table(&mut out, &report),
    };
    written.and_then(|_| out.flush().map_err(|e| e.to_string()))
}

fn write_rows(out: &mut dyn Write, format: OutputFormat, batch: &RecordBatch) -> Result<(), String> {
    let mut writer = ResultWriter::new(out, format, batch.schema());
    writer.write(batch).map_err(|e| e.to_string())?;
    writer.finish().map(|_| ()).map_err(|e| e.to_string())
}

fn write_table(out: &mut dyn Write, report: &Report) -> Result<(), String> {
    let scope = report.workgroup.as_ref().map(|w| format!(", workgroup {w}")).unwrap_or_default();
    let t = &report.totals;
    writeln!(
        out,
        "Scan-cost report {} to {}{scope}: {} queries ({} failed, {} cancelled), scanned {}, billed {}, cost ${:.6}\n",
        report.since,
        report.until,
        t.queries,
        t.failed,
        t.cancelled,
        glaux_engine::human_bytes(t.data_scanned_bytes),
        glaux_engine::human_bytes(t.billed_bytes),
        t.cost_usd
    )
    .map_err(|e| e.to_string())?;
    writeln!(out, "By {}:", report.by).map_err(|e| e.to_string())?;
    write_rows(out, OutputFormat::Table, &report.groups_batch().map_err(|e| e.to_string())?)?;
    writeln!(out, "\nMost expensive queries:").map_err(|e| e.to_string())?;
    write_rows(out, OutputFormat::Table, &report.top_batch().map_err(|e| e.to_string())?)?;
    writeln!(out, "\nPartition-pruning misses (every partition of a partitioned table read):")
        .map_err(|e| e.to_string())?;
    write_rows(out, OutputFormat::Table, &report.misses_batch().map_err(|e| e.to_string())?)
}
