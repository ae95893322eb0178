//! The queries a server runs: submitted at once with an id, queued for one of a limited number
//! of slots, run to the end in the background (cancellable, with a timeout), their results kept
//! for paging and written to the output location as Athena writes them.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use glaux_engine::arrow::array::RecordBatch;
use glaux_engine::arrow::datatypes::SchemaRef;
use glaux_engine::{
    Engine, Error as EngineError, Origin, QueryExecution, QueryExecutionState, QueryExecutionStatistics,
    QueryExecutionStatus, QueryRuntime, ResultConfiguration, S3Settings, StartQueryExecution, StatementType,
};
use object_store::ObjectStoreExt;
use tokio::sync::{Notify, Semaphore};

use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::values;

/// How many queries run at once, how long one may take, how many results stay in memory.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_concurrent: usize,
    pub query_timeout: Duration,
    pub results_kept: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_concurrent: 8, query_timeout: Duration::from_secs(1800), results_kept: 256 }
    }
}

/// A finished query's rows.
pub struct Results {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
    pub rows: usize,
}

impl Results {
    /// Rows `from..from+n` as (batch, row) positions.
    pub fn positions(&self, from: usize, n: usize) -> Vec<(usize, usize)> {
        let mut out = Vec::with_capacity(n);
        let mut skipped = 0;
        for (b, batch) in self.batches.iter().enumerate() {
            let rows = batch.num_rows();
            if skipped + rows <= from {
                skipped += rows;
                continue;
            }
            let start = from.saturating_sub(skipped);
            for r in start..rows {
                if out.len() == n {
                    return out;
                }
                out.push((b, r));
            }
            skipped += rows;
        }
        out
    }
}

/// One submitted query.
pub struct Run {
    pub id: String,
    pub request: StartQueryExecution,
    pub user: Option<String>,
    pub submitted: f64,
    /// For Trino's nextUri: a secret part so that ids alone do not page or cancel.
    pub slug: String,
    received: Instant,
    state: Mutex<(QueryExecutionState, Option<QueryExecution>, Option<Arc<Results>>)>,
    /// The result's columns, known once the query is planned (Trino sends them while it runs).
    schema: Mutex<Option<SchemaRef>>,
    bytes: AtomicU64,
    rows: AtomicU64,
    cancel_requested: AtomicBool,
    cancel: Notify,
    done: Notify,
}

fn now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or_default()
}

/// A guess of the statement type before the engine has planned it.
fn statement_type_of(sql: &str) -> StatementType {
    let first = sql.split_whitespace().next().unwrap_or_default().to_ascii_uppercase();
    match first.as_str() {
        "CREATE" | "DROP" | "ALTER" | "MSCK" | "SHOW" | "DESCRIBE" | "USE" => StatementType::Ddl,
        "EXPLAIN" | "SET" => StatementType::Utility,
        _ => StatementType::Dml,
    }
}

impl Run {
    pub fn results(&self) -> Option<Arc<Results>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).2.clone()
    }

    /// The result's columns once planned, before any row exists.
    pub fn schema(&self) -> Option<SchemaRef> {
        self.schema.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn bytes_scanned(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    pub fn rows(&self) -> u64 {
        self.rows.load(Ordering::Relaxed)
    }

    pub fn elapsed_ms(&self) -> u64 {
        self.received.elapsed().as_millis() as u64
    }

    /// The record as it stands: final once the query ended, a snapshot while it runs.
    pub fn execution(&self) -> QueryExecution {
        let guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(done) = &guard.1 {
            return done.clone();
        }
        QueryExecution {
            query_execution_id: self.id.clone(),
            query: self.request.query_string.clone(),
            statement_type: statement_type_of(&self.request.query_string),
            result_configuration: self.request.result_configuration.clone(),
            query_execution_context: self.request.query_execution_context.clone(),
            status: QueryExecutionStatus {
                state: guard.0,
                state_change_reason: None,
                submission_date_time: self.submitted,
                completion_date_time: None,
            },
            statistics: QueryExecutionStatistics {
                data_scanned_in_bytes: self.bytes_scanned(),
                total_execution_time_in_millis: self.elapsed_ms(),
                ..Default::default()
            },
            work_group: self.request.work_group.clone().unwrap_or_else(|| glaux_engine::PRIMARY.into()),
            warnings: vec![],
        }
    }

    /// Asks the query to stop; it ends CANCELLED (a finished query is left as it is).
    pub fn cancel(&self) {
        self.cancel_requested.store(true, Ordering::SeqCst);
        self.cancel.notify_one();
    }

    async fn cancelled(&self) {
        loop {
            let notified = self.cancel.notified();
            if self.cancel_requested.load(Ordering::SeqCst) {
                return;
            }
            notified.await;
        }
    }

    pub fn is_finished(&self) -> bool {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).1.is_some()
    }

    /// Waits until the query ends or `wait` passes.
    pub async fn wait(&self, wait: Duration) {
        let notified = self.done.notified();
        if self.is_finished() {
            return;
        }
        let _ = tokio::time::timeout(wait, notified).await;
    }

    fn finish(&self, execution: QueryExecution, results: Option<Arc<Results>>) {
        let mut guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        self.bytes.store(execution.statistics.data_scanned_in_bytes, Ordering::Relaxed);
        *guard = (execution.status.state, Some(execution), results);
        drop(guard);
        self.done.notify_waiters();
    }
}

/// The runs by id, and their ids oldest first.
type Known = (HashMap<String, Arc<Run>>, VecDeque<String>);

/// Every query this server process has run (older ones are in the history).
pub struct Runs {
    pub engine: Arc<Engine>,
    pub metrics: Arc<Metrics>,
    queries: QueryRuntime,
    limits: Limits,
    slots: Arc<Semaphore>,
    s3: S3Settings,
    default_output: Option<String>,
    /// The folder of the server's own disk results may be written to, if any.
    local_root: Option<std::path::PathBuf>,
    runs: Mutex<Known>,
    tokens: Mutex<HashMap<String, String>>,
}

/// Runs beyond this many are forgotten by the server (their records stay in the history).
const RUNS_KEPT: usize = 20_000;

impl Runs {
    pub fn new(
        engine: Arc<Engine>,
        limits: Limits,
        s3: S3Settings,
        default_output: Option<String>,
        local_root: Option<std::path::PathBuf>,
    ) -> Result<Self> {
        Ok(Self {
            queries: QueryRuntime::start(0).map_err(|e| Error::Internal(e.to_string()))?,
            local_root,
            engine,
            metrics: Arc::default(),
            slots: Arc::new(Semaphore::new(limits.max_concurrent.max(1))),
            limits,
            s3,
            default_output,
            runs: Mutex::default(),
            tokens: Mutex::default(),
        })
    }

    pub fn get(&self, id: &str) -> Option<Arc<Run>> {
        self.runs.lock().unwrap_or_else(|p| p.into_inner()).0.get(id).cloned()
    }

    /// Runs still queued or running.
    pub fn in_flight(&self) -> Vec<Arc<Run>> {
        let guard = self.runs.lock().unwrap_or_else(|p| p.into_inner());
        guard.0.values().filter(|r| !r.is_finished()).cloned().collect()
    }

    /// Accepts a query: it is QUEUED at once and runs in the background.
    pub fn submit(self: &Arc<Self>, mut request: StartQueryExecution, user: Option<String>) -> Arc<Run> {
        if let Some(token) = &request.client_request_token
            && let Some(id) = self.tokens.lock().unwrap_or_else(|p| p.into_inner()).get(token).cloned()
            && let Some(run) = self.get(&id)
        {
            // the same token is the same query (Athena's idempotency)
            return run;
        }
        if request.result_configuration.as_ref().and_then(|r| r.output_location.as_ref()).is_none()
            && let Some(default) = &self.default_output
        {
            request.result_configuration = Some(ResultConfiguration { output_location: Some(default.clone()) });
        }
        let run = Arc::new(Run {
            id: uuid::Uuid::new_v4().to_string(),
            request,
            user,
            submitted: now(),
            slug: uuid::Uuid::new_v4().simple().to_string(),
            received: Instant::now(),
            state: Mutex::new((QueryExecutionState::Queued, None, None)),
            schema: Mutex::default(),
            bytes: AtomicU64::new(0),
            rows: AtomicU64::new(0),
            cancel_requested: AtomicBool::new(false),
            cancel: Notify::new(),
            done: Notify::new(),
        });
        if let Some(token) = &run.request.client_request_token {
            self.tokens.lock().unwrap_or_else(|p| p.into_inner()).insert(token.clone(), run.id.clone());
        }
        {
            let mut guard = self.runs.lock().unwrap_or_else(|p| p.into_inner());
            guard.0.insert(run.id.clone(), Arc::clone(&run));
            guard.1.push_back(run.id.clone());
            self.forget_old(&mut guard);
        }
        self.metrics.queued.fetch_add(1, Ordering::Relaxed);
        self.queries.spawn(Arc::clone(self).execute(Arc::clone(&run)));
        run
    }

    /// Drops the results of all but the newest runs, and forgets the oldest finished runs.
    fn forget_old(&self, guard: &mut Known) {
        let (map, order) = guard;
        let finished: Vec<&String> = order.iter().filter(|id| map.get(*id).is_some_and(|r| r.is_finished())).collect();
        let excess = finished.len().saturating_sub(self.limits.results_kept);
        for id in finished.into_iter().take(excess) {
            if let Some(run) = map.get(id) {
                run.state.lock().unwrap_or_else(|p| p.into_inner()).2 = None;
            }
        }
        while order.len() > RUNS_KEPT {
            if let Some(id) = order.pop_front() {
                map.remove(&id);
            }
        }
    }

    async fn execute(self: Arc<Self>, run: Arc<Run>) {
        let permit = tokio::select! {
            permit = Arc::clone(&self.slots).acquire_owned() => permit.ok(),
            _ = run.cancelled() => None,
        };
        self.metrics.queued.fetch_sub(1, Ordering::Relaxed);
        let Some(_permit) = permit else {
            // cancelled while waiting: it never ran and read nothing
            let mut execution = run.execution();
            execution.status.state = QueryExecutionState::Cancelled;
            execution.status.state_change_reason = Some("Query was cancelled before it ran".into());
            execution.status.completion_date_time = Some(now());
            self.metrics.finished(QueryExecutionState::Cancelled, 0, run.received.elapsed().as_secs_f64());
            run.finish(execution, None);
            return;
        };
        self.metrics.running.fetch_add(1, Ordering::Relaxed);
        run.state.lock().unwrap_or_else(|p| p.into_inner()).0 = QueryExecutionState::Running;
        let (execution, results) = self.run_to_end(&run).await;
        self.metrics.running.fetch_sub(1, Ordering::Relaxed);
        self.metrics.finished(
            execution.status.state,
            execution.statistics.data_scanned_in_bytes,
            run.received.elapsed().as_secs_f64(),
        );
        run.finish(execution, results);
        let mut guard = self.runs.lock().unwrap_or_else(|p| p.into_inner());
        self.forget_old(&mut guard);
    }

    async fn run_to_end(&self, run: &Run) -> (QueryExecution, Option<Arc<Results>>) {
        enum Event<T> {
            Next(T),
            Cancel,
            Timeout,
        }
        let origin = Origin {
            id: Some(run.id.clone()),
            submitted: Some(run.submitted),
            queue_ms: run.received.elapsed().as_millis() as u64,
            user: run.user.clone(),
        };
        let deadline = tokio::time::Instant::now() + self.limits.query_timeout;
        let mut query = match self.engine.start_as(&run.request, origin).await {
            Ok(q) => q,
            Err(failure) => return (failure.execution, None),
        };
        let schema = query.schema();
        *run.schema.lock().unwrap_or_else(|p| p.into_inner()) = schema.clone().filter(|s| !s.fields().is_empty());
        let mut batches = vec![];
        loop {
            let event = tokio::select! {
                next = query.next_batch() => Event::Next(next),
                _ = run.cancelled() => Event::Cancel,
                _ = tokio::time::sleep_until(deadline) => Event::Timeout,
            };
            run.bytes.store(query.bytes_scanned(), Ordering::Relaxed);
            match event {
                Event::Next(Some(Ok(batch))) => {
                    run.rows.fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
                    batches.push(batch);
                }
                Event::Next(Some(Err(error))) => return (query.fail(error).execution, None),
                Event::Next(None) => break,
                Event::Cancel => return (query.cancel("Query was cancelled by its user"), None),
                Event::Timeout => {
                    let limit = self.limits.query_timeout.as_secs();
                    let error = EngineError::Cancelled(format!("query timed out after {limit} s (the server's limit)"));
                    return (query.fail(error).execution, None);
                }
            }
        }
        let statement_type = query.statement_type();
        let Some(schema) = schema.filter(|s| !s.fields().is_empty()) else {
            return (query.succeed(), None);
        };
        let rows = batches.iter().map(|b| b.num_rows()).sum();
        let results = Arc::new(Results { schema, batches, rows });
        // Athena writes a SELECT's rows to <OutputLocation>/<id>.csv before it succeeds
        let mut file = None;
        if statement_type == StatementType::Dml
            && let Some(location) = query.output_location()
        {
            match self.write_results(&location, &run.id, &results).await {
                Ok(url) => file = Some(url),
                Err(error) => return (query.fail(EngineError::Config(error.to_string())).execution, None),
            }
        }
        let mut execution = query.succeed();
        if let Some(url) = file {
            execution.result_configuration = Some(ResultConfiguration { output_location: Some(url) });
        }
        (execution, Some(results))
    }

    /// Writes `<location>/<id>.csv` (header, every value quoted, NULL empty) and
    /// `<id>.csv.metadata` (the columns and row count, JSON). Returns the CSV's URL.
    async fn write_results(&self, location: &str, id: &str, results: &Results) -> Result<String> {
        let mut csv = String::new();
        let header: Vec<String> =
            results.schema.fields().iter().map(|f| values::csv_field(&Some(f.name().clone()))).collect();
        csv.push_str(&header.join(","));
        csv.push('\n');
        for batch in &results.batches {
            let columns: Vec<Vec<Option<String>>> =
                batch.columns().iter().map(|c| values::athena_texts(c.as_ref())).collect();
            for r in 0..batch.num_rows() {
                let row: Vec<String> = columns.iter().map(|c| values::csv_field(&c[r])).collect();
                csv.push_str(&row.join(","));
                csv.push('\n');
            }
        }
        let metadata = serde_json::json!({
            "ColumnInfo": results.schema.fields().iter().map(|f| values::column_info(f)).collect::<Vec<_>>(),
            "Rows": results.rows,
        });
        let (store, prefix, url) = self.output_store(location)?;
        let put = |name: String, body: Vec<u8>| {
            let store = Arc::clone(&store);
            async move {
                let path = object_store::path::Path::from(name.as_str());
                store
                    .put(&path, body.into())
                    .await
                    .map_err(|e| Error::Internal(format!("cannot write the results to {location}: {e}")))
            }
        };
        let join = |file: &str| if prefix.is_empty() { file.to_string() } else { format!("{prefix}/{file}") };
        put(join(&format!("{id}.csv")), csv.into_bytes()).await?;
        put(join(&format!("{id}.csv.metadata")), metadata.to_string().into_bytes()).await?;
        Ok(format!("{}/{id}.csv", url.trim_end_matches('/')))
    }

    /// The store of an output location (`s3://bucket/prefix/` or a local folder), the prefix in
    /// it, and the location as a URL.
    fn output_store(&self, location: &str) -> Result<(Arc<dyn object_store::ObjectStore>, String, String)> {
        if let Some(rest) = location.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            let store =
                self.s3.build(bucket).map_err(|e| Error::InvalidRequest(format!("output location {location}: {e}")))?;
            return Ok((store, prefix.trim_matches('/').to_string(), location.to_string()));
        }
        let dir = location.strip_prefix("file://").unwrap_or(location);
        let inside = |root: &std::path::Path| {
            let dir = std::path::Path::new(dir);
            dir.is_absolute()
                && !dir.components().any(|c| c == std::path::Component::ParentDir)
                && dir.starts_with(root)
        };
        match &self.local_root {
            None => {
                return Err(Error::InvalidRequest(format!(
                    "output location {location} is not on S3, and this server does not write to its own disk"
                )));
            }
            Some(root) if !inside(root) => {
                return Err(Error::InvalidRequest(format!(
                    "output location {location} is outside the folder this server allows ({})",
                    root.display()
                )));
            }
            Some(_) => {}
        }
        std::fs::create_dir_all(dir).map_err(|e| Error::InvalidRequest(format!("output location {location}: {e}")))?;
        let store = object_store::local::LocalFileSystem::new_with_prefix(dir)
            .map_err(|e| Error::InvalidRequest(format!("output location {location}: {e}")))?;
        Ok((Arc::new(store), String::new(), location.to_string()))
    }
}
