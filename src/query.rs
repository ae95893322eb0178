//! `glaux query`: statements run one after another, results to stdout, records to stderr.

use clap::Args;
use glaux_engine::{
    Engine, OutputFormat, QueryExecution, QueryExecutionContext, ResultWriter, StartQueryExecution, StatementType,
    human_bytes,
};
use std::io::{IsTerminal, Read, Write};

use crate::Failure;
use crate::warehouse::SessionArgs;

#[derive(Args)]
pub struct QueryArgs {
    /// The SQL to run (it may begin with a `--` or `/* */` comment); `-` reads it from standard
    /// input.
    #[arg(allow_hyphen_values = true, required_unless_present = "file", conflicts_with = "file")]
    sql: Option<String>,
    /// Run the script in FILE.
    #[arg(long, short = 'f', value_name = "FILE")]
    file: Option<std::path::PathBuf>,
    /// table, csv or json (JSON lines). Default: table on a terminal, csv otherwise.
    #[arg(long)]
    format: Option<String>,
    /// Print each statement's QueryExecution (Athena's JSON shape) on stderr after its results.
    #[arg(long)]
    stats: bool,
    /// Print a one-line summary per statement on stderr: rows, bytes scanned, billed bytes, cost.
    #[arg(long)]
    summary: bool,
    #[command(flatten)]
    session: SessionArgs,
    /// Plan each query without reading data: the files it would read and an upper bound of
    /// its bytes and cost (Parquet footers are read for column sizes; DDL still runs).
    #[arg(long)]
    dry_run: bool,
}

pub async fn run(args: QueryArgs) -> Result<(), Failure> {
    let format = match &args.format {
        Some(f) => f.parse::<OutputFormat>().map_err(|e| e.to_string())?,
        None if std::io::stdout().is_terminal() => OutputFormat::Table,
        None => OutputFormat::Csv,
    };
    let sql = match (&args.sql, &args.file) {
        (_, Some(file)) => std::fs::read_to_string(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?,
        (Some(sql), None) if sql == "-" => {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text).map_err(|e| format!("cannot read SQL from stdin: {e}"))?;
            text
        }
        (Some(sql), None) => sql.clone(),
        (None, None) => return Err(String::from("give the SQL to run, - for standard input, or -f FILE").into()),
    };
    let (engine, _) = args.session.engine("cli").await?;
    let statements = engine.split_statements(&sql).map_err(|e| Failure::of(&e))?;
    for statement in statements {
        let first_word = statement.split_whitespace().next().unwrap_or_default().to_ascii_uppercase();
        let statement = if args.dry_run && matches!(first_word.as_str(), "SELECT" | "WITH" | "VALUES") {
            format!("EXPLAIN (TYPE IO) {statement}")
        } else {
            statement
        };
        let request = StartQueryExecution {
            query_string: statement,
            // The database comes from the engine, so `USE db` carries over to later statements.
            query_execution_context: Some(QueryExecutionContext {
                database: None,
                catalog: Some("AwsDataCatalog".into()),
            }),
            work_group: Some(args.session.workgroup.clone()),
            ..Default::default()
        };
        let (execution, rows, outcome) = run_one(&engine, &request, format).await;
        if args.stats {
            print_stats(&execution);
        }
        for warning in &execution.warnings {
            eprintln!("warning: {warning}");
        }
        if args.summary && execution.statement_type != StatementType::Ddl {
            eprintln!("{}", summary_line(&execution, rows));
        }
        outcome?;
    }
    Ok(())
}

async fn run_one(
    engine: &Engine,
    request: &StartQueryExecution,
    format: OutputFormat,
) -> (QueryExecution, usize, Result<(), Failure>) {
    let mut query = match engine.start(request).await {
        Ok(q) => q,
        Err(failure) => return (failure.execution, 0, Err(Failure::of(&failure.error))),
    };
    let mut rows = 0;
    // statements without columns (DDL) print nothing at all
    let schema = query.schema().filter(|s| !s.fields().is_empty());
    let stdout = std::io::stdout().lock();
    let mut writer = schema.map(|s| ResultWriter::new(std::io::BufWriter::new(stdout), format, s));
    while let Some(next) = query.next_batch().await {
        let written = next.and_then(|batch| {
            rows += batch.num_rows();
            match writer.as_mut() {
                Some(w) => w.write(&batch),
                None => Ok(()),
            }
        });
        if let Err(error) = written {
            let failure = query.fail(error);
            return (failure.execution, rows, Err(Failure::of(&failure.error)));
        }
    }
    let execution = query.succeed();
    let shown = match writer {
        Some(w) => w.finish().map(|_| ()),
        None => Ok(()),
    };
    (execution, rows, shown.map_err(|e| Failure::of(&e)))
}

pub(crate) fn summary_line(execution: &QueryExecution, rows: usize) -> String {
    let s = &execution.statistics;
    format!(
        "({rows} row{}, {} ms; scanned {}, billed {}, cost ${:.8})",
        if rows == 1 { "" } else { "s" },
        s.total_execution_time_in_millis,
        human_bytes(s.data_scanned_in_bytes),
        human_bytes(s.billed_bytes),
        s.cost_usd
    )
}

fn print_stats(execution: &QueryExecution) {
    if let Ok(json) = serde_json::to_string(execution) {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{json}");
    }
}
