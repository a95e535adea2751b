//! `hirevec embed`: a JSONL file of `{"text": ...}` lines in, an f32 `.npy` of L2-normalised
//! vectors out (row i for line i). Runs the model through the same [`Embedder`] queue the server
//! uses, in chunks so the progress bar moves.
use std::io::BufRead;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use serde::Deserialize;

use crate::models::{
    BatchLimits, DEFAULT_MODEL_DIR, EmbedKind, EmbedOutput, Embedder, EmbedderConfig,
    EmbeddingModel, LoadOptions, instructions,
};

/// Texts sent to the queue per request: large enough to fill batches, small enough for a
/// progress bar that moves.
const CHUNK: usize = 512;

/// Arguments of `hirevec embed`.
#[derive(Debug, Clone, Args)]
pub struct EmbedArgs {
    /// A model folder (config.json, tokenizer.json, *.safetensors) or a hub id in the local
    /// Hugging Face cache.
    #[arg(long, default_value = DEFAULT_MODEL_DIR)]
    pub model: String,
    /// JSONL input, one `{"text": "..."}` a line.
    #[arg(long)]
    pub input: PathBuf,
    /// The `.npy` to write (f32, one row per input line).
    #[arg(long)]
    pub output: PathBuf,
    /// Embed the texts as queries (instruction or query prefix) rather than documents.
    #[arg(long)]
    pub query: bool,
    /// The query instruction's task sentence (Qwen3-Embedding); needs --query.
    #[arg(long, conflicts_with = "task")]
    pub instruction: Option<String>,
    /// A built-in instruction by name: jd_to_resume, resume_to_jd, jd_to_jd, resume_to_resume.
    #[arg(long)]
    pub task: Option<String>,
    /// Matryoshka: keep the first D components, normalised again.
    #[arg(long)]
    pub dimensions: Option<usize>,
    /// Token limit per text (default: the model's own); longer texts are cut and counted.
    #[arg(long)]
    pub max_tokens: Option<usize>,
    /// Most padded tokens in one forward pass.
    #[arg(long, default_value_t = BatchLimits::default().max_batch_tokens)]
    pub max_batch_tokens: usize,
    /// Most texts in one forward pass.
    #[arg(long, default_value_t = BatchLimits::default().max_batch_texts)]
    pub max_batch_texts: usize,
}

#[derive(Deserialize)]
struct Line {
    text: String,
}

/// Reads the `text` of every line of a JSONL file; a blank or malformed line is an error naming it.
pub fn read_texts(path: &Path, limit: Option<usize>) -> anyhow::Result<Vec<String>> {
    let file = std::fs::File::open(path).with_context(|| format!("open {}", path.display()))?;
    let mut texts = Vec::new();
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        if limit.is_some_and(|l| texts.len() >= l) {
            break;
        }
        let line = line.with_context(|| format!("read {}", path.display()))?;
        let parsed: Line = serde_json::from_str(&line)
            .with_context(|| format!("{}:{}: expected {{\"text\": ...}}", path.display(), n + 1))?;
        texts.push(parsed.text);
    }
    Ok(texts)
}

/// The embedding kind the flags ask for.
pub fn kind_from_flags(
    query: bool,
    instruction: Option<String>,
    task: Option<&str>,
) -> anyhow::Result<EmbedKind> {
    let instruction = match (instruction, task) {
        (Some(i), _) => Some(i),
        (None, Some(t)) => Some(instructions::task(t)?.to_owned()),
        (None, None) => None,
    };
    if !query && instruction.is_some() {
        bail!("--instruction and --task apply to queries only; add --query");
    }
    Ok(if query { EmbedKind::Query { instruction } } else { EmbedKind::Document })
}

/// Runs `hirevec embed`.
pub fn run(args: EmbedArgs) -> anyhow::Result<()> {
    let kind = kind_from_flags(args.query, args.instruction, args.task.as_deref())?;
    let texts = read_texts(&args.input, None)?;
    let model = EmbeddingModel::load(
        &args.model,
        &LoadOptions { max_tokens: args.max_tokens, ..LoadOptions::default() },
    )?;
    let info = model.info().clone();
    if let Some(d) = args.dimensions
        && (d == 0 || d > info.dim)
    {
        bail!("--dimensions {d}: the model gives {} dimensions", info.dim);
    }
    tracing::info!(model = %info.id, arch = info.architecture, dim = info.dim, max_tokens = info.max_tokens, compute = %info.compute, texts = texts.len(), "embedding");
    let config = EmbedderConfig {
        limits: BatchLimits {
            max_batch_tokens: args.max_batch_tokens,
            max_batch_texts: args.max_batch_texts,
        },
        max_pending_texts: CHUNK,
        max_request_texts: CHUNK,
    };
    let embedder = Embedder::spawn(model.into(), config)?;
    let bar = indicatif::ProgressBar::new(texts.len() as u64).with_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} texts {per_sec} eta {eta}")
            .expect("static template"),
    );
    let dim = args.dimensions.unwrap_or(info.dim);
    let mut vectors = Vec::with_capacity(texts.len() * dim);
    let (mut truncated, mut tokens) = (0usize, 0u64);
    for chunk in texts.chunks(CHUNK) {
        let out: EmbedOutput = embedder.embed_blocking(chunk.to_vec(), kind.clone())?;
        let out = match args.dimensions {
            Some(d) => out.cut(d)?,
            None => out,
        };
        truncated += out.truncated.iter().filter(|&&t| t).count();
        tokens += out.token_counts.iter().map(|&t| u64::from(t)).sum::<u64>();
        vectors.extend_from_slice(&out.vectors);
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    write_atomically(&args.output, &vectors, dim)?;
    if truncated > 0 {
        tracing::warn!(
            truncated,
            max_tokens = info.max_tokens,
            "texts were cut to the token limit"
        );
    }
    eprintln!(
        "wrote {} x {dim} to {} ({tokens} tokens, {truncated} texts truncated at {} tokens)",
        texts.len(),
        args.output.display(),
        info.max_tokens
    );
    Ok(())
}

/// Writes to a temporary name beside `path`, syncs, then renames, so a crash never leaves a
/// half-written file under the real name.
fn write_atomically(path: &Path, data: &[f32], dim: usize) -> anyhow::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let tmp = dir
        .join(format!(".{}.tmp", path.file_name().and_then(|n| n.to_str()).unwrap_or("out.npy")));
    super::vecio::write_npy_f32(&tmp, data, dim)?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("rename to {}", path.display()))?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}
