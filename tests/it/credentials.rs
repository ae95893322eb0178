//! S3 credentials from the AWS default chain, as glaux runs on ECS/EKS, EC2 and with IRSA: the
//! `glaux` binary with no keys in its environment, its S3 requests going through a proxy that
//! records which key signed each, the credentials served by local stand-ins — a container
//! credentials endpoint and an instance-metadata endpoint written here, and moto's STS for web
//! identity and assume-role profiles.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::support::{self, proxy::CountingProxy, scratch};

/// A loopback endpoint that serves credentials as ECS's container endpoint and EC2's instance
/// metadata (IMDSv2) do: each fetch gets a new key (`PREFIX0`, `PREFIX1`, …) that expires after
/// `lifetime`.
struct CredentialsEndpoint {
    url: String,
    fetches: Arc<AtomicUsize>,
    paths: Arc<Mutex<Vec<String>>>,
}

fn rfc3339(at: SystemTime) -> String {
    let secs = at.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    glaux_engine::chrono::DateTime::from_timestamp(secs, 0).unwrap().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

impl CredentialsEndpoint {
    fn start(prefix: &'static str, lifetime: Duration) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let fetches = Arc::new(AtomicUsize::new(0));
        let paths = Arc::new(Mutex::new(vec![]));
        let (f, p) = (Arc::clone(&fetches), Arc::clone(&paths));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let mut length = 0;
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
                        break;
                    }
                    if let Some((k, v)) = header.split_once(':')
                        && k.eq_ignore_ascii_case("content-length")
                    {
                        length = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                let mut parts = line.split_whitespace();
                let (method, path) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default().to_string());
                p.lock().unwrap().push(format!("{method} {path}"));
                let credentials = |n: usize| {
                    serde_json::json!({
                        "Code": "Success",
                        "Type": "AWS-HMAC",
                        "AccessKeyId": format!("{prefix}{n}"),
                        "SecretAccessKey": "stand-in-secret",
                        "Token": format!("token-{n}"),
                        "Expiration": rfc3339(SystemTime::now() + lifetime),
                        "LastUpdated": rfc3339(SystemTime::now()),
                    })
                    .to_string()
                };
                // IMDSv2 tells how long its session token lasts
                let ttl = if method == "PUT" { "x-aws-ec2-metadata-token-ttl-seconds: 21600\r\n" } else { "" };
                let reply = match (method, path.as_str()) {
                    ("PUT", "/latest/api/token") => "imds-session-token".to_string(),
                    ("GET", "/latest/meta-data/iam/security-credentials/") => "glaux-role".to_string(),
                    ("GET", "/latest/meta-data/iam/security-credentials/glaux-role") | ("GET", "/creds") => {
                        credentials(f.fetch_add(1, Ordering::SeqCst))
                    }
                    _ => {
                        let _ =
                            write!(stream, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                        continue;
                    }
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n{ttl}Content-Length: {}\r\nConnection: close\r\n\r\n{reply}",
                    reply.len()
                );
            }
        });
        Self { url, fetches, paths }
    }
}

/// `glaux query` with no AWS keys, no profile files and no instance metadata unless `vars`
/// say so, its S3 requests through `proxy`.
fn glaux_without_keys(home: &Path, proxy: &CountingProxy, sql: &str, vars: &[(&str, &str)]) -> support::Run {
    let out = Command::new(env!("CARGO_BIN_EXE_glaux"))
        .args(["query", "--format", "csv", sql])
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL_S3")
        .env("HOME", home)
        .env("AWS_CONFIG_FILE", home.join("config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", home.join("credentials"))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ENDPOINT_URL", &proxy.endpoint)
        .env("AWS_REGION", "us-east-1")
        .env("GLAUX_WAREHOUSE", home.join("warehouse"))
        .env_remove("GLAUX_CATALOG")
        .envs(vars.iter().copied())
        .output()
        .expect("run glaux");
    let run = support::Run {
        status: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    run
}

fn count_sql(env: &support::Env) -> String {
    format!("SELECT count(*) AS n FROM '{}'", env.s3("events/parquet/"))
}

/// The right count, read with keys that all start with `prefix` and carry a session token.
fn check_signed_by(run: &support::Run, proxy: &CountingProxy, prefix: &str, expected: &str) -> Vec<String> {
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(run.stdout.lines().nth(1), Some(expected), "{}", run.stdout);
    let signers = proxy.counts.signers();
    assert!(!signers.is_empty(), "no signed S3 request went through the proxy");
    for (key, token) in &signers {
        assert!(key.starts_with(prefix) && *token, "a request was signed with {key} (token: {token})");
    }
    let mut keys: Vec<String> = signers.into_iter().map(|(k, _)| k).collect();
    keys.dedup();
    keys
}

/// What each test starts from: the test S3 server, the count a keyed read gives, a home with
/// no AWS files, a recording proxy and the query.
struct Setup {
    env: support::Env,
    expected: String,
    home: std::path::PathBuf,
    proxy: CountingProxy,
    sql: String,
}

async fn setup(tag: &str) -> Setup {
    let env = support::env();
    let expected = expected_count(&env);
    let proxy = CountingProxy::start(&env.endpoint).await;
    let sql = count_sql(&env);
    Setup { expected, home: scratch(tag), proxy, sql, env }
}

fn expected_count(env: &support::Env) -> String {
    let run = support::glaux(&env.endpoint, &["--format", "csv"], &count_sql(env));
    run.assert_ok();
    run.stdout.lines().nth(1).unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_credentials_are_used_and_fetched_again_before_they_expire() {
    let Setup { expected, home, proxy, sql, .. } = setup("creds-container").await;
    // an hour to live: fetched once for the whole query
    let endpoint = CredentialsEndpoint::start("ASIACONTAINER", Duration::from_secs(3600));
    let uri = format!("{}/creds", endpoint.url);
    let vars = [("AWS_CONTAINER_CREDENTIALS_FULL_URI", uri.as_str())];
    let run = tokio::task::block_in_place(|| glaux_without_keys(&home, &proxy, &sql, &vars));
    let keys = check_signed_by(&run, &proxy, "ASIACONTAINER", &expected);
    assert_eq!(keys, ["ASIACONTAINER0"]);
    assert_eq!(endpoint.fetches.load(Ordering::SeqCst), 1);
    // a minute to live (less than the five minutes glaux keeps in hand): every request of the
    // query is signed with credentials fetched anew, never with expiring ones
    proxy.counts.reset();
    let short = CredentialsEndpoint::start("ASIASHORT", Duration::from_secs(60));
    let uri = format!("{}/creds", short.url);
    let vars = [("AWS_CONTAINER_CREDENTIALS_FULL_URI", uri.as_str())];
    let run = tokio::task::block_in_place(|| glaux_without_keys(&home, &proxy, &sql, &vars));
    let keys = check_signed_by(&run, &proxy, "ASIASHORT", &expected);
    let requests = proxy.counts.signers().len();
    assert!(requests > 1 && keys.len() > 1, "{requests} requests signed with {keys:?}");
    assert!(short.fetches.load(Ordering::SeqCst) >= keys.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instance_metadata_credentials_are_used() {
    let Setup { expected, home, proxy, sql, .. } = setup("creds-imds").await;
    let imds = CredentialsEndpoint::start("ASIAINSTANCE", Duration::from_secs(3600));
    let vars = [("AWS_EC2_METADATA_DISABLED", "false"), ("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.url.as_str())];
    let run = tokio::task::block_in_place(|| glaux_without_keys(&home, &proxy, &sql, &vars));
    check_signed_by(&run, &proxy, "ASIAINSTANCE", &expected);
    let paths = imds.paths.lock().unwrap().clone();
    assert!(paths.iter().any(|p| p == "PUT /latest/api/token"), "IMDSv2 session first: {paths:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_identity_and_assume_role_profiles_go_through_sts() {
    let Setup { env, expected, home, proxy, sql } = setup("creds-sts").await;
    // EKS IRSA: a token file and a role; moto's STS answers AssumeRoleWithWebIdentity
    let token = home.join("token");
    std::fs::write(&token, "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJnbGF1eCJ9.c2ln").unwrap();
    let token = token.to_str().unwrap().to_string();
    let vars = [
        ("AWS_WEB_IDENTITY_TOKEN_FILE", token.as_str()),
        ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/glaux-reader"),
        ("AWS_ROLE_SESSION_NAME", "glaux-it"),
        ("AWS_ENDPOINT_URL_STS", env.endpoint.as_str()),
    ];
    let run = tokio::task::block_in_place(|| glaux_without_keys(&home, &proxy, &sql, &vars));
    let keys = check_signed_by(&run, &proxy, "ASIA", &expected);
    assert!(keys.iter().all(|k| k != "testing"), "{keys:?}");
    // a profile that assumes a role from another profile's keys
    proxy.counts.reset();
    std::fs::write(
        home.join("credentials"),
        "[base]\naws_access_key_id = AKIABASE\naws_secret_access_key = base-secret\n",
    )
    .unwrap();
    std::fs::write(
        home.join("config"),
        "[profile analyst]\nrole_arn = arn:aws:iam::123456789012:role/glaux-analyst\nsource_profile = base\nregion = us-east-1\n",
    )
    .unwrap();
    let vars = [("AWS_PROFILE", "analyst"), ("AWS_ENDPOINT_URL_STS", env.endpoint.as_str())];
    let run = tokio::task::block_in_place(|| glaux_without_keys(&home, &proxy, &sql, &vars));
    let keys = check_signed_by(&run, &proxy, "ASIA", &expected);
    assert!(keys.iter().all(|k| k != "AKIABASE"), "the role's keys sign, not the source profile's: {keys:?}");
}

/// A CSV of three rows in a bucket anyone may read (public-read, as public data sets are).
fn public_object(env: &support::Env) -> String {
    let script = r#"
import sys, boto3
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1",
                  aws_access_key_id="testing", aws_secret_access_key="testing")
try:
    s3.create_bucket(Bucket="glaux-public", ACL="public-read")
except s3.exceptions.BucketAlreadyOwnedByYou:
    pass
s3.put_object(Bucket="glaux-public", Key="open/data.csv", Body=b"x\n1\n2\n3\n", ACL="public-read")
"#;
    let out = Command::new("python3").args(["-c", script, &env.endpoint]).output().expect("python3 with boto3");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    "s3://glaux-public/open/data.csv".into()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_credentials_is_an_error_and_anonymous_only_when_asked() {
    let env = support::env();
    let home = scratch("creds-none");
    let proxy = CountingProxy::start(&env.endpoint).await;
    let sql = count_sql(&env);
    let run = tokio::task::block_in_place(|| glaux_without_keys(&home, &proxy, &sql, &[]));
    assert_eq!(run.status, 7, "a storage failure: {}", run.stderr);
    assert!(
        run.stderr.contains("no AWS credentials were found") && run.stderr.contains("--no-sign-request"),
        "{}",
        run.stderr
    );
    assert!(proxy.counts.signers().is_empty());
    // asked for: unsigned requests, which a public bucket serves
    let public = public_object(&env);
    let sql = format!("SELECT count(*) AS n FROM '{public}'");
    let run =
        tokio::task::block_in_place(|| glaux_without_keys(&home, &proxy, &sql, &[("GLAUX_S3_ANONYMOUS", "true")]));
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(run.stdout.lines().nth(1), Some("3"));
    assert!(proxy.counts.signers().is_empty(), "anonymous requests carry no signature");
    let flag = Command::new(env!("CARGO_BIN_EXE_glaux"))
        .args(["query", "--no-sign-request", "--format", "csv", &sql])
        .env_remove("GLAUX_S3_ANONYMOUS")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("HOME", &home)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ENDPOINT_URL", &proxy.endpoint)
        .env("GLAUX_WAREHOUSE", home.join("warehouse"))
        .output()
        .unwrap();
    assert!(flag.status.success(), "{}", String::from_utf8_lossy(&flag.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_in_another_region_is_read_from_its_region() {
    let env = support::env();
    let script = r#"
import sys, boto3
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="eu-west-1",
                  aws_access_key_id="testing", aws_secret_access_key="testing")
try:
    s3.create_bucket(Bucket="glaux-eu", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
except s3.exceptions.BucketAlreadyOwnedByYou:
    pass
s3.put_object(Bucket="glaux-eu", Key="t/data.csv", Body=b"x\n1\n2\n3\n4\n")
"#;
    let out = Command::new("python3").args(["-c", script, &env.endpoint]).output().expect("python3 with boto3");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // the proxy answers requests signed for another region as AWS does: 301 and the region
    let proxy = CountingProxy::start(&env.endpoint).await;
    proxy.place_bucket("glaux-eu", "eu-west-1");
    let sql = "SELECT count(*) AS n, sum(x) AS s FROM 's3://glaux-eu/t/data.csv'";
    // configured for us-east-1, as the environment of most tools is
    let run = tokio::task::block_in_place(|| support::glaux(&proxy.endpoint, &["--format", "csv"], sql));
    run.assert_ok();
    assert_eq!(run.stdout.lines().nth(1), Some("4,10"), "{}", run.stdout);
    // asked once (the listing, the footer and the read share the answer), never redirected
    assert_eq!(proxy.counts.get("probes:glaux-eu"), 1);
    assert_eq!(proxy.counts.get("redirects:glaux-eu"), 0);
}
