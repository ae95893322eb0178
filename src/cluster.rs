//! Scale-out from the command line: `glaux worker`, and the `--workers` settings every
//! coordinator (`glaux query`, `glaux repl`, `glaux serve`) takes.

use std::net::SocketAddr;

use clap::Args;
use glaux_engine::{
    Cluster, DEFAULT_DISTRIBUTE_ABOVE, S3Settings, SECRET_VARIABLE, WorkerConfig, WorkerSource, Workers,
};

fn secret() -> Result<Option<String>, String> {
    glaux_engine::cluster_secret(std::env::var(SECRET_VARIABLE).ok()).map_err(|e| e.to_string())
}

/// Where a coordinator's workers are.
#[derive(Args, Clone, Default)]
pub struct ClusterArgs {
    /// Workers to spread large queries over: `http://host:port[,…]`, `file:PATH` (one URL a
    /// line, re-read when it changes) or `dns:NAME:PORT` (each A/AAAA record of NAME is a
    /// worker, as a Kubernetes headless Service gives). Requests carry GLAUX_CLUSTER_SECRET.
    #[arg(long, env = "GLAUX_WORKERS", value_name = "WORKERS")]
    pub workers: Option<String>,
    /// Queries whose pruned scan reads fewer bytes than this run here alone (K, M, G suffixes).
    #[arg(long, env = "GLAUX_DISTRIBUTE_ABOVE", value_name = "BYTES")]
    pub distribute_above: Option<String>,
}

impl ClusterArgs {
    /// The cluster, if workers were named; the first lookup happens now.
    pub async fn cluster(&self) -> Result<Option<Cluster>, String> {
        let Some(workers) = &self.workers else { return Ok(None) };
        let source = WorkerSource::parse(workers).map_err(|e| e.to_string())?;
        let distribute_above = match &self.distribute_above {
            Some(text) => crate::serve::bytes(text).map_err(|e| format!("--distribute-above {text}: {e}"))? as u64,
            None => DEFAULT_DISTRIBUTE_ABOVE,
        };
        let workers = Workers::start(source).await.map_err(|e| e.to_string())?;
        Ok(Some(Cluster { workers, secret: secret()?, distribute_above }))
    }
}

#[derive(Args)]
pub struct WorkerArgs {
    /// Address to listen on. Anything but loopback needs GLAUX_CLUSTER_SECRET.
    #[arg(long, env = "GLAUX_WORKER_BIND", default_value = "127.0.0.1:9090")]
    bind: SocketAddr,
    /// A folder of this machine's disk plans may read. Without it, only S3.
    #[arg(long, value_name = "DIR", env = "GLAUX_ALLOW_LOCAL_FILES")]
    allow_local_files: Option<std::path::PathBuf>,
    /// Read S3 without signing requests (public buckets).
    #[arg(long, env = "GLAUX_S3_ANONYMOUS")]
    no_sign_request: bool,
}

pub async fn run_worker(args: WorkerArgs) -> Result<(), String> {
    let secret = secret()?;
    if secret.is_none() && !args.bind.ip().is_loopback() {
        return Err(format!(
            "refusing to listen on {} without {SECRET_VARIABLE}: anyone who can reach it could run plans here",
            args.bind
        ));
    }
    let local_root = crate::serve::local_root(args.allow_local_files.as_deref())?;
    let mut s3 = S3Settings::from_env();
    s3.anonymous |= args.no_sign_request;
    let config = WorkerConfig { s3, allow_local_files: local_root.is_some(), local_root, secret: secret.clone() };
    let worker = glaux_engine::new_worker(&config).map_err(|e| e.to_string())?;
    let listener =
        tokio::net::TcpListener::bind(args.bind).await.map_err(|e| format!("cannot listen on {}: {e}", args.bind))?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    // the address actually bound (port 0 picks one), for scripts and tests that start workers
    println!("glaux worker listening on http://{address}");
    // Ctrl-C, or the SIGTERM a container runtime stops a worker with
    let shutdown = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    };
    glaux_engine::serve_worker(listener, worker, secret, shutdown).await.map_err(|e| e.to_string())
}
