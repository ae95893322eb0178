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
    /// The statement would do something its front end does not allow (write outside the
    /// allowed locations, change process settings).
    #[error("not allowed: {0}")]
    Permission(String),
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
