//! The queries a server runs: submitted at once with an id, queued for one of a limited number
//! of slots, run to the end in the background (cancellable, with a timeout), their results kept
//! for paging and written to the output location as Athena writes them.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use std::panic::AssertUnwindSafe;

use futures::FutureExt;
use glaux_engine::arrow::array::RecordBatch;
use glaux_engine::arrow::datatypes::SchemaRef;
use glaux_engine::{
    Engine, Error as EngineError, ErrorKind, Origin, QueryExecution, QueryExecutionState, QueryExecutionStatistics,
    QueryExecutionStatus, QueryRuntime, ResultConfiguration, S3Settings, Session, SessionChange, StartQueryExecution,
    StatementType,
};
use object_store::ObjectStoreExt;
use object_store::buffered::BufWriter;
use tokio::io::AsyncWriteExt;
use tokio::sync::{Notify, Semaphore};

use crate::auth::Principal;
use crate::error::{Error, Result};
use crate::metrics::Metrics;
pub use crate::results::Results;
use crate::values;

/// How many queries run and wait at once, how long one may take, how much of their results
/// the server keeps.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_concurrent: usize,
    /// Queries waiting for a slot; past it a submission is refused (throttled).
    pub max_queued: usize,
    pub query_timeout: Duration,
    /// Finished results kept for paging, newest first, by count …
    pub results_kept: usize,
    /// … and by bytes (in memory and spilled together).
    pub results_bytes_kept: u64,
    /// The bytes of one result held in memory; past it the result goes to a spill file.
    pub result_memory: usize,
    /// Where results past `result_memory` are kept.
    pub spill_dir: std::path::PathBuf,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_concurrent: 8,
            max_queued: 1000,
            query_timeout: Duration::from_secs(1800),
            results_kept: 256,
            results_bytes_kept: 4 << 30,
            result_memory: 16 << 20,
            spill_dir: std::env::temp_dir().join("glaux-results"),
        }
    }
}

/// What a client's session holds when it arrives (Trino sends it in headers each time).
#[derive(Debug, Clone, Default)]
pub struct SessionSpec {
    pub database: Option<String>,
    /// Settings (SET) and session views (`glaux_view.<name>` = its CREATE VIEW).
    pub properties: Vec<(String, String)>,
    pub prepared: Vec<(String, String)>,
    /// PREPARE and DEALLOCATE act on the workgroup's statements (the Athena API), not only
    /// on the session's (Trino keeps them in the client).
    pub prepare_in_workgroup: bool,
}

/// The session property prefix that carries a session view to the next request.
pub const VIEW_PROPERTY: &str = "glaux_view.";

/// One submitted query.
pub struct Run {
    pub id: String,
    pub request: StartQueryExecution,
    /// The principal that submitted it: only they (and admins) see it.
    pub owner: Principal,
    session: SessionSpec,
    /// What the statement changed in its session, once planned.
    changes: Mutex<Vec<SessionChange>>,
    /// Bytes its kept result holds (memory and spill).
    result_bytes: AtomicU64,
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

    /// What the statement changed in its session (SET, USE, PREPARE, session views).
    pub fn session_changes(&self) -> Vec<SessionChange> {
        self.changes.lock().unwrap_or_else(|p| p.into_inner()).clone()
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
                athena_error: None,
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
    /// ClientRequestToken of a principal → the run it started.
    tokens: Mutex<HashMap<(String, String), String>>,
}

/// Runs beyond this many are forgotten by the server (their records stay in the history).
const RUNS_KEPT: usize = 20_000;

/// A submission refused because the queue is full (Athena's TooManyRequestsException).
pub struct QueueFull(pub usize);

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

    /// Accepts a query: it is QUEUED at once and runs in the background, in a session of its
    /// own built from `session`. Refused when the queue is full.
    pub fn submit(
        self: &Arc<Self>,
        mut request: StartQueryExecution,
        owner: Principal,
        session: SessionSpec,
    ) -> Result<Arc<Run>, QueueFull> {
        if let Some(token) = &request.client_request_token
            && let Some(id) =
                self.tokens.lock().unwrap_or_else(|p| p.into_inner()).get(&(owner.name.clone(), token.clone())).cloned()
            && let Some(run) = self.get(&id)
        {
            // the same token from the same principal is the same query (Athena's idempotency)
            return Ok(run);
        }
        // the place in the queue is taken in the same step as the bound is checked: two
        // submissions at once cannot both take the last place (`bench/run load` saw 33 of 32)
        let max = self.limits.max_queued as i64;
        if self.metrics.queued.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |q| (q < max).then_some(q + 1)).is_err()
        {
            return Err(QueueFull(self.limits.max_queued));
        }
        if request.result_configuration.as_ref().and_then(|r| r.output_location.as_ref()).is_none()
            && let Some(default) = &self.default_output
        {
            request.result_configuration = Some(ResultConfiguration { output_location: Some(default.clone()) });
        }
        let run = Arc::new(Run {
            id: uuid::Uuid::new_v4().to_string(),
            request,
            owner,
            session,
            changes: Mutex::default(),
            result_bytes: AtomicU64::new(0),
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
            let key = (run.owner.name.clone(), token.clone());
            self.tokens.lock().unwrap_or_else(|p| p.into_inner()).insert(key, run.id.clone());
        }
        {
            let mut guard = self.runs.lock().unwrap_or_else(|p| p.into_inner());
            guard.0.insert(run.id.clone(), Arc::clone(&run));
            guard.1.push_back(run.id.clone());
            self.forget_old(&mut guard);
        }
        self.queries.spawn(Arc::clone(self).execute(Arc::clone(&run)));
        Ok(run)
    }

    /// Drops the results of all but the newest runs, and forgets the oldest finished runs.
    fn forget_old(&self, guard: &mut Known) {
        let (map, order) = guard;
        // newest first: results are kept while both budgets last
        let (mut kept, mut bytes) = (0usize, 0u64);
        for id in order.iter().rev() {
            let Some(run) = map.get(id).filter(|r| r.is_finished()) else { continue };
            let size = run.result_bytes.load(Ordering::Relaxed);
            if run.results().is_none() {
                continue;
            }
            if kept < self.limits.results_kept && bytes + size <= self.limits.results_bytes_kept {
                kept += 1;
                bytes += size;
            } else {
                run.state.lock().unwrap_or_else(|p| p.into_inner()).2 = None;
            }
        }
        let mut forgotten = vec![];
        while order.len() > RUNS_KEPT {
            if let Some(id) = order.pop_front() {
                map.remove(&id);
                forgotten.push(id);
            }
        }
        if !forgotten.is_empty() {
            let gone: std::collections::HashSet<String> = forgotten.into_iter().collect();
            self.tokens.lock().unwrap_or_else(|p| p.into_inner()).retain(|_, id| !gone.contains(id));
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
            let (execution, _) = self.ended(&run, "Query was cancelled before it ran", ErrorKind::Cancelled);
            self.metrics.finished(QueryExecutionState::Cancelled, 0, run.received.elapsed().as_secs_f64());
            run.finish(execution, None);
            return;
        };
        self.metrics.running.fetch_add(1, Ordering::Relaxed);
        run.state.lock().unwrap_or_else(|p| p.into_inner()).0 = QueryExecutionState::Running;
        // a panic anywhere in planning or running fails this run alone: the server goes on
        let outcome = AssertUnwindSafe(self.run_to_end(&run)).catch_unwind().await;
        let (execution, results) = match outcome {
            Ok(done) => done,
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                eprintln!("glaux serve: query {} panicked: {what}", run.id);
                let reason = format!("internal error (query {}); the server's log has the details", run.id);
                self.ended(&run, &reason, ErrorKind::Internal)
            }
        };
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

    /// The run's session: a new one for its principal, with what the client sent.
    async fn session(&self, run: &Run) -> glaux_engine::Result<Session> {
        let mut session = self.engine.session(Some(run.owner.name.clone()), !run.owner.admin)?;
        if let Some(db) = &run.session.database {
            session.set_database(db);
        }
        for (name, value) in &run.session.properties {
            if let Some(view) = name.strip_prefix(VIEW_PROPERTY) {
                self.engine.restore_view(&mut session, view, value).await?;
            } else {
                session.set(name, value)?;
            }
        }
        for (name, sql) in &run.session.prepared {
            session.prepare(name, sql);
        }
        if run.session.prepare_in_workgroup {
            session.prepare_in_workgroup();
        }
        Ok(session)
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
            user: Some(run.owner.name.clone()),
        };
        let deadline = tokio::time::Instant::now() + self.limits.query_timeout;
        let timed_out = || {
            let limit = self.limits.query_timeout.as_secs();
            EngineError::Timeout(format!("query timed out after {limit} s (the server's limit)"))
        };
        // planning, listing, DDL and MSCK REPAIR are under the same timeout and cancel as rows
        let prepared = async {
            let mut session = match self.session(run).await {
                Ok(s) => s,
                Err(e) => {
                    let reason = format!("the session sent with the query is not valid: {e}");
                    return Err(self.ended(run, &reason, ErrorKind::InvalidInput).0);
                }
            };
            self.engine.start_in(&mut session, &run.request, origin).await.map_err(|f| f.execution)
        };
        let started = tokio::select! {
            started = prepared => started,
            _ = run.cancelled() => return self.ended(run, "Query was cancelled by its user", ErrorKind::Cancelled),
            _ = tokio::time::sleep_until(deadline) => return self.ended(run, &timed_out().to_string(), ErrorKind::Timeout),
        };
        let mut query = match started {
            Ok(q) => q,
            Err(execution) => return (execution, None),
        };
        *run.changes.lock().unwrap_or_else(|p| p.into_inner()) = query.session_changes().to_vec();
        // statements without columns have no rows to keep, but run to their end all the same
        let schema = query.schema().filter(|s| !s.fields().is_empty());
        *run.schema.lock().unwrap_or_else(|p| p.into_inner()) = schema.clone();
        let mut results = schema.as_ref().map(|schema| {
            let spill = self.limits.spill_dir.join(format!("{}.arrow", run.id));
            Results::new(Arc::clone(schema), self.limits.result_memory, spill)
        });
        // Athena writes a SELECT's rows to <OutputLocation>/<id>.csv before it succeeds; the
        // file is written as rows arrive, so no result is ever held whole for it
        let mut file = None;
        if let Some(schema) = &schema
            && query.statement_type() == StatementType::Dml
            && let Some(location) = query.output_location()
        {
            match self.open_result_file(&location, &run.id, schema).await {
                Ok(f) => file = Some(f),
                Err(error) => return (query.fail(EngineError::Permission(error.to_string())).execution, None),
            }
        }
        loop {
            let event = tokio::select! {
                next = query.next_batch() => Event::Next(next),
                _ = run.cancelled() => Event::Cancel,
                _ = tokio::time::sleep_until(deadline) => Event::Timeout,
            };
            run.bytes.store(query.bytes_scanned(), Ordering::Relaxed);
            let abort = |file: Option<ResultFile>| async move {
                if let Some(f) = file {
                    f.abort().await;
                }
            };
            match event {
                Event::Next(Some(Ok(batch))) => {
                    let Some(results) = &mut results else { continue };
                    run.rows.fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
                    let written = match &mut file {
                        Some(f) => f.write(&batch).await,
                        None => Ok(()),
                    };
                    if let Err(error) = written.and_then(|_| results.push(batch)) {
                        abort(file).await;
                        return (query.fail(EngineError::Internal(error.to_string())).execution, None);
                    }
                }
                Event::Next(Some(Err(error))) => {
                    abort(file).await;
                    return (query.fail(error).execution, None);
                }
                Event::Next(None) => break,
                Event::Cancel => {
                    abort(file).await;
                    return (query.cancel("Query was cancelled by its user"), None);
                }
                Event::Timeout => {
                    abort(file).await;
                    return (query.fail(timed_out()).execution, None);
                }
            }
        }
        let Some(mut results) = results else { return (query.succeed(), None) };
        if let Err(error) = results.finish() {
            return (query.fail(EngineError::Internal(error.to_string())).execution, None);
        }
        let mut url = None;
        if let Some(f) = file {
            match f.complete(&results).await {
                Ok(u) => url = Some(u),
                Err(error) => return (query.fail(EngineError::Internal(error.to_string())).execution, None),
            }
        }
        let mut execution = query.succeed();
        if let Some(url) = url {
            execution.result_configuration = Some(ResultConfiguration { output_location: Some(url) });
        }
        run.result_bytes.store(results.size(), Ordering::Relaxed);
        (execution, Some(Arc::new(results)))
    }

    /// Whether results may be written to `location`: under the server's default output
    /// location, a workgroup's configured one, an allowed write location, or (local folders)
    /// inside the folder the server allows.
    fn check_output(&self, location: &str) -> Result<()> {
        let under = |base: &str| glaux_engine::is_under(location, base);
        if self.default_output.as_deref().is_some_and(under) {
            return Ok(());
        }
        if let Some(groups) = &self.engine.config().workgroups
            && let Ok(list) = groups.list()
            && list.iter().any(|g| {
                g.configuration
                    .result_configuration
                    .as_ref()
                    .and_then(|r| r.output_location.as_deref())
                    .is_some_and(under)
            })
        {
            return Ok(());
        }
        if !location.starts_with("s3://") {
            // local folders: checked against the allowed folder when the store is made
            return Ok(());
        }
        self.engine
            .config()
            .policy
            .check_write(location)
            .map_err(|e| Error::InvalidRequest(format!("output location: {e}")))
    }

    /// Opens `<location>/<id>.csv` for writing as rows arrive.
    async fn open_result_file(&self, location: &str, id: &str, schema: &SchemaRef) -> Result<ResultFile> {
        self.check_output(location)?;
        let (store, prefix, url) = self.output_store(location)?;
        let join = |file: &str| if prefix.is_empty() { file.to_string() } else { format!("{prefix}/{file}") };
        let csv = object_store::path::Path::from(join(&format!("{id}.csv")).as_str());
        let metadata = object_store::path::Path::from(join(&format!("{id}.csv.metadata")).as_str());
        let mut writer = BufWriter::new(Arc::clone(&store), csv);
        let header: Vec<String> = schema.fields().iter().map(|f| values::csv_field(&Some(f.name().clone()))).collect();
        let line = format!("{}\n", header.join(","));
        writer
            .write_all(line.as_bytes())
            .await
            .map_err(|e| Error::Internal(format!("cannot write the results to {location}: {e}")))?;
        Ok(ResultFile {
            writer,
            store,
            metadata,
            location: location.to_string(),
            url: format!("{}/{id}.csv", url.trim_end_matches('/')),
        })
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
        // the folder as it really is: a symlink inside the allowed folder that points outside
        // it does not count as inside
        let inside = |root: &std::path::Path| {
            let dir = std::path::Path::new(dir);
            dir.is_absolute() && glaux_engine::real_path(dir).is_ok_and(|real| real.starts_with(root))
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

/// `<id>.csv` being written (header, every value quoted, NULL empty) and, at the end,
/// `<id>.csv.metadata` (the columns and row count, JSON).
struct ResultFile {
    writer: BufWriter,
    store: Arc<dyn object_store::ObjectStore>,
    metadata: object_store::path::Path,
    location: String,
    url: String,
}

impl ResultFile {
    fn error(&self, e: impl std::fmt::Display) -> Error {
        Error::Internal(format!("cannot write the results to {}: {e}", self.location))
    }

    async fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let mut csv = String::new();
        let columns: Vec<Vec<Option<String>>> =
            batch.columns().iter().map(|c| values::athena_texts(c.as_ref())).collect();
        for r in 0..batch.num_rows() {
            let row: Vec<String> = columns.iter().map(|c| values::csv_field(&c[r])).collect();
            csv.push_str(&row.join(","));
            csv.push('\n');
        }
        let written = self.writer.write_all(csv.as_bytes()).await;
        written.map_err(|e| self.error(e))
    }

    /// Completes the CSV and writes its metadata; returns the CSV's URL.
    async fn complete(mut self, results: &Results) -> Result<String> {
        let done = self.writer.shutdown().await;
        done.map_err(|e| self.error(e))?;
        let metadata = serde_json::json!({
            "ColumnInfo": results.schema.fields().iter().map(|f| values::column_info(f)).collect::<Vec<_>>(),
            "Rows": results.rows,
        });
        let put = self.store.put(&self.metadata, metadata.to_string().into_bytes().into()).await;
        put.map_err(|e| self.error(e))?;
        Ok(self.url)
    }

    /// Drops what was written of a result that will not be.
    async fn abort(mut self) {
        let _ = self.writer.abort().await;
    }
}

impl Runs {
    /// The record of a run the server ended itself (before the engine had a query, or after a
    /// panic): CANCELLED for a cancel, FAILED otherwise, with the kind of failure. The engine
    /// writes the history of the queries it ran; these the server writes, so that a query
    /// cancelled in the queue is not lost from ListQueryExecutions and `system.query_history`.
    fn ended(&self, run: &Run, reason: &str, kind: ErrorKind) -> (QueryExecution, Option<Arc<Results>>) {
        let mut execution = run.execution();
        execution.status.state =
            if kind == ErrorKind::Cancelled { QueryExecutionState::Cancelled } else { QueryExecutionState::Failed };
        execution.status.state_change_reason = Some(reason.to_string());
        execution.status.completion_date_time = Some(now());
        execution.status.athena_error = Some(glaux_engine::AthenaError::new(kind, reason));
        let config = self.engine.config();
        if let Some(history) = &config.history {
            let entry = glaux_engine::HistoryEntry {
                execution: execution.clone(),
                source: config.source.clone(),
                user: Some(run.owner.name.clone()),
                database: execution.query_execution_context.as_ref().and_then(|c| c.database.clone()),
                tables: vec![],
            };
            if let Err(e) = history.record(&entry) {
                eprintln!("warning: query {} was not recorded in the history: {e}", execution.query_execution_id);
            }
        }
        (execution, None)
    }
}
