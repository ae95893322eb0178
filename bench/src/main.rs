//! glaux's benchmarks, each run side by side with a peer in the same process and reported as ratios.

mod overhead;

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
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let outcome = match cli.suite {
        Suite::Overhead(args) => overhead::run(args).await,
    };
    if let Err(e) = outcome {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
