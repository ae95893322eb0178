//! The catalog's one error type.

/// What can go wrong reading or changing a catalog; messages name table, partition and property.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("table {database}.{table}: {reason}")]
    Table { database: String, table: String, reason: String },
    #[error("{0} does not exist")]
    NotFound(String),
    #[error("{0} already exists")]
    AlreadyExists(String),
    #[error("{0}")]
    Invalid(String),
    #[error("AWS Glue {operation}: {message}")]
    Glue { operation: &'static str, message: String },
    #[error("catalog storage: {0}")]
    Storage(String),
    #[error("catalog document is not valid Glue JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// Result alias for the catalog.
pub type Result<T, E = Error> = std::result::Result<T, E>;
