//! Scale-out on datafusion-distributed: a coordinator spreads large plans over `glaux worker`
//! processes; catalog resolution, pruning and listing stay with the coordinator (workers get
//! explicit file lists), and each worker meters its own reads and sends the count back.

mod codec;
mod live;
mod planner;
mod worker;
mod workers;

use std::sync::Arc;

use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::{SessionState, SessionStateBuilder};
use datafusion::optimizer::AnalyzerRule;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::metrics::MetricValue;
use datafusion::prelude::SessionConfig;
use datafusion_distributed::{
    DistributedExec, DistributedExt, DistributedMetricsFormat, SessionStateBuilderExt,
    rewrite_distributed_plan_with_metrics,
};
use http::{HeaderMap, HeaderName, HeaderValue};

pub use codec::GlauxCodec;
pub use worker::{GlauxWorker, WorkerConfig, new_worker, serve_worker};
pub use workers::{WorkerSource, Workers};

use crate::storage::ScanMeter;

/// The header that carries the cluster's shared secret from coordinators to workers.
pub const SECRET_HEADER: &str = "x-glaux-cluster-secret";
/// The header that tells a worker the query's scan limit.
const CUTOFF_HEADER: &str = "x-glaux-scan-cutoff";
/// The metric a worker reports its bytes scanned under.
const SCANNED_METRIC: &str = "glaux_scanned_bytes";
/// The most one partition of a distributed scan reads (the library's own default).
const MAX_BYTES_PER_PARTITION: u64 = 16 * 1024 * 1024;
/// Below this many bytes to scan a plan runs on the coordinator alone.
pub const DEFAULT_DISTRIBUTE_ABOVE: u64 = 64 * 1024 * 1024;

/// The variable that holds the cluster's shared secret, on workers and coordinators alike
/// (never a flag: a command line is visible to every user of the machine).
pub const SECRET_VARIABLE: &str = "GLAUX_CLUSTER_SECRET";

/// The cluster's secret as set (`None` if unset): printable ASCII without spaces, as a header
/// value must be.
pub fn cluster_secret(value: Option<String>) -> crate::error::Result<Option<String>> {
    match value {
        Some(s) if s.trim().is_empty() => {
            Err(crate::error::Error::InvalidInput(format!("{SECRET_VARIABLE} is set but empty")))
        }
        Some(s) if !s.bytes().all(|b| b.is_ascii_graphic()) => {
            Err(crate::error::Error::InvalidInput(format!("{SECRET_VARIABLE} must be printable ASCII without spaces")))
        }
        other => Ok(other),
    }
}

/// The workers a coordinator spreads plans over, and from what size.
#[derive(Debug, Clone)]
pub struct Cluster {
    pub workers: Workers,
    pub secret: Option<String>,
    /// Plans whose pruned scans read fewer bytes than this run where they were planned.
    pub distribute_above: u64,
}

impl Cluster {
    /// `state` as a coordinator's: large plans are distributed, glaux's nodes travel with its
    /// codec, and every request to a worker carries the secret, the query's scan limit and a
    /// name for the query its workers count its bytes under.
    pub(crate) fn coordinate(&self, state: SessionState, meter: &ScanMeter) -> DfResult<SessionState> {
        let tag = live::QueryTag(uuid::Uuid::new_v4().to_string());
        let headers = worker_headers(self.secret.as_deref(), meter.cutoff(), Some(&tag.0))?;
        // a scan of `distribute_above` bytes is worth spreading: it gets two tasks (the library
        // gives a task `target_partitions` partitions), a larger one more, up to one per worker
        let partitions = 2 * state.config().target_partitions().max(1) as u64;
        let bytes_per_partition = (self.distribute_above / partitions).clamp(1, MAX_BYTES_PER_PARTITION) as usize;
        let planner = planner::WhenLarge { above: self.distribute_above, workers: self.workers.clone() };
        // a subplan shared by its uses keeps its batches in this process: a plan spread over
        // workers has each use computed where it runs
        let analyzers = state
            .analyzer()
            .rules
            .iter()
            .filter(|rule| rule.name() != crate::shared_subplans::ShareRepeatedSubplans.name())
            .cloned()
            .collect();
        let join_filters = crate::join_filters::JoinFiltersInScans::default();
        let cheap_conjuncts = crate::cheap_conjuncts::CheapConjunctsFirst::default();
        // a plan sent to workers holds only expressions DataFusion's codec knows
        let glaux_only = [
            crate::decimal_arithmetic::FAST_DECIMAL_ARITHMETIC.name(),
            crate::string_equality::VIEW_EQUALITY.name(),
            crate::like_segments::LIKE_SEGMENTS.name(),
            crate::short_circuit::SHORT_CIRCUITS.name(),
            crate::join_key_bitmap::JoinKeyBitmaps.name(),
            crate::clustered_aggregate::ClusteredAggregates.name(),
            crate::filter_output::GatherFilterOutput.name(),
        ];
        let physical = state
            .physical_optimizers()
            .iter()
            .filter(|rule| !glaux_only.contains(&rule.name()))
            .map(|rule| {
                if rule.name() == join_filters.name() {
                    Arc::new(crate::join_filters::JoinFiltersInScans::unwatched()) as _
                } else if rule.name() == cheap_conjuncts.name() {
                    Arc::new(crate::cheap_conjuncts::CheapConjunctsFirst::unfused()) as _
                } else {
                    Arc::clone(rule)
                }
            })
            .collect();
        let mut state = SessionStateBuilder::new_from_existing(state)
            .with_analyzer_rules(analyzers)
            .with_physical_optimizer_rules(physical)
            .with_distributed_planner()
            .with_distributed_worker_resolver(self.workers.clone())
            .with_distributed_user_codec(GlauxCodec)
            .with_distributed_passthrough_headers(headers)?
            .with_distributed_file_scan_config_bytes_per_partition(bytes_per_partition)?
            .with_distributed_scale_up_leaf_node_handler(planner::whole_files)
            .with_query_planner(Arc::new(planner))
            .build();
        state.config_mut().set_extension(Arc::new(tag));
        Ok(state)
    }
}

/// The headers every request to a worker carries: the secret, and the query's scan limit and
/// name.
fn worker_headers(secret: Option<&str>, cutoff: Option<u64>, query: Option<&str>) -> DfResult<HeaderMap> {
    let mut headers = HeaderMap::new();
    let value = |v: &str| {
        HeaderValue::from_str(v)
            .map_err(|_| DataFusionError::Configuration("GLAUX_CLUSTER_SECRET must be printable ASCII".into()))
    };
    if let Some(secret) = secret {
        headers.insert(HeaderName::from_static(SECRET_HEADER), value(secret)?);
    }
    if let Some(cutoff) = cutoff {
        headers.insert(HeaderName::from_static(CUTOFF_HEADER), value(&cutoff.to_string())?);
    }
    if let Some(query) = query {
        headers.insert(HeaderName::from_static(live::QUERY_HEADER), value(query)?);
    }
    Ok(headers)
}

/// Whether `plan` runs on workers.
fn is_distributed(plan: &Arc<dyn ExecutionPlan>) -> bool {
    plan.is::<DistributedExec>()
}

/// The part of `plan` that runs on workers (all of a query, the input of EXPLAIN ANALYZE).
fn distributed_part(plan: &Arc<dyn ExecutionPlan>) -> Option<Arc<dyn ExecutionPlan>> {
    let mut found = None;
    let _ = plan.apply(|node| {
        if is_distributed(node) {
            found = Some(Arc::clone(node));
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    found
}

/// A query's plan that runs on workers, followed to its end: what its workers read is added to
/// the query's meter when it has ended, and a failure names the workers that stopped answering.
pub(crate) struct Spread {
    plan: Arc<dyn ExecutionPlan>,
    meter: Arc<ScanMeter>,
    workers: Workers,
    /// With a scan limit: the running total to watch while the plan runs.
    watch: Option<live::LiveTotal>,
    /// Tells the workers the query ended (and to stop reading, if it ended early) when dropped.
    _ended: Option<live::StopOnDrop>,
}

impl Spread {
    /// `plan`'s spread part, if it has one and the engine has a cluster; `config` is the
    /// query's session's.
    pub(crate) fn of(
        plan: &Arc<dyn ExecutionPlan>,
        config: &SessionConfig,
        meter: &Arc<ScanMeter>,
        cluster: Option<&Cluster>,
    ) -> Option<Self> {
        let cluster = cluster?;
        let plan = distributed_part(plan)?;
        let on = config
            .get_extension::<live::QueryTag>()
            .map(|tag| live::QueryOnWorkers::new(tag.0.clone(), cluster.secret.clone(), cluster.workers.clone()));
        let watch = match (&on, meter.cutoff()) {
            (Some(on), Some(cutoff)) => Some(live::LiveTotal { on: on.clone(), meter: Arc::clone(meter), cutoff }),
            _ => None,
        };
        let ended = on.map(live::StopOnDrop);
        Some(Self { plan, meter: Arc::clone(meter), workers: cluster.workers.clone(), watch, _ended: ended })
    }

    /// Resolves with the scan limit's error once the query's bytes on all its processes pass
    /// the limit; pending for ever without a limit or without workers.
    pub(crate) fn limit_passed(spread: Option<&mut Self>) -> impl Future<Output = DataFusionError> + Send + 'static {
        let watch = spread.and_then(|spread| spread.watch.take());
        async move {
            match watch {
                Some(watch) => watch.passed().await,
                None => std::future::pending().await,
            }
        }
    }

    /// After the last batch: the workers' bytes, counted (past the scan limit, an error).
    pub(crate) async fn finished(self) -> DfResult<()> {
        // a worker that dies before its count arrives leaves the bill unknown: the query fails
        let bytes = match scanned_on_workers(Arc::clone(&self.plan)).await {
            Ok(bytes) => bytes,
            Err(e) => return Err(self.failed(e).await),
        };
        self.meter.add_remote(bytes, "files on the workers").map_err(DataFusionError::from)
    }

    /// `error`, naming the workers that no longer answer: a worker that died mid-query ends it
    /// with a broken stream that does not say whose.
    pub(crate) async fn failed(&self, error: DataFusionError) -> DataFusionError {
        let mut down = self.workers.unreachable().await;
        if down.is_empty() {
            // a worker being killed resets its connections a moment before its port closes
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            down = self.workers.unreachable().await;
        }
        if down.is_empty() {
            return error;
        }
        let names: Vec<&str> = down.iter().map(url::Url::as_str).collect();
        let which = if names.len() == 1 { "worker" } else { "workers" };
        let cause = crate::error::tidy(&error.find_root().strip_backtrace());
        let message = format!("{which} {} stopped answering: {cause}", names.join(", "));
        DataFusionError::External(Box::new(crate::error::Error::Internal(message)))
    }
}

/// The bytes the workers of a finished distributed plan read, from the metrics they sent back.
async fn scanned_on_workers(plan: Arc<dyn ExecutionPlan>) -> DfResult<u64> {
    let plan = rewrite_distributed_plan_with_metrics(plan, DistributedMetricsFormat::Aggregated).await?;
    let mut total = 0;
    plan.apply(|node| {
        for metric in node.metrics().iter().flat_map(|set| set.iter().cloned().collect::<Vec<_>>()) {
            if let MetricValue::Count { name, count } = metric.value()
                && name == SCANNED_METRIC
            {
                total += count.value() as u64;
            }
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    Ok(total)
}
