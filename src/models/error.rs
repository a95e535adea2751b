//! The model layer's one error type. Variants carry the fields a caller needs to act (which file,
//! which limit); the server maps them to gRPC codes in one place (overload -> RESOURCE_EXHAUSTED,
//! bad input -> INVALID_ARGUMENT, missing model -> NOT_FOUND).
use std::path::PathBuf;

/// Errors of loading and running embedding and reranking models.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A file the model needs is not in its folder.
    #[error("model file {file} is missing in {dir}: {hint}")]
    MissingFile {
        /// The folder that was searched.
        dir: PathBuf,
        /// The file name that was expected there.
        file: String,
        /// How to get it.
        hint: String,
    },
    /// `--model` named neither an existing folder nor a repository in the local Hugging Face cache.
    #[error("model {id:?} is neither a folder nor in the Hugging Face cache at {cache}: {hint}")]
    NotFound {
        /// What the caller asked for.
        id: String,
        /// The cache folder that was searched.
        cache: PathBuf,
        /// How to get it.
        hint: String,
    },
    /// A file exists but could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A JSON config file is malformed or lacks a field.
    #[error("bad config {path}: {reason}")]
    BadConfig {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// config.json names an architecture this build does not run.
    #[error("unsupported model type {model_type:?} in {path} (supported: qwen3, bert)")]
    UnsupportedModel {
        /// `model_type` from config.json.
        model_type: String,
        /// The config file.
        path: PathBuf,
    },
    /// The tokenizer failed to load or encode.
    #[error("tokenizer: {reason}")]
    Tokenizer {
        /// The tokenizers crate's message.
        reason: String,
    },
    /// A weight tensor is missing, has the wrong shape, or an op failed.
    #[error("model {model}: {source}")]
    Candle {
        /// Which model (its folder or id).
        model: String,
        /// candle's error.
        source: candle_core::Error,
    },
    /// A named instruction is not one of the built-in ones.
    #[error("unknown instruction task {name:?}; built-in: {known}")]
    UnknownTask {
        /// The name given.
        name: String,
        /// The names that exist, comma separated.
        known: String,
    },
    /// The model does not take a query instruction (BERT-family models use fixed prefixes).
    #[error("model {model} does not take a query instruction")]
    InstructionNotSupported {
        /// The model id.
        model: String,
    },
    /// A Matryoshka cut asked for more dimensions than the model has, or for none.
    #[error("cannot cut a {model_dim}-d embedding to {requested} dimensions")]
    BadDimensions {
        /// The model's output dimension.
        model_dim: usize,
        /// What was asked for.
        requested: usize,
    },
    /// One request holds more texts than the queue ever accepts at once.
    #[error("a request of {texts} texts exceeds the limit of {limit} texts per request")]
    RequestTooLarge {
        /// Texts in the request.
        texts: usize,
        /// The per-request limit.
        limit: usize,
    },
    /// A reranker prompt's instruction and query alone exceed the token limit (only the
    /// document is ever cut).
    #[error(
        "the reranker prompt needs {tokens} tokens before the document, over the limit of {limit}: shorten the query or the instruction"
    )]
    PromptTooLong {
        /// Tokens of the prompt without the document.
        tokens: usize,
        /// The model's token limit.
        limit: usize,
    },
    /// The queue is full: the caller should back off and retry.
    #[error("model queue is full: {pending} texts pending, limit {limit}")]
    Overloaded {
        /// Texts waiting when the request arrived.
        pending: usize,
        /// The queue's bound.
        limit: usize,
    },
    /// The model thread has stopped (it panicked or the embedder is shutting down).
    #[error("the model thread has stopped")]
    WorkerGone,
}

impl ModelError {
    pub(crate) fn candle(model: &str) -> impl FnOnce(candle_core::Error) -> ModelError + '_ {
        move |source| ModelError::Candle { model: model.to_owned(), source }
    }
}

/// Result alias of the model layer.
pub type Result<T, E = ModelError> = std::result::Result<T, E>;
