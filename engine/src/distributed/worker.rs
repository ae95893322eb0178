//! `glaux worker`: runs the parts of plans coordinators send it, with glaux's stores, formats and
//! fences, each part metered on its own and its bytes sent back with the part's metrics; only
//! coordinators that present the cluster's shared secret are served.

use std::borrow::Cow;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::error::Result as DfResult;
use datafusion::execution::SessionState;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::physical_plan::metrics::{MetricBuilder, MetricValue};
use datafusion_distributed::{
    DistributedExt, Worker, WorkerPlanRewriteEvent, WorkerPlanRewriteEventResponse, WorkerQueryContext,
    WorkerSessionBuilder,
};
use tokio::net::TcpListener;

use super::codec::GlauxCodec;
use super::live::{LiveMeters, MeterService, QUERY_HEADER};
use super::{CUTOFF_HEADER, SCANNED_METRIC, worker_headers};
use crate::error::{Error, Result};
use crate::storage::{MeteredRegistry, S3Settings, ScanMeter, StoreRegistry};

/// How a worker is set up.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub s3: S3Settings,
    /// Whether plans may read local paths, as `glaux serve --allow-local-files`.
    pub allow_local_files: bool,
    /// With `allow_local_files`, the folder local reads must stay in.
    pub local_root: Option<PathBuf>,
    /// The cluster's shared secret: requests without it are refused.
    pub secret: Option<String>,
}

/// A worker with glaux's stores and codecs, and the meters of the tasks it ran.
pub struct GlauxWorker {
    worker: Worker,
    live: LiveMeters,
}

/// A worker with glaux's stores and codecs.
pub fn new_worker(config: &WorkerConfig) -> Result<GlauxWorker> {
    let stores = Arc::new(
        StoreRegistry::new(config.s3.clone(), config.allow_local_files).with_local_root(config.local_root.clone()),
    );
    let runtime = RuntimeEnvBuilder::new().with_object_store_registry(Arc::clone(&stores) as _).build_arc()?;
    let live = LiveMeters::default();
    let sessions =
        TaskSessions { stores, runtime: Arc::clone(&runtime), secret: config.secret.clone(), live: live.clone() };
    let worker =
        Worker::from_session_builder(sessions).with_runtime_env(runtime).with_version(env!("CARGO_PKG_VERSION"));
    Ok(GlauxWorker { worker, live })
}

/// Serves `worker` (and its running totals) on `listener` until `shutdown` resolves. With a
/// secret, a request that does not present it is refused before anything is decoded.
pub async fn serve_worker(
    listener: TcpListener,
    worker: GlauxWorker,
    secret: Option<String>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<()> {
    let check = move |request: tonic::Request<()>| {
        let Some(secret) = &secret else { return Ok(request) };
        let presented = request.metadata().get(super::SECRET_HEADER).map(|v| v.as_bytes());
        if presented.is_some_and(|p| same_secret(p, secret.as_bytes())) {
            Ok(request)
        } else {
            Err(tonic::Status::unauthenticated(
                "this glaux worker serves only coordinators that present the cluster's shared secret (GLAUX_CLUSTER_SECRET)",
            ))
        }
    };
    tonic::transport::Server::builder()
        .layer(tonic::service::InterceptorLayer::new(check))
        .add_service(worker.worker.into_worker_server())
        .add_service(MeterService(worker.live))
        .serve_with_incoming_shutdown(tonic::transport::server::TcpIncoming::from(listener), shutdown)
        .await
        .map_err(|e| Error::Internal(format!("the worker stopped serving: {e}")))
}

/// Compares in time that does not depend on where the first difference is.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Builds each task's session: its own meter, the coordinator's scan limit, glaux's codec.
struct TaskSessions {
    stores: Arc<StoreRegistry>,
    runtime: Arc<RuntimeEnv>,
    secret: Option<String>,
    live: LiveMeters,
}

/// The meter of one task on a worker.
struct TaskMeter(Arc<ScanMeter>);

#[async_trait]
impl WorkerSessionBuilder for TaskSessions {
    async fn build_session_state(&self, ctx: WorkerQueryContext) -> DfResult<SessionState> {
        let cutoff = ctx.headers.get(CUTOFF_HEADER).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
        let meter = Arc::new(ScanMeter::with_cutoff(cutoff));
        if let Some(query) = ctx.headers.get(QUERY_HEADER).and_then(|v| v.to_str().ok()) {
            self.live.register(query, Arc::clone(&meter));
        }
        let registry = Arc::new(MeteredRegistry::new(Arc::clone(&self.stores), Arc::clone(&meter)));
        let runtime =
            RuntimeEnvBuilder::from_runtime_env(&self.runtime).with_object_store_registry(registry).build_arc()?;
        let mut builder = ctx
            .builder
            .with_runtime_env(runtime)
            .with_distributed_user_codec(GlauxCodec)
            .with_distributed_worker_plan_rewrite_handler(report_scanned)
            // this worker's own calls to other workers (a shuffle's reads) carry the secret too
            .with_distributed_passthrough_headers(worker_headers(self.secret.as_deref(), None, None)?)?;
        if let Some(config) = builder.config() {
            config.set_extension(Arc::new(TaskMeter(meter)));
        }
        Ok(builder.build())
    }
}

/// Makes the task's meter a metric of its first file scan, so the bytes it read go back to the
/// coordinator with the stage's metrics.
fn report_scanned(event: WorkerPlanRewriteEvent) -> DfResult<WorkerPlanRewriteEventResponse> {
    if let Some(meter) = event.session_config.get_extension::<TaskMeter>() {
        event.plan.apply(|node| {
            let Some(config) = crate::formats::file_scan(node.as_ref()) else {
                return Ok(TreeNodeRecursion::Continue);
            };
            MetricBuilder::new(config.file_source.metrics())
                .build(MetricValue::Count { name: Cow::Borrowed(SCANNED_METRIC), count: meter.0.counter() });
            Ok(TreeNodeRecursion::Stop)
        })?;
    }
    Ok(WorkerPlanRewriteEventResponse::new(event.plan))
}
