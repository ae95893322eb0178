//! The query history: every query any process runs is recorded in the warehouse and readable
//! as `system.query_history`; concurrent processes lose nothing.

use crate::support::{self, csv, glaux_in, scratch};

#[test]
fn every_query_is_recorded_and_readable_as_sql() {
    let env = support::env();
    let warehouse = scratch("history");
    let table = format!(
        "CREATE EXTERNAL TABLE sales (id bigint, amount bigint, region string) PARTITIONED BY (year string, month int) STORED AS PARQUET LOCATION '{}'",
        env.s3("sales/")
    );
    let first = glaux_in(&warehouse, &env.endpoint, &["--format", "csv"], &format!("{table}; MSCK REPAIR TABLE sales"));
    first.assert_ok();
    let select =
        glaux_in(&warehouse, &env.endpoint, &["--format", "csv"], "SELECT sum(amount) FROM sales WHERE year = '2024'");
    select.assert_ok();
    let failed = glaux_in(&warehouse, &env.endpoint, &[], "SELECT nope FROM sales");
    assert_eq!(failed.status, 3);

    // a later process reads what the earlier ones recorded
    let history = glaux_in(
        &warehouse,
        &env.endpoint,
        &["--format", "csv"],
        "SELECT query_execution_id, statement_type, state, data_scanned_bytes, billed_bytes, source, database, tables
         FROM system.query_history ORDER BY submitted",
    );
    let (header, rows) = csv::parse(&history.assert_ok().stdout);
    assert_eq!(header[1], "statement_type");
    let cell = |r: usize, c: usize| rows[r][c].clone().unwrap_or_default();
    assert_eq!(rows.len(), 4, "{}", history.stdout);
    let ids: Vec<String> = first
        .executions()
        .iter()
        .chain(&select.executions())
        .chain(&failed.executions())
        .map(|e| e["QueryExecutionId"].as_str().unwrap().to_string())
        .collect();
    assert_eq!((0..4).map(|r| cell(r, 0)).collect::<Vec<_>>(), ids);
    assert_eq!((0..4).map(|r| cell(r, 1)).collect::<Vec<_>>(), ["DDL", "DDL", "DML", "DML"]);
    assert_eq!((0..4).map(|r| cell(r, 2)).collect::<Vec<_>>(), ["SUCCEEDED", "SUCCEEDED", "SUCCEEDED", "FAILED"]);
    // the SELECT's bytes and billing are those its own record reported
    let stats = &select.last()["Statistics"];
    assert_eq!(cell(2, 3), stats["DataScannedInBytes"].to_string());
    assert_eq!(cell(2, 4), stats["BilledBytes"].to_string());
    assert!(stats["DataScannedInBytes"].as_u64().unwrap() > 0);
    assert_eq!(cell(2, 5), "cli");
    assert_eq!(cell(2, 6), "default");
    assert_eq!(cell(2, 7), "default.sales");
    assert_eq!(cell(3, 4), "0", "failed queries are not billed");
}

#[test]
fn concurrent_processes_lose_no_history() {
    let env = support::env();
    let warehouse = scratch("history-concurrent");
    let handles: Vec<_> = (0..6)
        .map(|p| {
            let (warehouse, endpoint) = (warehouse.clone(), env.endpoint.clone());
            std::thread::spawn(move || {
                glaux_in(
                    &warehouse,
                    &endpoint,
                    &["--format", "csv"],
                    &format!("SELECT {p}; SELECT {p} + 1; SELECT {p} + 2"),
                )
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap().assert_ok();
    }
    let run = glaux_in(
        &warehouse,
        &env.endpoint,
        &["--format", "csv"],
        "SELECT count(*), count(DISTINCT query_execution_id) FROM system.query_history",
    );
    let (_, rows) = csv::parse(&run.assert_ok().stdout);
    assert_eq!(rows, vec![vec![Some("18".to_string()), Some("18".to_string())]]);
}

#[test]
fn history_survives_a_writer_killed_mid_run() {
    let env = support::env();
    let warehouse = scratch("history-kill");
    let statements: Vec<String> = (0..5_000).map(|i| format!("SELECT {i}")).collect();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_glaux"))
        .args(["query", "--format", "csv", &statements.join(";")])
        .env("GLAUX_WAREHOUSE", &warehouse)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // kill -9 once it has recorded a few hundred queries, in the middle of its run
    let dir = warehouse.join("_glaux_history");
    let lines = || -> usize {
        std::fs::read_dir(&dir)
            .map(|d| d.flatten().map(|f| std::fs::read_to_string(f.path()).unwrap_or_default().lines().count()).sum())
            .unwrap_or(0)
    };
    let started = std::time::Instant::now();
    while lines() < 300 {
        assert!(started.elapsed().as_secs() < 120, "the writer recorded only {} queries", lines());
        assert!(child.try_wait().unwrap().is_none(), "the writer ended before it was killed");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let recorded = lines();
    assert!(recorded < 5_000, "killed mid-run");

    // every whole line is readable; a later process records after it and reads them all
    let run = glaux_in(
        &warehouse,
        &env.endpoint,
        &["--format", "csv"],
        "SELECT count(*), count(DISTINCT query_execution_id), min(query), sum(CASE WHEN state = 'SUCCEEDED' THEN 1 ELSE 0 END) FROM system.query_history",
    );
    let (_, rows) = csv::parse(&run.assert_ok().stdout);
    let count: usize = rows[0][0].as_deref().unwrap().parse().unwrap();
    // at most one line, the one being written at the kill, may be lost
    assert!(count == recorded || count + 1 == recorded, "{count} of {recorded} lines readable");
    assert_eq!(rows[0][1].as_deref().unwrap(), rows[0][0].as_deref().unwrap());
    assert_eq!(rows[0][2].as_deref(), Some("SELECT 0"));
    assert_eq!(rows[0][3], rows[0][0]);
    let again = glaux_in(&warehouse, &env.endpoint, &["--format", "csv"], "SELECT count(*) FROM system.query_history");
    let (_, rows) = csv::parse(&again.assert_ok().stdout);
    assert_eq!(
        rows[0][0].as_deref().unwrap().parse::<usize>().unwrap(),
        count + 1,
        "the query after the kill is recorded"
    );
}
