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
    /// A database, table, workgroup, prepared statement … that does not exist.
    #[error("{0}")]
    NotFound(String),
    /// Something to be created exists already.
    #[error("{0}")]
    AlreadyExists(String),
    /// Input that is not valid: a table property, a parameter, a value, a statement in the
    /// wrong place. The message names what and where.
    #[error("{0}")]
    InvalidInput(String),
    /// A catalog operation failed; the catalog's own error says which and why.
    #[error("{0}")]
    Catalog(#[from] glaux_catalog::Error),
    /// The query ran longer than its time limit.
    #[error("{0}")]
    Timeout(String),
    /// glaux itself failed (threads, files of the warehouse).
    #[error("internal error: {0}")]
    Internal(String),
    /// The statement would do something its front end does not allow (write outside the
    /// allowed locations, change process settings).
    #[error("not allowed: {0}")]
    Permission(String),
    /// The query was cancelled by its caller or by a limit.
    #[error("query cancelled: {0}")]
    Cancelled(String),
}

/// What kind of failure an [`Error`] is: what front ends map to their protocols' codes (Athena's
/// error category and type, Trino's errorName, CLI exit codes), never the message text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorKind {
    Syntax,
    NotFound,
    AlreadyExists,
    InvalidInput,
    Permission,
    ScanLimit,
    Cancelled,
    Timeout,
    Storage,
    /// Too much at once: a full queue. Retry later.
    Throttled,
    Internal,
}

impl Error {
    /// The kind of this failure, from its variant and, for wrapped errors, from the types inside.
    pub fn kind(&self) -> ErrorKind {
        if crate::storage::meter::is_scan_limit(self) {
            return ErrorKind::ScanLimit;
        }
        match self {
            Error::Syntax(_) => ErrorKind::Syntax,
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::AlreadyExists(_) => ErrorKind::AlreadyExists,
            Error::InvalidInput(_) | Error::Location { .. } | Error::Config(_) => ErrorKind::InvalidInput,
            Error::Permission(_) => ErrorKind::Permission,
            Error::Cancelled(_) => ErrorKind::Cancelled,
            Error::Timeout(_) => ErrorKind::Timeout,
            Error::Internal(_) => ErrorKind::Internal,
            Error::Storage(e) => storage_kind(e),
            Error::Catalog(e) => match e {
                glaux_catalog::Error::NotFound(_) => ErrorKind::NotFound,
                glaux_catalog::Error::AlreadyExists(_) => ErrorKind::AlreadyExists,
                glaux_catalog::Error::Table { .. } | glaux_catalog::Error::Invalid(_) => ErrorKind::InvalidInput,
                glaux_catalog::Error::Glue { .. }
                | glaux_catalog::Error::Storage(_)
                | glaux_catalog::Error::Json(_) => ErrorKind::Storage,
            },
            Error::Query(e) => datafusion_kind(e),
        }
    }
}

fn storage_kind(e: &object_store::Error) -> ErrorKind {
    match e {
        object_store::Error::NotFound { .. } => ErrorKind::NotFound,
        object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. } => {
            ErrorKind::Permission
        }
        _ => ErrorKind::Storage,
    }
}

/// DataFusion's own categories: the SQL and the plan are the user's, storage is storage,
/// errors glaux raised inside DataFusion keep their kind.
fn datafusion_kind(e: &DataFusionError) -> ErrorKind {
    match e.find_root() {
        DataFusionError::SQL(..) => ErrorKind::Syntax,
        DataFusionError::ObjectStore(e) => storage_kind(e),
        DataFusionError::External(inner) => match inner.downcast_ref::<Error>() {
            Some(ours) => ours.kind(),
            None => match inner.downcast_ref::<object_store::Error>() {
                Some(e) => storage_kind(e),
                None => ErrorKind::InvalidInput,
            },
        },
        DataFusionError::Internal(_) | DataFusionError::ResourcesExhausted(_) => ErrorKind::Internal,
        DataFusionError::IoError(_) => ErrorKind::Storage,
        _ => ErrorKind::InvalidInput,
    }
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

/// DataFusion wraps causes in layers ("External error: Object Store error: …"); users want the
/// innermost cause, with the context that names the object, and no internal categories.
fn describe_datafusion(e: &DataFusionError) -> String {
    let root = e.find_root();
    let text = match root {
        DataFusionError::SQL(parser, _) => format!("syntax error: {parser}"),
        other => other.strip_backtrace(),
    };
    tidy(&text)
}

/// Category prefixes DataFusion and its crates stack in front of a message.
const PREFIXES: [&str; 12] = [
    "Error during planning: ",
    "Execution error: ",
    "Internal error: ",
    "External error: ",
    "Arrow error: ",
    "Object Store error: ",
    "Parquet error: ",
    "Schema error: ",
    "Generic S3 error: ",
    "Json error: ",
    "Csv error: ",
    "IO error: ",
];

/// Makes a message readable: prefixes off, S3's XML error bodies reduced to code and message,
/// DataFusion's "please file a bug" boilerplate dropped.
pub(crate) fn tidy(text: &str) -> String {
    let mut out = text.to_string();
    for p in PREFIXES {
        out = out.replace(p, "");
    }
    if let Some(cut) = out.find(".\nThis issue was likely caused by a bug") {
        out.truncate(cut);
    }
    if let Some(start) = out.find("<?xml").or_else(|| out.find("<Error>")) {
        let tag = |name: &str| {
            let open = format!("<{name}>");
            let from = out.find(&open)? + open.len();
            let to = out[from..].find(&format!("</{name}>"))? + from;
            Some(out[from..to].to_string())
        };
        let summary = match (tag("Code"), tag("Message")) {
            (Some(code), Some(message)) => format!("{code}: {message}"),
            (Some(code), None) => code,
            _ => String::new(),
        };
        out.truncate(start);
        out = format!("{} {summary}", out.trim_end());
    }
    out.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::tidy;

    #[test]
    fn messages_lose_their_wrapping() {
        let raw = "Error during planning: cannot read 's3://b/k': Object Store error: Generic S3 error: Error performing list \
                   request: Server returned non-2xx status code: 404 Not Found: <?xml version=\"1.0\"?>\n<Error><Code>NoSuchBucket</Code>\
                   <Message>The specified bucket does not exist</Message></Error>";
        assert_eq!(
            tidy(raw),
            "cannot read 's3://b/k': Error performing list request: Server returned non-2xx status code: 404 Not Found: \
             NoSuchBucket: The specified bucket does not exist"
        );
        let internal = "Internal error: No files for table.\nThis issue was likely caused by a bug in DataFusion's code. Please help";
        assert_eq!(tidy(internal), "No files for table");
    }
}
