//! What every end-to-end test needs: the S3 server's address, the data set, the binary.

pub mod csv;
pub mod proxy;

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::Value;

/// The running S3 server and the data uploaded to it by scripts/test.
pub struct Env {
    pub endpoint: String,
    pub data: PathBuf,
    pub bucket: String,
}

pub fn env() -> Env {
    let var = |k: &str| {
        std::env::var(k)
            .unwrap_or_else(|_| panic!("{k} is not set: run the suite with ./scripts/test, which starts the S3 server"))
    };
    Env {
        endpoint: var("GLAUX_TEST_S3_ENDPOINT"),
        data: PathBuf::from(var("GLAUX_TEST_DATA")),
        bucket: var("GLAUX_TEST_BUCKET"),
    }
}

impl Env {
    pub fn s3(&self, key: &str) -> String {
        format!("s3://{}/{}", self.bucket, key)
    }

    /// Total size of the local copies of the objects under `prefix` (what S3 holds).
    pub fn size_of(&self, prefix: &str) -> u64 {
        let dir = self.data.join(prefix);
        let mut total = 0;
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_file() {
                total += entry.metadata().unwrap().len();
            }
        }
        total
    }
}

/// What one run of `glaux query` produced.
pub struct Run {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The QueryExecution records `--stats` printed, one per statement.
    pub fn executions(&self) -> Vec<Value> {
        self.stderr
            .lines()
            .filter(|l| l.starts_with('{'))
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad stats line {l}: {e}")))
            .collect()
    }

    /// Sum of DataScannedInBytes over every statement.
    pub fn scanned(&self) -> u64 {
        self.executions().iter().map(|e| e["Statistics"]["DataScannedInBytes"].as_u64().unwrap()).sum()
    }

    pub fn last(&self) -> Value {
        self.executions().pop().unwrap_or_else(|| panic!("no stats printed; stderr: {}", self.stderr))
    }

    pub fn assert_ok(&self) -> &Self {
        assert_eq!(self.status, 0, "glaux failed:\nstderr: {}\nstdout: {}", self.stderr, self.stdout);
        self
    }
}

/// Runs `tests/data/glue_tool.py ENDPOINT ARGS…` (boto3, as other tools use Glue) and parses
/// the JSON it prints.
pub fn glue_tool(endpoint: &str, args: &[&str]) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/glue_tool.py");
    let out = Command::new("python3").arg(script).arg(endpoint).args(args).output().expect("python3");
    assert!(out.status.success(), "glue_tool {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("glue_tool prints JSON")
}

/// S3 settings for an in-process engine talking to the test server, as from a clean environment.
pub fn s3_settings(endpoint: &str) -> glaux_engine::S3Settings {
    let vars = [
        ("AWS_ENDPOINT_URL", endpoint.to_string()),
        ("AWS_ACCESS_KEY_ID", "testing".to_string()),
        ("AWS_SECRET_ACCESS_KEY", "testing".to_string()),
        ("HOME", "/nonexistent".to_string()),
    ];
    glaux_engine::S3Settings::from_lookup(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone()))
}

/// A directory of its own for one test (its warehouse, its files); scripts/test clears them.
pub fn scratch(tag: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("glaux-it-{}-{tag}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// Runs `glaux query --stats ARGS… SQL` against `endpoint` with a fresh warehouse.
pub fn glaux(endpoint: &str, args: &[&str], sql: &str) -> Run {
    glaux_in(&scratch("warehouse"), endpoint, args, sql)
}

/// Runs `glaux query --stats ARGS… SQL` with `warehouse`, failing the test if it hangs.
pub fn glaux_in(warehouse: &std::path::Path, endpoint: &str, args: &[&str], sql: &str) -> Run {
    glaux_env(warehouse, endpoint, args, sql, &[])
}

/// As [`glaux_in`], with more environment variables (`AWS_ENDPOINT_URL_GLUE`, …).
pub fn glaux_env(warehouse: &std::path::Path, endpoint: &str, args: &[&str], sql: &str, vars: &[(&str, &str)]) -> Run {
    let child = Command::new(env!("CARGO_BIN_EXE_glaux"))
        .arg("query")
        .arg("--stats")
        .args(args)
        .arg(sql)
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env_remove("AWS_ENDPOINT_URL_S3")
        .env("GLAUX_WAREHOUSE", warehouse)
        .env_remove("AWS_ENDPOINT_URL_GLUE")
        .env_remove("GLAUX_CATALOG")
        .envs(vars.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start glaux");
    // Output is collected on another thread (a full pipe must not stall glaux); the deadline
    // guards against hangs and is not a performance assertion.
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let Output { status, stdout, stderr } = match rx.recv_timeout(Duration::from_secs(180)) {
        Ok(output) => output.expect("glaux output"),
        Err(_) => {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            panic!("glaux did not finish within 180 s: {sql}");
        }
    };
    let run = Run {
        status: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    };
    assert!(!run.stderr.contains("panicked"), "glaux panicked: {}", run.stderr);
    run
}
