//! glaux-server: Athena's JSON API and the Trino client protocol over one engine, with health
//! and Prometheus metrics. One router, so other transports (Lambda's HTTP events) reuse it.

mod athena;
mod auth;
mod error;
#[cfg(test)]
mod fuzz;
mod inline;
mod metrics;
mod results;
mod runs;
mod sigv4;
mod trino;
mod values;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use axum::Extension;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::FutureExt;
use glaux_engine::glaux_catalog::Catalog;
use glaux_engine::{Engine, QueryExecution, QueryHistory, S3Settings, WorkGroup, WorkGroups};

pub use auth::{Auth, Principal};
pub use error::{Error, Result};
pub use inline::{Deadline, ROWS_BUDGET};
pub use runs::Limits;

/// What the server needs besides its engine.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub limits: Limits,
    pub auth: Auth,
    /// Where results go when neither the request nor its workgroup says.
    pub default_output_location: Option<String>,
    /// The one folder of the server's own disk results may be written to.
    pub local_root: Option<PathBuf>,
    pub s3: S3Settings,
    /// The warehouse's history and workgroups (the engine records into the same).
    pub history: Option<Arc<QueryHistory>>,
    pub workgroups: Option<Arc<WorkGroups>>,
}

/// The state every request shares.
pub struct Server {
    runs: Arc<runs::Runs>,
    auth: Auth,
    /// On a loopback server: the host names requests must name (a page on another site that
    /// a browser sends to localhost names its own, and is refused).
    hosts: Option<Vec<String>>,
    history: Option<Arc<QueryHistory>>,
    workgroups: Option<Arc<WorkGroups>>,
    started: Instant,
}

impl Server {
    pub fn new(engine: Engine, config: ServerConfig) -> Result<Arc<Self>> {
        let runs = runs::Runs::new(
            Arc::new(engine),
            config.limits,
            config.s3,
            config.default_output_location,
            config.local_root,
        )?;
        Ok(Arc::new(Self {
            runs: Arc::new(runs),
            auth: config.auth,
            hosts: None,
            history: config.history,
            workgroups: config.workgroups,
            started: Instant::now(),
        }))
    }

    fn catalog(&self) -> Result<Arc<dyn Catalog>> {
        self.runs.engine.config().catalog.clone().ok_or_else(|| Error::Metadata("this server has no catalog".into()))
    }

    fn workgroups(&self) -> Result<&WorkGroups> {
        self.workgroups.as_deref().ok_or_else(|| Error::InvalidRequest("this server has no workgroups".into()))
    }

    fn workgroup(&self, name: &str) -> Result<WorkGroup> {
        match &self.workgroups {
            None if name == glaux_engine::PRIMARY => Ok(WorkGroup::new(name)),
            None => Err(Error::InvalidRequest(format!("WorkGroup {name} is not found"))),
            Some(groups) => groups
                .get(name)
                .map_err(|e| Error::Internal(e.to_string()))?
                .ok_or_else(|| Error::InvalidRequest(format!("WorkGroup {name} is not found"))),
        }
    }

    /// The finished queries `caller` may see, from the history.
    fn history_entries(&self, caller: &Principal) -> Result<Vec<QueryExecution>> {
        match &self.history {
            None => Ok(vec![]),
            Some(h) => Ok(h
                .entries()
                .map_err(|e| Error::Internal(e.to_string()))?
                .into_iter()
                .filter(|e| caller.sees(e.user.as_deref()))
                .map(|e| e.execution)
                .collect()),
        }
    }

    /// A finished query's record, if `caller` may see it (another's is "not found", so ids
    /// cannot be probed).
    fn history_entry(&self, id: &str, caller: &Principal) -> Result<Option<QueryExecution>> {
        let Some(history) = &self.history else { return Ok(None) };
        let entry = history.find(id).map_err(|e| Error::Internal(e.to_string()))?;
        Ok(entry.filter(|e| caller.sees(e.user.as_deref())).map(|e| e.execution))
    }

    /// A run of this server process, if `caller` may see it.
    fn run(&self, id: &str, caller: &Principal) -> Option<Arc<runs::Run>> {
        self.runs.get(id).filter(|r| caller.sees(Some(r.owner.name.as_str())))
    }
}

/// Whose a request is, as the authentication decided: `None` on a server without credentials.
#[derive(Debug, Clone)]
pub(crate) struct Authenticated(pub Option<Principal>);

/// How long a client may take to send its request body.
const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The largest request body taken: a query string is at most 262,144 bytes, and JSON
/// escaping can grow it.
const BODY_LIMIT: usize = 4 * 1024 * 1024;

async fn authorize(State(server): State<Arc<Server>>, request: Request, next: Next) -> Response {
    let trino = request.uri().path().starts_with("/v1/");
    // each protocol's own error shape
    let refuse = |e: Error| if trino { e.trino() } else { e.athena() };
    if let Some(hosts) = &server.hosts {
        let host = request.headers().get(axum::http::header::HOST).and_then(|h| h.to_str().ok()).unwrap_or_default();
        let name =
            host.rsplit_once(':').filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit())).map_or(host, |(n, _)| n);
        if !hosts.iter().any(|h| h.eq_ignore_ascii_case(name)) {
            return refuse(Error::Unauthorized(format!(
                "this server listens on loopback and answers requests for {} only, not for host '{host}'",
                hosts.join(", ")
            )));
        }
    }
    // the body is read whole, within a size and a time, before anything else is done with it
    // (a SigV4 signature covers it, so it is read before the check and handed on after)
    let (mut parts, body) = request.into_parts();
    let body = match tokio::time::timeout(BODY_TIMEOUT, axum::body::to_bytes(body, BODY_LIMIT)).await {
        Ok(Ok(b)) => b,
        Ok(Err(_)) => return refuse(Error::InvalidRequest(format!("the request body is over {BODY_LIMIT} bytes"))),
        Err(_) => {
            return refuse(Error::InvalidRequest(format!(
                "the request body did not arrive within {} s",
                BODY_TIMEOUT.as_secs()
            )));
        }
    };
    let principal = match server.auth.check(&parts.method, &parts.uri, &parts.headers, &body) {
        Ok(p) => p,
        Err(e) => return refuse(e),
    };
    parts.extensions.insert(Authenticated(principal));
    let request = Request::from_parts(parts, axum::body::Body::from(body));
    // a handler that panics answers this request with an internal error; the server goes on
    match std::panic::AssertUnwindSafe(next.run(request)).catch_unwind().await {
        Ok(response) => response,
        Err(_) => {
            eprintln!("glaux serve: a request handler panicked");
            refuse(Error::Internal("internal error".into()))
        }
    }
}

/// The routes of both protocols, health and metrics.
pub fn router(server: Arc<Server>) -> Router {
    let protected = Router::new()
        .route(
            "/",
            post(
                |State(s): State<Arc<Server>>,
                 Extension(a): Extension<Authenticated>,
                 h: HeaderMap,
                 b: bytes::Bytes| { athena::handle(s, a, h, b) },
            ),
        )
        .route(
            "/v1/statement",
            post(
                |State(s): State<Arc<Server>>,
                 Extension(a): Extension<Authenticated>,
                 h: HeaderMap,
                 b: bytes::Bytes| { trino::post_statement(s, a, h, b) },
            ),
        )
        .route(
            "/v1/statement/executing/{id}/{slug}/{page}",
            get(|State(s): State<Arc<Server>>, Extension(a): Extension<Authenticated>, h: HeaderMap, p| {
                trino::get_page(s, a, h, p)
            })
            .delete(
                |State(s): State<Arc<Server>>, Extension(a): Extension<Authenticated>, h: HeaderMap, p| {
                    trino::delete(s, a, h, p)
                },
            ),
        )
        .route("/v1/info", get(|State(s): State<Arc<Server>>| trino::info(s)))
        .route(
            "/metrics",
            get(|State(s): State<Arc<Server>>, Extension(a): Extension<Authenticated>| async move {
                // gauges of every client's queries: for admins, or anyone on a server without credentials
                if a.0.as_ref().is_some_and(|p| !p.admin) {
                    return Error::Unauthorized("metrics are for admins".into()).athena();
                }
                s.runs.metrics.render().into_response()
            }),
        )
        .route_layer(middleware::from_fn_with_state(Arc::clone(&server), authorize));
    Router::new()
        .route("/health", get(|| async { axum::Json(serde_json::json!({"status": "ok"})).into_response() }))
        .merge(protected)
        // a request that matches nothing is told what it asked for, not answered with silence
        .fallback(|method: axum::http::Method, uri: axum::http::Uri| async move {
            unrouted(axum::http::StatusCode::NOT_FOUND, format!("there is no {method} {}", uri.path()))
        })
        .method_not_allowed_fallback(|method: axum::http::Method, uri: axum::http::Uri| async move {
            unrouted(axum::http::StatusCode::METHOD_NOT_ALLOWED, format!("{} does not take {method}", uri.path()))
        })
        .with_state(server)
}

/// An answer in Athena's error shape with an HTTP status of its own (404, 405).
fn unrouted(status: axum::http::StatusCode, message: String) -> Response {
    let mut response = Error::InvalidRequest(message).athena();
    *response.status_mut() = status;
    response
}

/// Whether `addr` may be bound with `auth`: anything beyond loopback needs credentials, and
/// credentials that are an access key alone (no secret to verify a signature with) are for
/// loopback only.
pub fn check_bind(addr: &SocketAddr, auth: &Auth) -> Result<()> {
    if !addr.ip().is_loopback() && auth.is_empty() {
        return Err(Error::InvalidRequest(format!(
            "refusing to listen on {addr} without authentication: give --auth-file, or bind 127.0.0.1"
        )));
    }
    if !addr.ip().is_loopback() && auth.has_key_only_entries() {
        return Err(Error::InvalidRequest(format!(
            "refusing to listen on {addr}: the auth file has 'aws' lines without a secret, which anyone who knows the \
             key id could pass; give each its secret, or bind 127.0.0.1"
        )));
    }
    Ok(())
}

/// Serves until Ctrl-C; prints the address it listens on.
pub async fn serve(mut server: Arc<Server>, addr: SocketAddr) -> Result<()> {
    check_bind(&addr, &server.auth)?;
    if addr.ip().is_loopback()
        && let Some(s) = Arc::get_mut(&mut server)
    {
        s.hosts = Some(vec!["localhost".into(), "127.0.0.1".into(), "[::1]".into(), addr.ip().to_string()]);
    }
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Error::InvalidRequest(format!("cannot listen on {addr}: {e}")))?;
    let local = listener.local_addr().map_err(|e| Error::Internal(e.to_string()))?;
    println!("glaux serve: listening on http://{local} (Athena API at /, Trino protocol at /v1/statement)");
    axum::serve(listener, router(server))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| Error::Internal(e.to_string()))
}

/// Where an auth file is read from, for the CLI's messages.
pub fn auth_from(path: Option<PathBuf>) -> Result<Auth> {
    path.map(|p| Auth::from_file(&p)).transpose().map(Option::unwrap_or_default)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::body::Body;
    use axum::http::Request;
    use glaux_engine::{Engine, EngineConfig, QueryHistory, S3Settings};
    use serde_json::{Value, json};
    use tower::ServiceExt;

    use super::*;

    async fn call(router: &Router, operation: &str, body: Value) -> Value {
        let request = Request::post("/")
            .header("host", "localhost")
            .header("x-amz-target", format!("AmazonAthena.{operation}"))
            .body(Body::from(body.to_string()))
            .unwrap();
        let response = router.clone().oneshot(request).await.unwrap();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    /// Found by `bench/run load`: a query cancelled while it waited for a slot was ended by the
    /// server, not the engine, and never reached the history, so it vanished from
    /// ListQueryExecutions once the server let go of it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_query_cancelled_in_the_queue_stays_in_the_history() {
        let warehouse = std::env::temp_dir().join(format!("glaux-it-queue-{}", std::process::id()));
        let history = Arc::new(QueryHistory::open(&warehouse, None).unwrap());
        let engine = Engine::new(EngineConfig {
            s3: S3Settings::from_lookup(|_| None),
            history: Some(Arc::clone(&history)),
            ..Default::default()
        })
        .unwrap();
        let limits = runs::Limits { max_concurrent: 1, spill_dir: warehouse.join("spill"), ..Default::default() };
        let config = ServerConfig {
            limits,
            auth: Auth::default(),
            default_output_location: None,
            local_root: None,
            s3: S3Settings::from_lookup(|_| None),
            history: Some(Arc::clone(&history)),
            workgroups: None,
        };
        let router = router(Server::new(engine, config).unwrap());
        let long = json!({"QueryString": "SELECT count(*) FROM generate_series(1, 20000000000)"});
        let running = call(&router, "StartQueryExecution", long.clone()).await["QueryExecutionId"].clone();
        let queued = call(&router, "StartQueryExecution", long).await["QueryExecutionId"].clone();
        for id in [&queued, &running] {
            call(&router, "StopQueryExecution", json!({"QueryExecutionId": id})).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let states = call(&router, "BatchGetQueryExecution", json!({"QueryExecutionIds": [&running, &queued]})).await;
        for e in states["QueryExecutions"].as_array().unwrap() {
            assert_eq!(e["Status"]["State"], "CANCELLED", "{e}");
        }
        let recorded: Vec<String> =
            history.entries().unwrap().into_iter().map(|e| e.execution.query_execution_id).collect();
        for id in [&running, &queued] {
            assert!(recorded.contains(&id.as_str().unwrap().to_string()), "{id} is not in the history: {recorded:?}");
        }
        let _ = std::fs::remove_dir_all(&warehouse);
    }
}
