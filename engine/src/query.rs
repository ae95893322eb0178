//! A query's lifecycle after planning: pulling its batches, and the QueryExecution record that
//! ends it (succeeded, failed, cancelled), written to the history.

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::physical_plan::SendableRecordBatchStream;
use futures::StreamExt;

use crate::billing::Pricing;
use crate::catalog;
use crate::config::EngineConfig;
use crate::error::{Error, ErrorKind, Result};
use crate::execution::{Failure, Origin};
use crate::history::{HistoryEntry, QueryHistory, TableRead};
use crate::model::{
    AthenaError, QueryExecution, QueryExecutionContext, QueryExecutionState, QueryExecutionStatistics,
    QueryExecutionStatus, StartQueryExecution, StatementType,
};
use crate::session::SessionChange;
use crate::storage::ScanMeter;
use crate::storage::meter::{CUTOFF_MESSAGE, is_scan_limit};

pub(crate) fn now_epoch_seconds() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or_default()
}

/// A running query: pull its batches, then finish it to get its record.
pub struct Query {
    pub(crate) id: String,
    pub(crate) text: String,
    pub(crate) context: Option<QueryExecutionContext>,
    pub(crate) request: StartQueryExecution,
    pub(crate) work_group: String,
    pub(crate) pricing: Pricing,
    pub(crate) meter: Arc<ScanMeter>,
    pub(crate) scans: Arc<catalog::ScanLog>,
    pub(crate) history: Option<(Arc<QueryHistory>, String, Option<String>)>,
    pub(crate) database: Option<String>,
    pub(crate) daily_budget: Option<u64>,
    pub(crate) submitted: f64,
    pub(crate) queue_ms: u64,
    pub(crate) started: Instant,
    pub(crate) planning_ms: u64,
    pub(crate) statement_type: StatementType,
    pub(crate) stream: Option<SendableRecordBatchStream>,
    /// What the statement changed in its session.
    pub(crate) changes: Vec<SessionChange>,
    /// What a CTAS, INSERT or UNLOAD wrote.
    pub(crate) written: Option<crate::athena::WriteStats>,
}

impl Query {
    pub(crate) fn new(request: &StartQueryExecution, config: &EngineConfig, origin: Origin) -> Self {
        let user = origin.user.or_else(|| config.user.clone());
        Self {
            id: origin.id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
            text: request.query_string.clone(),
            context: request.query_execution_context.clone(),
            request: request.clone(),
            work_group: request.work_group.clone().unwrap_or_else(|| config.work_group.clone()),
            pricing: config.pricing,
            meter: Arc::new(ScanMeter::with_cutoff(config.bytes_scanned_cutoff)),
            scans: Arc::default(),
            history: config.history.clone().map(|h| (h, config.source.clone(), user)),
            database: None,
            daily_budget: None,
            submitted: origin.submitted.unwrap_or_else(now_epoch_seconds),
            queue_ms: origin.queue_ms,
            started: Instant::now(),
            planning_ms: 0,
            statement_type: StatementType::Dml,
            stream: None,
            changes: vec![],
            written: None,
        }
    }

    /// What the statement changed in its session (for front ends that hand it back).
    pub fn session_changes(&self) -> &[SessionChange] {
        &self.changes
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn statement_type(&self) -> StatementType {
        self.statement_type
    }

    /// Where the query's results go: its own OutputLocation or its workgroup's.
    pub fn output_location(&self) -> Option<String> {
        self.request.result_configuration.as_ref().and_then(|r| r.output_location.clone())
    }

    /// The result's columns.
    pub fn schema(&self) -> Option<SchemaRef> {
        self.stream.as_ref().map(|s| s.schema())
    }

    /// The catalog tables this query scanned: partitions and files (known once it is planned).
    pub fn table_scans(&self) -> Vec<catalog::TableScan> {
        self.scans.scans()
    }

    /// Bytes scanned so far (for progress lines).
    pub fn bytes_scanned(&self) -> u64 {
        self.meter.bytes()
    }

    /// The next batch of results; `None` at the end.
    pub async fn next_batch(&mut self) -> Option<Result<RecordBatch>> {
        let next = self.stream.as_mut()?.next().await?;
        Some(next.map_err(Error::from))
    }

    /// The record of a query whose results were all delivered.
    pub fn succeed(mut self) -> QueryExecution {
        self.stream = None;
        self.record(QueryExecutionState::Succeeded, None)
    }

    /// The record of a query that failed while running. A scan limit cancels rather than fails.
    pub fn fail(mut self, error: Error) -> Failure {
        self.stream = None;
        let execution = self.record_error(&error);
        Failure { error, execution }
    }

    /// The record of a query stopped by `error`, while planning (reading file statistics counts
    /// as scanning) or running: the scan limit cancels it, anything else fails it.
    pub(crate) fn record_error(&self, error: &Error) -> QueryExecution {
        if self.meter.exceeded() || is_scan_limit(error) {
            self.record_failure(QueryExecutionState::Cancelled, CUTOFF_MESSAGE, ErrorKind::ScanLimit)
        } else {
            self.record_failure(QueryExecutionState::Failed, &error.to_string(), error.kind())
        }
    }

    /// Stops the query (dropping its stream stops all reads) and returns its record.
    pub fn cancel(mut self, reason: &str) -> QueryExecution {
        self.stream = None;
        self.record_failure(QueryExecutionState::Cancelled, reason, ErrorKind::Cancelled)
    }

    /// The record of a query that ended without succeeding, with its kind of failure.
    pub(crate) fn record_failure(&self, state: QueryExecutionState, reason: &str, kind: ErrorKind) -> QueryExecution {
        self.finish(state, Some(reason.to_string()), Some(AthenaError::new(kind, reason)))
    }

    /// The record of a query that ended as `state`, without an error.
    fn record(&self, state: QueryExecutionState, reason: Option<String>) -> QueryExecution {
        self.finish(state, reason, None)
    }

    /// The final record, also written to the history when there is one.
    fn finish(&self, state: QueryExecutionState, reason: Option<String>, error: Option<AthenaError>) -> QueryExecution {
        let mut execution = self.execution(state, reason);
        execution.status.athena_error = error;
        if let Some((history, source, user)) = &self.history {
            if let Some(budget) = self.daily_budget {
                let before = history.bytes_on_day(self.submitted, &self.work_group).unwrap_or(0);
                let today = before + execution.statistics.data_scanned_in_bytes;
                if today > budget {
                    execution.warnings.push(format!(
                        "workgroup {} has scanned {today} bytes today (UTC), past its daily budget of {budget} bytes",
                        self.work_group
                    ));
                }
            }
            let entry = HistoryEntry {
                execution: execution.clone(),
                source: source.clone(),
                user: user.clone(),
                database: self.database.clone(),
                tables: self.scans.scans().iter().map(TableRead::from).collect(),
            };
            // the query itself is done; losing its history line must still be visible
            if let Err(e) = history.record(&entry) {
                eprintln!("warning: query {} was not recorded in the history: {e}", execution.query_execution_id);
            }
        }
        execution
    }

    fn execution(&self, state: QueryExecutionState, reason: Option<String>) -> QueryExecution {
        let scanned = self.meter.bytes();
        // DDL and failed queries are free; cancelled ones pay for what they read.
        let billable = !matches!(state, QueryExecutionState::Failed) && self.statement_type != StatementType::Ddl;
        let billed = if billable { self.pricing.billed_bytes(scanned) } else { 0 };
        let elapsed = self.started.elapsed().as_millis() as u64;
        QueryExecution {
            query_execution_id: self.id.clone(),
            query: self.text.clone(),
            statement_type: self.statement_type,
            result_configuration: self.request.result_configuration.clone(),
            query_execution_context: self.context.clone(),
            status: QueryExecutionStatus {
                state,
                state_change_reason: reason,
                submission_date_time: self.submitted,
                completion_date_time: Some(now_epoch_seconds()),
                athena_error: None,
            },
            statistics: QueryExecutionStatistics {
                data_scanned_in_bytes: scanned,
                engine_execution_time_in_millis: elapsed,
                query_planning_time_in_millis: self.planning_ms,
                query_queue_time_in_millis: self.queue_ms,
                total_execution_time_in_millis: elapsed + self.queue_ms,
                billed_bytes: billed,
                cost_usd: self.pricing.cost_usd(billed),
                data_manifest_location: self.written.as_ref().and_then(|w| w.manifest.clone()),
                rows_written: self.written.as_ref().map(|w| w.rows),
                bytes_written: self.written.as_ref().map(|w| w.bytes),
            },
            work_group: self.work_group.clone(),
            warnings: vec![],
        }
    }
}
