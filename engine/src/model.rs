//! Athena's request and response shapes, defined once for every front end (PascalCase on the wire).

use crate::error::ErrorKind;
use serde::{Deserialize, Serialize};

/// A request to run one query string, as Athena's StartQueryExecution takes it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StartQueryExecution {
    pub query_string: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_execution_context: Option<QueryExecutionContext>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_configuration: Option<ResultConfiguration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work_group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_parameters: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_request_token: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct QueryExecutionContext {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ResultConfiguration {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_location: Option<String>,
}

/// Athena's StatementType.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum StatementType {
    Ddl,
    Dml,
    Utility,
}

impl std::fmt::Display for StatementType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Ddl => "DDL",
            Self::Dml => "DML",
            Self::Utility => "UTILITY",
        })
    }
}

/// Athena's QueryExecutionState.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum QueryExecutionState {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl std::fmt::Display for QueryExecutionState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Queued => "QUEUED",
            Self::Running => "RUNNING",
            Self::Succeeded => "SUCCEEDED",
            Self::Failed => "FAILED",
            Self::Cancelled => "CANCELLED",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct QueryExecutionStatus {
    pub state: QueryExecutionState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_change_reason: Option<String>,
    /// Seconds since the epoch, as the AWS JSON protocol encodes timestamps.
    pub submission_date_time: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_date_time: Option<f64>,
    /// Why a query failed, by kind, as Athena's AthenaError says it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub athena_error: Option<AthenaError>,
}

/// Athena's AthenaError: the category (1 system, 2 user, 3 other), a numeric type, whether a
/// retry may succeed, the message — and glaux's kind, which every front end maps from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AthenaError {
    pub error_category: u8,
    pub error_type: u16,
    pub retryable: bool,
    pub error_message: String,
    pub error_kind: ErrorKind,
}

impl AthenaError {
    pub fn new(kind: ErrorKind, message: &str) -> Self {
        // system failures are glaux's (category 1), the rest the query's (2)
        let (error_category, error_type, retryable) = match kind {
            ErrorKind::Syntax => (2, 1001, false),
            ErrorKind::NotFound => (2, 1002, false),
            ErrorKind::AlreadyExists => (2, 1003, false),
            ErrorKind::InvalidInput => (2, 1004, false),
            ErrorKind::Permission => (2, 1005, false),
            ErrorKind::ScanLimit => (2, 1006, false),
            ErrorKind::Cancelled => (3, 1007, true),
            ErrorKind::Timeout => (1, 1008, true),
            ErrorKind::Storage => (1, 1009, true),
            ErrorKind::Internal => (1, 1010, false),
            ErrorKind::Throttled => (1, 1011, true),
        };
        Self { error_category, error_type, retryable, error_message: message.to_string(), error_kind: kind }
    }
}

/// Athena's QueryExecutionStatistics, plus the bill: BilledBytes and CostUsd.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct QueryExecutionStatistics {
    pub data_scanned_in_bytes: u64,
    pub engine_execution_time_in_millis: u64,
    pub query_planning_time_in_millis: u64,
    pub query_queue_time_in_millis: u64,
    pub total_execution_time_in_millis: u64,
    pub billed_bytes: u64,
    pub cost_usd: f64,
    /// CTAS, INSERT, UNLOAD: the object listing every file written (awswrangler reads it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_manifest_location: Option<String>,
    /// glaux: the rows and bytes a CTAS, INSERT or UNLOAD wrote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows_written: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_written: Option<u64>,
}

/// One query's record: what ran, how it ended, what it read and cost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct QueryExecution {
    pub query_execution_id: String,
    pub query: String,
    pub statement_type: StatementType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_configuration: Option<ResultConfiguration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_execution_context: Option<QueryExecutionContext>,
    pub status: QueryExecutionStatus,
    pub statistics: QueryExecutionStatistics,
    pub work_group: String,
    /// glaux: things the user should know that did not stop the query (a workgroup's daily
    /// budget passed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}
