//! The local catalog through the `glaux` binary: tables outlive the process that created them,
//! Hive DDL runs inside scripts, pruning shows in the bytes scanned, and concurrent processes
//! writing one warehouse lose nothing.

use std::path::PathBuf;

use crate::support::{self, Env, csv, glaux_in, scratch};

const SALES: &str = "CREATE EXTERNAL TABLE IF NOT EXISTS sales (id bigint, amount bigint, region string)
PARTITIONED BY (year string, month int) STORED AS PARQUET LOCATION";

/// A new warehouse with the sales table and its 24 partitions in its catalog, and `more`
/// statements run after them.
fn sales_warehouse(env: &Env, tag: &str, more: &[&str]) -> PathBuf {
    let warehouse = scratch(tag);
    let mut create = vec![format!("{SALES} '{}'", env.s3("sales/")), "MSCK REPAIR TABLE sales".to_string()];
    create.extend(more.iter().map(|s| s.to_string()));
    glaux_in(&warehouse, &env.endpoint, &[], &create.join("; ")).assert_ok();
    warehouse
}

#[test]
fn tables_outlive_the_process_that_created_them() {
    let env = support::env();
    let warehouse = scratch("persist");
    let create = format!("CREATE DATABASE shop; USE shop; {SALES} '{}'; MSCK REPAIR TABLE sales", env.s3("sales/"));
    glaux_in(&warehouse, &env.endpoint, &["--format", "csv"], &create).assert_ok();
    // a second process sees the database, the table and its 24 partitions
    let run = glaux_in(
        &warehouse,
        &env.endpoint,
        &["--format", "csv", "--database", "shop"],
        "SELECT count(*) AS n, sum(amount) AS total FROM sales",
    );
    run.assert_ok();
    let (header, rows) = csv::parse(&run.stdout);
    assert_eq!(header, ["n", "total"]);
    // 24 months x 10 rows, amount = month * 100 + i (tests/data/generate.py)
    let total: i64 = (1..=12).map(|m| 2 * (10 * m * 100 + 45)).sum();
    assert_eq!(rows, vec![vec![Some("240".to_string()), Some(total.to_string())]]);
    // and the fully qualified name works from the default database
    let run = glaux_in(
        &warehouse,
        &env.endpoint,
        &["--format", "csv"],
        "SELECT count(*) FROM awsdatacatalog.shop.sales WHERE year = '2024'",
    );
    assert_eq!(csv::parse(&run.assert_ok().stdout).1, vec![vec![Some("120".to_string())]]);
}

#[test]
fn pruning_reads_only_the_surviving_partitions() {
    let env = support::env();
    let warehouse = sales_warehouse(&env, "prune", &[]);
    let all = glaux_in(&warehouse, &env.endpoint, &[], "SELECT sum(amount) FROM sales");
    let one =
        glaux_in(&warehouse, &env.endpoint, &[], "SELECT sum(amount) FROM sales WHERE year = '2023' AND month = 7");
    let (all, one) = (all.assert_ok().scanned(), one.assert_ok().scanned());
    assert!(one > 0, "the surviving partition is read");
    // one partition of 24, each file about the same size: well under a tenth of the full scan
    assert!(one * 10 < all, "one partition scanned {one} bytes, all 24 scanned {all}");
    // EXPLAIN says what pruning kept, without reading data
    let explain = glaux_in(
        &warehouse,
        &env.endpoint,
        &["--format", "csv"],
        "EXPLAIN SELECT sum(amount) FROM sales WHERE (year = '2023' AND month IN (7, 8)) OR month = 1",
    );
    let text = explain.assert_ok().stdout.clone();
    assert!(text.contains("glaux_catalog_scans"), "{text}");
    assert!(text.contains("default.sales: 4 of 24 partitions (catalog with expression), 4 files ("), "{text}");
    assert_eq!(explain.scanned(), 0, "EXPLAIN reads no data");
}

#[test]
fn pruning_works_through_catalog_views() {
    let env = support::env();
    let warehouse = sales_warehouse(
        &env,
        "prune-view",
        &["CREATE VIEW monthly AS SELECT year, month, sum(amount) AS total FROM sales GROUP BY year, month"],
    );
    let direct = glaux_in(
        &warehouse,
        &env.endpoint,
        &["--format", "csv"],
        "SELECT sum(amount) AS total FROM sales WHERE year = '2023' AND month = 7",
    );
    // a later process reads the view from the catalog; the filter reaches the table's partitions
    let through = glaux_in(
        &warehouse,
        &env.endpoint,
        &["--format", "csv"],
        "SELECT total FROM monthly WHERE year = '2023' AND month = 7",
    );
    let all = glaux_in(&warehouse, &env.endpoint, &["--format", "csv"], "SELECT sum(total) AS total FROM monthly");
    let (direct, through, all) = (direct.assert_ok(), through.assert_ok(), all.assert_ok());
    assert_eq!(csv::parse(&through.stdout).1, csv::parse(&direct.stdout).1);
    assert_eq!(csv::parse(&through.stdout).1, vec![vec![Some((10 * 700 + 45).to_string())]]);
    assert!(through.scanned() > 0);
    assert_eq!(through.scanned(), direct.scanned(), "the view reads what the table query reads");
    assert!(through.scanned() * 10 < all.scanned(), "one partition of 24 through the view");
}

#[test]
fn hive_ddl_inside_a_script_and_failed_ddl_is_ddl() {
    let env = support::env();
    let warehouse = scratch("script");
    // ROW FORMAT is Hive syntax DataFusion's parser rejects: the script must still split and run
    let script = format!(
        "CREATE EXTERNAL TABLE st (id bigint, amount bigint, region string) PARTITIONED BY (year string, month int)
         ROW FORMAT DELIMITED FIELDS TERMINATED BY ',' STORED AS TEXTFILE LOCATION '{}';
         ALTER TABLE st ADD PARTITION (year = '2024', month = 2) PARTITION (year = '2024', month = 3);
         SELECT month, count(*) AS n, min(amount) AS lo FROM st GROUP BY month ORDER BY month",
        env.s3("sales_text/")
    );
    let run = glaux_in(&warehouse, &env.endpoint, &["--format", "csv"], &script);
    run.assert_ok();
    let (_, rows) = csv::parse(&run.stdout);
    let want: Vec<Vec<Option<String>>> = [("2", "10", "200"), ("3", "10", "300")]
        .iter()
        .map(|(a, b, c)| vec![Some(a.to_string()), Some(b.to_string()), Some(c.to_string())])
        .collect();
    assert_eq!(rows, want);
    let types: Vec<String> =
        run.executions().iter().map(|e| e["StatementType"].as_str().unwrap().to_string()).collect();
    assert_eq!(types, ["DDL", "DDL", "DML"]);
    // a DDL statement that fails is still recorded as DDL, not billed, and names the table
    let run = glaux_in(&warehouse, &env.endpoint, &[], "DROP TABLE nope");
    assert_eq!(run.status, 4, "not found: {}", run.stderr);
    let last = run.last();
    assert_eq!(last["StatementType"], "DDL");
    assert_eq!(last["Status"]["State"], "FAILED");
    assert_eq!(last["Statistics"]["BilledBytes"], 0);
    assert!(last["Status"]["StateChangeReason"].as_str().unwrap().contains("nope"), "{last}");
}

#[test]
fn concurrent_processes_lose_no_partition() {
    let env = support::env();
    let warehouse = scratch("concurrent");
    glaux_in(&warehouse, &env.endpoint, &[], &format!("{SALES} '{}'", env.s3("sales/"))).assert_ok();
    // eight processes each add three partitions of their own at the same time
    let handles: Vec<_> = (0..8)
        .map(|p| {
            let (warehouse, endpoint) = (warehouse.clone(), env.endpoint.clone());
            std::thread::spawn(move || {
                let specs: Vec<String> = (0..3).map(|i| format!("PARTITION (year = 'p{p}', month = {i})")).collect();
                glaux_in(&warehouse, &endpoint, &[], &format!("ALTER TABLE sales ADD {}", specs.join(" ")))
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap().assert_ok();
    }
    let run = glaux_in(&warehouse, &env.endpoint, &["--format", "csv"], "SHOW PARTITIONS sales");
    let (_, rows) = csv::parse(&run.assert_ok().stdout);
    assert_eq!(rows.len(), 24, "{}", run.stdout);
}

#[test]
fn a_with_query_or_view_used_twice_reads_the_table_once() {
    let env = support::env();
    let warehouse = sales_warehouse(
        &env,
        "shared",
        &["CREATE VIEW monthly AS SELECT month, sum(amount) AS total FROM sales GROUP BY month"],
    );
    let once = glaux_in(
        &warehouse,
        &env.endpoint,
        &["--format", "csv"],
        "SELECT month, sum(amount) FROM sales GROUP BY month",
    );
    let once = once.assert_ok().scanned();
    assert!(once > 0);
    // a month's total is 2 × (1000 × month + 45) (two years of amounts month × 100 + 0…9)
    let cases = [
        (
            "WITH totals AS (SELECT month, sum(amount) AS total FROM sales GROUP BY month) \
             SELECT month, total FROM totals WHERE total = (SELECT max(total) FROM totals)",
            vec![vec![Some("12".to_string()), Some("24090".to_string())]],
        ),
        (
            "SELECT a.month, a.total - b.total AS step FROM monthly a JOIN monthly b ON a.month = b.month + 1 \
             ORDER BY a.month LIMIT 2",
            vec![
                vec![Some("2".to_string()), Some("2000".to_string())],
                vec![Some("3".to_string()), Some("2000".to_string())],
            ],
        ),
    ];
    for (sql, expected) in cases {
        let run = glaux_in(&warehouse, &env.endpoint, &["--format", "csv"], sql);
        assert_eq!(csv::parse(&run.assert_ok().stdout).1, expected, "{sql}");
        assert_eq!(run.scanned(), once, "{sql}: each use read the table");
        let explain = glaux_in(&warehouse, &env.endpoint, &["--format", "csv"], &format!("EXPLAIN {sql}"));
        assert!(explain.assert_ok().stdout.contains("SharedExec"), "{}", explain.stdout);
    }
}
