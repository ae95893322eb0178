//! Scale-out from the command line: `glaux query --workers` against `glaux worker` processes,
//! a partitioned Glue table pruned on the coordinator, the reads spread and metered exactly.

use std::path::Path;

use glaux_testkit::{TEST_SECRET, WorkerProcesses};

use crate::support::{self, glaux_env, proxy::CountingProxy, scratch};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_glue_table_through_workers_reads_only_the_surviving_partitions() {
    let env = support::env();
    let proxy = CountingProxy::start(&env.endpoint).await;
    let workers = WorkerProcesses::start(Path::new(env!("CARGO_BIN_EXE_glaux")), 2, &proxy.endpoint, TEST_SECRET)
        .expect("workers");
    let warehouse = scratch("cluster-glue");
    let list = workers.list();
    let endpoint = proxy.endpoint.clone();
    let glaux = move |sql: String| {
        let args = ["--catalog", "glue", "--format", "csv", "--workers", list.as_str(), "--distribute-above", "0"];
        glaux_env(&warehouse, &endpoint, &args, &sql, &[("GLAUX_CLUSTER_SECRET", TEST_SECRET)])
    };
    let ddl = format!(
        "CREATE DATABASE IF NOT EXISTS shop_cluster;
         CREATE EXTERNAL TABLE IF NOT EXISTS shop_cluster.sales (id bigint, amount bigint, region string)
           PARTITIONED BY (year string, month int) STORED AS PARQUET LOCATION '{}';
         MSCK REPAIR TABLE shop_cluster.sales",
        env.s3("sales/")
    );
    let run = |sql: String| {
        let glaux = glaux.clone();
        tokio::task::spawn_blocking(move || glaux(sql))
    };
    run(ddl).await.unwrap().assert_ok();
    let select = "SELECT count(*), sum(amount) FROM shop_cluster.sales WHERE month = 7 AND year = '2024'";
    let explained = run(format!("EXPLAIN {select}")).await.unwrap();
    explained.assert_ok();
    assert!(explained.stdout.contains("DistributedExec"), "not spread over the workers:\n{}", explained.stdout);
    assert!(explained.stdout.contains("NetworkCoalesceExec") || explained.stdout.contains("NetworkShuffleExec"));
    for url in &workers.urls {
        assert!(explained.stdout.contains(url.as_str()), "EXPLAIN does not name worker {url}:\n{}", explained.stdout);
    }
    proxy.counts.reset();
    let answer = run(select.to_string()).await.unwrap();
    answer.assert_ok();
    // July 2024: ten rows, amount = 700 + row
    assert_eq!(answer.stdout.lines().nth(1), Some("10,7045"), "{}", answer.stdout);
    let objects = proxy.counts.objects();
    assert!(!objects.is_empty());
    for object in &objects {
        let key = object.replace("%3D", "=");
        assert!(key.contains("/sales/year=2024/month=7/"), "read a pruned partition's object: {object}");
    }
    assert_eq!(answer.scanned(), proxy.counts.total(), "bytes scanned vs what the server sent");

    // gzip text is read whole, the same bytes wherever it is read: the bill is the single-node one
    let text = format!(
        "CREATE EXTERNAL TABLE IF NOT EXISTS shop_cluster.sales_text (id bigint, amount bigint, region string)
           PARTITIONED BY (year string, month int) ROW FORMAT DELIMITED FIELDS TERMINATED BY ','
           STORED AS TEXTFILE LOCATION '{}';
         MSCK REPAIR TABLE shop_cluster.sales_text",
        env.s3("sales_text/")
    );
    run(text).await.unwrap().assert_ok();
    // partition values come back from the workers with the rows
    let summer = "SELECT year, month, count(*), sum(amount) FROM shop_cluster.sales_text
                  WHERE month BETWEEN 6 AND 8 GROUP BY year, month ORDER BY year, month";
    proxy.counts.reset();
    let spread = run(summer.to_string()).await.unwrap();
    spread.assert_ok();
    let served = proxy.counts.total();
    let (warehouse, endpoint) = (scratch("cluster-glue-alone"), proxy.endpoint.clone());
    proxy.counts.reset();
    let alone = tokio::task::spawn_blocking(move || {
        glaux_env(&warehouse, &endpoint, &["--catalog", "glue", "--format", "csv"], summer, &[])
    })
    .await
    .unwrap();
    alone.assert_ok();
    // two years of June, July and August, ten rows each
    assert_eq!(spread.stdout, alone.stdout);
    assert_eq!(spread.stdout.lines().count(), 7, "{}", spread.stdout);
    assert!(spread.stdout.contains("\n2024,7,10,7045\n"), "{}", spread.stdout);
    assert_eq!(spread.scanned(), served, "spread: bytes scanned vs what the server sent");
    assert_eq!(alone.scanned(), proxy.counts.total(), "alone: bytes scanned vs what the server sent");
    assert_eq!(spread.scanned(), alone.scanned(), "the same reads, spread or not, cost the same");
}
