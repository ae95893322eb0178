//! The engine: a statement planned in a session — the session's own statements, Athena's DDL
//! against the catalog, everything else through DataFusion and the statement gate — and started.

use std::sync::{Arc, RwLock};

use datafusion::arrow::array::{ArrayRef, StringArray};
use datafusion::arrow::datatypes::Schema;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::error::DataFusionError;
use datafusion::execution::SessionState;
use datafusion::logical_expr::{DdlStatement, LogicalPlan, Statement as DfStatement};
use datafusion::physical_plan::SendableRecordBatchStream;
use datafusion::physical_plan::execute_stream;
use datafusion::physical_plan::memory::MemoryStream;
use datafusion::physical_plan::stream::RecordBatchReceiverStream;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::Statement;
use datafusion::sql::sqlparser::ast::Statement as SqlStatement;
use futures::StreamExt;

use crate::athena;
use crate::catalog;
use crate::compression;
use crate::config::EngineConfig;
use crate::distributed;
use crate::dry_run;
use crate::error::{Error, Result};
use crate::model::{QueryExecution, StartQueryExecution, StatementType};
use crate::query::Query;
use crate::script;
use crate::session::{BaseSession, CATALOG, Session, SessionChange};
use crate::storage::{ScanMeter, StoreRegistry};

/// The query engine: shared by every query of a process, each query metered on its own and
/// planned in a [`Session`] (the engine's own for the CLI and REPL, one per client in servers).
pub struct Engine {
    base: BaseSession,
    /// The session of `start`/`run`: the CLI's and REPL's, whose SET and USE carry over.
    default: tokio::sync::Mutex<Session>,
    /// Its current database, readable without waiting for a statement being planned.
    default_database: RwLock<String>,
    config: EngineConfig,
}

/// Who submitted a query and when, for front ends that queue queries (the server): the id
/// given out at submission, the submission time and the time spent waiting.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub id: Option<String>,
    /// Seconds since the epoch.
    pub submitted: Option<f64>,
    pub queue_ms: u64,
    pub user: Option<String>,
}

/// A query that failed before or while running, with its record.
#[derive(Debug)]
pub struct Failure {
    pub error: Error,
    pub execution: QueryExecution,
}

/// What planning produced: the statement's type, its rows, and what it changed in the session.
/// What planning needs of the query it plans for (the query itself holds its stream, which
/// may not be shared).
struct Planning<'a> {
    request: &'a StartQueryExecution,
    id: &'a str,
    work_group: &'a str,
    meter: &'a Arc<ScanMeter>,
    scans: &'a Arc<catalog::ScanLog>,
    pricing: crate::billing::Pricing,
}

struct Planned {
    statement_type: StatementType,
    stream: SendableRecordBatchStream,
    changes: Vec<SessionChange>,
    /// What a CTAS, INSERT or UNLOAD wrote.
    written: Option<athena::WriteStats>,
}

impl Planned {
    fn rows(statement_type: StatementType, batch: RecordBatch, changes: Vec<SessionChange>) -> Result<Self> {
        let schema = batch.schema();
        let stream = MemoryStream::try_new(vec![batch], schema, None)?;
        Ok(Self { statement_type, stream: Box::pin(stream), changes, written: None })
    }

    fn nothing(statement_type: StatementType, changes: Vec<SessionChange>) -> Result<Self> {
        Self::rows(statement_type, RecordBatch::new_empty(Arc::new(Schema::empty())), changes)
    }
}

impl Engine {
    pub fn new(config: EngineConfig) -> Result<Self> {
        let stores = Arc::new(
            StoreRegistry::new(config.s3.clone(), config.allow_local_files).with_local_root(config.local_root.clone()),
        );
        let base = BaseSession::new(stores, &config)?;
        let default = base.session(&config.database, config.user.clone(), false)?;
        Ok(Self {
            base,
            default: tokio::sync::Mutex::new(default),
            default_database: RwLock::new(config.database.clone()),
            config,
        })
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// A new session for one client: nothing it changes is seen by any other. With
    /// `own_history_only`, its `system.query_history` shows only `user`'s queries.
    pub fn session(&self, user: Option<String>, own_history_only: bool) -> Result<Session> {
        self.base.session(&self.config.database, user, own_history_only)
    }

    /// The database unqualified names resolve in now, in the engine's own session (`USE`
    /// changes it).
    pub fn database(&self) -> String {
        self.default_database.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Splits a script into its statements (`;`-separated), checking the syntax of each.
    pub fn split_statements(&self, sql: &str) -> Result<Vec<String>> {
        // Split the original text (re-printing parsed statements would lose clauses), then
        // check each piece so a syntax error is reported before anything runs.
        let pieces = script::split(sql);
        for (i, piece) in pieces.iter().enumerate() {
            let checked = match athena::parse(piece) {
                Ok(Some(_)) => Ok(()),
                Ok(None) => script::parse(dry_run::explain_io(piece).unwrap_or(piece)).map(|_| ()),
                Err(e) => Err(e),
            };
            checked.map_err(|e| match (e, pieces.len()) {
                (Error::Syntax(m), n) if n > 1 => Error::Syntax(format!("statement {}: {m}", i + 1)),
                (e, _) => e,
            })?;
        }
        Ok(pieces)
    }

    /// Plans one statement in the engine's own session and starts it; results are pulled from
    /// the returned [`Query`].
    pub async fn start(&self, request: &StartQueryExecution) -> Result<Query, Box<Failure>> {
        self.start_as(request, Origin::default()).await
    }

    /// As [`Engine::start`], for a query submitted earlier under `origin`.
    pub async fn start_as(&self, request: &StartQueryExecution, origin: Origin) -> Result<Query, Box<Failure>> {
        let mut session = self.default.lock().await;
        let started = self.start_in(&mut session, request, origin).await;
        *self.default_database.write().unwrap_or_else(|p| p.into_inner()) = session.database();
        started
    }

    /// Plans one statement in `session` and starts it. What the statement changes (SET, USE,
    /// PREPARE, session views) changes `session` alone.
    pub async fn start_in(
        &self,
        session: &mut Session,
        request: &StartQueryExecution,
        mut origin: Origin,
    ) -> Result<Query, Box<Failure>> {
        if origin.user.is_none() {
            origin.user = session.user().map(str::to_string);
        }
        let mut query = Query::new(request, &self.config, origin);
        let fail = |query: &mut Query, error: Error| {
            let execution = query.record_error(&error);
            Box::new(Failure { error, execution })
        };
        if let Some(parameters) = &request.execution_parameters {
            match athena::bind(&request.query_string, parameters) {
                Ok(sql) => query.request.query_string = sql,
                Err(error) => return Err(fail(&mut query, error)),
            }
        }
        query.database = Some(match request.query_execution_context.as_ref().and_then(|c| c.database.clone()) {
            Some(db) => db,
            None => session.database(),
        });
        if let Err(error) = self.apply_workgroup(&mut query) {
            return Err(fail(&mut query, error));
        }
        let sql = query.request.query_string.clone();
        let planning = Planning {
            request: &query.request,
            id: &query.id,
            work_group: &query.work_group,
            meter: &query.meter,
            scans: &query.scans,
            pricing: query.pricing,
        };
        match self.plan(session, &sql, &planning).await {
            Ok(planned) => {
                query.statement_type = planned.statement_type;
                query.written = planned.written;
                query.planning_ms = query.started.elapsed().as_millis() as u64;
                query.stream = Some(planned.stream);
                query.changes = planned.changes;
                Ok(query)
            }
            Err(error) => {
                if let Ok(Some(statement)) = athena::parse(&sql) {
                    query.statement_type = statement.statement_type();
                }
                Err(fail(&mut query, error))
            }
        }
    }

    /// The workgroup's settings for this query: scan limit, price, output location, budget.
    fn apply_workgroup(&self, query: &mut Query) -> Result<()> {
        let Some(workgroups) = &self.config.workgroups else { return Ok(()) };
        let group = workgroups
            .get(&query.work_group)?
            .ok_or_else(|| Error::NotFound(format!("workgroup {} does not exist", query.work_group)))?;
        if !group.is_enabled() {
            return Err(Error::InvalidInput(format!("workgroup {} is disabled", group.name)));
        }
        let c = &group.configuration;
        if let Some(cutoff) = c.bytes_scanned_cutoff_per_query.or(self.config.bytes_scanned_cutoff) {
            query.meter = Arc::new(ScanMeter::with_cutoff(Some(cutoff)));
        }
        if let Some(price) = c.price_per_tib_usd {
            query.pricing.usd_per_tib = price;
        }
        if let Some(result) = &c.result_configuration
            && (c.enforce_work_group_configuration || query.request.result_configuration.is_none())
        {
            query.request.result_configuration = Some(result.clone());
        }
        query.daily_budget = c.daily_bytes_scanned_budget;
        Ok(())
    }

    /// Plans `sql` in `session`: the session's own statements (PREPARE, EXECUTE, DEALLOCATE,
    /// SET, RESET, USE), Athena's DDL against the catalog, everything else through DataFusion
    /// and the statement gate.
    async fn plan(&self, session: &mut Session, sql: &str, query: &Planning<'_>) -> Result<Planned> {
        let (request, meter, scans) = (query.request, query.meter, query.scans);
        let athena_statement = athena::parse(sql)?;
        match &athena_statement {
            Some(athena::AthenaStatement::Prepare { name, sql: text }) => {
                // checked now, so a mistake shows at PREPARE rather than at every EXECUTE
                self.split_statements(text)?;
                session.prepare(name, text);
                if let Some(store) = self.workgroup_statements(session)? {
                    let statement = crate::prepared::PreparedStatement {
                        statement_name: name.clone(),
                        query_statement: text.clone(),
                        work_group_name: query.work_group.to_string(),
                        description: None,
                        last_modified_time: 0.0,
                    };
                    store.put(statement, crate::prepared::Put::Replace)?;
                }
                let change = SessionChange::Prepare { name: name.to_ascii_lowercase(), sql: text.clone() };
                return Planned::nothing(StatementType::Utility, vec![change]);
            }
            Some(athena::AthenaStatement::Deallocate { name }) => {
                let mut found = session.deallocate(name);
                if let Some(store) = self.workgroup_statements(session)? {
                    found |= store.delete(query.work_group, name)?;
                }
                if !found {
                    return Err(Error::NotFound(format!("prepared statement {name} does not exist")));
                }
                let change = SessionChange::Deallocate { name: name.to_ascii_lowercase() };
                return Planned::nothing(StatementType::Utility, vec![change]);
            }
            Some(athena::AthenaStatement::Execute { name, using }) => {
                // the session's own statement, else the workgroup's
                let text = match session.prepared(name) {
                    Some(text) => text.to_string(),
                    None => match &self.config.workgroups {
                        Some(groups) => groups
                            .prepared_statements()?
                            .get(query.work_group, name)?
                            .map(|s| s.query_statement)
                            .ok_or_else(|| Error::NotFound(format!("prepared statement {name} does not exist")))?,
                        None => return Err(Error::NotFound(format!("prepared statement {name} does not exist"))),
                    },
                };
                let text = text.as_str();
                let bound = athena::bind(text, using)?;
                if matches!(athena::parse(&bound)?, Some(athena::AthenaStatement::Execute { .. })) {
                    return Err(Error::InvalidInput(format!("prepared statement {name} executes another")));
                }
                return Box::pin(self.plan(session, &bound, query)).await;
            }
            _ => {}
        }
        // the request's database for this statement only; the session keeps its own
        let mut state = session.state.clone();
        if let Some(db) = request.query_execution_context.as_ref().and_then(|c| c.database.as_deref()) {
            session.ensure_schema(db);
            state.config_mut().options_mut().catalog.default_schema = db.to_string();
        }
        let ctx = self.base.for_query(&state, meter)?;
        if let Some(catalog) = &self.config.catalog
            && let Some(statement) = athena_statement
            && !Self::session_owns(&statement, &ctx)
        {
            let database = state.config().options().catalog.default_schema.clone();
            let query_state = ctx.state();
            let output_location = request.result_configuration.as_ref().and_then(|r| r.output_location.as_deref());
            let runner = athena::Runner {
                catalog,
                state: &query_state,
                database: &database,
                query_id: query.id,
                output_location,
                policy: &self.config.policy,
            };
            let outcome = runner.run(statement).await?;
            let mut changes = vec![];
            if let Some(db) = outcome.use_database {
                session.set_database(&db);
                changes.push(SessionChange::Use { database: db });
            }
            let mut planned = Planned::rows(outcome.statement_type, outcome.batch, changes)?;
            planned.written = outcome.written;
            return Ok(planned);
        }
        // EXPLAIN (TYPE IO): plan the query, read no data, say what it would read
        let io_only = dry_run::explain_io(sql);
        let mut statement = script::single(io_only.unwrap_or(sql))?;
        as_session_view(&mut statement);
        let query_state = ctx.state();
        compression::infer_for_ddl(&mut statement, &query_state).await?;
        let (query_state, plan) = self.logical_plan(query_state, statement, scans).await?;
        self.config.policy.verify(&plan)?;
        let statement_type = statement_type(&plan);
        if io_only.is_some() {
            if statement_type != StatementType::Dml {
                return Err(Error::InvalidInput("EXPLAIN (TYPE IO) needs a query (SELECT or WITH)".into()));
            }
            let physical = ctx.execute_logical_plan(plan).await?.create_physical_plan().await?;
            let scans = dry_run::estimate(&physical, &ctx.state()).await?;
            let batch = dry_run::rows(&scans, &query.pricing)?;
            return Planned::rows(StatementType::Utility, batch, vec![]);
        }
        // settings belong to the session: kept there, never in the engine's shared state
        match &plan {
            LogicalPlan::Statement(DfStatement::SetVariable(set)) => {
                session.set(&set.variable, &set.value)?;
                let change = SessionChange::Set { name: set.variable.clone(), value: set.value.clone() };
                return Planned::nothing(StatementType::Utility, vec![change]);
            }
            LogicalPlan::Statement(DfStatement::ResetVariable(reset)) => {
                session.reset(&reset.variable)?;
                return Planned::nothing(
                    StatementType::Utility,
                    vec![SessionChange::Reset { name: reset.variable.clone() }],
                );
            }
            _ => {}
        }
        // a session view is named with its database, so a later request replays it there
        let current = query_state.config().options().catalog.default_schema.clone();
        let qualified = |name: &datafusion::common::TableReference| {
            format!("{}.{}", name.schema().unwrap_or(&current), name.table())
        };
        let view_change = match &plan {
            LogicalPlan::Ddl(DdlStatement::CreateView(view)) => {
                Some(SessionChange::View { name: qualified(&view.name), sql: sql.trim().to_string() })
            }
            LogicalPlan::Ddl(DdlStatement::DropView(view)) => {
                Some(SessionChange::DropView { name: qualified(&view.name) })
            }
            _ => None,
        };
        let is_explain = matches!(plan, LogicalPlan::Explain(_));
        let ctx = if is_explain {
            // EXPLAIN reads no data, as Athena's: the plan is made without the file statistics
            // (Parquet footers) a run reads to choose join sides; EXPLAIN ANALYZE shows those
            let mut state = ctx.state();
            state.config_mut().options_mut().execution.collect_statistics = false;
            SessionContext::new_with_state(state)
        } else {
            ctx
        };
        // DDL of the DataFusion kind registers into the session's own catalog list, which the
        // query's state shares: session tables and views stay with this session
        let df = ctx.execute_logical_plan(plan).await?;
        let task = Arc::new(df.task_ctx());
        let physical = df.create_physical_plan().await?;
        // a distributed plan's workers report what they read once their parts have ended
        let spread = distributed::Spread::of(&physical, task.session_config(), meter, self.config.cluster.as_ref());
        let started = match (execute_stream(physical, task), &spread) {
            (Err(e), Some(spread)) => Err(spread.failed(e).await),
            (started, _) => started,
        };
        let mut stream = in_own_task(started?, spread);
        if is_explain {
            let workers = self.config.cluster.as_ref().map(|c| c.workers.live());
            stream = with_scan_lines(stream, scans, workers).await?;
        }
        Ok(Planned { statement_type, stream, changes: view_change.into_iter().collect(), written: None })
    }

    /// Re-creates session view `name` (`database.view`) in `session` from the statement that
    /// created it (a Trino client sends its session's views back with every request). Nothing is
    /// recorded.
    pub async fn restore_view(&self, session: &mut Session, name: &str, sql: &str) -> Result<()> {
        let database = name.split_once('.').map(|(db, _)| db).unwrap_or(name);
        session.ensure_schema(database);
        let mut state = session.state.clone();
        state.config_mut().options_mut().catalog.default_schema = database.to_string();
        let not_a_view = || Error::InvalidInput(format!("session view '{sql}' is not one CREATE VIEW statement"));
        let mut statement = script::single(sql).map_err(|_| not_a_view())?;
        as_session_view(&mut statement);
        let ctx = self.base.for_query(&state, &Arc::new(ScanMeter::new()))?;
        let (state, plan) = self.logical_plan(ctx.state(), statement, &Arc::default()).await?;
        if !matches!(plan, LogicalPlan::Ddl(DdlStatement::CreateView(_))) {
            return Err(not_a_view());
        }
        SessionContext::new_with_state(state).execute_logical_plan(plan).await?.collect().await?;
        Ok(())
    }

    /// The workgroup's prepared statements, when `session` prepares into them (the Athena API)
    /// and the engine keeps workgroups.
    fn workgroup_statements(&self, session: &Session) -> Result<Option<crate::prepared::PreparedStatements>> {
        match &self.config.workgroups {
            Some(groups) if session.prepares_in_workgroup() => Ok(Some(groups.prepared_statements()?)),
            _ => Ok(None),
        }
    }

    /// `statement` as a logical plan in `state`, the catalog tables it names resolved first
    /// (their scans noted in `scans`); the state the plan was made in comes back with it.
    async fn logical_plan(
        &self,
        state: SessionState,
        statement: Statement,
        scans: &Arc<catalog::ScanLog>,
    ) -> Result<(SessionState, LogicalPlan)> {
        let state = match &self.config.catalog {
            Some(catalog) => catalog::with_catalog_tables(state, &statement, catalog, scans).await?,
            None => state,
        };
        let plan = state.statement_to_plan(statement).await?;
        Ok((state, plan))
    }

    /// `DROP TABLE`, `DROP VIEW` or `INSERT INTO` of what this session created the DataFusion
    /// way (a session table, a `CREATE TEMPORARY VIEW`) stays with DataFusion.
    fn session_owns(statement: &athena::AthenaStatement, ctx: &SessionContext) -> bool {
        match statement {
            athena::AthenaStatement::DropTable { table: (db, name), .. }
            | athena::AthenaStatement::DropView { view: (db, name), .. }
            | athena::AthenaStatement::InsertInto { table: (db, name), .. } => {
                let state = ctx.state();
                let db = db.clone().unwrap_or_else(|| state.config().options().catalog.default_schema.clone());
                state.catalog_list().catalog(CATALOG).and_then(|c| c.schema(&db)).is_some_and(|s| s.table_exist(name))
            }
            _ => false,
        }
    }

    /// Runs one statement to the end, collecting its rows (for small results and tests).
    pub async fn run(&self, request: &StartQueryExecution) -> Result<(Vec<RecordBatch>, QueryExecution), Box<Failure>> {
        let mut query = self.start(request).await?;
        let mut batches = vec![];
        while let Some(next) = query.next_batch().await {
            match next {
                Ok(b) => batches.push(b),
                Err(error) => return Err(Box::new(query.fail(error))),
            }
        }
        Ok((batches, query.succeed()))
    }
}

/// `CREATE TEMPORARY VIEW` is a view of this session only (`CREATE VIEW` goes to the catalog):
/// DataFusion's own views are exactly that, so it plans it as one.
fn as_session_view(statement: &mut Statement) {
    if let Statement::Statement(s) = statement
        && let SqlStatement::CreateView(view) = s.as_mut()
    {
        view.temporary = false;
    }
}

/// EXPLAIN's rows plus one `glaux_catalog_scans` row: for each catalog table, the partitions it
/// keeps of those considered and the files it reads (planning already listed them); and, for a
/// plan spread over `workers`, a `glaux_workers` row naming them (each stage's tasks are handed
/// to them when the query runs, round the list).
async fn with_scan_lines(
    stream: SendableRecordBatchStream,
    scans: &catalog::ScanLog,
    workers: Option<Vec<url::Url>>,
) -> Result<SendableRecordBatchStream> {
    let schema = stream.schema();
    let mut batches: Vec<RecordBatch> = stream.collect::<Vec<_>>().await.into_iter().collect::<Result<_, _>>()?;
    if schema.fields().len() != 2 {
        return Ok(Box::pin(MemoryStream::try_new(batches, schema, None)?));
    }
    let spread = batches.iter().any(|b| {
        b.column(1)
            .as_any()
            .downcast_ref::<StringArray>()
            .is_some_and(|plans| plans.iter().flatten().any(|p| p.contains("DistributedExec")))
    });
    let lines: Vec<String> = scans.scans().iter().map(catalog::TableScan::describe).collect();
    let mut rows = vec![];
    if !lines.is_empty() {
        rows.push(("glaux_catalog_scans", lines.join("\n")));
    }
    if let Some(workers) = workers.filter(|_| spread) {
        let names: Vec<&str> = workers.iter().map(url::Url::as_str).collect();
        rows.push(("glaux_workers", format!("the stages' tasks run on {} workers: {}", names.len(), names.join(", "))));
    }
    for (kind, text) in rows {
        let columns: Vec<ArrayRef> =
            vec![Arc::new(StringArray::from(vec![kind])), Arc::new(StringArray::from(vec![text]))];
        batches.push(RecordBatch::try_new(Arc::clone(&schema), columns).map_err(DataFusionError::from)?);
    }
    Ok(Box::pin(MemoryStream::try_new(batches, schema, None)?))
}

fn statement_type(plan: &LogicalPlan) -> StatementType {
    match plan {
        LogicalPlan::Ddl(_) => StatementType::Ddl,
        LogicalPlan::Explain(_)
        | LogicalPlan::Analyze(_)
        | LogicalPlan::DescribeTable(_)
        | LogicalPlan::Statement(_) => StatementType::Utility,
        _ => StatementType::Dml,
    }
}

/// Polls `stream` in a task of its own and hands its batches over a channel: operators that
/// compute inside a poll (a nested loop join, say) then never hold up the front end waiting on
/// the query, so Ctrl-C, progress lines and timeouts are seen at once; dropping the stream
/// aborts the task.
/// With `spread` (a plan run on workers), the end of the stream waits for the workers' bytes,
/// an error names the workers that stopped answering, and a scan limit is checked against the
/// workers' running total while the query runs.
fn in_own_task(
    mut stream: SendableRecordBatchStream,
    mut spread: Option<distributed::Spread>,
) -> SendableRecordBatchStream {
    let mut builder = RecordBatchReceiverStream::builder(stream.schema(), 2);
    let tx = builder.tx();
    builder.spawn(async move {
        // the workers' running total against the scan limit, watched for as long as batches come
        let limit_passed = distributed::Spread::limit_passed(spread.as_mut());
        tokio::pin!(limit_passed);
        loop {
            let batch = tokio::select! {
                batch = stream.next() => batch,
                error = &mut limit_passed => {
                    // dropping the stream (on return) cancels the tasks on every worker
                    let _ = tx.send(Err(error)).await;
                    return Ok(());
                }
            };
            let Some(batch) = batch else { break };
            let failed = batch.is_err();
            let batch = match (batch, spread.as_ref()) {
                (Err(e), Some(spread)) => Err(spread.failed(e).await),
                (batch, _) => batch,
            };
            if tx.send(batch).await.is_err() || failed {
                return Ok(());
            }
        }
        if let Some(spread) = spread
            && let Err(e) = spread.finished().await
        {
            let _ = tx.send(Err(e)).await;
        }
        Ok(())
    });
    builder.build()
}
