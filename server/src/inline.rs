//! One query run to its end and answered in one reply — Lambda's direct invocation: the
//! event is a StartQueryExecution body (plus MaxRows), the reply the query's record and its
//! first rows, within a byte budget. Failures are records in state FAILED, never errors.

use std::sync::Arc;
use std::time::Duration;

use glaux_engine::{
    QueryExecution, QueryExecutionState, QueryExecutionStatistics, QueryExecutionStatus, StatementType,
};
use serde_json::{Value, json};

use crate::athena::{page, result_set, start_request, throttled};
use crate::error::Error;
use crate::runs::SessionSpec;
use crate::{Principal, Server};

/// How much of a reply may be rows: Lambda's response limit is 6 MB, and the record and the
/// JSON around the rows need some of it.
pub const ROWS_BUDGET: usize = 5_500_000;

/// Rows a reply holds when the event does not say.
const DEFAULT_MAX_ROWS: usize = 1000;

/// The rows of one page taken at a time while filling a reply.
const CHUNK: usize = 500;

/// When a direct invocation has to stop waiting.
pub struct Deadline(pub tokio::time::Instant);

impl Server {
    /// Runs `event` (a StartQueryExecution body with an optional `MaxRows`) to its end and
    /// replies `{QueryExecution, ResultSet}`: the header row and up to MaxRows rows inline,
    /// fewer if they would pass [`ROWS_BUDGET`] bytes. A reply that holds fewer rows than the
    /// result says so (`ResultsTruncated`, `RowsReturned`, `TotalRows`) and where the whole
    /// result is (`ResultLocation`, the CSV in the OutputLocation). A query still running at
    /// `deadline` is cancelled.
    pub async fn run_inline(self: &Arc<Self>, mut event: Value, caller: Principal, deadline: Deadline) -> Value {
        let query = event.get("QueryString").and_then(Value::as_str).unwrap_or_default().to_string();
        let max_rows = match event.as_object_mut().and_then(|o| o.remove("MaxRows")) {
            None | Some(Value::Null) => Ok(DEFAULT_MAX_ROWS),
            Some(v) => v
                .as_u64()
                .map(|n| n as usize)
                .ok_or_else(|| Error::InvalidRequest(format!("MaxRows must be a whole number of rows, not {v}"))),
        };
        let request = max_rows.and_then(|max| Ok((start_request(self, &event)?, max)));
        let (request, max_rows) = match request {
            Ok(r) => r,
            Err(e) => return json!({"QueryExecution": refused(query, &e)}),
        };
        let run = match self.runs.submit(request, caller, SessionSpec::default()) {
            Ok(run) => run,
            Err(full) => return json!({"QueryExecution": refused(query, &throttled(full))}),
        };
        loop {
            let left = deadline.0.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                run.cancel();
                // it ends CANCELLED at the next batch boundary
                run.wait(Duration::from_secs(5)).await;
                break;
            }
            run.wait(left).await;
            if run.is_finished() {
                break;
            }
        }
        let mut execution = run.execution();
        if execution.status.state == QueryExecutionState::Running && !run.is_finished() {
            execution.status.state_change_reason = Some("the function's time ran out while the query ran".into());
        }
        let mut reply = json!({"QueryExecution": execution});
        let Some(results) = run.results().filter(|_| execution.status.state == QueryExecutionState::Succeeded) else {
            return reply;
        };
        let header = execution.statement_type == StatementType::Dml;
        let wanted = max_rows + usize::from(header);
        let (mut rows, mut bytes, mut budget_hit) = (vec![], 0, false);
        while rows.len() < wanted {
            let chunk = match page(&results, header, rows.len(), CHUNK.min(wanted - rows.len())) {
                Ok(c) => c,
                Err(e) => {
                    reply["Message"] = json!(format!("the result could not be read back: {e}"));
                    break;
                }
            };
            if chunk.is_empty() {
                break;
            }
            for row in chunk {
                let size = row.to_string().len() + 1;
                if bytes + size > ROWS_BUDGET {
                    budget_hit = true;
                    break;
                }
                bytes += size;
                rows.push(row);
            }
            if budget_hit {
                break;
            }
        }
        let returned = rows.len() - usize::from(header && !rows.is_empty());
        reply["ResultSet"] = result_set(&results, rows);
        if returned < results.rows {
            let location = execution.result_configuration.as_ref().and_then(|r| r.output_location.clone());
            let why = if budget_hit {
                format!("the first {returned} rows fill Lambda's response limit")
            } else {
                format!("MaxRows is {max_rows}")
            };
            reply["ResultsTruncated"] = json!(true);
            reply["Message"] = json!(match &location {
                Some(l) => format!("{returned} of {} rows are inline ({why}); all of them are in {l}", results.rows),
                None => format!(
                    "{returned} of {} rows are inline ({why}); give ResultConfiguration.OutputLocation to keep all of them",
                    results.rows
                ),
            });
            reply["ResultLocation"] = json!(location);
        }
        reply["RowsReturned"] = json!(returned);
        reply["TotalRows"] = json!(results.rows);
        reply
    }
}

/// The record of a request refused before it ran: FAILED with the reason.
fn refused(query: String, error: &Error) -> QueryExecution {
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or_default();
    QueryExecution {
        query_execution_id: uuid::Uuid::new_v4().to_string(),
        query,
        statement_type: StatementType::Dml,
        result_configuration: None,
        query_execution_context: None,
        status: QueryExecutionStatus {
            state: QueryExecutionState::Failed,
            state_change_reason: Some(error.to_string()),
            submission_date_time: now,
            completion_date_time: Some(now),
            athena_error: Some(glaux_engine::AthenaError::new(error.kind(), &error.to_string())),
        },
        statistics: QueryExecutionStatistics::default(),
        work_group: glaux_engine::PRIMARY.into(),
        warnings: vec![],
    }
}
