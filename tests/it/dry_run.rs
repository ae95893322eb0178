//! Dry runs: `--dry-run` / `EXPLAIN (TYPE IO)` say what a query would read without reading
//! data, and their upper bound holds for the real run.

use crate::support::{self, csv, glaux_in, scratch};

fn column(rows: &[Vec<Option<String>>], header: &[String], name: &str) -> Vec<String> {
    let i = header.iter().position(|h| h == name).unwrap_or_else(|| panic!("no column {name} in {header:?}"));
    rows.iter().map(|r| r[i].clone().unwrap_or_default()).collect()
}

#[test]
fn dry_run_bounds_the_real_run_and_reads_only_footers() {
    let env = support::env();
    let warehouse = scratch("dry-run");
    glaux_in(
        &warehouse,
        &env.endpoint,
        &[],
        &format!(
            "CREATE EXTERNAL TABLE wide STORED AS PARQUET LOCATION '{}';
             CREATE EXTERNAL TABLE sales (id bigint, amount bigint, region string) PARTITIONED BY (year string, month int)
               STORED AS PARQUET LOCATION '{}';
             MSCK REPAIR TABLE sales",
            env.s3("wide/"),
            env.s3("sales/")
        ),
    )
    .assert_ok();
    let wide_size = env.size_of("wide");

    // two of ten columns of a 20 MB file
    let sql = "SELECT sum(c0), sum(c7) FROM wide";
    let dry = glaux_in(&warehouse, &env.endpoint, &["--format", "csv", "--dry-run"], sql);
    let (header, rows) = csv::parse(&dry.assert_ok().stdout);
    assert_eq!(column(&rows, &header, "location"), [env.s3("wide"), "total".to_string()]);
    assert_eq!(column(&rows, &header, "files"), ["1", "1"]);
    assert_eq!(column(&rows, &header, "file_bytes")[0], wide_size.to_string());
    let bound: u64 = column(&rows, &header, "bytes_upper_bound")[1].parse().unwrap();
    let dry_scanned = dry.last()["Statistics"]["DataScannedInBytes"].as_u64().unwrap();
    assert_eq!(dry.last()["StatementType"], "UTILITY");
    // the dry run read footers only
    assert!(dry_scanned > 0 && dry_scanned * 20 < wide_size, "dry run read {dry_scanned} of {wide_size}");
    let real = glaux_in(&warehouse, &env.endpoint, &["--format", "csv"], sql);
    let real_scanned = real.assert_ok().last()["Statistics"]["DataScannedInBytes"].as_u64().unwrap();
    assert!(real_scanned <= bound, "the real run read {real_scanned}, over the bound {bound}");
    assert!(bound < wide_size / 2, "bound {bound} of {wide_size}");
    // the total row bills the bound as Athena would
    let billed: u64 = column(&rows, &header, "billed_bytes_upper_bound")[1].parse().unwrap();
    assert_eq!(billed, bound.div_ceil(1 << 20).max(10) << 20);

    // a partitioned table: only the surviving partition's file, through EXPLAIN (TYPE IO)
    let explain = glaux_in(
        &warehouse,
        &env.endpoint,
        &["--format", "csv"],
        "EXPLAIN (TYPE IO) SELECT sum(amount) FROM sales WHERE year = '2024' AND month = 3",
    );
    let (header, rows) = csv::parse(&explain.assert_ok().stdout);
    assert_eq!(column(&rows, &header, "location")[0], env.s3("sales/year=2024/month=3"));
    assert_eq!(column(&rows, &header, "files"), ["1", "1"]);
    let bound: u64 = column(&rows, &header, "bytes_upper_bound")[1].parse().unwrap();
    let real =
        glaux_in(&warehouse, &env.endpoint, &[], "SELECT sum(amount) FROM sales WHERE year = '2024' AND month = 3");
    assert!(real.assert_ok().scanned() <= bound);

    // several partitions: the folder they share
    let year = glaux_in(
        &warehouse,
        &env.endpoint,
        &["--format", "csv", "--dry-run"],
        // (not count(*): the footers' row counts answer that without a scan)
        "SELECT sum(amount) FROM sales WHERE year = '2024'",
    );
    let (header, rows) = csv::parse(&year.assert_ok().stdout);
    assert_eq!(column(&rows, &header, "location")[0], env.s3("sales/year=2024"));
    assert_eq!(column(&rows, &header, "files"), ["12", "12"]);

    // ORC: the tail, then stripe footers name the streams of the needed columns
    glaux_in(
        &warehouse,
        &env.endpoint,
        &[],
        &format!(
            "CREATE EXTERNAL TABLE events_orc STORED AS ORC LOCATION '{}'; CREATE EXTERNAL TABLE nested_orc STORED AS ORC LOCATION '{}'",
            env.s3("events/orc/"),
            env.s3("nested/orc/")
        ),
    )
    .assert_ok();
    for (table, sql, size) in [
        ("events", "SELECT sum(amount), max(day) FROM events_orc", env.size_of("events/orc")),
        ("nested", "SELECT count(*) FROM nested_orc", env.size_of("nested/orc")),
        ("nested", "SELECT * FROM nested_orc", env.size_of("nested/orc")),
    ] {
        let dry = glaux_in(&warehouse, &env.endpoint, &["--format", "csv", "--dry-run"], sql);
        let (header, rows) = csv::parse(&dry.assert_ok().stdout);
        assert_eq!(column(&rows, &header, "format")[0], "orc");
        let bound: u64 = column(&rows, &header, "bytes_upper_bound")[1].parse().unwrap();
        let dry_scanned = dry.last()["Statistics"]["DataScannedInBytes"].as_u64().unwrap();
        let real = glaux_in(&warehouse, &env.endpoint, &["--format", "csv"], sql).assert_ok().scanned();
        assert!(real <= bound && real <= size, "{table}: read {real}, bound {bound}, file {size}");
        // ORC's tail is read as its last 16 KiB: all of a small file, a fraction of a larger one
        assert!(dry_scanned > 0 && dry_scanned <= real, "{table}: the dry run read {dry_scanned}, the query {real}");
        if size > 64 << 10 {
            assert!(dry_scanned * 2 < real, "{table}: the dry run read {dry_scanned}, the query {real}");
        }
        if !sql.contains('*') {
            assert!(bound < size * 3 / 4, "{sql}: bound {bound} of {size}");
        }
    }

    // DDL is not a query
    let ddl = glaux_in(&warehouse, &env.endpoint, &[], "EXPLAIN (TYPE IO) DROP TABLE sales");
    assert_eq!(ddl.status, 3, "invalid input: {}", ddl.stderr);
}
