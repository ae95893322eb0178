//! Generated requests to the whole router: Athena API bodies under every operation, Trino
//! statements with their headers, and credentials of every kind (SigV4 headers cut and
//! reshuffled, bearer, basic) from strangers. Each gets an HTTP answer, never a panic or a hang.
//! Cases and seed as for the engine's targets: `GLAUX_FUZZ_CASES`, `GLAUX_FUZZ_SEED`.

use std::sync::OnceLock;
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use glaux_engine::{Engine, EngineConfig, S3Settings};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::{Auth, Limits, Server, ServerConfig, router};

fn config() -> Config {
    let var = |k: &str| std::env::var(k).ok().and_then(|v| v.trim().parse::<u64>().ok());
    Config {
        cases: var("GLAUX_FUZZ_CASES").map_or(256, |c| c as u32),
        rng_seed: RngSeed::Fixed(var("GLAUX_FUZZ_SEED").unwrap_or(20261129)),
        failure_persistence: None,
        ..Config::default()
    }
}

const OPERATIONS: &[&str] = &[
    "StartQueryExecution",
    "GetQueryExecution",
    "BatchGetQueryExecution",
    "GetQueryResults",
    "StopQueryExecution",
    "ListQueryExecutions",
    "CreateWorkGroup",
    "GetWorkGroup",
    "ListWorkGroups",
    "UpdateWorkGroup",
    "DeleteWorkGroup",
    "CreatePreparedStatement",
    "GetPreparedStatement",
    "ListPreparedStatements",
    "DeletePreparedStatement",
    "GetDatabase",
    "ListDatabases",
    "GetTableMetadata",
    "ListTableMetadata",
    "GetDataCatalog",
    "ListDataCatalogs",
    "Nope",
];

const FIELDS: &[&str] = &[
    "QueryString",
    "QueryExecutionId",
    "QueryExecutionIds",
    "NextToken",
    "MaxResults",
    "WorkGroup",
    "Name",
    "QueryExecutionContext",
    "Database",
    "Catalog",
    "CatalogName",
    "DatabaseName",
    "TableName",
    "ResultConfiguration",
    "OutputLocation",
    "ExecutionParameters",
    "StatementName",
    "Configuration",
    "BytesScannedCutoffPerQuery",
    "ConfigurationUpdates",
];

const SQL: &[&str] = &[
    "SELECT 1",
    "SELECT * FROM t",
    "SHOW TABLES",
    "SELECT ?",
    "CREATE TABLE x AS SELECT 1",
    "DROP TABLE x",
    "EXPLAIN SELECT 1",
    "SELECT 'a' || ",
    "USE default",
    "SET x = 1",
    "",
];

/// JSON shaped like the API's bodies: its field names, with values of any type, nested.
fn body_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        proptest::sample::select(SQL).prop_map(|s| json!(s)),
        "\\PC{0,12}".prop_map(Value::String),
        Just(json!("glaux-1")),
        Just(json!("s3://bucket/out/")),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::vec((proptest::sample::select(FIELDS), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
        ]
    })
}

/// An Authorization header: a valid bearer or basic one, or a SigV4 header put together from
/// its parts, some missing, repeated or broken.
fn authorization() -> impl Strategy<Value = Option<String>> {
    let sigv4_part = proptest::sample::select(
        &[
            "AWS4-HMAC-SHA256",
            "Credential=AKIDEXAMPLE/20261129/us-east-1/athena/aws4_request",
            "Credential=AKIDEXAMPLE/2026/x",
            "Credential=",
            "SignedHeaders=host;x-amz-date;x-amz-target",
            "SignedHeaders=",
            "Signature=0123abcd",
            "Signature=",
            ",",
            " ",
            "/",
            "=",
        ][..],
    );
    prop_oneof![
        1 => Just(None),
        3 => Just(Some("Bearer tok".to_string())),
        1 => Just(Some("Basic Ym9iOnB3".to_string())),
        1 => "\\PC{0,40}".prop_map(Some),
        2 => proptest::collection::vec(sigv4_part, 0..10).prop_map(|parts| Some(parts.concat())),
    ]
}

/// Any request a stranger might send: method, path, headers and body.
fn request() -> impl Strategy<Value = Request<Body>> {
    let path = prop_oneof![
        4 => Just("/".to_string()),
        2 => Just("/v1/statement".to_string()),
        1 => Just("/v1/info".to_string()),
        1 => Just("/metrics".to_string()),
        1 => Just("/health".to_string()),
        2 => ("[a-z0-9_-]{0,12}", "[a-z0-9]{0,4}", 0..5u32).prop_map(|(id, slug, page)| format!(
            "/v1/statement/executing/{id}/{slug}/{page}"
        )),
        1 => "/[a-zA-Z0-9/%._-]{0,20}",
    ];
    let method = prop_oneof![6 => Just("POST"), 2 => Just("GET"), 1 => Just("DELETE"), 1 => Just("PUT")];
    let trino = proptest::collection::vec(
        (
            proptest::sample::select(
                &["x-trino-user", "x-trino-schema", "x-trino-catalog", "x-trino-session", "x-trino-prepared-statement"]
                    [..],
            ),
            prop_oneof![Just("alice".to_string()), "[a-zA-Z0-9=,%._ -]{0,24}"],
        ),
        0..4,
    );
    let body = prop_oneof![
        3 => body_value().prop_map(|v| v.to_string().into_bytes()),
        1 => proptest::sample::select(SQL).prop_map(|s| s.as_bytes().to_vec()),
        1 => proptest::collection::vec(any::<u8>(), 0..64),
    ];
    (method, path, proptest::sample::select(OPERATIONS), authorization(), trino, "[0-9TZ]{0,16}", body).prop_map(
        |(method, path, operation, auth, trino, date, body)| {
            let mut r = Request::builder()
                .method(method)
                .uri(path)
                .header("host", "localhost")
                .header("x-amz-target", format!("AmazonAthena.{operation}"))
                .header("x-amz-date", date);
            if let Some(auth) = auth.and_then(|a| axum::http::HeaderValue::from_str(&a).ok()) {
                r = r.header("authorization", auth);
            }
            for (name, value) in trino {
                if let Ok(value) = axum::http::HeaderValue::from_str(&value) {
                    r = r.header(name, value);
                }
            }
            r.body(Body::from(body)).unwrap()
        },
    )
}

struct Fixture {
    runtime: tokio::runtime::Runtime,
    router: axum::Router,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let router = runtime.block_on(async {
            let engine = Engine::new(EngineConfig { s3: S3Settings::from_lookup(|_| None), ..Default::default() }).unwrap();
            let auth = Auth::parse(
                "bearer tok principal=alice\nbasic bob:pw\naws AKIDEXAMPLE wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY principal=svc\n",
            )
            .unwrap();
            let limits = Limits {
                query_timeout: Duration::from_secs(5),
                spill_dir: std::env::temp_dir().join(format!("glaux-it-fuzz-{}", std::process::id())),
                ..Default::default()
            };
            let config = ServerConfig {
                limits,
                auth,
                default_output_location: None,
                local_root: None,
                s3: S3Settings::from_lookup(|_| None),
                history: None,
                workgroups: None,
            };
            router(Server::new(engine, config).unwrap())
        });
        Fixture { runtime, router }
    })
}

#[test]
fn every_request_gets_an_answer_never_a_panic() {
    let f = fixture();
    let statuses = std::sync::Mutex::new(std::collections::BTreeMap::<u16, u64>::new());
    let mut runner = proptest::test_runner::TestRunner::new(config());
    let outcome = runner.run(&request(), |request| {
        let what = format!("{} {}", request.method(), request.uri());
        let answer = f.runtime.block_on(async {
            tokio::time::timeout(Duration::from_secs(20), async {
                let response = f.router.clone().oneshot(request).await.unwrap();
                let status = response.status();
                let body = axum::body::to_bytes(response.into_body(), 64 << 20).await;
                (status, body)
            })
            .await
        });
        prop_assert!(answer.is_ok(), "{what}: no answer within 20 s");
        let (status, body) = answer.unwrap();
        prop_assert!(body.is_ok(), "{what}: the body broke off");
        let body = String::from_utf8_lossy(&body.unwrap()).into_owned();
        prop_assert!(!body.contains("panicked"), "{what}: {status} {body}");
        // refused requests say why
        if status.is_client_error() || status.is_server_error() {
            prop_assert!(!body.trim().is_empty(), "{what}: {status} without a reason");
        }
        *statuses.lock().unwrap().entry(status.as_u16()).or_default() += 1;
        Ok(())
    });
    if let Err(e) = outcome {
        panic!("{e}");
    }
    // the requests reached the handlers, not only the door
    let statuses = statuses.into_inner().unwrap();
    println!("answers by status: {statuses:?}");
    assert!(statuses.get(&200).is_some_and(|n| *n > 0), "nothing was answered 200: {statuses:?}");
}
