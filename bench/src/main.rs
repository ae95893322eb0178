//! glaux's benchmarks, each run side by side with a peer in the same process and reported as ratios.

mod crash;
mod differential;
mod distributed;
mod lambda;
mod meter;
mod overhead;
mod partitions;
mod s3;
mod tpch;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

// mimalloc rather than the system allocator: see the workspace Cargo.toml.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "glaux-bench", about = "Side-by-side benchmarks of glaux and its peers")]
struct Cli {
    #[command(subcommand)]
    suite: Suite,
}

#[derive(Subcommand)]
enum Suite {
    /// glaux's engine vs a bare DataFusion SessionContext on the same Parquet files.
    Overhead(overhead::Args),
    /// One partition of 10,000: local catalog, Glue and projection, beside DuckDB.
    Partitions(partitions::Args),
    /// TPC-H's 22 queries through glaux (disk and S3) and DuckDB on the same Parquet files.
    Tpch(tpch::Args),
    /// Reported bytes vs bytes the S3 server sent, for every TPC-H query and format.
    Meter(meter::Args),
    /// SIGKILL at random moments of writes, then a check that the warehouse is whole.
    Crash(crash::Args),
    /// Generated queries through glaux's catalog and DuckDB on the same files, answers compared.
    Differential(differential::Args),
    /// The Lambda function: cold start, first query, package size, peak memory of 1 GB scans.
    Lambda(lambda::Args),
    /// Parquet from S3: requests, bytes and time beside DuckDB's httpfs, with added latency.
    S3(s3::Args),
    /// TPC-H on one process and on a coordinator with 1, 2, 4 `glaux worker` processes.
    Distributed(distributed::Args),
}

/// A file of the bench crate's folder (its DuckDB scripts, the TPC-H queries) in the clone it
/// runs from: `bench/run` names it (`GLAUX_BENCH_DIR`), cargo names it when it runs the binary,
/// and the folder compiled in comes last. The build cache is shared between clones, and a binary
/// another clone built from the same sources carries that clone's folder.
pub(crate) fn bench_file(name: &str) -> PathBuf {
    let dir = std::env::var_os("GLAUX_BENCH_DIR")
        .or_else(|| std::env::var_os("CARGO_MANIFEST_DIR"))
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    dir.join(name)
}

#[tokio::main]
async fn main() {
    // Not glaux_engine::without_transparent_huge_pages, as `glaux` does: the setting passes to
    // child processes, and the peers (DuckDB) run as their users run them. mimalloc's no_thp
    // feature keeps this process's heap off huge pages where the kernel gives them only on
    // request (THP "madvise", the common setting, and the machine the figures come from).
    let cli = Cli::parse();
    let outcome = match cli.suite {
        Suite::Overhead(args) => overhead::run(args).await,
        Suite::Partitions(args) => partitions::run(args).await,
        Suite::Tpch(args) => tpch::run(args).await,
        Suite::Meter(args) => meter::run(args).await,
        Suite::Crash(args) => crash::run(args).await,
        Suite::Differential(args) => differential::run(args).await,
        Suite::Lambda(args) => lambda::run(args).await,
        Suite::S3(args) => s3::run(args).await,
        Suite::Distributed(args) => distributed::bench(args).await,
    };
    if let Err(e) = outcome {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
