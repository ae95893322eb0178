//! The function: its engine, server and router built once per cold start, and the handler
//! that sends each event to the direct runner or the HTTP router.

use std::sync::Arc;
use std::time::Duration;

use glaux_engine::{Engine, EngineConfig, QueryHistory, S3Settings, StatementPolicy, WorkGroups};
use glaux_server::{Deadline, Limits, Server, ServerConfig};
use lambda_runtime::LambdaEvent;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::http;
use crate::settings::Settings;

/// What the function keeps between invocations of one execution environment.
pub struct Function {
    server: Arc<Server>,
    router: axum::Router,
    /// Whether HTTP events are served: with an auth file, or behind an IAM-checked Function URL.
    http_allowed: bool,
}

/// The time kept back from a direct invocation's deadline to cancel the query and reply.
const REPLY_MARGIN: Duration = Duration::from_millis(1500);

impl Function {
    /// The cold start: catalog clients, object stores, engine and router, built once.
    pub async fn start(settings: &Settings) -> Result<Self> {
        let open = |what: &str, e: &dyn std::fmt::Display| Error::Open { what: what.into(), reason: e.to_string() };
        std::fs::create_dir_all(&settings.spill_dir)
            .map_err(|e| open(&format!("spill folder {}", settings.spill_dir.display()), &e))?;
        let catalog = glaux_engine::glaux_catalog::open(settings.catalog, &settings.warehouse)
            .await
            .map_err(|e| open(&format!("{:?} catalog", settings.catalog).to_lowercase(), &e))?;
        let history = Arc::new(
            QueryHistory::open(&settings.warehouse, None)
                .map_err(|e| open(&format!("query history in {}", settings.warehouse.display()), &e))?,
        );
        let workgroups = Arc::new(WorkGroups::open(&settings.warehouse).map_err(|e| open("workgroups", &e))?);
        // the real folder, so that symlinks and `..` in the setting cannot widen it
        let local_root = match &settings.allow_local_files {
            None => None,
            Some(dir) => Some(dir.canonicalize().map_err(|e| open(&format!("folder {}", dir.display()), &e))?),
        };
        let s3 = S3Settings::from_env();
        let cluster = match &settings.workers {
            Some(source) => Some(glaux_engine::Cluster {
                workers: glaux_engine::Workers::start(source.clone()).await.map_err(|e| open("workers", &e))?,
                secret: settings.cluster_secret.clone(),
                distribute_above: settings.distribute_above,
            }),
            None => None,
        };
        let engine = Engine::new(EngineConfig {
            s3: s3.clone(),
            database: settings.database.clone(),
            work_group: settings.work_group.clone(),
            // S3 only, unless a folder of the function's disk is allowed
            allow_local_files: local_root.is_some(),
            local_root: local_root.clone(),
            allow_url_tables: local_root.is_some(),
            catalog: Some(catalog),
            workgroups: Some(Arc::clone(&workgroups)),
            history: Some(Arc::clone(&history)),
            source: "lambda".into(),
            memory_limit: settings.memory_limit,
            spill_dir: Some(settings.spill_dir.clone()),
            policy: StatementPolicy::only(&settings.allow_write)?,
            cluster,
            ..Default::default()
        })?;
        let server = Server::new(
            engine,
            ServerConfig {
                limits: Limits {
                    max_concurrent: settings.max_concurrent,
                    query_timeout: settings.query_timeout,
                    ..Default::default()
                },
                auth: glaux_server::auth_from(settings.auth_file.clone())?,
                default_output_location: settings.output_location.clone(),
                local_root,
                s3,
                history: Some(history),
                workgroups: Some(workgroups),
            },
        )?;
        let router = glaux_server::router(Arc::clone(&server));
        let http_allowed = settings.auth_file.is_some() || settings.function_url_iam;
        Ok(Self { server, router, http_allowed })
    }

    /// One invocation. HTTP events (Function URL, API Gateway) get an HTTP response; any
    /// other event is a query, answered with its record — FAILED with the reason, not a
    /// function error, when it fails.
    pub async fn handle(&self, event: LambdaEvent<Value>) -> Value {
        let (payload, context) = event.into_parts();
        if http::is_http(&payload) {
            if !self.http_allowed {
                return http::refused(
                    "this function serves HTTP events only with an auth file (GLAUX_AUTH_FILE), or behind a Function URL \
                     whose AuthType is AWS_IAM (say so with GLAUX_FUNCTION_URL_AUTH=iam)",
                );
            }
            return http::call(self.router.clone(), payload, context).await;
        }
        let deadline = deadline(context.deadline);
        // a direct invocation passed Lambda's own IAM check: the caller may invoke the function
        let caller = glaux_server::Principal { name: "lambda-invoke".into(), admin: true, manages: vec![] };
        self.server.run_inline(payload, caller, deadline).await
    }
}

/// The invocation's deadline (milliseconds since the epoch) as an instant, less the margin.
fn deadline(deadline_ms: u64) -> Deadline {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default();
    let left = Duration::from_millis(deadline_ms.saturating_sub(now_ms)).saturating_sub(REPLY_MARGIN);
    Deadline(tokio::time::Instant::now() + left)
}
