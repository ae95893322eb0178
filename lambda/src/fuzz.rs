//! Generated Lambda events — Function URL, API Gateway (REST and HTTP) and ALB shapes with their
//! fields missing, mistyped or broken, and direct query events — sent to the function as the
//! Runtime API would hand them over: each gets a reply, never a panic or a hang.

use std::sync::OnceLock;
use std::time::Duration;

use lambda_runtime::{Context, LambdaEvent};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestRunner};
use serde_json::{Value, json};

use crate::function::Function;
use crate::settings::Settings;

fn config() -> Config {
    let var = |k: &str| std::env::var(k).ok().and_then(|v| v.trim().parse::<u64>().ok());
    Config {
        cases: var("GLAUX_FUZZ_CASES").map_or(256, |c| c as u32),
        rng_seed: RngSeed::Fixed(var("GLAUX_FUZZ_SEED").unwrap_or(20261129)),
        failure_persistence: None,
        ..Config::default()
    }
}

const KEYS: &[&str] = &[
    "version",
    "rawPath",
    "rawQueryString",
    "cookies",
    "headers",
    "multiValueHeaders",
    "requestContext",
    "http",
    "method",
    "stage",
    "httpMethod",
    "elb",
    "path",
    "resource",
    "body",
    "isBase64Encoded",
    "queryStringParameters",
    "multiValueQueryStringParameters",
    "x-amz-target",
    "host",
    "authorization",
    "QueryString",
    "QueryExecutionContext",
    "Database",
    "WorkGroup",
    "ExecutionParameters",
    "ResultConfiguration",
];

fn event() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i32>().prop_map(|n| json!(n)),
        proptest::sample::select(
            &[
                "POST",
                "GET",
                "/",
                "/v1/statement",
                "2.0",
                "e30=",
                "%%%",
                "SELECT 1",
                "AmazonAthena.ListWorkGroups",
                "a b"
            ][..]
        )
        .prop_map(|s| json!(s)),
        "\\PC{0,16}".prop_map(Value::String),
    ];
    let value = leaf.prop_recursive(4, 40, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::vec((proptest::sample::select(KEYS), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
        ]
    });
    // an HTTP event half the time: a request context naming a method, the rest generated
    (value, any::<bool>(), proptest::sample::select(&["POST", "GET", "DELETE"][..])).prop_map(|(v, http, method)| {
        let mut v = if v.is_object() { v } else { json!({"body": v}) };
        if http {
            v["requestContext"] = json!({"http": {"method": method}});
        }
        v
    })
}

struct Fixture {
    runtime: tokio::runtime::Runtime,
    function: Function,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let dir = std::env::temp_dir().join(format!("glaux-it-lambda-fuzz-{}", std::process::id()));
        let (warehouse, spill) = (dir.join("warehouse"), dir.join("spill"));
        let vars = [
            ("GLAUX_CATALOG", "local".to_string()),
            ("GLAUX_WAREHOUSE", warehouse.display().to_string()),
            ("GLAUX_SPILL_DIR", spill.display().to_string()),
            ("GLAUX_FUNCTION_URL_AUTH", "iam".to_string()),
        ];
        let settings = Settings::from_lookup(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())).unwrap();
        let function = runtime.block_on(Function::start(&settings)).unwrap();
        Fixture { runtime, function }
    })
}

#[test]
fn every_event_gets_a_reply_never_a_panic() {
    let f = fixture();
    let mut runner = TestRunner::new(config());
    let outcome = runner.run(&event(), |event| {
        let what = event.to_string();
        let mut context = Context::default();
        context.deadline = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64 + 30_000)
            .unwrap_or_default();
        let reply = f.runtime.block_on(async {
            tokio::time::timeout(Duration::from_secs(30), f.function.handle(LambdaEvent::new(event, context))).await
        });
        prop_assert!(reply.is_ok(), "{what}: no reply within 30 s");
        let reply = reply.unwrap();
        prop_assert!(!reply.to_string().contains("panicked"), "{what}: {reply}");
        // an HTTP reply has a status; a query reply has its record or the reason it failed
        prop_assert!(
            reply.get("statusCode").is_some()
                || reply.get("Status").is_some()
                || reply.get("QueryExecution").is_some()
                || reply.get("__type").is_some()
                || reply.get("errorMessage").is_some()
                || reply.get("Message").is_some(),
            "{what}: a reply of no known shape: {reply}"
        );
        Ok(())
    });
    if let Err(e) = outcome {
        panic!("{e}");
    }
}
