//! What can stop the function from starting.

/// Errors of glaux-lambda's cold start; once started, query failures are records, not errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting in the function's environment is wrong.
    #[error("{name}={value}: {reason}")]
    Setting { name: &'static str, value: String, reason: String },
    /// The catalog, history or workgroups could not be opened.
    #[error("cannot open the {what}: {reason}")]
    Open { what: String, reason: String },
    #[error(transparent)]
    Engine(#[from] glaux_engine::Error),
    #[error(transparent)]
    Server(#[from] glaux_server::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
