//! `hirevec bench embed`: docs/s and tokens/s of an embedding model over a JSONL text file, for
//! chosen batch sizes, end to end from text (tokenization included) through the same queue the
//! server uses. Output is JSON, comparable with scripts/bench_embed_st.py's.
use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use serde::Serialize;

use crate::models::{
    BatchLimits, DEFAULT_MODEL_DIR, EmbedKind, Embedder, EmbedderConfig, EmbeddingModel,
    LoadOptions, plan_batches,
};

/// Arguments of `hirevec bench embed`.
#[derive(Debug, Clone, Args)]
pub struct BenchEmbedArgs {
    /// A model folder or a hub id in the local Hugging Face cache.
    #[arg(long, default_value = DEFAULT_MODEL_DIR)]
    pub model: String,
    /// JSONL input, one `{"text": "..."}` a line.
    #[arg(long)]
    pub input: PathBuf,
    /// Use the first N texts.
    #[arg(long, default_value_t = 2000)]
    pub limit: usize,
    /// Texts per forward pass to measure.
    #[arg(long, value_delimiter = ',', default_value = "1,8,32,128")]
    pub batch_sizes: Vec<usize>,
    /// Padded-token cap per forward pass (applies on top of the batch size).
    #[arg(long, default_value_t = 1 << 20)]
    pub max_batch_tokens: usize,
    /// Timed passes per batch size; the fastest is reported.
    #[arg(long, default_value_t = 1)]
    pub repeat: usize,
    /// Token limit per text (default: the model's own).
    #[arg(long)]
    pub max_tokens: Option<usize>,
    /// Also write the JSON report here.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

#[derive(Debug, Serialize)]
struct Row {
    batch_size: usize,
    seconds: f64,
    docs_per_s: f64,
    tokens_per_s: f64,
    /// Tokens of the texts, special tokens included.
    tokens: u64,
    /// Tokens the forward passes computed, padding included.
    padded_tokens: u64,
}

#[derive(Debug, Serialize)]
struct Report {
    engine: &'static str,
    model: String,
    compute: String,
    threads: usize,
    texts: usize,
    max_tokens: usize,
    truncated: usize,
    results: Vec<Row>,
}

/// Runs `hirevec bench embed` and prints the JSON report.
pub fn run(args: BenchEmbedArgs) -> anyhow::Result<()> {
    let texts = super::embed::read_texts(&args.input, Some(args.limit))?;
    anyhow::ensure!(!texts.is_empty(), "{} has no texts", args.input.display());
    let model = std::sync::Arc::new(EmbeddingModel::load(
        &args.model,
        &LoadOptions { max_tokens: args.max_tokens, ..LoadOptions::default() },
    )?);
    let info = model.info().clone();
    let encoded = model.tokenize(&texts, &EmbedKind::Document)?;
    let lengths: Vec<usize> = encoded.iter().map(|e| e.ids.len()).collect();
    let tokens: u64 = lengths.iter().map(|&l| l as u64).sum();
    let truncated = encoded.iter().filter(|e| e.truncated).count();
    let mut results = Vec::new();
    for &bs in &args.batch_sizes {
        let limits =
            BatchLimits { max_batch_tokens: args.max_batch_tokens, max_batch_texts: bs.max(1) };
        let padded_tokens: u64 =
            plan_batches(&lengths, limits).iter().map(|b| (b.len() * lengths[b[0]]) as u64).sum();
        let config = EmbedderConfig {
            limits,
            max_pending_texts: texts.len(),
            max_request_texts: texts.len(),
        };
        let embedder = Embedder::spawn(model.clone(), config)?;
        // Warm-up: first touches of the weights and allocator growth are not throughput.
        embedder
            .embed_blocking(texts[..texts.len().min(bs.max(8))].to_vec(), EmbedKind::Document)?;
        let mut best = f64::INFINITY;
        for _ in 0..args.repeat.max(1) {
            let t0 = Instant::now();
            let out = embedder.embed_blocking(texts.clone(), EmbedKind::Document)?;
            best = best.min(t0.elapsed().as_secs_f64());
            anyhow::ensure!(
                out.len() == texts.len(),
                "got {} vectors for {} texts",
                out.len(),
                texts.len()
            );
        }
        let row = Row {
            batch_size: bs,
            seconds: best,
            docs_per_s: texts.len() as f64 / best,
            tokens_per_s: tokens as f64 / best,
            tokens,
            padded_tokens,
        };
        eprintln!(
            "batch {bs:>4}: {:>8.1} docs/s {:>9.0} tokens/s ({best:.2} s)",
            row.docs_per_s, row.tokens_per_s
        );
        results.push(row);
    }
    let report = Report {
        engine: "hirevec-candle",
        model: info.id,
        compute: info.compute,
        threads: rayon::current_num_threads(),
        texts: texts.len(),
        max_tokens: info.max_tokens,
        truncated,
        results,
    };
    super::print_report(&report, args.json.as_deref())
}
