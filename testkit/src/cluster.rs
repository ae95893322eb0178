//! `glaux worker` processes on loopback for tests and benchmarks, killed when let go of.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::child::Guarded;

/// The shared secret test clusters use.
pub const TEST_SECRET: &str = "glaux-test-cluster-secret";

/// Running workers and the URLs they listen on.
pub struct WorkerProcesses {
    pub children: Vec<Guarded>,
    pub urls: Vec<String>,
}

impl WorkerProcesses {
    /// Starts `n` workers of `glaux` reading S3 at `endpoint`, each on a port of its own, and
    /// waits until each says where it listens.
    pub fn start(glaux: &Path, n: usize, endpoint: &str, secret: &str) -> Result<Self, String> {
        Self::start_with(glaux, n, endpoint, secret, &[])
    }

    /// As [`WorkerProcesses::start`], with more `glaux worker` arguments (`--allow-local-files`).
    pub fn start_with(glaux: &Path, n: usize, endpoint: &str, secret: &str, args: &[&str]) -> Result<Self, String> {
        let mut workers = Self { children: vec![], urls: vec![] };
        for _ in 0..n {
            let mut child = Guarded(
                Command::new(glaux)
                    .args(["worker", "--bind", "127.0.0.1:0"])
                    .args(args)
                    .env("AWS_ENDPOINT_URL", endpoint)
                    .env_remove("AWS_ENDPOINT_URL_S3")
                    .env("AWS_ACCESS_KEY_ID", "testing")
                    .env("AWS_SECRET_ACCESS_KEY", "testing")
                    .env("AWS_REGION", "us-east-1")
                    .env("GLAUX_CLUSTER_SECRET", secret)
                    .stdout(Stdio::piped())
                    .spawn()
                    .map_err(|e| format!("cannot start {} worker: {e}", glaux.display()))?,
            );
            let stdout = child.stdout.take().ok_or("the worker's output")?;
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stdout);
                let mut line = String::new();
                let _ = reader.read_line(&mut line);
                let _ = tx.send(line);
                // keep reading, so the worker never blocks on a full pipe
                let _ = std::io::copy(&mut reader, &mut std::io::sink());
            });
            let line = rx.recv_timeout(Duration::from_secs(60)).map_err(|_| "a worker did not start within 60 s")?;
            let url = line
                .trim()
                .strip_prefix("glaux worker listening on ")
                .ok_or_else(|| format!("a worker said '{}' on starting", line.trim()))?;
            workers.urls.push(url.to_string());
            workers.children.push(child);
        }
        Ok(workers)
    }

    /// The `--workers` value naming them all.
    pub fn list(&self) -> String {
        self.urls.join(",")
    }

    /// Kills worker `i` (SIGKILL) and reaps it.
    pub fn kill(&mut self, i: usize) {
        let _ = self.children[i].kill();
        let _ = self.children[i].wait();
    }
}
