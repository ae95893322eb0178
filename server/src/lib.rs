//! glaux-server: Athena's JSON API and the Trino client protocol over one engine, with health
//! and Prometheus metrics. One router, so other transports (Lambda's HTTP events) reuse it.

mod athena;
mod auth;
mod error;
mod inline;
mod metrics;
mod runs;
mod sigv4;
mod trino;
mod values;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use glaux_engine::glaux_catalog::Catalog;
use glaux_engine::{Engine, QueryExecution, QueryHistory, S3Settings, WorkGroup, WorkGroups};

pub use auth::Auth;
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

    fn history_entries(&self) -> Result<Vec<QueryExecution>> {
        match &self.history {
            None => Ok(vec![]),
            Some(h) => {
                Ok(h.entries().map_err(|e| Error::Internal(e.to_string()))?.into_iter().map(|e| e.execution).collect())
            }
        }
    }

    fn history_entry(&self, id: &str) -> Result<Option<QueryExecution>> {
        Ok(self.history_entries()?.into_iter().rev().find(|e| e.query_execution_id == id))
    }
}

/// The largest request body taken: a query string is at most 262,144 bytes, and JSON
/// escaping can grow it.
const BODY_LIMIT: usize = 4 * 1024 * 1024;

async fn authorize(State(server): State<Arc<Server>>, request: Request, next: Next) -> Response {
    let trino = request.uri().path().starts_with("/v1/");
    // each protocol's own error shape
    let refuse = |e: Error| if trino { e.trino() } else { e.athena() };
    if server.auth.is_empty() {
        return next.run(request).await;
    }
    // a SigV4 signature covers the body, so it is read before the check and handed on after
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, BODY_LIMIT).await {
        Ok(b) => b,
        Err(_) => return refuse(Error::InvalidRequest(format!("the request body is over {BODY_LIMIT} bytes"))),
    };
    if let Err(e) = server.auth.check(&parts.method, &parts.uri, &parts.headers, &body) {
        return refuse(e);
    }
    next.run(Request::from_parts(parts, axum::body::Body::from(body))).await
}

/// The routes of both protocols, health and metrics.
pub fn router(server: Arc<Server>) -> Router {
    let protected = Router::new()
        .route("/", post(|State(s): State<Arc<Server>>, h: HeaderMap, b: bytes::Bytes| athena::handle(s, h, b)))
        .route(
            "/v1/statement",
            post(|State(s): State<Arc<Server>>, h: HeaderMap, b: String| trino::post_statement(s, h, b)),
        )
        .route(
            "/v1/statement/executing/{id}/{slug}/{page}",
            get(|State(s): State<Arc<Server>>, h: HeaderMap, p| trino::get_page(s, h, p))
                .delete(|State(s): State<Arc<Server>>, p| trino::delete(s, p)),
        )
        .route("/v1/info", get(|State(s): State<Arc<Server>>| trino::info(s)))
        .route("/metrics", get(|State(s): State<Arc<Server>>| async move { s.runs.metrics.render() }))
        .route_layer(middleware::from_fn_with_state(Arc::clone(&server), authorize));
    Router::new()
        .route("/health", get(|| async { axum::Json(serde_json::json!({"status": "ok"})).into_response() }))
        .merge(protected)
        .with_state(server)
}

/// Whether `addr` may be bound with `auth`: anything beyond loopback needs credentials.
pub fn check_bind(addr: &SocketAddr, auth: &Auth) -> Result<()> {
    if !addr.ip().is_loopback() && auth.is_empty() {
        return Err(Error::InvalidRequest(format!(
            "refusing to listen on {addr} without authentication: give --auth-file, or bind 127.0.0.1"
        )));
    }
    Ok(())
}

/// Serves until Ctrl-C; prints the address it listens on.
pub async fn serve(server: Arc<Server>, addr: SocketAddr) -> Result<()> {
    check_bind(&addr, &server.auth)?;
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
