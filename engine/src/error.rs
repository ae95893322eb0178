//! The engine's one error type; every failure a user can see passes through here.

use datafusion::error::DataFusionError;

/// Everything that can go wrong while planning or running a query.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The SQL text does not parse; the message carries line and column.
    #[error("syntax error: {0}")]
    Syntax(String),
    /// Planning or execution failed inside DataFusion (bad column, type mismatch, bad file…).
    #[error("{}", describe_datafusion(.0))]
    Query(#[from] DataFusionError),
    /// Talking to storage failed; the message names bucket and key.
    #[error("storage error: {0}")]
    Storage(#[from] object_store::Error),
    /// A location is not something glaux can read.
    #[error("invalid location '{location}': {reason}")]
    Location { location: String, reason: String },
    /// Settings (environment, flags) are unusable.
    #[error("configuration error: {0}")]
    Config(String),
    /// The query was cancelled by its caller or by a limit.
    #[error("query cancelled: {0}")]
    Cancelled(String),
}

/// Result alias for the engine.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<Error> for DataFusionError {
    fn from(e: Error) -> Self {
        match e {
            Error::Query(e) => e,
            other => DataFusionError::External(Box::new(other)),
        }
    }
}

/// DataFusion wraps causes in layers ("External error: Object Store error: …");
/// users want the innermost cause, with the context that names the object.
fn describe_datafusion(e: &DataFusionError) -> String {
    let root = e.find_root();
    let text = match root {
        DataFusionError::SQL(parser, _) => format!("syntax error: {parser}"),
        DataFusionError::ObjectStore(os) => format!("storage error: {os}"),
        DataFusionError::ArrowError(a, ctx) => match ctx {
            Some(ctx) => format!("{a} ({ctx})"),
            None => a.to_string(),
        },
        other => other.strip_backtrace(),
    };
    text.trim().to_string()
}
