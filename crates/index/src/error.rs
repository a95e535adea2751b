//! The crate's one error type. Variants carry typed fields so callers (the server's gRPC edge)
//! can turn them into messages that name the field and the limit.

use std::path::PathBuf;

/// Everything that can go wrong in `hirevec-index`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A vector of the wrong length.
    #[error("vector has {received} dimensions, expected {expected}")]
    Dimension {
        /// The segment's input dimension.
        expected: usize,
        /// What the caller passed.
        received: usize,
    },
    /// A NaN or infinite component.
    #[error("vector component {index} is not finite ({value})")]
    NonFinite {
        /// Position of the first bad component.
        index: usize,
        /// Its value.
        value: f32,
    },
    /// A vector whose (truncated) norm is zero cannot be normalised for cosine.
    #[error("vector has zero norm in its first {stored_dim} components")]
    ZeroVector {
        /// The number of components that were kept.
        stored_dim: usize,
    },
    /// The id is already in this segment.
    #[error("id {id} is already in the segment")]
    DuplicateId {
        /// The duplicate id.
        id: u32,
    },
    /// The growing segment reached its capacity.
    #[error("segment is full ({capacity} vectors)")]
    Full {
        /// The capacity it was created with.
        capacity: usize,
    },
    /// The growing segment was frozen for sealing and takes no more inserts.
    #[error("segment is frozen")]
    Frozen,
    /// A configuration or search parameter out of range.
    #[error("invalid {field}: {reason}")]
    InvalidConfig {
        /// The parameter's name (`m`, `stored_dim`, `top_k`, ...).
        field: &'static str,
        /// What is wrong and what the limit is.
        reason: String,
    },
    /// The file does not start with the segment magic number.
    #[error("not a hirevec segment file (bad magic)")]
    BadMagic,
    /// The file was written by a format version this build cannot read.
    #[error("segment format version {found} is not supported (this build reads {supported})")]
    UnsupportedVersion {
        /// The version in the file.
        found: u32,
        /// The version this build reads.
        supported: u32,
    },
    /// The file fails a structural check or its checksum.
    #[error("corrupt segment: {0}")]
    Corrupt(String),
    /// An I/O error, with the path it happened on.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }

    pub(crate) fn corrupt(msg: impl Into<String>) -> Self {
        Error::Corrupt(msg.into())
    }

    /// True for errors that mean the bytes on disk are damaged (the caller should rebuild).
    pub fn is_corruption(&self) -> bool {
        matches!(self, Error::BadMagic | Error::UnsupportedVersion { .. } | Error::Corrupt(_))
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
