//! What every end-to-end test needs: the S3 server's address, the data set, the binary.

pub mod csv;

use std::process::{Command, Output, Stdio};
use std::time::Duration;

pub use glaux_testkit::{Env, env, proxy, scratch};
use serde_json::Value;

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

/// `relative` in this clone of the repository. Cargo names the package's folder when it runs
/// the tests; the folder compiled in is only the fallback, because the build cache is shared
/// between clones (`.ci/run`) and a test binary another clone built from the same sources
/// counts as fresh here while it names that clone's folder.
pub fn repo_path(relative: &str) -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")))
        .join(relative)
}

/// Runs `tests/data/glue_tool.py ENDPOINT ARGS…` (boto3, as other tools use Glue) and parses
/// the JSON it prints.
pub fn glue_tool(endpoint: &str, args: &[&str]) -> Value {
    let script = repo_path("tests/data/glue_tool.py");
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
    let Output { status, stdout, stderr } =
        glaux_testkit::output_within(child, Duration::from_secs(180), &format!("glaux query {sql}"));
    let run = Run {
        status: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    };
    assert!(!run.stderr.contains("panicked"), "glaux panicked: {}", run.stderr);
    run
}
