//! `glaux serve`: Athena's JSON API (boto3, PyAthena, the AWS CLI) and the Trino client protocol
//! (trino clients, JDBC) over the warehouse's catalog, history and workgroups.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;
use glaux_engine::{Engine, EngineConfig, S3Settings, StatementPolicy};
use glaux_server::{Limits, Server, ServerConfig};

use crate::warehouse::Warehouse;

#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on. Anything but loopback needs --auth-file.
    #[arg(long, env = "GLAUX_BIND", default_value = "127.0.0.1:8080")]
    bind: SocketAddr,
    /// Which catalog holds the tables: local (in the warehouse) or glue.
    #[arg(long, env = "GLAUX_CATALOG", default_value = "local")]
    catalog: String,
    /// The warehouse: local catalog, query history, workgroups.
    #[arg(long, env = "GLAUX_WAREHOUSE", default_value = "./warehouse")]
    warehouse: std::path::PathBuf,
    /// Credentials clients must present: lines of `bearer TOKEN`, `basic USER:PASSWORD`,
    /// `aws ACCESS_KEY_ID [SECRET]` (SigV4-signed Athena requests from that key; with the
    /// secret, the signature is verified).
    #[arg(long, env = "GLAUX_AUTH_FILE")]
    auth_file: Option<std::path::PathBuf>,
    /// Queries that run at once; more wait QUEUED.
    #[arg(long, env = "GLAUX_MAX_CONCURRENT_QUERIES", default_value_t = 8)]
    max_concurrent_queries: usize,
    /// A query running longer than this fails.
    #[arg(long, env = "GLAUX_QUERY_TIMEOUT_SECONDS", default_value_t = 1800)]
    query_timeout_seconds: u64,
    /// Where results go when neither the request nor its workgroup names a location.
    #[arg(long, env = "GLAUX_OUTPUT_LOCATION")]
    output_location: Option<String>,
    /// A folder of this server's disk SQL may read (and results may be written to). Without
    /// it, only S3: neither local paths nor URL tables in FROM.
    #[arg(long, value_name = "DIR", env = "GLAUX_ALLOW_LOCAL_FILES")]
    allow_local_files: Option<std::path::PathBuf>,
    /// A location statements may write to (COPY TO, and result files besides the output
    /// location's): `s3://bucket/prefix/` or a local folder. Repeatable; without it, SQL writes
    /// nothing.
    #[arg(long = "allow-write", value_name = "LOCATION", env = "GLAUX_ALLOW_WRITE", value_delimiter = ',')]
    allow_write: Vec<String>,
    /// The memory all running queries may hold at once, in bytes (K, M, G suffixes); sorts,
    /// joins and aggregations past it spill to disk. Default: half of the machine's memory.
    #[arg(long, env = "GLAUX_MEMORY_LIMIT")]
    memory_limit: Option<String>,
    /// Queries that may wait for a slot; past it clients are told to retry later.
    #[arg(long, env = "GLAUX_MAX_QUEUED_QUERIES", default_value_t = 1000)]
    max_queued_queries: usize,
    /// Bytes of one query's result held in memory for paging; past it the result is kept in a
    /// file on disk.
    #[arg(long, env = "GLAUX_RESULT_MEMORY", default_value = "16M")]
    result_memory: String,
    /// Days of query history kept (default: all).
    #[arg(long, env = "GLAUX_HISTORY_RETENTION_DAYS")]
    history_retention_days: Option<u32>,
    #[command(flatten)]
    cluster: crate::cluster::ClusterArgs,
}

pub async fn run(args: ServeArgs) -> Result<(), String> {
    let auth = glaux_server::auth_from(args.auth_file.clone()).map_err(|e| e.to_string())?;
    glaux_server::check_bind(&args.bind, &auth).map_err(|e| e.to_string())?;
    let local_root = local_root(args.allow_local_files.as_deref())?;
    let warehouse = Warehouse::open(&args.catalog, &args.warehouse, args.history_retention_days).await?;
    let s3 = S3Settings::from_env();
    let memory_limit = match &args.memory_limit {
        Some(text) => bytes(text).map_err(|e| format!("--memory-limit {text}: {e}"))?,
        None => half_of_memory(),
    };
    let result_memory =
        bytes(&args.result_memory).map_err(|e| format!("--result-memory {}: {e}", args.result_memory))?;
    let policy = StatementPolicy::only(&args.allow_write).map_err(|e| e.to_string())?;
    let engine = Engine::new(EngineConfig {
        policy,
        memory_limit: Some(memory_limit),
        s3: s3.clone(),
        workgroups: Some(std::sync::Arc::clone(&warehouse.workgroups)),
        history: Some(std::sync::Arc::clone(&warehouse.history)),
        source: "serve".into(),
        catalog: Some(warehouse.catalog),
        allow_local_files: local_root.is_some(),
        local_root: local_root.clone(),
        allow_url_tables: local_root.is_some(),
        cluster: args.cluster.cluster().await?,
        ..Default::default()
    })
    .map_err(|e| e.to_string())?;
    let server = Server::new(
        engine,
        ServerConfig {
            limits: Limits {
                max_concurrent: args.max_concurrent_queries,
                query_timeout: Duration::from_secs(args.query_timeout_seconds),
                max_queued: args.max_queued_queries,
                result_memory,
                spill_dir: args.warehouse.join("_glaux_results"),
                ..Default::default()
            },
            auth,
            default_output_location: args.output_location,
            local_root,
            s3,
            history: Some(warehouse.history),
            workgroups: Some(warehouse.workgroups),
        },
    )
    .map_err(|e| e.to_string())?;
    glaux_server::serve(server, args.bind).await.map_err(|e| e.to_string())
}

/// `--allow-local-files DIR` as the real folder, so that symlinks and `..` in the setting cannot
/// widen it.
pub fn local_root(dir: Option<&std::path::Path>) -> Result<Option<std::path::PathBuf>, String> {
    dir.map(|dir| dir.canonicalize().map_err(|e| format!("--allow-local-files {}: {e}", dir.display()))).transpose()
}

/// `512M`, `2G`, `1048576`: a size in bytes.
pub fn bytes(text: &str) -> Result<usize, String> {
    let t = text.trim();
    let (digits, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let n: usize = digits.parse().map_err(|_| "expected a number of bytes such as 512M or 2G".to_string())?;
    let factor: usize = match unit.trim().to_ascii_uppercase().trim_end_matches('B') {
        "" => 1,
        "K" | "KI" => 1 << 10,
        "M" | "MI" => 1 << 20,
        "G" | "GI" => 1 << 30,
        other => return Err(format!("unknown unit '{other}' (K, M or G)")),
    };
    n.checked_mul(factor).ok_or_else(|| "too large".to_string())
}

/// Half of the machine's memory (MemTotal), or 1 GiB when it cannot be read.
fn half_of_memory() -> usize {
    let total = std::fs::read_to_string("/proc/meminfo").ok().and_then(|text| {
        let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
        line.split_whitespace().nth(1)?.parse::<usize>().ok().map(|kb| kb * 1024)
    });
    total.map_or(1 << 30, |t| t / 2)
}
