//! The `glaux` command: run SQL over files in S3 or on disk.

mod cluster;
mod config;
mod query;
mod repl;
mod report;
mod serve;
mod warehouse;
mod workgroup;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

// mimalloc rather than the system allocator: see the workspace Cargo.toml.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "glaux", version, about = "Athena-style serverless SQL over files in S3 or on disk")]
struct Cli {
    /// Without a command: the interactive prompt on a terminal, this help otherwise.
    #[command(subcommand)]
    command: Option<Command>,
    /// The settings file (default: glaux.toml in the warehouse, else in this folder). Flags win
    /// over the environment, the environment over the file.
    #[arg(long, global = true, env = "GLAUX_CONFIG", value_name = "FILE")]
    #[allow(dead_code)] // read before clap parses, by config::load
    config: Option<std::path::PathBuf>,
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
    /// The interactive prompt: line editing, history, completion, Ctrl-C cancels a query.
    Repl(repl::ReplArgs),
    /// Serve Athena's JSON API and the Trino client protocol over HTTP.
    Serve(serve::ServeArgs),
    /// The settings in effect: `glaux config show`.
    Config(config::ConfigArgs),
    /// Run the parts of large queries that coordinators (`--workers`) send here.
    Worker(cluster::WorkerArgs),
}

/// A command that failed: what to print, and the exit status that says what kind of failure it
/// was (the README's table).
pub struct Failure {
    message: String,
    code: u8,
}

impl From<String> for Failure {
    fn from(message: String) -> Self {
        Self { message, code: 1 }
    }
}

impl Failure {
    /// A query's failure, its exit status from its kind.
    pub fn of(error: &glaux_engine::Error) -> Self {
        use glaux_engine::ErrorKind as K;
        let code = match error.kind() {
            K::Syntax | K::InvalidInput => 3,
            K::NotFound | K::AlreadyExists => 4,
            K::Permission => 5,
            K::ScanLimit | K::Cancelled | K::Timeout | K::Throttled => 6,
            K::Storage => 7,
            K::Internal => 8,
        };
        Self { message: error.to_string(), code }
    }
}

fn main() -> ExitCode {
    // before anything that may use the instructions this build was compiled for
    if let Err(message) = glaux_engine::check_cpu() {
        eprintln!("error: {message}");
        return ExitCode::FAILURE;
    }
    glaux_engine::without_transparent_huge_pages();
    // the settings file first: what it holds becomes the defaults clap reads
    let args: Vec<String> = std::env::args().collect();
    let loaded = match config::load(&args) {
        Ok(l) => l,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::FAILURE;
        }
    };
    let cli = Cli::parse();
    let command = match cli.command {
        Some(command) => command,
        None if std::io::stdin().is_terminal() && std::io::stdout().is_terminal() => {
            Command::Repl(repl::ReplArgs::from_env())
        }
        None => {
            let _ = <Cli as clap::CommandFactory>::command().print_help();
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async {
        match command {
            Command::Repl(args) => repl::run(args).await.map_err(Failure::from),
            Command::Query(args) => query::run(args).await,
            Command::Workgroup(args) => workgroup::run(args).map_err(Failure::from),
            Command::Report(args) => report::run(args).map_err(Failure::from),
            Command::Serve(args) => serve::run(args).await.map_err(Failure::from),
            Command::Config(args) => config::run(args, &loaded).map_err(Failure::from),
            Command::Worker(args) => cluster::run_worker(args).await.map_err(Failure::from),
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure { message, code }) => {
            // The one place CLI errors are printed.
            eprintln!("error: {message}");
            ExitCode::from(code)
        }
    }
}
