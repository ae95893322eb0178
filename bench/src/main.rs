//! glaux's benchmarks, each run side by side with a peer in the same process and reported as ratios.

mod overhead;
mod partitions;

use clap::{Parser, Subcommand};

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
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let outcome = match cli.suite {
        Suite::Overhead(args) => overhead::run(args).await,
        Suite::Partitions(args) => partitions::run(args).await,
    };
    if let Err(e) = outcome {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
