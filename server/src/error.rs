//! The server's errors and how each protocol shows them — the one place HTTP errors are made.
//! Athena's API answers `{"__type": …, "Message": …}` with 400 (AWS JSON 1.1); the Trino
//! protocol answers an `error` object inside a query result, or a plain 4xx for bad requests.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use glaux_engine::ErrorKind;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is wrong: a missing or bad field, an unknown id, a query too long.
    #[error("{0}")]
    InvalidRequest(String),
    /// No query with that id (for this caller).
    #[error("{0}")]
    QueryNotFound(String),
    /// The body is not the JSON the operation takes.
    #[error("{0}")]
    Serialization(String),
    /// No such Athena operation.
    #[error("{0}")]
    UnknownOperation(String),
    /// Catalog objects that do not exist, or the catalog failing.
    #[error("{0}")]
    Metadata(String),
    /// No or wrong credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// A SigV4 signature that does not verify (Athena's InvalidSignatureException).
    #[error("{0}")]
    BadSignature(String),
    /// The caller may not do this (another principal's workgroup, an admin's operation).
    #[error("{0}")]
    AccessDenied(String),
    /// The server's queue is full; the client should retry later.
    #[error("{0}")]
    Throttled(String),
    /// A named resource (a prepared statement) that does not exist.
    #[error("{0}")]
    ResourceNotFound(String),
    /// Something inside glaux failed.
    #[error("{0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    fn athena_type(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) | Self::QueryNotFound(_) => "InvalidRequestException",
            Self::Serialization(_) => "SerializationException",
            Self::UnknownOperation(_) => "UnknownOperationException",
            Self::Metadata(_) => "MetadataException",
            Self::Unauthorized(_) => "UnrecognizedClientException",
            Self::BadSignature(_) => "InvalidSignatureException",
            Self::AccessDenied(_) => "AccessDeniedException",
            Self::Throttled(_) => "TooManyRequestsException",
            Self::ResourceNotFound(_) => "ResourceNotFoundException",
            Self::Internal(_) => "InternalServerException",
        }
    }

    /// The kind of failure, for records of requests refused before they became queries.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidRequest(_) | Self::Serialization(_) | Self::UnknownOperation(_) => ErrorKind::InvalidInput,
            Self::QueryNotFound(_) | Self::Metadata(_) | Self::ResourceNotFound(_) => ErrorKind::NotFound,
            Self::Unauthorized(_) | Self::BadSignature(_) | Self::AccessDenied(_) => ErrorKind::Permission,
            Self::Throttled(_) => ErrorKind::Throttled,
            Self::Internal(_) => ErrorKind::Internal,
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            Self::Unauthorized(_) | Self::BadSignature(_) => StatusCode::FORBIDDEN,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// As Athena's JSON API answers.
    pub fn athena(&self) -> Response {
        let body = serde_json::json!({"__type": self.athena_type(), "Message": self.to_string()});
        let mut response = (self.status(), body.to_string()).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-amz-json-1.1"));
        response
    }

    /// As the Trino protocol answers a request it cannot take (no query was created).
    pub fn trino(&self) -> Response {
        let status = match self {
            Self::Unauthorized(_) | Self::BadSignature(_) => StatusCode::UNAUTHORIZED,
            Self::AccessDenied(_) => StatusCode::FORBIDDEN,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::QueryNotFound(_) => StatusCode::NOT_FOUND,
            _ => StatusCode::BAD_REQUEST,
        };
        let mut response = (status, format!("{self}\n")).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"glaux\""));
        }
        response
    }
}

/// The Trino error object of a failed or cancelled query: errorName, errorCode and errorType
/// by the kind of failure.
pub fn trino_error(message: &str, kind: ErrorKind) -> serde_json::Value {
    let (name, code, category) = match kind {
        ErrorKind::Syntax => ("SYNTAX_ERROR", 1, "USER_ERROR"),
        ErrorKind::Cancelled => ("USER_CANCELED", 3, "USER_ERROR"),
        ErrorKind::Permission => ("PERMISSION_DENIED", 4, "USER_ERROR"),
        ErrorKind::InvalidInput => ("INVALID_ARGUMENTS", 7, "USER_ERROR"),
        ErrorKind::NotFound => ("NOT_FOUND", 44, "USER_ERROR"),
        ErrorKind::AlreadyExists => ("ALREADY_EXISTS", 45, "USER_ERROR"),
        ErrorKind::Internal => ("GENERIC_INTERNAL_ERROR", 65_536, "INTERNAL_ERROR"),
        ErrorKind::Timeout => ("EXCEEDED_TIME_LIMIT", 131_075, "INSUFFICIENT_RESOURCES"),
        ErrorKind::ScanLimit => ("EXCEEDED_SCAN_LIMIT", 131_081, "INSUFFICIENT_RESOURCES"),
        ErrorKind::Storage => ("EXTERNAL_ERROR", 16_777_216, "EXTERNAL"),
        ErrorKind::Throttled => ("QUERY_QUEUE_FULL", 131_076, "INSUFFICIENT_RESOURCES"),
    };
    serde_json::json!({
        "message": message,
        "errorCode": code,
        "errorName": name,
        "errorType": category,
        "failureInfo": {"type": name, "message": message, "suppressed": [], "stack": []},
    })
}
