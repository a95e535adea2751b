//! The server's error type, and the one place where errors become gRPC statuses.
//!
//! Every variant carries typed fields so that a client-facing message can name the offending
//! field; `anyhow` stays in `main.rs`, tools and tests.
use std::path::PathBuf;

/// Everything that can go wrong inside the server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request field is malformed (`field` is a path such as `documents[3].payload["age"]`).
    #[error("{field}: {reason}")]
    InvalidArgument { field: String, reason: String },
    /// A vector has the wrong number of values.
    #[error("{field}: expected {expected} values (the collection's dim), received {received}")]
    Dimension { field: String, expected: usize, received: usize },
    /// The named collection does not exist.
    #[error("collection {name:?} not found")]
    CollectionNotFound { name: String },
    /// A collection with this name already exists.
    #[error("collection {name:?} already exists")]
    CollectionExists { name: String },
    /// Stored data failed a consistency check.
    #[error("corrupt data in {what}: {detail}")]
    Corrupt { what: String, detail: String },
    /// The server refuses work it cannot take now; the client should back off and retry.
    #[error("overloaded: {what}")]
    Overloaded { what: String },
    /// A collection ran out of internal ids (u32).
    #[error("collection {name:?} has used all 2^32 internal ids")]
    IdsExhausted { name: String },
    /// RocksDB failed (the message is RocksDB's own).
    #[error("storage failed during {op}: {message}")]
    Storage { op: &'static str, message: String },
    /// The vector index failed.
    #[error("index: {0}")]
    Index(#[from] hirevec_index::Error),
    /// A filesystem operation failed.
    #[error("{op} {path}: {source}", path = path.display())]
    Io { op: &'static str, path: PathBuf, source: std::io::Error },
    /// The request is valid but the collection's state does not allow it (e.g. its embedding
    /// model is not loaded or changed).
    #[error("{what}")]
    FailedPrecondition { what: String },
    /// A model named at start-up could not be loaded.
    #[error("cannot load model {id:?}: {reason}")]
    ModelLoad { id: String, reason: String },
    /// A model failed or refused a request.
    #[error("model: {0}")]
    Model(#[from] crate::models::ModelError),
    /// The server is shutting down and takes no more work.
    #[error("the server is shutting down")]
    ShuttingDown,
    /// A background task panicked or was cancelled.
    #[error("internal error: {what}")]
    Internal { what: String },
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Shorthand for [`Error::InvalidArgument`].
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidArgument { field: field.into(), reason: reason.into() }
    }
}

impl From<Error> for tonic::Status {
    fn from(err: Error) -> Self {
        let message = err.to_string();
        match &err {
            Error::InvalidArgument { .. } | Error::Dimension { .. } => {
                tonic::Status::invalid_argument(message)
            }
            Error::CollectionNotFound { .. } => tonic::Status::not_found(message),
            Error::CollectionExists { .. } => tonic::Status::already_exists(message),
            Error::Corrupt { .. } => tonic::Status::data_loss(message),
            Error::Index(e) if e.is_corruption() => tonic::Status::data_loss(message),
            Error::Overloaded { .. } | Error::IdsExhausted { .. } => {
                tonic::Status::resource_exhausted(message)
            }
            Error::FailedPrecondition { .. } => tonic::Status::failed_precondition(message),
            Error::Model(m) => {
                use crate::models::ModelError as M;
                match m {
                    M::Overloaded { .. } => tonic::Status::resource_exhausted(message),
                    M::RequestTooLarge { .. }
                    | M::UnknownTask { .. }
                    | M::InstructionNotSupported { .. }
                    | M::BadDimensions { .. }
                    | M::PromptTooLong { .. } => tonic::Status::invalid_argument(message),
                    M::WorkerGone => tonic::Status::unavailable(message),
                    _ => {
                        tracing::error!(error = %message, "model failed");
                        tonic::Status::internal(message)
                    }
                }
            }
            Error::ShuttingDown => tonic::Status::unavailable(message),
            Error::Storage { .. }
            | Error::Index(_)
            | Error::Io { .. }
            | Error::Internal { .. }
            | Error::ModelLoad { .. } => {
                tracing::error!(error = %message, "request failed");
                tonic::Status::internal(message)
            }
        }
    }
}
