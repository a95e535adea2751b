//! Server configuration: one struct filled from flags, `HIREVEC_*` environment variables and
//! defaults, validated once at start-up.
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::error::{Error, Result};

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// Settings of `hirevec serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeConfig {
    /// Directory holding RocksDB and the segment files.
    #[arg(long, env = "HIREVEC_DATA_DIR", default_value = "./hirevec-data")]
    pub data_dir: PathBuf,
    /// Address to listen on; port 0 picks a free port (the chosen address is printed on stdout as
    /// `listening on ADDR`).
    #[arg(long, env = "HIREVEC_LISTEN", default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,
    /// Most documents in one upsert message, and most searches in one SearchBatch.
    #[arg(long, env = "HIREVEC_MAX_BATCH", default_value_t = 1000)]
    pub max_batch: usize,
    /// Largest gRPC message accepted, in bytes.
    #[arg(long, env = "HIREVEC_MAX_MESSAGE_BYTES", default_value_t = 64 << 20)]
    pub max_message_bytes: usize,
    /// Bytes of request messages held at once by all requests together, counted as they arrive
    /// and before decoding; a request that would go over it is refused with RESOURCE_EXHAUSTED.
    /// Decoding roughly doubles what a message occupies, so budget memory for about twice this.
    #[arg(long, env = "HIREVEC_MAX_REQUEST_MEMORY", default_value_t = 1 << 30)]
    pub max_request_memory: usize,
    /// Requests doing work at once; more are refused with RESOURCE_EXHAUSTED.
    #[arg(long, env = "HIREVEC_MAX_INFLIGHT", default_value_t = 256)]
    pub max_inflight: usize,
    /// A sealed segment whose tombstoned fraction exceeds this is rewritten without them.
    #[arg(long, env = "HIREVEC_COMPACTION_THRESHOLD", default_value_t = 0.3)]
    pub compaction_threshold: f64,
    /// Filters allowing at most this many documents are answered by an exact scan of them
    /// instead of a filtered graph walk.
    #[arg(long, env = "HIREVEC_EXACT_SCAN_THRESHOLD", default_value_t = hirevec_index::DEFAULT_EXACT_SCAN_THRESHOLD)]
    pub exact_scan_threshold: usize,
    /// Log format.
    #[arg(long, env = "HIREVEC_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Embedding models to load, by folder or Hugging Face hub id (comma-separated or repeated;
    /// the first is the default). `auto` loads models/all-MiniLM-L6-v2 when it is there
    /// (scripts/setup-models.sh fetches it), `none` loads no model.
    #[arg(long = "model", env = "HIREVEC_MODEL", value_delimiter = ',', default_value = "auto")]
    pub models: Vec<String>,
    /// Token limit per text of the embedding models (default: each model's own); longer texts
    /// are cut and reported as truncated.
    #[arg(long, env = "HIREVEC_EMBED_MAX_TOKENS")]
    pub embed_max_tokens: Option<usize>,
    /// Most padded tokens in one forward pass of an embedding model.
    #[arg(long, env = "HIREVEC_EMBED_BATCH_TOKENS", default_value_t = 16384)]
    pub embed_batch_tokens: usize,
    /// Texts waiting for an embedding model beyond which requests get RESOURCE_EXHAUSTED.
    #[arg(long, env = "HIREVEC_EMBED_QUEUE", default_value_t = 8192)]
    pub embed_queue: usize,
    /// Rerankers (Qwen3-Reranker) to load, by folder or hub id (comma-separated or repeated; the
    /// first is the default). None by default: searches then cannot ask for reranking.
    #[arg(long = "reranker", env = "HIREVEC_RERANKER", value_delimiter = ',')]
    pub rerankers: Vec<String>,
    /// Token limit per reranker prompt (default 8192, within the model's positions); longer
    /// documents are cut and reported as truncated.
    #[arg(long, env = "HIREVEC_RERANK_MAX_TOKENS")]
    pub rerank_max_tokens: Option<usize>,
    /// Bytes of one text (a document's, a query's, one to embed or rerank); longer ones are
    /// refused with INVALID_ARGUMENT naming the field.
    #[arg(long, env = "HIREVEC_MAX_TEXT_BYTES", default_value_t = 1 << 20)]
    pub max_text_bytes: usize,
    /// API key granting every call, sent as `authorization: Bearer KEY` or `api-key: KEY`.
    /// Prefer the environment variable: command lines are visible to other local users.
    #[arg(long, env = "HIREVEC_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// API key granting the calls that change nothing (get, count, scroll, search, list, embed,
    /// rerank). Needs --api-key.
    #[arg(long, env = "HIREVEC_READ_ONLY_API_KEY", hide_env_values = true)]
    pub read_only_api_key: Option<String>,
    /// TLS: the server's certificate chain (PEM). With --tls-key, the server speaks only TLS.
    #[arg(long, env = "HIREVEC_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS: the private key of --tls-cert (PEM).
    #[arg(long, env = "HIREVEC_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Serve Prometheus metrics at http://ADDR/metrics (off when unset).
    #[arg(long, env = "HIREVEC_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Seconds between checksum passes over the sealed segment files (a damaged file is rebuilt
    /// from RocksDB while the server serves); 0 turns the background verify off.
    #[arg(long, env = "HIREVEC_VERIFY_INTERVAL", default_value_t = 3600)]
    pub verify_interval: u64,
}

impl ServeConfig {
    /// Checks the ranges that clap cannot express.
    pub fn validate(&self) -> Result<()> {
        if !(1..=100_000).contains(&self.max_batch) {
            return Err(Error::invalid("--max-batch", "must be in 1..=100000"));
        }
        if self.max_message_bytes < 1 << 20 {
            return Err(Error::invalid("--max-message-bytes", "must be at least 1 MiB"));
        }
        if self.max_request_memory < self.max_message_bytes + crate::server::edge::READ_AHEAD {
            return Err(Error::invalid(
                "--max-request-memory",
                format!(
                    "must be at least --max-message-bytes + {} (one largest message must fit)",
                    crate::server::edge::READ_AHEAD
                ),
            ));
        }
        if !(1..=4096).contains(&self.max_inflight) {
            return Err(Error::invalid("--max-inflight", "must be in 1..=4096"));
        }
        if !(self.compaction_threshold > 0.0 && self.compaction_threshold <= 1.0) {
            return Err(Error::invalid("--compaction-threshold", "must be in (0, 1]"));
        }
        if !(1024..=self.max_message_bytes).contains(&self.max_text_bytes) {
            return Err(Error::invalid(
                "--max-text-bytes",
                "must be in 1024..=--max-message-bytes",
            ));
        }
        if self.read_only_api_key.is_some() && self.api_key.is_none() {
            return Err(Error::invalid(
                "--read-only-api-key",
                "needs --api-key too (otherwise nothing could write)",
            ));
        }
        for (flag, key) in
            [("--api-key", &self.api_key), ("--read-only-api-key", &self.read_only_api_key)]
        {
            if let Some(k) = key
                && (k.len() < 16 || k.bytes().any(|b| !b.is_ascii_graphic()))
            {
                return Err(Error::invalid(
                    flag,
                    "must be at least 16 printable ASCII characters without spaces",
                ));
            }
        }
        if self.api_key.is_some() && self.api_key == self.read_only_api_key {
            return Err(Error::invalid("--read-only-api-key", "must differ from --api-key"));
        }
        if self.rerank_max_tokens.is_some_and(|t| t < 128) {
            return Err(Error::invalid("--rerank-max-tokens", "must be at least 128"));
        }
        if self.embed_max_tokens == Some(0) {
            return Err(Error::invalid("--embed-max-tokens", "must be positive"));
        }
        if self.embed_batch_tokens < 512 {
            return Err(Error::invalid("--embed-batch-tokens", "must be at least 512"));
        }
        if self.embed_queue < self.max_batch {
            return Err(Error::invalid(
                "--embed-queue",
                "must be at least --max-batch (one full batch of texts must fit)",
            ));
        }
        Ok(())
    }

    /// The model part of the config.
    pub fn registry(&self) -> crate::server::registry::RegistryOptions {
        use crate::models::{BatchLimits, EmbedderConfig};
        use crate::server::registry::{ModelSpec, RegistryOptions};
        RegistryOptions {
            models: self.models.iter().map(|m| ModelSpec::parse(m)).collect(),
            rerankers: self
                .rerankers
                .iter()
                .filter(|r| !r.is_empty() && *r != "none")
                .cloned()
                .collect(),
            max_tokens: self.embed_max_tokens,
            rerank_max_tokens: self.rerank_max_tokens,
            embedder: EmbedderConfig {
                limits: BatchLimits {
                    max_batch_tokens: self.embed_batch_tokens,
                    ..BatchLimits::default()
                },
                max_pending_texts: self.embed_queue,
                max_request_texts: self.max_batch,
            },
        }
    }

    /// The engine-level part of the config.
    pub fn engine(&self) -> crate::server::EngineOptions {
        crate::server::EngineOptions {
            data_dir: self.data_dir.clone(),
            max_batch: self.max_batch,
            compaction_threshold: self.compaction_threshold,
            exact_scan_threshold: self.exact_scan_threshold,
        }
    }
}
