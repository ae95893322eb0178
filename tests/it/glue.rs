//! The Glue backend against a server that speaks the Glue API (moto): tables another tool
//! registered read unchanged, partition filters travel to the server as a GetPartitions
//! expression, and tables glaux creates look to boto3 as Athena's do.

use base64::Engine as _;

use crate::support::{self, csv, glaux_env, glue_tool, proxy::CountingProxy, scratch};

const DAYS_2025: [i64; 12] = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/// Rows and sum of hits for the given days of months: four rows a day, hits = day * 10 + row.
fn daily_answer(month_lengths: &[i64]) -> (i64, i64) {
    let days: Vec<i64> = month_lengths.iter().flat_map(|&n| 1..=n).collect();
    (4 * days.len() as i64, days.iter().map(|d| 40 * d + 6).sum())
}

fn one_row(run: &support::Run) -> Vec<Option<String>> {
    let (_, mut rows) = csv::parse(&run.assert_ok().stdout);
    assert_eq!(rows.len(), 1, "{}", run.stdout);
    rows.pop().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crawled_table_with_1096_partitions_is_pruned_by_the_server() {
    let env = support::env();
    let seeded = glue_tool(&env.endpoint, &["seed-daily", &env.bucket]);
    assert_eq!(seeded["partitions"], 1096);
    // Glue calls go through a proxy that counts GetPartitions' response bytes
    let proxy = CountingProxy::start(&env.endpoint).await;
    let warehouse = scratch("glue");
    let run = {
        let (warehouse, endpoint, glue) = (warehouse.clone(), env.endpoint.clone(), proxy.endpoint.clone());
        move |sql: &str| {
            let vars = [("AWS_ENDPOINT_URL_GLUE", glue.as_str())];
            glaux_env(&warehouse, &endpoint, &["--catalog", "glue", "--database", "web", "--format", "csv"], sql, &vars)
        }
    };
    let run = std::sync::Arc::new(run);

    let all = {
        let run = run.clone();
        tokio::task::spawn_blocking(move || run("SELECT count(*), sum(hits) FROM daily")).await.unwrap()
    };
    let (all_response, calls) = proxy.counts.api("AWSGlue.GetPartitions");
    assert!(calls >= 1, "partitions come from Glue");
    let rows_all = 4 * 1096;
    assert_eq!(one_row(&all)[0].as_deref(), Some(rows_all.to_string().as_str()));

    proxy.counts.reset();
    let feb = {
        let run = run.clone();
        tokio::task::spawn_blocking(move || {
            run("SELECT count(*), sum(hits) FROM daily WHERE year = '2025' AND month = '02'")
        })
        .await
        .unwrap()
    };
    let (rows, hits) = daily_answer(&DAYS_2025[1..2]);
    assert_eq!(one_row(&feb), vec![Some(rows.to_string()), Some(hits.to_string())]);
    let (feb_response, _) = proxy.counts.api("AWSGlue.GetPartitions");
    // the server filtered: 28 of 1,096 partitions came back
    assert!(
        feb_response * 20 < all_response,
        "GetPartitions sent {feb_response} bytes for February, {all_response} for all"
    );
    // and only February's objects were read
    assert!(feb.scanned() * 20 < all.scanned(), "February scanned {}, all {}", feb.scanned(), all.scanned());

    // one day, with S3 traffic through the proxy too: glaux reads exactly that day's object,
    // and the GetPartitions request carried the filter as an expression
    proxy.counts.reset();
    let day = {
        let (warehouse, endpoint) = (warehouse.clone(), proxy.endpoint.clone());
        tokio::task::spawn_blocking(move || {
            glaux_env(
                &warehouse,
                &endpoint,
                &["--catalog", "glue", "--database", "web", "--format", "csv"],
                "SELECT count(*), sum(hits) FROM daily WHERE year = '2025' AND month = '02' AND day = '14'",
                &[],
            )
        })
        .await
        .unwrap()
    };
    assert_eq!(one_row(&day), vec![Some("4".into()), Some((4 * 140 + 6).to_string())]);
    assert!(day.scanned() > 0);
    assert_eq!(day.scanned(), proxy.counts.total(), "meter vs what the S3 server sent");
    let prefix = format!("/{}/daily/year%3D2025/month%3D02/day%3D14/", env.bucket);
    let read = proxy.counts.objects();
    assert!(!read.is_empty() && read.iter().all(|k| k.starts_with(&prefix)), "objects read: {read:?}");
    let requests = proxy.counts.requests("AWSGlue.GetPartitions");
    assert!(!requests.is_empty());
    for body in &requests {
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        let expression = body["Expression"].as_str().unwrap_or_else(|| panic!("no Expression in {body}"));
        assert!(
            expression.contains("year = '2025'")
                && expression.contains("month = '02'")
                && expression.contains("day = '14'"),
            "{expression}"
        );
    }

    // filters Glue cannot say (a cast) still prune exactly, on glaux's side
    let q1 = {
        let run = run.clone();
        tokio::task::spawn_blocking(move || {
            run("SELECT count(*), sum(hits) FROM daily WHERE year = '2025' AND CAST(month AS INT) BETWEEN 1 AND 3")
        })
        .await
        .unwrap()
    };
    let (rows, hits) = daily_answer(&DAYS_2025[0..3]);
    assert_eq!(one_row(&q1), vec![Some(rows.to_string()), Some(hits.to_string())]);
    assert!(q1.scanned() * 8 < all.scanned());

    let shown = {
        let run = run.clone();
        tokio::task::spawn_blocking(move || run("SHOW PARTITIONS daily")).await.unwrap()
    };
    let (_, partitions) = csv::parse(&shown.assert_ok().stdout);
    assert_eq!(partitions.len(), 1096);
    assert!(partitions.contains(&vec![Some("year=2024/month=02/day=29".to_string())]));

    // with partition projection on, Glue is asked for the table and never for partitions
    let bucket = env.bucket.clone();
    let run2 = run.clone();
    tokio::task::spawn_blocking(move || {
        run2(&format!(
            "CREATE EXTERNAL TABLE IF NOT EXISTS daily_projected (id bigint, hits bigint)
             PARTITIONED BY (year string, month string, day string) STORED AS PARQUET
             LOCATION 's3://{bucket}/daily/'
             TBLPROPERTIES ('projection.enabled'='true',
               'projection.year.type'='integer', 'projection.year.range'='2024,2026',
               'projection.month.type'='integer', 'projection.month.range'='1,12', 'projection.month.digits'='2',
               'projection.day.type'='integer', 'projection.day.range'='1,31', 'projection.day.digits'='2')"
        ))
        .assert_ok();
    })
    .await
    .unwrap();
    proxy.counts.reset();
    let projected = tokio::task::spawn_blocking(move || {
        run("SELECT count(*), sum(hits) FROM daily_projected WHERE year = '2025' AND month = '02'")
    })
    .await
    .unwrap();
    let (rows, hits) = daily_answer(&DAYS_2025[1..2]);
    assert_eq!(one_row(&projected), vec![Some(rows.to_string()), Some(hits.to_string())]);
    assert_eq!(proxy.counts.api("AWSGlue.GetPartitions").1, 0, "no partition calls with projection on");
    assert!(proxy.counts.api("AWSGlue.GetTable").1 >= 1);
}

#[test]
fn tables_glaux_creates_look_right_to_other_glue_clients() {
    let env = support::env();
    let warehouse = scratch("glue-ddl");
    let glaux = |sql: &str| glaux_env(&warehouse, &env.endpoint, &["--catalog", "glue", "--format", "csv"], sql, &[]);
    let ddl = format!(
        "CREATE DATABASE IF NOT EXISTS shop_glue;
         CREATE EXTERNAL TABLE IF NOT EXISTS shop_glue.sales (id bigint, amount bigint, region string)
           PARTITIONED BY (year string, month int) STORED AS PARQUET LOCATION '{}'
           TBLPROPERTIES ('classification'='parquet');
         MSCK REPAIR TABLE shop_glue.sales",
        env.s3("sales/")
    );
    glaux(&ddl).assert_ok();
    let table = glue_tool(&env.endpoint, &["get-table", "shop_glue", "sales"]);
    assert_eq!(table["TableType"], "EXTERNAL_TABLE");
    assert_eq!(table["Parameters"]["EXTERNAL"], "TRUE");
    assert_eq!(table["Parameters"]["classification"], "parquet");
    let sd = &table["StorageDescriptor"];
    assert_eq!(sd["Location"], env.s3("sales/"));
    assert_eq!(sd["InputFormat"], "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat");
    assert_eq!(sd["SerdeInfo"]["SerializationLibrary"], "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe");
    assert_eq!(sd["Columns"][1]["Name"], "amount");
    assert_eq!(sd["Columns"][1]["Type"], "bigint");
    assert_eq!(table["PartitionKeys"][1]["Type"], "int");
    // MSCK REPAIR registered the 24 folders in Glue
    let partitions = glue_tool(&env.endpoint, &["partitions", "shop_glue", "sales"]);
    assert_eq!(partitions.as_array().unwrap().len(), 24);
    assert!(partitions.as_array().unwrap().contains(&serde_json::json!(["2024", "7"])));

    let answer = glaux("SELECT count(*), sum(amount) FROM awsdatacatalog.shop_glue.sales WHERE month = 7");
    // two years of July: 10 rows each, amount = 700 + row
    assert_eq!(one_row(&answer), vec![Some("20".into()), Some((2 * (7000 + 45)).to_string())]);

    // a view glaux creates is a view to Athena: VIRTUAL_VIEW with the Presto view document
    glaux("CREATE VIEW shop_glue.july AS SELECT year, sum(amount) AS total FROM sales WHERE month = 7 GROUP BY year")
        .assert_ok();
    let view = glue_tool(&env.endpoint, &["get-table", "shop_glue", "july"]);
    assert_eq!(view["TableType"], "VIRTUAL_VIEW");
    assert_eq!(view["Parameters"]["presto_view"], "true");
    assert_eq!(view["ViewExpandedText"], "/* Presto View */");
    let text = view["ViewOriginalText"].as_str().unwrap();
    let encoded = text.strip_prefix("/* Presto View: ").and_then(|t| t.strip_suffix(" */")).unwrap();
    let document: serde_json::Value =
        serde_json::from_slice(&base64::engine::general_purpose::STANDARD.decode(encoded).unwrap()).unwrap();
    assert_eq!(document["schema"], "shop_glue");
    assert_eq!(document["columns"][1], serde_json::json!({"name": "total", "type": "bigint"}));
    let totals = glaux("SELECT total FROM shop_glue.july ORDER BY year");
    assert_eq!(csv::parse(&totals.assert_ok().stdout).1, vec![vec![Some("7045".into())], vec![Some("7045".into())]]);
    // and a view Athena wrote (registered with boto3 as Athena does) is read by glaux
    glue_tool(
        &env.endpoint,
        &[
            "athena-view",
            "shop_glue",
            "by_region",
            "SELECT region, count(*) AS n FROM sales GROUP BY region",
            "region:varchar",
            "n:bigint",
        ],
    );
    let regions = glaux("SELECT sum(n) FROM shop_glue.by_region");
    assert_eq!(one_row(&regions), vec![Some("240".into())]);
    glaux("DROP VIEW shop_glue.july; DROP VIEW shop_glue.by_region").assert_ok();

    // ANALYZE keeps its counts in the Glue table's parameters, under Spark's keys, for other
    // Glue clients to read; the table is otherwise unchanged
    let analyzed = glaux("ANALYZE shop_glue.sales");
    assert_eq!(one_row(&analyzed), vec![Some("240".into())]);
    let table = glue_tool(&env.endpoint, &["get-table", "shop_glue", "sales"]);
    assert_eq!(table["Parameters"]["spark.sql.statistics.numRows"], "240");
    assert_eq!(table["Parameters"]["spark.sql.statistics.colStats.region.distinctCount"], "2");
    assert_eq!(table["Parameters"]["spark.sql.statistics.colStats.region.nullCount"], "0");
    assert_eq!(table["Parameters"]["classification"], "parquet");
    assert_eq!(table["StorageDescriptor"]["Columns"][2]["Name"], "region");
    assert_eq!(glue_tool(&env.endpoint, &["partitions", "shop_glue", "sales"]).as_array().unwrap().len(), 24);
    let south = glaux("SELECT count(*) FROM shop_glue.sales WHERE region = 'south'");
    assert_eq!(one_row(&south), vec![Some("120".into())]);

    glaux("ALTER TABLE shop_glue.sales DROP PARTITION (year = '2024', month = 7)").assert_ok();
    let partitions = glue_tool(&env.endpoint, &["partitions", "shop_glue", "sales"]);
    assert_eq!(partitions.as_array().unwrap().len(), 23);
    // dropping what is not there names it
    let missing = glaux("ALTER TABLE shop_glue.sales DROP PARTITION (year = '2024', month = 7)");
    // exit code 4 (does not exist), as the local catalog answers
    assert_eq!(missing.status, 4, "the catalog refuses it: {}", missing.stderr);
    assert!(missing.stderr.contains("2024"), "{}", missing.stderr);

    glaux("DROP TABLE shop_glue.sales; DROP DATABASE shop_glue").assert_ok();
    let gone = glaux("SHOW TABLES IN shop_glue");
    assert_eq!(gone.status, 4, "not found: {}", gone.stderr);
    assert!(gone.stderr.contains("shop_glue"), "{}", gone.stderr);
}
