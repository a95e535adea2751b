//! `hirevec bench rerank`: pairs/s of a reranker for chosen batch sizes and document lengths,
//! end to end from text (tokenization included) through the same queue the server uses.
//! Documents are cut to each chosen length in tokens, so the figures say how the cost grows with
//! resume length.
use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use serde::Serialize;

use crate::models::{BatchLimits, EmbedderConfig, LoadOptions, Pair, RerankModel, Reranker};

/// Arguments of `hirevec bench rerank`.
#[derive(Debug, Clone, Args)]
pub struct BenchRerankArgs {
    /// A Qwen3-Reranker folder or a hub id in the local Hugging Face cache.
    #[arg(long)]
    pub model: String,
    /// JSONL input, one `{"query": ..., "document": ...}` a line.
    #[arg(long)]
    pub input: PathBuf,
    /// Use the first N pairs.
    #[arg(long, default_value_t = 256)]
    pub limit: usize,
    /// Pairs per forward pass to measure.
    #[arg(long, value_delimiter = ',', default_value = "1,8,32")]
    pub batch_sizes: Vec<usize>,
    /// Prompt token limits to measure (documents are cut to fit each).
    #[arg(long, value_delimiter = ',', default_value = "256,512")]
    pub max_tokens: Vec<usize>,
    /// Timed passes per setting; the fastest is reported.
    #[arg(long, default_value_t = 1)]
    pub repeat: usize,
    /// Also write the JSON report here.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

#[derive(Debug, Serialize)]
struct Row {
    max_tokens: usize,
    batch_size: usize,
    seconds: f64,
    pairs_per_s: f64,
    tokens_per_s: f64,
    /// Prompt tokens over all pairs.
    tokens: u64,
    /// Pairs whose document was cut.
    truncated: usize,
}

#[derive(Debug, Serialize)]
struct Report {
    engine: &'static str,
    model: String,
    compute: String,
    threads: usize,
    pairs: usize,
    results: Vec<Row>,
}

/// Runs `hirevec bench rerank` and prints the JSON report.
pub fn run(args: BenchRerankArgs) -> anyhow::Result<()> {
    let pairs: Vec<Pair> = super::rerank::read_pairs(&args.input, None, Some(args.limit))?;
    anyhow::ensure!(!pairs.is_empty(), "{} has no pairs", args.input.display());
    let mut results = Vec::new();
    let (mut model_id, mut compute) = (String::new(), String::new());
    for &max_tokens in &args.max_tokens {
        let model = std::sync::Arc::new(RerankModel::load(
            &args.model,
            &LoadOptions { max_tokens: Some(max_tokens), ..LoadOptions::default() },
        )?);
        model_id.clone_from(&model.info().id);
        compute.clone_from(&model.info().compute);
        let prompts = model.tokenize(&pairs)?;
        let tokens: u64 = prompts.iter().map(|p| p.ids.len() as u64).sum();
        let truncated = prompts.iter().filter(|p| p.truncated).count();
        for &bs in &args.batch_sizes {
            let limits = BatchLimits { max_batch_tokens: 1 << 20, max_batch_texts: bs.max(1) };
            let config = EmbedderConfig {
                limits,
                max_pending_texts: pairs.len(),
                max_request_texts: pairs.len(),
            };
            let reranker = Reranker::spawn(model.clone(), config)?;
            reranker.rerank_blocking(pairs[..pairs.len().min(bs.max(4))].to_vec())?;
            let mut best = f64::INFINITY;
            for _ in 0..args.repeat.max(1) {
                let t0 = Instant::now();
                let out = reranker.rerank_blocking(pairs.clone())?;
                best = best.min(t0.elapsed().as_secs_f64());
                anyhow::ensure!(out.scores.len() == pairs.len(), "scores missing");
            }
            let row = Row {
                max_tokens,
                batch_size: bs,
                seconds: best,
                pairs_per_s: pairs.len() as f64 / best,
                tokens_per_s: tokens as f64 / best,
                tokens,
                truncated,
            };
            eprintln!(
                "max_tokens {max_tokens:>5} batch {bs:>4}: {:>8.1} pairs/s {:>9.0} tokens/s",
                row.pairs_per_s, row.tokens_per_s
            );
            results.push(row);
        }
    }
    let report = Report {
        engine: "hirevec-candle",
        model: model_id,
        compute,
        threads: rayon::current_num_threads(),
        pairs: pairs.len(),
        results,
    };
    super::print_report(&report, args.json.as_deref())
}
