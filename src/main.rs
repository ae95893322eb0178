//! The `glaux` command: run SQL over files in S3 or on disk.

mod query;
mod report;
mod serve;
mod warehouse;
mod workgroup;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "glaux", version, about = "Athena-style serverless SQL over files in S3 or on disk")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run SQL (several statements separated by ';') and print the results.
    Query(query::QueryArgs),
    /// Manage workgroups: scan limits, prices, output locations, daily budgets.
    Workgroup(workgroup::WorkgroupArgs),
    /// Scan-cost reports from the query history: totals, groups, the most expensive queries,
    /// partition-pruning misses; `--format html` writes one page with a chart.
    Report(report::ReportArgs),
    /// Serve Athena's JSON API and the Trino client protocol over HTTP.
    Serve(serve::ServeArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async {
        match cli.command {
            Command::Query(args) => query::run(args).await,
            Command::Workgroup(args) => workgroup::run(args),
            Command::Report(args) => report::run(args),
            Command::Serve(args) => serve::run(args).await,
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            // The one place CLI errors are printed.
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}
