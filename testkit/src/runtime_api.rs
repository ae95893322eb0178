//! A Lambda Runtime API on loopback, for tests and benchmarks: it hands events to a real
//! `bootstrap` through `GET /2018-06-01/runtime/invocation/next` and takes its answers from
//! `…/{id}/response` and `…/{id}/error`, as Lambda's own service does.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;
use tokio::sync::{Notify, oneshot};

/// How an invocation ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The function's reply (`/response`).
    Response(Value),
    /// A function error (`/error`) with its `Lambda-Runtime-Function-Error-Type`.
    Error { error_type: Option<String>, body: Value },
}

#[derive(Default)]
struct Shared {
    queue: Mutex<VecDeque<(String, Value, u64)>>,
    arrived: Notify,
    answers: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    first_poll: Mutex<Option<Instant>>,
    init_errors: Mutex<Vec<Value>>,
}

/// A running Runtime API.
pub struct RuntimeApi {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn epoch_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or_default()
}

impl RuntimeApi {
    /// Listens on a free loopback port.
    pub async fn start() -> std::io::Result<Self> {
        let shared = Arc::new(Shared::default());
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(Arc::clone(&shared));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { addr, shared, server })
    }

    /// The value of AWS_LAMBDA_RUNTIME_API for a function using this API.
    pub fn endpoint(&self) -> String {
        self.addr.to_string()
    }

    /// A command that starts `bootstrap` against this API in the environment Lambda gives a
    /// function (and nothing else of the caller's but PATH), with `memory_mb` of memory.
    pub fn function_command(&self, bootstrap: &std::path::Path, memory_mb: u64) -> std::process::Command {
        let mut command = std::process::Command::new(bootstrap);
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_RUNTIME_API", self.endpoint())
            .env("AWS_LAMBDA_FUNCTION_NAME", "glaux")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", memory_mb.to_string())
            .env("AWS_REGION", "us-east-1");
        command
    }

    /// Invokes the function with `event`, a deadline `timeout` from now, and waits for its answer.
    pub async fn invoke(&self, event: Value, timeout: Duration) -> Outcome {
        invoke(&self.shared, event, timeout).await
    }

    /// A Function URL in front of the function: every HTTP request to the returned address is
    /// sent to it as a payload 2.0 event, and its reply becomes the HTTP response, as Lambda's
    /// Function URLs do.
    pub async fn function_url(&self) -> std::io::Result<String> {
        let app = Router::new().fallback(url_request).with_state(Arc::clone(&self.shared));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(format!("http://{addr}"))
    }

    /// When the function first asked for an event (it is ready), waiting up to `wait`.
    pub async fn ready(&self, wait: Duration) -> Option<Instant> {
        let until = Instant::now() + wait;
        loop {
            if let Some(at) = *self.shared.first_poll.lock().unwrap_or_else(|p| p.into_inner()) {
                return Some(at);
            }
            if Instant::now() > until {
                return None;
            }
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
    }

    /// Errors the function reported while starting.
    pub fn init_errors(&self) -> Vec<Value> {
        self.shared.init_errors.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

async fn invoke(shared: &Shared, event: Value, timeout: Duration) -> Outcome {
    let id = format!("{:032x}", rand_id());
    let (tx, rx) = oneshot::channel();
    shared.answers.lock().unwrap_or_else(|p| p.into_inner()).insert(id.clone(), tx);
    let deadline = epoch_ms() + timeout.as_millis() as u64;
    shared.queue.lock().unwrap_or_else(|p| p.into_inner()).push_back((id, event, deadline));
    shared.arrived.notify_one();
    // the function gets the timeout; the caller waits a little longer for its answer
    match tokio::time::timeout(timeout + Duration::from_secs(10), rx).await {
        Ok(Ok(outcome)) => outcome,
        _ => Outcome::Error { error_type: Some("Emulator.Timeout".into()), body: Value::Null },
    }
}

/// An HTTP request to the Function URL, as the event Lambda makes of it.
async fn url_request(State(shared): State<Arc<Shared>>, request: axum::extract::Request) -> Response {
    use base64::Engine as _;
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, 6 * 1024 * 1024).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "request too large").into_response();
    };
    let headers: serde_json::Map<String, Value> = parts
        .headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_string(), Value::String(v.to_str().ok()?.to_string()))))
        .collect();
    let event = serde_json::json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": parts.uri.path(),
        "rawQueryString": parts.uri.query().unwrap_or_default(),
        "headers": headers,
        "requestContext": {"http": {"method": parts.method.as_str(), "path": parts.uri.path()}},
        "body": base64::engine::general_purpose::STANDARD.encode(&body),
        "isBase64Encoded": true,
    });
    let reply = match invoke(&shared, event, Duration::from_secs(900)).await {
        Outcome::Response(reply) => reply,
        Outcome::Error { .. } => return (StatusCode::BAD_GATEWAY, "the function failed").into_response(),
    };
    let status = reply["statusCode"].as_u64().and_then(|s| StatusCode::from_u16(s as u16).ok());
    let Some(status) = status else {
        return (StatusCode::BAD_GATEWAY, "the function's reply has no statusCode").into_response();
    };
    let text = reply["body"].as_str().unwrap_or_default();
    let body = if reply["isBase64Encoded"].as_bool().unwrap_or(false) {
        base64::engine::general_purpose::STANDARD.decode(text).unwrap_or_default()
    } else {
        text.as_bytes().to_vec()
    };
    let mut response = (status, body).into_response();
    let headers = reply["headers"].as_object().into_iter().flatten().map(|(k, v)| (k.as_str(), v));
    // payload 2.0 replies carry Set-Cookie apart, in `cookies`
    let cookies = reply["cookies"].as_array().into_iter().flatten().map(|v| ("set-cookie", v));
    for (k, v) in headers.chain(cookies) {
        if let (Ok(name), Some(Ok(value))) =
            (axum::http::HeaderName::from_bytes(k.as_bytes()), v.as_str().map(axum::http::HeaderValue::from_str))
        {
            response.headers_mut().append(name, value);
        }
    }
    response
}

/// A request id unlikely to repeat within a run.
fn rand_id() -> u128 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) as u128;
    (u128::from(epoch_ms()) << 64) | n
}

async fn next(State(shared): State<Arc<Shared>>) -> Response {
    shared.first_poll.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert_with(Instant::now);
    loop {
        let arrived = shared.arrived.notified();
        if let Some((id, event, deadline)) = shared.queue.lock().unwrap_or_else(|p| p.into_inner()).pop_front() {
            let mut headers = HeaderMap::new();
            let mut set = |name: &'static str, value: String| {
                if let Ok(v) = value.parse() {
                    headers.insert(name, v);
                }
            };
            set("lambda-runtime-aws-request-id", id);
            set("lambda-runtime-deadline-ms", deadline.to_string());
            set("lambda-runtime-invoked-function-arn", "arn:aws:lambda:us-east-1:123456789012:function:glaux".into());
            set("lambda-runtime-trace-id", "Root=1-00000000-000000000000000000000000;Sampled=0".into());
            set("content-type", "application/json".into());
            return (StatusCode::OK, headers, event.to_string()).into_response();
        }
        arrived.await;
    }
}

fn answer(shared: &Shared, id: &str, outcome: Outcome) -> Response {
    match shared.answers.lock().unwrap_or_else(|p| p.into_inner()).remove(id) {
        Some(tx) => {
            let _ = tx.send(outcome);
            (StatusCode::ACCEPTED, r#"{"status":"OK"}"#).into_response()
        }
        None => (StatusCode::BAD_REQUEST, r#"{"errorType":"InvalidRequestID"}"#).into_response(),
    }
}

async fn response(State(shared): State<Arc<Shared>>, Path(id): Path<String>, body: Bytes) -> Response {
    let body = serde_json::from_slice(&body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into()));
    answer(&shared, &id, Outcome::Response(body))
}

async fn error(State(shared): State<Arc<Shared>>, Path(id): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    let error_type =
        headers.get("lambda-runtime-function-error-type").and_then(|v| v.to_str().ok()).map(str::to_string);
    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
    answer(&shared, &id, Outcome::Error { error_type, body })
}

async fn init_error(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
    shared.init_errors.lock().unwrap_or_else(|p| p.into_inner()).push(body);
    (StatusCode::ACCEPTED, r#"{"status":"OK"}"#).into_response()
}
