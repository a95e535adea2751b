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
        if !(1..=4096).contains(&self.max_inflight) {
            return Err(Error::invalid("--max-inflight", "must be in 1..=4096"));
        }
        if !(self.compaction_threshold > 0.0 && self.compaction_threshold <= 1.0) {
            return Err(Error::invalid("--compaction-threshold", "must be in (0, 1]"));
        }
        Ok(())
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
