//! Bad input gets a clear error naming what was wrong, exit status 1, and never a panic.

use crate::support;

/// Runs `sql`, which must fail with exit status `code` (its kind: README, "Exit status") and an
/// error mentioning each of `needles`.
fn fails_with(endpoint: &str, sql: &str, code: i32, needles: &[&str]) -> String {
    let run = support::glaux(endpoint, &["--format", "csv"], sql);
    assert_eq!(run.status, code, "exit status for {sql}: {}", run.stderr);
    for needle in needles {
        assert!(run.stderr.contains(needle), "error for {sql} should mention '{needle}':\n{}", run.stderr);
    }
    let last = run.executions().pop();
    if let Some(last) = last {
        assert_eq!(last["Status"]["State"], "FAILED");
        assert_eq!(last["Statistics"]["BilledBytes"].as_u64(), Some(0), "failed queries are not billed");
    }
    run.stderr
}

#[test]
fn syntax_error_names_the_position() {
    let env = support::env();
    fails_with(&env.endpoint, "SELECT id FORM t", 3, &["syntax error", "Line: 1, Column: 16"]);
}

#[test]
fn missing_key_and_bucket_are_named() {
    let env = support::env();
    let key = env.s3("nope/missing.csv");
    fails_with(&env.endpoint, &format!("SELECT * FROM '{key}'"), 4, &["nope/missing.csv"]);
    // a bucket that is not there fails the listing: storage's error
    fails_with(&env.endpoint, "SELECT * FROM 's3://glaux-no-such-bucket/a.parquet'", 7, &["glaux-no-such-bucket"]);
}

#[test]
fn broken_objects_are_named() {
    let env = support::env();
    fails_with(
        &env.endpoint,
        &format!("SELECT * FROM '{}'", env.s3("bad/truncated.parquet")),
        3,
        &["truncated.parquet"],
    );
    let ragged = format!(
        "CREATE EXTERNAL TABLE r (a INT, b INT, c INT) STORED AS CSV LOCATION '{}' OPTIONS ('format.has_header' 'true'); SELECT * FROM r",
        env.s3("bad/ragged.csv")
    );
    fails_with(&env.endpoint, &ragged, 3, &["ragged.csv", "line 4"]);
    let json = format!(
        "CREATE EXTERNAL TABLE j (a INT, b VARCHAR) STORED AS JSON LOCATION '{}'; SELECT * FROM j",
        env.s3("bad/malformed.json")
    );
    fails_with(&env.endpoint, &json, 3, &["malformed.json"]);
}

#[test]
fn unreachable_endpoint_fails_after_bounded_retries() {
    // Port 9 (discard) on loopback: nothing listens, connections are refused.
    let run =
        support::glaux("http://127.0.0.1:9", &["--format", "csv"], "SELECT * FROM 's3://any-bucket/data.parquet'");
    assert_eq!(run.status, 7, "a storage failure: {}", run.stderr);
    assert!(run.stderr.contains("127.0.0.1:9") || run.stderr.to_lowercase().contains("connect"), "{}", run.stderr);
}

#[test]
fn a_failing_endpoint_is_retried_a_bounded_number_of_times() {
    // a server that takes each connection and closes it at once: every attempt fails, and
    // each one is counted here
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let attempts = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = std::sync::Arc::clone(&attempts);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            drop(stream);
        }
    });
    let dir = support::scratch("bounded-retries");
    let run = support::glaux_env(
        &dir,
        &endpoint,
        &["--format", "csv"],
        "SELECT * FROM 's3://any-bucket/data.parquet'",
        &[("GLAUX_S3_MAX_RETRIES", "2")],
    );
    assert_eq!(run.status, 7, "a storage failure: {}", run.stderr);
    let made = attempts.load(std::sync::atomic::Ordering::SeqCst);
    // the bucket-region probe (unanswered: the configured region serves), then one request
    // (the listing that resolves the path), tried once and retried at most twice
    assert!((3..=4).contains(&made), "{made} attempts: a probe and one request with 2 retries: {}", run.stderr);
}

#[test]
fn unknown_table_and_column_are_named() {
    let env = support::env();
    fails_with(&env.endpoint, "SELECT * FROM no_such_table", 3, &["no_such_table"]);
    fails_with(&env.endpoint, "SELECT no_such_column FROM (SELECT 1 AS a)", 3, &["no_such_column"]);
}

#[test]
fn sql_may_begin_with_a_comment_and_scripts_come_from_files() {
    let env = support::env();
    let run = support::glaux(&env.endpoint, &["--format", "csv"], "-- daily report\nSELECT 6 * 7 AS answer");
    run.assert_ok();
    assert_eq!(run.stdout.lines().collect::<Vec<_>>(), ["answer", "42"], "{}", run.stderr);
    let run = support::glaux(&env.endpoint, &["--format", "csv"], "/* nightly */ SELECT 1 AS one");
    run.assert_ok();
    assert_eq!(run.stdout.lines().collect::<Vec<_>>(), ["one", "1"]);
    let dir = support::scratch("script-file");
    let file = dir.join("report.sql");
    std::fs::write(&file, "-- two statements\nCREATE VIEW v AS SELECT 2 AS two;\nSELECT two * 21 AS n FROM v;\n")
        .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_glaux"))
        .args(["query", "--format", "csv", "-f", file.to_str().unwrap()])
        .env("GLAUX_WAREHOUSE", dir.join("warehouse"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().collect::<Vec<_>>(), ["n", "42"]);
}

/// `glaux` with `vars` in its environment and nothing of the test environment's glaux settings.
fn glaux_with(dir: &std::path::Path, args: &[&str], vars: &[(&str, &str)]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_glaux"))
        .args(args)
        .current_dir(dir)
        .env_remove("GLAUX_WAREHOUSE")
        .env_remove("GLAUX_WORKGROUP")
        .env_remove("GLAUX_CONFIG")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .envs(vars.iter().copied())
        .output()
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

#[test]
fn a_config_file_sits_under_the_environment_and_the_flags() {
    let dir = support::scratch("config-file");
    let warehouse = dir.join("warehouse");
    std::fs::create_dir_all(&warehouse).unwrap();
    // found in the warehouse without being named
    std::fs::write(
        warehouse.join("glaux.toml"),
        "workgroup = \"from-file\"\n[aws]\nsecret_access_key = \"very-secret-value\"\n[serve]\nallow_write = [\"s3://a/\", \"s3://b/\"]\n",
    )
    .unwrap();
    let (status, _, err) = glaux_with(&dir, &["query", "SELECT 1"], &[]);
    assert_eq!(status, 4, "not found: {err}");
    assert!(err.contains("workgroup from-file does not exist"), "the file's workgroup: {err}");
    let (_, _, err) = glaux_with(&dir, &["query", "SELECT 1"], &[("GLAUX_WORKGROUP", "from-env")]);
    assert!(err.contains("workgroup from-env does not exist"), "the environment wins over the file: {err}");
    let (status, out, err) =
        glaux_with(&dir, &["query", "--workgroup", "primary", "SELECT 7"], &[("GLAUX_WORKGROUP", "from-env")]);
    assert_eq!((status, out.lines().last()), (0, Some("7")), "the flag wins: {err}");
    // config show: values, where they came from, secrets masked
    let (status, out, _) = glaux_with(&dir, &["config", "show"], &[("GLAUX_DATABASE", "sales")]);
    assert_eq!(status, 0);
    assert!(out.contains("workgroup = \"from-file\"  # file ./warehouse/glaux.toml"), "{out}");
    assert!(out.contains("database = \"sales\"  # environment (GLAUX_DATABASE)"), "{out}");
    assert!(out.contains("serve.allow_write = \"s3://a/,s3://b/\""), "{out}");
    assert!(out.contains("catalog = \"local\"  # default"), "{out}");
    assert!(out.contains("aws.secret_access_key = \"****\"") && !out.contains("very-secret-value"), "{out}");
    // a named file, and mistakes in it named
    let named = dir.join("other.toml");
    std::fs::write(&named, "[serve]\nbindd = \"0.0.0.0:1\"\n").unwrap();
    let (status, _, err) = glaux_with(&dir, &["--config", named.to_str().unwrap(), "config", "show"], &[]);
    assert_eq!(status, 1);
    assert!(err.contains("unknown setting 'serve.bindd'") && err.contains("other.toml"), "{err}");
    let (status, _, err) = glaux_with(&dir, &["config", "show"], &[("GLAUX_CONFIG", "/nonexistent/glaux.toml")]);
    assert_eq!(status, 1);
    assert!(err.contains("/nonexistent/glaux.toml does not exist"), "{err}");
}
