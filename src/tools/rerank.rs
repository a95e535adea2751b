//! `hirevec rerank`: a JSONL file of `{"query", "document", "instruction"?}` lines in, one
//! `{"index", "score", "truncated"}` object a line out, in input order. Runs the model through
//! the same [`Reranker`] queue the server uses, in chunks so the progress bar moves.
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use serde::{Deserialize, Serialize};

use crate::models::{
    BatchLimits, EmbedderConfig, LoadOptions, Pair, RerankModel, Reranker, instructions,
};

/// Pairs sent to the queue per request.
const CHUNK: usize = 256;

/// Arguments of `hirevec rerank`.
#[derive(Debug, Clone, Args)]
pub struct RerankArgs {
    /// A Qwen3-Reranker folder (config.json, tokenizer.json, *.safetensors) or a hub id in the
    /// local Hugging Face cache.
    #[arg(long)]
    pub model: String,
    /// JSONL input, one `{"query": ..., "document": ..., "instruction": ...}` a line
    /// (instruction optional: the model's default task when absent, none when "").
    #[arg(long)]
    pub input: PathBuf,
    /// Where to write the scores (JSONL); standard output when absent.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// An instruction by built-in name for lines that give none: jd_to_resume, resume_to_jd,
    /// jd_to_jd, resume_to_resume.
    #[arg(long)]
    pub task: Option<String>,
    /// Token limit per prompt (default 8192 within the model's positions).
    #[arg(long)]
    pub max_tokens: Option<usize>,
    /// Most padded tokens in one forward pass.
    #[arg(long, default_value_t = BatchLimits::default().max_batch_tokens)]
    pub max_batch_tokens: usize,
    /// Most pairs in one forward pass.
    #[arg(long, default_value_t = BatchLimits::default().max_batch_texts)]
    pub max_batch_pairs: usize,
}

#[derive(Deserialize)]
struct Line {
    query: String,
    document: String,
    instruction: Option<String>,
}

#[derive(Serialize)]
struct Scored {
    index: usize,
    score: f32,
    truncated: bool,
}

/// Reads the pairs of a JSONL file; a malformed line is an error naming it. `default` is the
/// instruction of lines that give none.
pub fn read_pairs(
    path: &Path,
    default: Option<&str>,
    limit: Option<usize>,
) -> anyhow::Result<Vec<Pair>> {
    let file = std::fs::File::open(path).with_context(|| format!("open {}", path.display()))?;
    let mut pairs = Vec::new();
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        if limit.is_some_and(|l| pairs.len() >= l) {
            break;
        }
        let line = line.with_context(|| format!("read {}", path.display()))?;
        let l: Line = serde_json::from_str(&line).with_context(|| {
            format!("{}:{}: expected {{\"query\": ..., \"document\": ...}}", path.display(), n + 1)
        })?;
        let instruction = l.instruction.or_else(|| default.map(str::to_owned));
        pairs.push(Pair { query: l.query, document: l.document, instruction });
    }
    Ok(pairs)
}

/// Runs `hirevec rerank`.
pub fn run(args: RerankArgs) -> anyhow::Result<()> {
    let default = args.task.as_deref().map(instructions::task).transpose()?;
    let pairs = read_pairs(&args.input, default, None)?;
    let model = RerankModel::load(
        &args.model,
        &LoadOptions { max_tokens: args.max_tokens, ..LoadOptions::default() },
    )?;
    let info = model.info().clone();
    tracing::info!(model = %info.id, max_tokens = info.max_tokens, compute = %info.compute, pairs = pairs.len(), "reranking");
    let config = EmbedderConfig {
        limits: BatchLimits {
            max_batch_tokens: args.max_batch_tokens,
            max_batch_texts: args.max_batch_pairs,
        },
        max_pending_texts: CHUNK,
        max_request_texts: CHUNK,
    };
    let reranker = Reranker::spawn(model.into(), config)?;
    let bar = indicatif::ProgressBar::new(pairs.len() as u64).with_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} pairs {per_sec} eta {eta}")
            .expect("static template"),
    );
    let mut out: Box<dyn Write> = match &args.output {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("create {}", p.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let mut truncated = 0usize;
    let mut index = 0usize;
    for chunk in pairs.chunks(CHUNK) {
        let scored = reranker.rerank_blocking(chunk.to_vec())?;
        for (score, t) in scored.scores.into_iter().zip(scored.truncated) {
            serde_json::to_writer(&mut out, &Scored { index, score, truncated: t })?;
            out.write_all(b"\n")?;
            truncated += usize::from(t);
            index += 1;
        }
        bar.inc(chunk.len() as u64);
    }
    out.flush()?;
    bar.finish_and_clear();
    eprintln!(
        "scored {} pairs ({truncated} documents cut at {} tokens)",
        pairs.len(),
        info.max_tokens
    );
    Ok(())
}
