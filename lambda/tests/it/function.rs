//! Direct query events and HTTP events through the Runtime API, one function process each.

use std::process::{Command, Stdio};
use std::sync::Once;
use std::time::Duration;

use base64::Engine as _;
use glaux_testkit::runtime_api::{Outcome, RuntimeApi};
use glaux_testkit::{Env, Guarded, env};
use serde_json::{Value, json};

/// `relative` in this clone of the repository: the folder cargo names when it runs the tests,
/// not only the one compiled in (the build cache is shared between clones, and a binary another
/// clone built from the same sources names that clone's folder).
fn repo_path(relative: &str) -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")))
        .join("..")
        .join(relative)
}

/// Registers web.daily (1,096 Parquet partitions) in the Glue server, once per run.
fn seed_glue(env: &Env) {
    static SEEDED: Once = Once::new();
    SEEDED.call_once(|| {
        let script = repo_path("tests/data/glue_tool.py");
        let out =
            Command::new("python3").arg(script).args([&env.endpoint, "seed-daily", &env.bucket]).output().unwrap();
        assert!(out.status.success(), "glue_tool: {}", String::from_utf8_lossy(&out.stderr));
    });
}

/// A bootstrap process and the Runtime API it polls.
struct Lambda {
    api: RuntimeApi,
    child: Guarded,
    output: String,
}

impl Lambda {
    async fn start(env: &Env, tag: &str, vars: &[(&str, &str)]) -> Self {
        let api = RuntimeApi::start().await.unwrap();
        let scratch = std::env::temp_dir().join(format!("glaux-it-{}-lambda-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&scratch);
        let output = format!("s3://{}/lambda-results/{tag}/", env.bucket);
        let child = api
            .function_command(std::path::Path::new(env!("CARGO_BIN_EXE_bootstrap")), 512)
            .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
            .env("AWS_ENDPOINT_URL", &env.endpoint)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("GLAUX_WAREHOUSE", scratch.join("warehouse"))
            .env("GLAUX_SPILL_DIR", scratch.join("spill"))
            .env("GLAUX_OUTPUT_LOCATION", &output)
            .envs(vars.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("bootstrap starts");
        let lambda = Self { api, child: Guarded(child), output };
        assert!(lambda.api.ready(Duration::from_secs(60)).await.is_some(), "bootstrap never asked for an event");
        lambda
    }

    /// A direct invocation; the function must answer, not fail.
    async fn query(&self, event: Value) -> Value {
        match self.api.invoke(event, Duration::from_secs(120)).await {
            Outcome::Response(reply) => reply,
            Outcome::Error { error_type, body } => panic!("function error {error_type:?}: {body}"),
        }
    }

    /// An Athena API call as a Function URL event; returns (status, body).
    async fn athena(&self, operation: &str, body: Value) -> (u64, Value) {
        let event = json!({
            "version": "2.0", "rawPath": "/", "rawQueryString": "",
            "headers": {"content-type": "application/x-amz-json-1.1", "x-amz-target": format!("AmazonAthena.{operation}")},
            "requestContext": {"http": {"method": "POST", "path": "/"}},
            "body": body.to_string(), "isBase64Encoded": false,
        });
        let reply = self.query(event).await;
        let status = reply["statusCode"].as_u64().unwrap_or_else(|| panic!("not an HTTP reply: {reply}"));
        // JSON that is not `application/json` comes back base64-encoded, as Lambda allows
        let text = reply["body"].as_str().unwrap_or_default();
        let bytes = if reply["isBase64Encoded"].as_bool() == Some(true) {
            base64::engine::general_purpose::STANDARD.decode(text).unwrap()
        } else {
            text.as_bytes().to_vec()
        };
        let body = serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("reply body {text:?}: {e}"));
        (status, body)
    }
}

fn state(reply: &Value) -> &str {
    reply["QueryExecution"]["Status"]["State"].as_str().unwrap_or_else(|| panic!("no state in {reply}"))
}

fn cells(row: &Value) -> Vec<Option<String>> {
    row["Data"].as_array().unwrap().iter().map(|c| c["VarCharValue"].as_str().map(str::to_string)).collect()
}

/// Bytes of the local copies of every object under `prefix` (what S3 holds).
fn size_under(dir: &std::path::Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let meta = entry.metadata().unwrap();
        total += if meta.is_dir() { size_under(&entry.path()) } else { meta.len() };
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_select_over_a_partitioned_glue_table_comes_back_with_its_statistics() {
    let env = env();
    seed_glue(&env);
    let lambda = Lambda::start(&env, "select", &[]).await;
    let reply = lambda
        .query(json!({
            "QueryString": "SELECT count(*) AS n, sum(hits) AS hits FROM daily WHERE year = '2025' AND month = '02'",
            "QueryExecutionContext": {"Database": "web"},
        }))
        .await;
    assert_eq!(state(&reply), "SUCCEEDED", "{reply}");
    let rows = reply["ResultSet"]["Rows"].as_array().unwrap();
    assert_eq!(cells(&rows[0]), vec![Some("n".into()), Some("hits".into())], "the header row first");
    // four rows a day, hits = day * 10 + row
    let hits: i64 = (1..=28).map(|d| 40 * d + 6).sum();
    assert_eq!(cells(&rows[1]), vec![Some("112".into()), Some(hits.to_string())]);
    let columns = &reply["ResultSet"]["ResultSetMetadata"]["ColumnInfo"];
    assert_eq!(columns[0]["Type"], "bigint", "{columns}");
    // February's objects were read (their footers and columns, some ranges twice as the
    // Parquet reader fetched them), not the year's
    let february = size_under(&env.data.join("daily/year=2025/month=02"));
    let year = size_under(&env.data.join("daily/year=2025"));
    let stats = &reply["QueryExecution"]["Statistics"];
    let scanned = stats["DataScannedInBytes"].as_u64().unwrap();
    assert!(scanned >= february / 4 && scanned <= 2 * february, "scanned {stats} of February's {february} bytes");
    assert!(scanned * 5 < year, "scanned {scanned} of the year's {year} bytes");
    assert_eq!(reply["QueryExecution"]["WorkGroup"], "primary");
    assert_eq!(reply["TotalRows"], 1);
    assert!(reply.get("ResultsTruncated").is_none(), "{reply}");
    // Athena's result file, written before the query succeeded
    let location = reply["QueryExecution"]["ResultConfiguration"]["OutputLocation"].as_str().unwrap();
    assert!(location.starts_with(&lambda.output) && location.ends_with(".csv"), "{location}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_past_max_rows_stay_in_the_output_location_and_the_reply_says_so() {
    let env = env();
    seed_glue(&env);
    let lambda = Lambda::start(&env, "maxrows", &[]).await;
    let reply = lambda
        .query(json!({
            "QueryString": "SELECT year, month, day, id, hits FROM daily WHERE year = '2025' ORDER BY month, day, id",
            "QueryExecutionContext": {"Database": "web", "Catalog": "AwsDataCatalog"},
            "MaxRows": 100,
        }))
        .await;
    assert_eq!(state(&reply), "SUCCEEDED", "{reply}");
    let rows = reply["ResultSet"]["Rows"].as_array().unwrap();
    assert_eq!(rows.len(), 101, "the header and MaxRows rows");
    assert_eq!(cells(&rows[1])[..3], [Some("2025".into()), Some("01".into()), Some("01".into())]);
    assert_eq!(reply["ResultsTruncated"], true);
    assert_eq!(reply["RowsReturned"], 100);
    assert_eq!(reply["TotalRows"], 4 * 365);
    let location = reply["ResultLocation"].as_str().unwrap();
    assert!(reply["Message"].as_str().unwrap().contains(location), "{reply}");
    // the whole result is in the CSV, as PyAthena would read it
    let csv = read_s3(&env, location).await;
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 1 + 4 * 365);
    assert_eq!(lines[0], r#""year","month","day","id","hits""#);
    assert_eq!(lines.last().unwrap().split(',').take(3).collect::<Vec<_>>(), [r#""2025""#, r#""12""#, r#""31""#]);
}

/// An object's text, read over S3's HTTP API.
async fn read_s3(env: &Env, url: &str) -> String {
    use object_store::ObjectStoreExt;
    let rest = url.strip_prefix("s3://").unwrap();
    let (bucket, key) = rest.split_once('/').unwrap();
    let store = object_store::aws::AmazonS3Builder::new()
        .with_endpoint(&env.endpoint)
        .with_allow_http(true)
        .with_bucket_name(bucket)
        .with_region("us-east-1")
        .with_access_key_id("testing")
        .with_secret_access_key("testing")
        .build()
        .unwrap();
    let bytes = store.get(&object_store::path::Path::from(key)).await.unwrap().bytes().await.unwrap();
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_come_back_as_failed_records_and_the_function_serves_on() {
    let env = env();
    seed_glue(&env);
    let lambda = Lambda::start(&env, "failing", &[]).await;
    let missing = lambda
        .query(json!({"QueryString": "SELECT * FROM no_such_table", "QueryExecutionContext": {"Database": "web"}}))
        .await;
    assert_eq!(state(&missing), "FAILED", "{missing}");
    let reason = missing["QueryExecution"]["Status"]["StateChangeReason"].as_str().unwrap();
    assert!(reason.contains("no_such_table"), "{reason}");
    assert!(missing.get("ResultSet").is_none());

    for (event, expected) in [
        (json!({"QueryString": "  "}), "QueryString is required"),
        (json!({"QueryString": "SELECT 1", "MaxRows": "ten"}), "MaxRows"),
        (json!({"QueryString": "SELECT 1", "WorkGroup": "nobody"}), "WorkGroup nobody"),
        (json!({"QueryString": "SELECT 1", "QueryExecutionContext": {"Catalog": "hive"}}), "catalog hive"),
        (json!({"QueryString": "SELEC 1"}), "SELEC"),
        (json!({"QueryString": 42}), "QueryString"),
    ] {
        let reply = lambda.query(event.clone()).await;
        assert_eq!(state(&reply), "FAILED", "{event} → {reply}");
        let reason = reply["QueryExecution"]["Status"]["StateChangeReason"].as_str().unwrap();
        assert!(reason.contains(expected), "{event}: {reason}");
    }
    // the same process answers the next event
    let ok = lambda.query(json!({"QueryString": "SELECT 40 + 2 AS answer"})).await;
    assert_eq!(state(&ok), "SUCCEEDED", "{ok}");
    assert_eq!(cells(&ok["ResultSet"]["Rows"][1]), vec![Some("42".into())]);
    let mut lambda = lambda;
    assert!(lambda.child.try_wait().unwrap().is_none(), "the function is still running");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_events_go_through_the_athena_api() {
    let env = env();
    seed_glue(&env);
    // without an auth file, HTTP events are served only when the Function URL checks IAM
    let open = Lambda::start(&env, "http-open", &[]).await;
    let (status, refused) = open.athena("ListWorkGroups", json!({})).await;
    assert_eq!(status, 403, "{refused}");
    assert!(refused["Message"].as_str().unwrap().contains("GLAUX_FUNCTION_URL_AUTH"), "{refused}");
    drop(open);
    let lambda = Lambda::start(&env, "http", &[("GLAUX_FUNCTION_URL_AUTH", "iam")]).await;
    let (status, started) = lambda
        .athena(
            "StartQueryExecution",
            json!({
                "QueryString": "SELECT day, sum(hits) AS hits FROM daily WHERE year = '2024' AND month = '03' AND day IN ('01', '02') GROUP BY day ORDER BY day",
                "QueryExecutionContext": {"Database": "web"},
            }),
        )
        .await;
    assert_eq!(status, 200, "{started}");
    let id = started["QueryExecutionId"].as_str().unwrap().to_string();
    // the run lives in the function between invocations: poll as boto3 would
    let mut execution = Value::Null;
    for _ in 0..200 {
        let (status, got) = lambda.athena("GetQueryExecution", json!({"QueryExecutionId": id})).await;
        assert_eq!(status, 200, "{got}");
        execution = got["QueryExecution"].clone();
        if !matches!(execution["Status"]["State"].as_str(), Some("QUEUED" | "RUNNING")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(execution["Status"]["State"], "SUCCEEDED", "{execution}");
    assert!(execution["Statistics"]["DataScannedInBytes"].as_u64().unwrap() > 0);
    let (status, results) = lambda.athena("GetQueryResults", json!({"QueryExecutionId": id})).await;
    assert_eq!(status, 200, "{results}");
    let rows: Vec<Vec<Option<String>>> = results["ResultSet"]["Rows"].as_array().unwrap().iter().map(cells).collect();
    // day d: hits 10d+0 … 10d+3
    assert_eq!(
        rows,
        vec![
            vec![Some("day".into()), Some("hits".into())],
            vec![Some("01".into()), Some("46".into())],
            vec![Some("02".into()), Some("86".into())],
        ]
    );
    // the API's own errors keep their shape over Lambda
    let (status, error) = lambda.athena("DropEverything", json!({})).await;
    assert_eq!(status, 400);
    assert_eq!(error["__type"], "UnknownOperationException", "{error}");
    // and the health check is there too, as a REST API event
    let health = lambda
        .query(json!({"httpMethod": "GET", "path": "/health", "headers": {}, "requestContext": {"stage": "prod"}, "body": null}))
        .await;
    assert_eq!(health["statusCode"], 200, "{health}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_works_against_a_function_url() {
    let env = env();
    seed_glue(&env);
    let lambda = Lambda::start(&env, "url", &[("GLAUX_FUNCTION_URL_AUTH", "iam")]).await;
    let url = lambda.api.function_url().await.unwrap();
    let dir = repo_path("tests/clients");
    // pytest blocks this thread; the function and its URL run on the runtime's other worker
    let out = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", "test_lambda_url.py"])
            .current_dir(dir)
            .env("GLAUX_URL", &url)
            .env("GLAUX_NO_TABLES", "1")
            .env("AWS_ENDPOINT_URL_ATHENA", &url)
            .env_remove("AWS_ENDPOINT_URL")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .output()
            .expect("python3 -m pytest (scripts/test installs it)")
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "pytest failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The function as a coordinator: with GLAUX_WORKERS it spreads a Glue table's scan over
/// `glaux worker` processes, gets the one-process answer, and bills what the S3 server served to
/// all of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_workers_the_function_spreads_its_scans_and_bills_what_they_read() {
    use glaux_testkit::proxy::CountingProxy;
    use glaux_testkit::{TEST_SECRET, WorkerProcesses};
    let env = env();
    seed_glue(&env);
    let proxy = CountingProxy::start(&env.endpoint).await;
    let workers = WorkerProcesses::start(&glaux_testkit::glaux_binary(), 2, &proxy.endpoint, TEST_SECRET).unwrap();
    let list = workers.urls.join(",");
    let vars = [
        ("AWS_ENDPOINT_URL", proxy.endpoint.as_str()),
        ("GLAUX_WORKERS", list.as_str()),
        ("GLAUX_CLUSTER_SECRET", TEST_SECRET),
        ("GLAUX_DISTRIBUTE_ABOVE", "0"),
    ];
    let lambda = Lambda::start(&env, "workers", &vars).await;
    let sql = "SELECT count(*) AS n, sum(hits) AS hits FROM daily WHERE year = '2025' AND month = '02'";
    let context = json!({"Database": "web"});

    let plan = lambda.query(json!({"QueryString": format!("EXPLAIN {sql}"), "QueryExecutionContext": context})).await;
    assert_eq!(state(&plan), "SUCCEEDED", "{plan}");
    let text = plan["ResultSet"]["Rows"].to_string();
    assert!(text.contains("DistributedExec"), "the plan was not spread: {text}");
    for url in &workers.urls {
        assert!(text.contains(url.trim_start_matches("http://")), "worker {url} not in the plan: {text}");
    }

    proxy.counts.reset();
    let reply = lambda.query(json!({"QueryString": sql, "QueryExecutionContext": context})).await;
    assert_eq!(state(&reply), "SUCCEEDED", "{reply}");
    let hits: i64 = (1..=28).map(|d| 40 * d + 6).sum();
    let rows = reply["ResultSet"]["Rows"].as_array().unwrap();
    assert_eq!(cells(&rows[1]), vec![Some("112".into()), Some(hits.to_string())]);
    let scanned = reply["QueryExecution"]["Statistics"]["DataScannedInBytes"].as_u64().unwrap();
    assert!(scanned > 0);
    assert_eq!(scanned, proxy.counts.total(), "the bill vs what the S3 server served the function and its workers");
}
