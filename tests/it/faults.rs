//! Storage that fails as S3 does: a proxy injects 503 SlowDown, 500, resets and cuts in the
//! middle of bodies, late first bytes and lying Content-Lengths into object reads. Queries in
//! every format still give the right answers within the retry policy, each byte the engine
//! received is billed once (see `Counts::bill_holds`), a fault that outlasts the retries fails the query
//! naming the object, and a prefix that answers only 503 is met with backoff, not a hammering.

use std::time::{Duration, Instant};

use crate::formats::{EVENTS_COLUMNS, USERS_COLUMNS, check, ddl, expected};
use crate::support::{self, proxy::CountingProxy};
use glaux_testkit::proxy::{Fault, FaultPlan};

fn plan(env: &support::Env, percent: u64, kinds: &[Fault], prefix: &str) -> FaultPlan {
    FaultPlan { percent, kinds: kinds.to_vec(), prefix: format!("/{}/{prefix}", env.bucket), seed: SEED, slow_ms: 300 }
}

const SEED: u64 = 20261129;

async fn glaux(endpoint: &str, sql: String, vars: &'static [(&'static str, &'static str)]) -> support::Run {
    let endpoint = endpoint.to_string();
    tokio::task::spawn_blocking(move || {
        support::glaux_env(&support::scratch("warehouse"), &endpoint, &["--format", "csv"], &sql, vars)
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_format_gives_the_right_answer_and_bill_through_faults_at_ten_percent() {
    let env = support::env();
    let proxy = CountingProxy::start(&env.endpoint).await;
    let answers = expected(&env, "flat");
    let (mut failures, mut injected, mut reads) = (vec![], 0, 0);
    for format in ["parquet", "orc", "csv", "csv_gz", "tsv", "json", "json_zst"] {
        let setup = format!(
            // small byte ranges, so that text files too are read in many requests
            "SET datafusion.optimizer.repartition_file_min_size = 1024; {}; {}",
            ddl(&env, "events", EVENTS_COLUMNS, format),
            ddl(&env, "users", USERS_COLUMNS, format)
        );
        for answer in &answers {
            let sql = format!("{setup};\n{}", answer["sql"].as_str().unwrap());
            proxy.set_faults(FaultPlan::default());
            let clean = glaux(&proxy.endpoint, sql.clone(), &[]).await;
            clean.assert_ok();
            // a sequence of its own for each query: a query makes a few reads, and the same
            // first few decisions every time would test only those
            proxy.set_faults(FaultPlan { seed: SEED + injected + reads, ..plan(&env, 10, &Fault::ALL, "") });
            proxy.counts.reset();
            let run = glaux(&proxy.endpoint, sql, &[]).await;
            let what = format!("{} on {format}", answer["name"]);
            injected += proxy.counts.get("faults");
            reads += proxy.counts.gets();
            if run.status != 0 {
                failures.push(format!("{what} failed: {}", run.stderr));
                continue;
            }
            if let Err(e) = check(answer, format, &run.stdout) {
                failures.push(e);
            }
            if let Err(e) = proxy.counts.bill_holds(run.scanned(), clean.scanned()) {
                failures.push(format!("{what}: {e}"));
            }
        }
    }
    proxy.set_faults(FaultPlan::default());
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
    // every kind came up (they take turns), at about the rate asked for
    println!("{injected} faults injected into {reads} object reads");
    assert!(injected >= Fault::ALL.len() as u64 && injected * 25 >= reads, "{injected} faults in {reads} reads");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_kind_of_fault_is_ridden_out() {
    let env = support::env();
    let proxy = CountingProxy::start(&env.endpoint).await;
    let answer = &expected(&env, "flat")[0];
    for format in ["parquet", "csv"] {
        let sql = format!(
            "SET datafusion.optimizer.repartition_file_min_size = 1024; {};\n{}",
            ddl(&env, "events", EVENTS_COLUMNS, format),
            answer["sql"].as_str().unwrap()
        );
        proxy.set_faults(FaultPlan::default());
        let clean = glaux(&proxy.endpoint, sql.clone(), &[]).await;
        clean.assert_ok();
        for kind in Fault::ALL {
            // a quarter of the reads, every one of this kind (with room for a run of bad luck
            // in the retries)
            proxy.set_faults(plan(&env, 25, &[kind], ""));
            proxy.counts.reset();
            let run = glaux(&proxy.endpoint, sql.clone(), &[("GLAUX_S3_MAX_RETRIES", "6")]).await;
            run.assert_ok();
            check(answer, format, &run.stdout).unwrap();
            assert!(proxy.counts.get(&format!("faults:{kind:?}")) > 0, "{kind:?} on {format}: none injected");
            proxy
                .counts
                .bill_holds(run.scanned(), clean.scanned())
                .unwrap_or_else(|e| panic!("{kind:?} on {format}: {e}"));
        }
    }
    proxy.set_faults(FaultPlan::default());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_that_outlasts_the_retries_fails_naming_the_object() {
    let env = support::env();
    let proxy = CountingProxy::start(&env.endpoint).await;
    // every read of the Parquet events fails; the retries give up within their bounds
    proxy.set_faults(plan(&env, 100, &[Fault::ServerError], "events/parquet/"));
    let sql = format!("{}; SELECT count(*) FROM events", ddl(&env, "events", EVENTS_COLUMNS, "parquet"));
    let started = Instant::now();
    let run = glaux(&proxy.endpoint, sql, &[("GLAUX_S3_RETRY_TIMEOUT_SECS", "5")]).await;
    assert_ne!(run.status, 0, "a query whose objects cannot be read succeeded: {}", run.stdout);
    assert!(run.stderr.contains("events/parquet/"), "the error names the object: {}", run.stderr);
    assert!(run.stdout.trim().is_empty() || !run.stdout.contains(','), "no partial answer: {}", run.stdout);
    assert!(started.elapsed() < Duration::from_secs(60), "gave up after {:?}", started.elapsed());
    // bounded: the first try and at most GLAUX_S3_MAX_RETRIES (3) more, per object read
    let faults = proxy.counts.get("faults");
    assert!(faults >= 4, "retried: {faults} requests");
    // lying bodies that never come whole fail the same way, never as a short object
    proxy.set_faults(plan(&env, 100, &[Fault::ShortLength], "events/csv/"));
    let sql = format!("{}; SELECT count(*) FROM events", ddl(&env, "events", EVENTS_COLUMNS, "csv"));
    let run = glaux(&proxy.endpoint, sql, &[]).await;
    assert_ne!(run.status, 0, "a short object was taken as whole: {}", run.stdout);
    assert!(run.stderr.contains("events/csv/") && run.stderr.contains("ended after"), "{}", run.stderr);
    proxy.set_faults(FaultPlan::default());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_503_storm_on_one_prefix_is_met_with_backoff() {
    let env = support::env();
    let proxy = CountingProxy::start(&env.endpoint).await;
    proxy.set_faults(plan(&env, 100, &[Fault::SlowDown], "events/orc/"));
    let sql = format!("{}; SELECT count(*) FROM events", ddl(&env, "events", EVENTS_COLUMNS, "orc"));
    let started = Instant::now();
    let run = glaux(&proxy.endpoint, sql, &[("GLAUX_S3_RETRY_TIMEOUT_SECS", "5")]).await;
    let elapsed = started.elapsed();
    assert_ne!(run.status, 0, "{}", run.stdout);
    assert!(run.stderr.contains("events/orc/"), "{}", run.stderr);
    let requests = proxy.counts.get("faults");
    // every read gives up after at most 4 tries, and the tries wait at least 100 ms in between
    let objects = std::fs::read_dir(env.data.join("events/orc")).unwrap().count() as u64;
    assert!(requests <= 4 * objects * 2, "{requests} requests for {objects} objects: hammering");
    assert!(elapsed >= Duration::from_millis(300), "three retries in {elapsed:?}: no backoff");
    // other prefixes are unaffected meanwhile
    let sql = format!("{}; SELECT count(*) FROM events", ddl(&env, "events", EVENTS_COLUMNS, "parquet"));
    glaux(&proxy.endpoint, sql, &[]).await.assert_ok();
    proxy.set_faults(FaultPlan::default());
}
