//! The write half through the `glaux` binary against the S3 server: a CTAS of a gzipped-CSV
//! table into more than a thousand Parquet partitions (answers equal to DuckDB's, pruning in
//! the bytes), the statistics a write reports, a CTAS killed halfway, and two processes
//! inserting into one table at once.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{self, Env, csv, glaux_in, glue_tool, scratch};

/// The events data set as Athena would see a gzipped CSV export of it.
fn events_csv(env: &Env) -> String {
    format!(
        "CREATE EXTERNAL TABLE IF NOT EXISTS events_csv (id bigint, user_id bigint, name string, category string, \
         amount double, quantity bigint, day string, flag boolean)
         ROW FORMAT SERDE 'org.apache.hadoop.hive.serde2.OpenCSVSerde' STORED AS TEXTFILE LOCATION '{}'
         TBLPROPERTIES ('skip.header.line.count' = '1')",
        env.s3("events/csv_gz/")
    )
}

/// A workgroup whose results (and so CTAS tables without a location) go under `prefix`.
fn workgroup(warehouse: &std::path::Path, output: &str) {
    let out = Command::new(env!("CARGO_BIN_EXE_glaux"))
        .args(["workgroup", "create", "etl", "--output-location", output])
        .env("GLAUX_WAREHOUSE", warehouse)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Year, month and day as partitions: four years of the data set's days, over a thousand.
const CTAS: &str = "CREATE TABLE daily WITH (format = 'PARQUET', partitioned_by = ARRAY['year', 'month', 'day']) AS
    SELECT id, category, amount, CAST(2021 + id % 4 AS varchar) AS year, substr(day, 6, 2) AS month, substr(day, 9, 2) AS day
    FROM events_csv";

/// `glaux query ARGS…` against the test S3 server, to be started by the caller.
fn glaux_command(env: &Env, warehouse: &std::path::Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_glaux"));
    command
        .arg("query")
        .args(args)
        .env("GLAUX_WAREHOUSE", warehouse)
        .env("AWS_ENDPOINT_URL", &env.endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
}

fn duckdb_rows(sql: &str) -> Vec<Vec<String>> {
    let script = format!(
        "import duckdb, json; print(json.dumps([[str(v) for v in r] for r in duckdb.sql({sql:?}).fetchall()]))"
    );
    let out = Command::new("python3").args(["-c", &script]).output().expect("python3 with duckdb");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn ctas_of_gzipped_csv_into_a_thousand_partitions_in_glue_answers_as_duckdb() {
    let env = support::env();
    let warehouse = scratch("ctas-1000");
    let tag = warehouse.file_name().unwrap().to_string_lossy().replace('-', "_");
    let output = env.s3(&format!("writes-it/{tag}/"));
    workgroup(&warehouse, &output);
    // moto's Glue holds the tables, as AWS Glue would
    let database = format!("ctas_{tag}");
    let args = ["--format", "csv", "--workgroup", "etl", "--catalog", "glue", "--database", database.as_str()];
    let glaux = |sql: &str| glaux_in(&warehouse, &env.endpoint, &args, sql);
    glaux(&format!("CREATE DATABASE {database}")).assert_ok();
    glaux(&events_csv(&env)).assert_ok();
    let run = glaux(CTAS);
    run.assert_ok();
    let stats = run.last();
    assert_eq!(stats["StatementType"], "DML");
    assert_eq!(stats["Statistics"]["RowsWritten"], 6000, "{stats}");
    assert!(stats["Statistics"]["BytesWritten"].as_u64().unwrap() > 0);
    assert!(stats["Statistics"]["DataScannedInBytes"].as_u64().unwrap() > 0);
    let manifest = stats["Statistics"]["DataManifestLocation"].as_str().unwrap().to_string();
    assert!(manifest.ends_with("-manifest.csv"), "{manifest}");

    let partitions = glaux("SHOW PARTITIONS daily");
    let count = partitions.assert_ok().stdout.lines().count() - 1;
    // what another Glue client sees: every partition, and a table as Athena makes one
    let listed = glue_tool(&env.endpoint, &["partitions", &database, "daily"]);
    assert_eq!(listed.as_array().unwrap().len(), count);
    let table = glue_tool(&env.endpoint, &["get-table", &database, "daily"]);
    assert_eq!(table["TableType"], "EXTERNAL_TABLE");
    assert_eq!(
        table["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"],
        "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    );
    assert_eq!(table["PartitionKeys"].as_array().unwrap().len(), 3);
    // DuckDB over the same gzipped files
    let source = env.data.join("events/csv_gz/*.csv.gz").display().to_string();
    let derived = format!(
        "SELECT id, category, amount, CAST(2021 + id % 4 AS varchar) AS year, substr(day, 6, 2) AS month, substr(day, 9, 2) AS day FROM read_csv_auto('{source}', header = true, types = {{'day': 'VARCHAR'}})"
    );
    let distinct = duckdb_rows(&format!("SELECT count(*) FROM (SELECT DISTINCT year, month, day FROM ({derived}))"));
    assert_eq!(count.to_string(), distinct[0][0]);
    assert!(count >= 1000, "{count} partitions");

    let by_year = "SELECT year, count(*), round(sum(amount), 2) FROM daily GROUP BY year ORDER BY year";
    let (_, got) = csv::parse(&glaux(by_year).assert_ok().stdout);
    let want = duckdb_rows(&format!(
        "SELECT year, count(*), round(sum(amount), 2) FROM ({derived}) GROUP BY year ORDER BY year"
    ));
    let got: Vec<Vec<String>> =
        got.into_iter().map(|r| r.into_iter().map(Option::unwrap_or_default).collect()).collect();
    assert_eq!(got, want);

    // one day of one year reads its partition only
    let one = glaux("SELECT count(*) FROM daily WHERE year = '2022' AND month = '03' AND day = '15'");
    let all = glaux("SELECT count(*) FROM daily");
    let (one, all) = (one.assert_ok().scanned(), all.assert_ok().scanned());
    assert!(one * 100 < all, "one partition scanned {one} bytes, the table {all}");
}

#[test]
fn a_ctas_killed_halfway_leaves_nothing_visible_and_a_retry_succeeds() {
    let env = support::env();
    let warehouse = scratch("ctas-kill");
    let output = env.s3(&format!("writes-it/{}/", warehouse.file_name().unwrap().to_string_lossy()));
    workgroup(&warehouse, &output);
    glaux_in(&warehouse, &env.endpoint, &[], &events_csv(&env)).assert_ok();
    let mut child = glaux_command(&env, &warehouse, &["--workgroup", "etl", CTAS]).spawn().unwrap();
    // SIGKILL once it has written some files: the staging folder or the table's folder has them
    let started = Instant::now();
    let written = || {
        Command::new("python3")
            .args(["-c", &format!(
                "import boto3; c = boto3.client('s3', endpoint_url='{}', region_name='us-east-1', aws_access_key_id='testing', aws_secret_access_key='testing'); \
                 print(c.list_objects_v2(Bucket='{}', Prefix='{}').get('KeyCount', 0))",
                env.endpoint,
                env.bucket,
                output.trim_start_matches(&format!("s3://{}/", env.bucket)),
            )])
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    while written() < 50 {
        assert!(child.try_wait().unwrap().is_none(), "the CTAS ended before it was killed");
        assert!(started.elapsed() < Duration::from_secs(120), "the CTAS wrote nothing");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    // after a restart: no table, so no partition and no row of it
    let tables = glaux_in(&warehouse, &env.endpoint, &["--format", "csv"], "SHOW TABLES");
    assert!(!tables.assert_ok().stdout.lines().any(|l| l == "daily"), "{}", tables.stdout);
    let missing = glaux_in(&warehouse, &env.endpoint, &[], "SELECT count(*) FROM daily");
    // an unknown table in a query is exit code 3 (README)
    assert_eq!(missing.status, 3, "{}", missing.stderr);
    assert!(missing.stderr.contains("daily' not found"), "{}", missing.stderr);
    // the retry is a new query with a location of its own
    let retry = glaux_in(&warehouse, &env.endpoint, &["--format", "csv", "--workgroup", "etl"], CTAS);
    assert_eq!(retry.assert_ok().stdout.lines().nth(1), Some("6000"));
    let count =
        glaux_in(&warehouse, &env.endpoint, &["--format", "csv"], "SELECT count(*), count(DISTINCT id) FROM daily");
    assert_eq!(count.assert_ok().stdout.lines().nth(1), Some("6000,6000"));
}

#[test]
fn two_processes_inserting_into_one_table_lose_no_rows() {
    let env = support::env();
    let warehouse = scratch("insert-race");
    let location = env.s3(&format!("writes-it/{}/race/", warehouse.file_name().unwrap().to_string_lossy()));
    let setup = format!(
        "{}; CREATE EXTERNAL TABLE race (id bigint, amount double) PARTITIONED BY (category string) STORED AS PARQUET LOCATION '{location}'",
        events_csv(&env)
    );
    glaux_in(&warehouse, &env.endpoint, &[], &setup).assert_ok();
    let insert = |half: &str| {
        let sql = format!("INSERT INTO race SELECT id, amount, category FROM events_csv WHERE {half}");
        glaux_command(&env, &warehouse, &[&sql]).stderr(Stdio::piped()).spawn().unwrap()
    };
    let (a, b) = (insert("id % 2 = 0"), insert("id % 2 = 1"));
    for child in [a, b] {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let run = glaux_in(
        &warehouse,
        &env.endpoint,
        &["--format", "csv"],
        "SELECT count(*), count(DISTINCT id), round(sum(amount), 2) FROM race",
    );
    let source = glaux_in(
        &warehouse,
        &env.endpoint,
        &["--format", "csv"],
        "SELECT count(*), count(DISTINCT id), round(sum(amount), 2) FROM events_csv",
    );
    assert_eq!(run.assert_ok().stdout.lines().nth(1), source.assert_ok().stdout.lines().nth(1));
    assert_eq!(run.stdout.lines().nth(1).unwrap().split(',').next(), Some("6000"));
}

#[test]
fn bucketed_ctas_puts_each_row_in_its_hive_bucket() {
    let env = support::env();
    let warehouse = scratch("bucketed");
    let folder = warehouse.join("bucketed");
    // ids are bigints below 2^31: Hive's hash of one is the id itself, its bucket id % 8
    let ctas = format!(
        "CREATE TABLE b WITH (external_location = '{}/', bucketed_by = ARRAY['id'], bucket_count = 8, partitioned_by = ARRAY['category'])
         AS SELECT id, name, category FROM '{}'",
        folder.display(),
        env.data.join("events/parquet/").display()
    );
    glaux_in(&warehouse, &env.endpoint, &["--format", "csv"], &ctas).assert_ok();
    let script = format!(
        r#"
import duckdb, glob, json, os
out = []
for f in sorted(glob.glob("{}/*/*.parquet")):
    bucket = int(os.path.basename(f).split("_")[0])
    ids = [r[0] for r in duckdb.sql(f"SELECT id FROM read_parquet('{{f}}')").fetchall()]
    out.append([os.path.basename(os.path.dirname(f)), bucket, len(ids), sum(1 for i in ids if i % 8 != bucket)])
print(json.dumps(out))"#,
        folder.display()
    );
    let out = Command::new("python3").args(["-c", &script]).output().expect("python3 with duckdb");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let files: Vec<(String, u32, u64, u64)> = serde_json::from_slice(&out.stdout).unwrap();
    let categories = duckdb_rows(&format!(
        "SELECT count(DISTINCT category) FROM read_parquet('{}/*.parquet')",
        env.data.join("events/parquet").display()
    ));
    // one file per bucket and partition, every row in its bucket, every row written once
    assert_eq!(files.len().to_string(), (categories[0][0].parse::<usize>().unwrap() * 8).to_string());
    assert!(files.iter().all(|(_, _, _, misplaced)| *misplaced == 0), "{files:?}");
    assert_eq!(files.iter().map(|f| f.2).sum::<u64>(), 6000);
}

#[test]
fn an_insert_is_read_whole_or_not_at_all() {
    let env = support::env();
    let warehouse = scratch("insert-commit");
    let folder = warehouse.join("t");
    let glaux = |sql: &str| glaux_in(&warehouse, &env.endpoint, &["--format", "csv"], sql);
    glaux(&format!(
        "CREATE TABLE t WITH (external_location = '{}/', partitioned_by = ARRAY['g']) AS SELECT x, CAST(x % 2 AS varchar) AS g FROM (VALUES (1), (2), (3)) AS v(x)",
        folder.display()
    ))
    .assert_ok();
    glaux("INSERT INTO t VALUES (10, '0'), (20, '0')").assert_ok();
    let count =
        |expected: &str| assert_eq!(glaux("SELECT count(*) FROM t").assert_ok().stdout.lines().nth(1), Some(expected));
    count("5");
    // an INSERT caught between moving its files and committing: a file of its name, no marker
    let part = folder.join("g=0");
    let inserted = std::fs::read_dir(&part)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("ins-"))
        .expect("the INSERT's file");
    let pending = "00000000-0000-4000-8000-000000000001";
    std::fs::copy(&inserted, part.join(format!("ins-{pending}_00000.parquet"))).unwrap();
    count("5");
    // its marker makes it part of the table
    std::fs::write(part.join("_glaux_commits").join(pending), b"").unwrap();
    count("7");
}
