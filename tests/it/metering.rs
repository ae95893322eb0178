//! The scan meter against what the S3 server really sent, counted by a proxy in between.

use std::sync::Arc;

use glaux_engine::{Engine, EngineConfig, Pricing, QueryExecutionState, StartQueryExecution};

use crate::formats::ddl;
use crate::support::{self, proxy::CountingProxy};

/// `glaux query --format csv SQL` through `proxy`, off the test's runtime (the proxy runs on it).
async fn glaux_csv(proxy: &CountingProxy, sql: String) -> support::Run {
    let endpoint = proxy.endpoint.clone();
    tokio::task::spawn_blocking(move || support::glaux(&endpoint, &["--format", "csv"], &sql)).await.unwrap()
}

#[test]
fn full_csv_scan_reads_exactly_the_objects() {
    let env = support::env();
    let sql = format!(
        "{}; SELECT * FROM events",
        ddl(
            &env,
            "events",
            "(id BIGINT, user_id BIGINT, name VARCHAR, category VARCHAR, amount DOUBLE, quantity BIGINT, day VARCHAR, flag BOOLEAN)",
            "csv"
        )
    );
    let run = support::glaux(&env.endpoint, &["--format", "csv"], &sql);
    run.assert_ok();
    let select = run.last();
    assert_eq!(select["Statistics"]["DataScannedInBytes"].as_u64().unwrap(), env.size_of("events/csv"));
    assert_eq!(select["Status"]["State"], "SUCCEEDED");
    assert_eq!(select["StatementType"], "DML");
    // 0.5 MB scanned bills the 10 MiB minimum
    assert_eq!(select["Statistics"]["BilledBytes"].as_u64().unwrap(), 10 * 1024 * 1024);
    let ddl_record = &run.executions()[0];
    assert_eq!(ddl_record["StatementType"], "DDL");
    assert_eq!(ddl_record["Statistics"]["BilledBytes"].as_u64().unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parquet_column_pruning_reads_a_fraction() {
    let env = support::env();
    let proxy = CountingProxy::start(&env.endpoint).await;
    let sql = format!(
        "CREATE EXTERNAL TABLE wide STORED AS PARQUET LOCATION '{}'; SELECT sum(c0), sum(c7) FROM wide",
        env.s3("wide/")
    );
    let run = glaux_csv(&proxy, sql).await;
    run.assert_ok();
    let size = env.size_of("wide");
    let select = run.last()["Statistics"]["DataScannedInBytes"].as_u64().unwrap();
    assert!(select > 0 && select < size / 3, "two of ten columns read {select} of {size} bytes");
    assert_eq!(run.scanned(), proxy.counts.total(), "meter vs server");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_column_of_sixteen_costs_about_its_chunks_in_a_small_file() {
    // 2 MB, four row groups: each chunk of c3 is 32 KB and the next one is 480 KB further on.
    // Merging reads less than 1 MiB apart (object_store's default) fetched the whole file.
    let env = support::env();
    let proxy = CountingProxy::start(&env.endpoint).await;
    let sql = format!(
        "CREATE EXTERNAL TABLE columns16 STORED AS PARQUET LOCATION '{}'; SELECT sum(c3) FROM columns16",
        env.s3("columns16/")
    );
    let run = glaux_csv(&proxy, sql).await;
    run.assert_ok();
    let size = env.size_of("columns16");
    let sent = proxy.counts.total();
    assert!(sent > 4 * 32_000 && sent < size / 3, "one of sixteen columns: the server sent {sent} of {size} bytes");
    assert_eq!(run.scanned(), sent, "meter vs server");
    // the footer and one request per chunk (two when the footer needs a second read)
    assert!(proxy.counts.gets() <= 6, "{} requests", proxy.counts.gets());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_point_lookup_reads_the_page_index_of_the_one_file_it_needs() {
    // four files of ids in order, each with a page index too large for the footer's read: the
    // lookup's id is in part-2 alone, whose row groups the others' statistics rule out
    let env = support::env();
    let proxy = CountingProxy::start(&env.endpoint).await;
    let sql = format!(
        "CREATE EXTERNAL TABLE keyed (id BIGINT, v BIGINT) STORED AS PARQUET LOCATION '{}'; SELECT v FROM keyed WHERE id = 123456",
        env.s3("keyed/")
    );
    let run = glaux_csv(&proxy, sql).await;
    assert_eq!(run.assert_ok().stdout.trim(), "v\n246912");
    let object = |i: u32| format!("/{}/keyed/part-{i}.parquet", env.bucket);
    for i in [0, 1, 3] {
        // planning reads each footer for its statistics; nothing else of a file the lookup skips
        assert_eq!(proxy.counts.gets_of(&object(i)), 1, "part-{i}: {:?}", proxy.counts.objects());
    }
    // the footer, the page index, then the pages of the one row group
    assert!(proxy.counts.gets_of(&object(2)) >= 3, "part-2 read in {} requests", proxy.counts.gets_of(&object(2)));
    let size = env.size_of("keyed");
    assert!(proxy.counts.total() < size / 4, "the lookup fetched {} of {size} bytes", proxy.counts.total());
    assert_eq!(run.scanned(), proxy.counts.total(), "meter vs server");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_point_lookup_reads_the_pages_of_adjacent_columns_in_one_request() {
    // id and part are neighbouring chunks, each a large dictionary and small pages: the lookup
    // keeps a dictionary and a page of each, and the gaps between them lie inside the two chunks
    // it reads anyway. qty lies past a column nobody reads.
    let env = support::env();
    let proxy = CountingProxy::start(&env.endpoint).await;
    let sql = format!(
        "CREATE EXTERNAL TABLE lookup STORED AS PARQUET LOCATION '{}'; \
         SELECT part, qty FROM lookup WHERE id = 40000 ORDER BY qty",
        env.s3("lookup/")
    );
    let run = glaux_csv(&proxy, sql).await;
    // rows 160,000 to 160,003, from the construction
    let mut expected: Vec<(u64, u64)> = (160_000..160_004).map(|r: u64| (r * 7919 % 40_000, r % 50 + 1)).collect();
    expected.sort_by_key(|&(_, qty)| qty);
    let lines: Vec<String> = expected.iter().map(|(part, qty)| format!("{part},{qty}")).collect();
    assert_eq!(run.assert_ok().stdout.trim(), format!("part,qty\n{}", lines.join("\n")));
    let object = format!("/{}/lookup/lookup.parquet", env.bucket);
    // the footer (its read brings the small page index too), id's and part's dictionaries and
    // pages together, qty's page: three (each of the four apart and the page index fetched
    // again: seven)
    assert_eq!(proxy.counts.gets_of(&object), 3, "{:?}", proxy.counts.objects());
    // less than the three columns' whole chunks in the row group (1.69 MB)
    let sent = proxy.counts.total();
    assert!(sent < 1_200_000, "the lookup fetched {sent} bytes");
    assert_eq!(run.scanned(), sent, "meter vs server");
}

/// `select` over the `keyed` table through `proxy`, with page indexes on or off for the session,
/// the proxy's counts starting from nothing.
async fn keyed_query(env: &support::Env, proxy: &CountingProxy, page_index: bool, select: &str) -> support::Run {
    proxy.counts.reset();
    let sql = format!(
        "SET datafusion.execution.parquet.enable_page_index = {page_index}; \
         CREATE EXTERNAL TABLE keyed (id BIGINT, v BIGINT) STORED AS PARQUET LOCATION '{}'; {select}",
        env.s3("keyed/")
    );
    glaux_csv(proxy, sql).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filter_every_row_group_passes_reads_no_page_index() {
    // v > 1 rules out no row group of any file (each file's page index is larger than the
    // footer's read, so reading it would cost a request a file): the scan reads what it reads
    // with page indexes off
    let env = support::env();
    let proxy = CountingProxy::start(&env.endpoint).await;
    let mut served = vec![];
    for page_index in [true, false] {
        let run = keyed_query(&env, &proxy, page_index, "SELECT count(*) AS n FROM keyed WHERE v > 1").await;
        // every id but 0, v = 2 id
        assert_eq!(run.assert_ok().stdout.trim(), "n\n199999");
        assert_eq!(run.scanned(), proxy.counts.total(), "meter vs server");
        served.push((proxy.counts.gets(), proxy.counts.total()));
    }
    assert_eq!(served[0], served[1], "(requests, bytes) with page indexes on, then off");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parquet_setting_set_in_the_session_reaches_catalog_tables() {
    // the lookup reads part-2's page index and then two small pages; with page indexes off it
    // reads the row group's two whole chunks instead
    let env = support::env();
    let proxy = CountingProxy::start(&env.endpoint).await;
    let object = format!("/{}/keyed/part-2.parquet", env.bucket);
    let mut reads = vec![];
    for page_index in [true, false] {
        let run = keyed_query(&env, &proxy, page_index, "SELECT v FROM keyed WHERE id = 123456").await;
        assert_eq!(run.assert_ok().stdout.trim(), "v\n246912");
        reads.push((proxy.counts.gets_of(&object), proxy.counts.total()));
    }
    let ((on_requests, on_bytes), (off_requests, off_bytes)) = (reads[0], reads[1]);
    assert!(off_requests < on_requests && off_bytes > on_bytes, "page indexes on {:?}, off {:?}", reads[0], reads[1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_cut_into_ranges_reads_its_page_index_once() {
    // each file cut in two byte ranges (eight partitions over four files) reads what it read
    // whole: the page index the predicate needs comes once from the cache, not once a range
    let env = support::env();
    let proxy = CountingProxy::start(&env.endpoint).await;
    let mut served = vec![];
    for partitions in [1, 8] {
        proxy.counts.reset();
        let sql = format!(
            "SET datafusion.execution.target_partitions = {partitions}; \
             SET datafusion.optimizer.repartition_file_min_size = 1024; \
             CREATE EXTERNAL TABLE keyed (id BIGINT, v BIGINT) STORED AS PARQUET LOCATION '{}'; \
             SELECT count(*) AS n FROM keyed WHERE id > 25000 AND v % 3 = 0",
            env.s3("keyed/")
        );
        let run = glaux_csv(&proxy, sql).await;
        // multiples of three from 25,001 to 199,999
        assert_eq!(run.assert_ok().stdout.trim(), "n\n58333");
        assert_eq!(run.scanned(), proxy.counts.total(), "meter vs server");
        served.push(proxy.counts.total());
    }
    assert_eq!(served[0], served[1], "bytes served whole, then in ranges");
}

#[test]
fn large_plain_text_is_read_in_byte_ranges_side_by_side() {
    // (the byte ranges' meter is checked against the server in the test below)
    let env = support::env();
    let columns = "(id BIGINT, user_id BIGINT, name VARCHAR, category VARCHAR, amount DOUBLE, quantity BIGINT, day VARCHAR, flag BOOLEAN)";
    for (format, split) in [("csv", true), ("json", true), ("csv_gz", false), ("json_zst", false)] {
        let sql = format!(
            "SET datafusion.optimizer.repartition_file_min_size = 1024; {}; EXPLAIN SELECT max(name) FROM events",
            ddl(&env, "events", columns, format)
        );
        let run = support::glaux(&env.endpoint, &["--format", "csv"], &sql);
        let plan = &run.assert_ok().stdout;
        // a file read in ranges shows as `key:start..end` in the scan's file groups
        assert_eq!(plan.contains(":0.."), split, "{format}: {plan}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meter_equals_what_the_server_sent_in_every_format() {
    let env = support::env();
    let proxy = CountingProxy::start(&env.endpoint).await;
    let columns = "(id BIGINT, user_id BIGINT, name VARCHAR, category VARCHAR, amount DOUBLE, quantity BIGINT, day VARCHAR, flag BOOLEAN)";
    for format in ["parquet", "orc", "csv", "csv_gz", "csv_zst", "json", "json_gz", "json_zst"] {
        for query in [
            "SELECT count(*), sum(amount) FROM events",
            "SELECT category, max(name) FROM events WHERE quantity > 10 GROUP BY category",
        ] {
            proxy.counts.reset();
            // files this small would not be split into byte ranges by default: make them, so
            // that a reader that dropped a read early (text files split by range) is caught
            let sql = format!(
                "SET datafusion.optimizer.repartition_file_min_size = 1024; {}; {query}",
                ddl(&env, "events", columns, format)
            );
            let run = glaux_csv(&proxy, sql).await;
            run.assert_ok();
            let sent = proxy.counts.total();
            assert!(sent > 0, "{format}: nothing read");
            assert_eq!(run.scanned(), sent, "{format}: meter says {}, server sent {sent} ({query})", run.scanned());
        }
    }
}

#[test]
fn orc_reads_only_what_it_needs() {
    // The ORC reader must not fetch whole objects to learn their length.
    let env = support::env();
    let sql = format!("{}; SELECT sum(quantity) FROM events", ddl(&env, "events", "", "orc"));
    let run = support::glaux(&env.endpoint, &["--format", "csv"], &sql);
    run.assert_ok();
    let size = env.size_of("events/orc");
    let select = run.last()["Statistics"]["DataScannedInBytes"].as_u64().unwrap();
    assert!(select > 0 && select < size / 2, "one of eight columns read {select} of {size} bytes");
}

fn engine(endpoint: &str) -> Engine {
    engine_with_cutoff(endpoint, None)
}

fn request(sql: &str) -> StartQueryExecution {
    StartQueryExecution { query_string: sql.into(), ..Default::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_queries_count_only_their_own_bytes() {
    let env = support::env();
    let engine = Arc::new(engine(&env.endpoint));
    let columns = "(id BIGINT, user_id BIGINT, name VARCHAR, category VARCHAR, amount DOUBLE, quantity BIGINT, day VARCHAR, flag BOOLEAN)";
    engine.run(&request(&ddl(&env, "events", columns, "csv"))).await.unwrap();
    engine
        .run(&request(&format!("CREATE EXTERNAL TABLE wide STORED AS PARQUET LOCATION '{}'", env.s3("wide/"))))
        .await
        .unwrap();
    let csv_sql = request("SELECT count(*), max(name) FROM events");
    let wide_sql = request("SELECT sum(c1), sum(c2), sum(c3) FROM wide");
    let (_, solo_wide) = engine.run(&wide_sql).await.unwrap();
    let csv_size = env.size_of("events/csv");
    for _ in 0..3 {
        let (a, b) = tokio::join!(engine.run(&csv_sql), engine.run(&wide_sql));
        let (a, b) = (a.unwrap().1, b.unwrap().1);
        assert_eq!(a.statistics.data_scanned_in_bytes, csv_size);
        assert_eq!(b.statistics.data_scanned_in_bytes, solo_wide.statistics.data_scanned_in_bytes);
        assert_ne!(a.query_execution_id, b.query_execution_id);
    }
}

fn engine_with_cutoff(endpoint: &str, cutoff: Option<u64>) -> Engine {
    let s3 = support::s3_settings(endpoint);
    Engine::new(EngineConfig { s3, bytes_scanned_cutoff: cutoff, ..Default::default() }).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_queries_pay_for_what_they_read() {
    let env = support::env();
    let engine = engine_with_cutoff(&env.endpoint, None);
    engine
        .run(&request(&format!("CREATE EXTERNAL TABLE wide STORED AS PARQUET LOCATION '{}'", env.s3("wide/"))))
        .await
        .unwrap();
    let mut query = engine.start(&request("SELECT * FROM wide")).await.unwrap();
    let first = query.next_batch().await.expect("a first batch").expect("no error");
    assert!(first.num_rows() > 0);
    let record = query.cancel("cancelled by the test");
    assert_eq!(record.status.state, QueryExecutionState::Cancelled);
    let scanned = record.statistics.data_scanned_in_bytes;
    assert!(scanned > 0 && scanned < env.size_of("wide"), "read {scanned} before cancelling");
    // what arrived is billed, ranges cut short included, rounded up with the 10 MB minimum
    assert_eq!(record.statistics.billed_bytes, Pricing::default().billed_bytes(scanned));
    assert!(record.statistics.billed_bytes >= 10 * 1024 * 1024);
    assert!(record.statistics.cost_usd > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_cutoff_cancels_and_bills_what_was_read() {
    let env = support::env();
    let cutoff = 1024 * 1024;
    let engine = engine_with_cutoff(&env.endpoint, Some(cutoff));
    engine
        .run(&request(&format!("CREATE EXTERNAL TABLE wide STORED AS PARQUET LOCATION '{}'", env.s3("wide/"))))
        .await
        .unwrap();
    let failure = engine.run(&request("SELECT sum(c0 + c1 + c2 + c3 + c4) FROM wide")).await.unwrap_err();
    let record = failure.execution;
    assert_eq!(record.status.state, QueryExecutionState::Cancelled);
    assert_eq!(record.status.state_change_reason.as_deref(), Some("Bytes scanned limit was exceeded"));
    let scanned = record.statistics.data_scanned_in_bytes;
    assert!(scanned > cutoff && scanned < env.size_of("wide"), "scanned {scanned}");
    assert_eq!(record.statistics.billed_bytes, Pricing::default().billed_bytes(scanned));
}
