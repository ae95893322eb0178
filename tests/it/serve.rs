//! `glaux serve` driven by the real clients from PyPI — boto3, PyAthena, the trino client — in
//! the pytest files of tests/clients, each against a server of its own over the moto S3 server.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};

use glaux_testkit::{Guarded, free_port};
use std::time::{Duration, Instant};

use crate::support::{self, scratch};

/// A running `glaux serve`, stopped when dropped.
struct Served {
    child: Guarded,
    url: String,
}

fn health(url: &str) -> bool {
    let addr = url.trim_start_matches("http://");
    let Ok(mut stream) = TcpStream::connect(addr) else { return false };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = write!(stream, "GET /health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    let mut reply = String::new();
    let _ = stream.read_to_string(&mut reply);
    reply.starts_with("HTTP/1.1 200")
}

/// A server whose clients may write results and COPY output under the test results bucket.
fn serve(warehouse: &Path, args: &[&str]) -> Served {
    let results = format!("s3://{}-results/", support::env().bucket);
    serve_with(warehouse, args, &[], &results)
}

fn serve_with(warehouse: &Path, args: &[&str], vars: &[(&str, &str)], allow_write: &str) -> Served {
    let env = support::env();
    let url = format!("http://127.0.0.1:{}", free_port());
    let child = Command::new(env!("CARGO_BIN_EXE_glaux"))
        .args(["serve", "--bind", url.trim_start_matches("http://"), "--query-timeout-seconds", "300"])
        .args(["--allow-write", allow_write])
        .args(args)
        .envs(vars.iter().copied())
        .env("GLAUX_WAREHOUSE", warehouse)
        .env("AWS_ENDPOINT_URL", &env.endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env_remove("GLAUX_CATALOG")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start glaux serve");
    let served = Served { child: Guarded(child), url };
    let started = Instant::now();
    while !health(&served.url) {
        assert!(started.elapsed() < Duration::from_secs(60), "glaux serve did not come up at {}", served.url);
        std::thread::sleep(Duration::from_millis(50));
    }
    served
}

/// Runs one pytest file of tests/clients against `served`; fails with pytest's report.
fn pytest(served: &Served, file: &str, vars: &[(&str, &str)]) {
    let env = support::env();
    let dir = support::repo_path("tests/clients");
    let out = Command::new("python3")
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", file])
        .current_dir(dir)
        .env("GLAUX_URL", &served.url)
        .env("GLAUX_TEST_S3_ENDPOINT", &env.endpoint)
        .env("GLAUX_TEST_BUCKET", &env.bucket)
        .env("GLAUX_TEST_DATA", &env.data)
        .env("GLAUX_RUN", format!("{}-{file}", std::process::id()))
        // boto3 (and PyAthena through it) takes each service's endpoint from these
        .env("AWS_ENDPOINT_URL_ATHENA", &served.url)
        .env("AWS_ENDPOINT_URL_S3", &env.endpoint)
        .env_remove("AWS_ENDPOINT_URL")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .envs(vars.iter().copied())
        .output()
        .expect("python3 -m pytest (scripts/test installs it)");
    assert!(
        out.status.success(),
        "pytest {file} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn ctas_insert_and_unload_through_the_athena_api() {
    let served = serve(&scratch("serve-writes"), &[]);
    pytest(&served, "test_writes.py", &[]);
}

#[test]
fn awswrangler_reads_through_ctas_and_unload() {
    // awswrangler talks to Glue and S3 itself: glaux keeps its tables in the same (moto's) Glue
    let results = format!("s3://{}-results/", support::env().bucket);
    let served = serve_with(&scratch("serve-wrangler"), &["--catalog", "glue"], &[], &results);
    pytest(&served, "test_awswrangler.py", &[("GLAUX_NO_TABLES", "1")]);
}

#[test]
fn dbt_athena_builds_a_project_twice() {
    let results = format!("s3://{}-results/", support::env().bucket);
    let served = serve_with(&scratch("serve-dbt"), &["--catalog", "glue"], &[], &results);
    // dbt-athena pins PyAthena 3: scripts/test keeps it in an environment of its own
    let dbt =
        std::env::var("GLAUX_DBT").unwrap_or_else(|_| support::repo_path(".venv-dbt/bin/dbt").display().to_string());
    pytest(&served, "test_dbt.py", &[("GLAUX_NO_TABLES", "1"), ("GLAUX_DBT", &dbt)]);
}

#[test]
fn boto3_drives_the_athena_api() {
    let served = serve(&scratch("serve-boto3"), &[]);
    pytest(&served, "test_boto3.py", &[]);
}

#[test]
fn pyathena_cursors_and_the_pandas_cursor() {
    let served = serve(&scratch("serve-pyathena"), &[]);
    pytest(&served, "test_pyathena.py", &[]);
}

#[test]
fn trino_client_protocol() {
    let served = serve(&scratch("serve-trino"), &[]);
    pytest(&served, "test_trino.py", &[]);
}

#[test]
fn bad_requests_get_the_protocols_error_shapes() {
    let served = serve(&scratch("serve-bad"), &[]);
    pytest(&served, "test_bad_requests.py", &[]);
}

#[test]
fn thirty_two_clients_for_thirty_seconds() {
    let served = serve(&scratch("serve-load"), &["--max-concurrent-queries", "4"]);
    pytest(&served, "test_load.py", &[]);
}

/// A folder the server may read and one beside it it may not, which holds `secret.csv`.
fn allowed_and_outside(warehouse: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let (allowed, outside) = (warehouse.join("allowed"), warehouse.join("outside"));
    std::fs::create_dir_all(&allowed).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret.csv"), "x\n42\n").unwrap();
    (allowed, outside)
}

#[test]
fn local_files_only_inside_the_allowed_folder() {
    let warehouse = scratch("serve-local");
    let (allowed, outside) = allowed_and_outside(&warehouse);
    let numbers: String = (1..=50).map(|i| format!("{}\n", i * 7)).collect();
    std::fs::write(allowed.join("numbers.csv"), format!("x\n{numbers}")).unwrap();
    let vars = [("GLAUX_OUTSIDE_DIR", outside.to_str().unwrap())];
    // without --allow-local-files: nothing of the server's disk
    let closed = serve(&warehouse.join("closed"), &[]);
    pytest(&closed, "test_local_files.py", &vars);
    drop(closed);
    let open = serve(&warehouse.join("open"), &["--allow-local-files", allowed.to_str().unwrap()]);
    pytest(&open, "test_local_files.py", &[vars[0], ("GLAUX_ALLOWED_DIR", allowed.to_str().unwrap())]);
}

#[test]
fn credentials_are_checked_and_public_binds_need_them() {
    let warehouse = scratch("serve-auth");
    let file = warehouse.join("auth");
    std::fs::write(
        &file,
        "# who may call\nbearer tok-123\nbasic alice:s3cret\naws AKIAALLOWED wJalr/EXAMPLEKEY\naws AKIAKEYONLY\n",
    )
    .unwrap();
    let served = serve(&warehouse, &["--auth-file", file.to_str().unwrap()]);
    pytest(
        &served,
        "test_auth.py",
        &[
            ("GLAUX_AUTH_TOKEN", "tok-123"),
            ("GLAUX_AUTH_ACCESS_KEY", "AKIAALLOWED"),
            ("GLAUX_AUTH_SECRET_KEY", "wJalr/EXAMPLEKEY"),
            ("GLAUX_AUTH_KEY_ONLY", "AKIAKEYONLY"),
        ],
    );

    let refused = Command::new(env!("CARGO_BIN_EXE_glaux"))
        .args(["serve", "--bind", "0.0.0.0:0"])
        .env("GLAUX_WAREHOUSE", &warehouse)
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("refusing to listen on 0.0.0.0:0 without authentication"), "{err}");
}

#[test]
fn clients_are_kept_apart() {
    let warehouse = scratch("serve-isolation");
    let (allowed, outside) = allowed_and_outside(&warehouse);
    // a link inside the allowed folder to one outside it
    std::os::unix::fs::symlink(&outside, allowed.join("link")).unwrap();
    let auth = warehouse.join("auth");
    std::fs::write(
        &auth,
        "# principals of the isolation test; '#' inside a token is part of it\n\
         bearer tok-alice#1 principal=alice manage=etl\n\
         bearer tok-bob principal=bob\n\
         bearer tok-root principal=root role=admin\n\
         aws AKIAALICE alice-secret principal=alice manage=etl\n\
         aws AKIABOB bob-secret principal=bob\n\
         aws AKIAROOT root-secret principal=root role=admin\n",
    )
    .unwrap();
    let env = support::env();
    let allowed_write = format!("s3://{}-results/allowed/", env.bucket);
    let served = serve_with(
        &warehouse.join("warehouse"),
        &[
            "--auth-file",
            auth.to_str().unwrap(),
            "--allow-local-files",
            allowed.to_str().unwrap(),
            "--max-concurrent-queries",
            "2",
            "--max-queued-queries",
            "1",
        ],
        &[("GLAUX_TEST_PANIC_FUNCTION", "1")],
        &allowed_write,
    );
    pytest(&served, "test_isolation.py", &[("GLAUX_NO_TABLES", "1"), ("GLAUX_ALLOWED_DIR", allowed.to_str().unwrap())]);
}

#[test]
fn a_result_larger_than_memory_is_kept_on_disk() {
    let served = serve(&scratch("serve-large"), &["--memory-limit", "256M"]);
    let pid = served.child.id().to_string();
    pytest(&served, "test_large_result.py", &[("GLAUX_NO_TABLES", "1"), ("GLAUX_SERVER_PID", &pid)]);
}

#[test]
fn key_only_credentials_stay_on_loopback() {
    let warehouse = scratch("serve-key-only");
    let file = warehouse.join("auth");
    std::fs::write(&file, "bearer tok principal=ops role=admin\naws AKIAKEYONLY\n").unwrap();
    let refused = Command::new(env!("CARGO_BIN_EXE_glaux"))
        .args(["serve", "--bind", "0.0.0.0:0", "--auth-file", file.to_str().unwrap()])
        .env("GLAUX_WAREHOUSE", &warehouse)
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("'aws' lines without a secret"), "{err}");
}

#[test]
fn a_server_with_workers_spreads_plans_over_them() {
    let env = support::env();
    let glaux = Path::new(env!("CARGO_BIN_EXE_glaux"));
    let workers =
        glaux_testkit::WorkerProcesses::start(glaux, 2, &env.endpoint, glaux_testkit::TEST_SECRET).expect("workers");
    let list = workers.list();
    let args = ["--workers", list.as_str(), "--distribute-above", "0"];
    let served = serve_with(
        &scratch("serve-cluster"),
        &args,
        &[("GLAUX_CLUSTER_SECRET", glaux_testkit::TEST_SECRET)],
        &format!("s3://{}-results/", env.bucket),
    );
    pytest(&served, "test_cluster.py", &[]);
}
