//! Text embedding models: Qwen3-Embedding and BERT-family sentence embedders on candle.
//!
//! This module owns loading (a Hugging Face style folder or a hub id in the local cache),
//! tokenization with reported truncation, the forward passes, pooling and normalisation, and the
//! queue that runs them on a dedicated OS thread ([`Embedder`]). It never touches storage, the
//! index or gRPC; the server converts [`ModelError`] to status codes.
//!
//! ```no_run
//! use hirevec::models::{EmbedKind, Embedder, EmbedderConfig, EmbeddingModel, LoadOptions};
//! let model = EmbeddingModel::load("models/all-MiniLM-L6-v2", &LoadOptions::default())?;
//! let embedder = Embedder::spawn(model.into(), EmbedderConfig::default())?;
//! let out = embedder.embed_blocking(vec!["Senior Rust engineer".into()], EmbedKind::Document)?;
//! assert_eq!(out.vector(0).len(), out.dim);
//! # Ok::<(), hirevec::models::ModelError>(())
//! ```
mod bert;
mod device;
mod error;
pub mod fingerprint;
pub mod instructions;
mod layers;
mod queue;
mod qwen3;
pub mod reranker;
mod resolve;
mod tokenize;

use candle_core::Tensor;
use candle_nn::VarBuilder;
use serde::Deserialize;

pub use bert::Pooling;
pub use device::Compute;
pub use error::{ModelError, Result};
pub use queue::{Embedder, EmbedderConfig};
pub use reranker::{Pair, RerankModel, RerankOutput, Reranker};
pub use resolve::{DEFAULT_MODEL_DIR, ModelFiles, ModelLocation};
pub use tokenize::Encoded;

use bert::{Bert, BertConfig};
use qwen3::{Qwen3, Qwen3Config};
use resolve::read_json;
use tokenize::TextTokenizer;

/// Qwen3-Embedding's default token limit (its authors' `max_length`).
pub const QWEN3_DEFAULT_MAX_TOKENS: usize = 8192;

/// Whether a text is a query or a document; only queries get an instruction or query prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmbedKind {
    /// A search query, with the one-sentence task for instruction-following models (Qwen3);
    /// `None` uses [`instructions::DEFAULT_TASK`] for those and is the only choice for BERT models.
    Query {
        /// The task sentence, e.g. from [`instructions::task`].
        instruction: Option<String>,
    },
    /// A document (resume, job description): the text alone, or the model's document prefix.
    Document,
}

/// Vectors for a list of texts, row i for text i, each L2-normalised.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EmbedOutput {
    /// The vector dimension.
    pub dim: usize,
    /// `len() * dim` floats, row-major.
    pub vectors: Vec<f32>,
    /// Whether text i was cut to the model's token limit.
    pub truncated: Vec<bool>,
    /// Tokens of text i as embedded (special tokens and instruction included).
    pub token_counts: Vec<u32>,
}

impl EmbedOutput {
    /// The number of texts.
    pub fn len(&self) -> usize {
        self.truncated.len()
    }

    /// Whether there are no texts.
    pub fn is_empty(&self) -> bool {
        self.truncated.is_empty()
    }

    /// The vector of text `i`.
    pub fn vector(&self, i: usize) -> &[f32] {
        &self.vectors[i * self.dim..(i + 1) * self.dim]
    }

    /// Matryoshka: every vector cut to its first `dims` components and normalised again.
    pub fn cut(self, dims: usize) -> Result<EmbedOutput> {
        if dims == self.dim {
            return Ok(self);
        }
        let mut vectors = Vec::with_capacity(self.len() * dims);
        for i in 0..self.len() {
            vectors.extend(cut(self.vector(i), dims)?);
        }
        Ok(EmbedOutput { dim: dims, vectors, ..self })
    }
}

/// Matryoshka cut: the first `dims` components of a normalised vector, normalised again (the
/// prefix of a unit vector is shorter than 1; cosine search needs unit length back).
pub fn cut(vector: &[f32], dims: usize) -> Result<Vec<f32>> {
    if dims == 0 || dims > vector.len() {
        return Err(ModelError::BadDimensions { model_dim: vector.len(), requested: dims });
    }
    let head = &vector[..dims];
    let norm = head.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>().sqrt().max(1e-12);
    Ok(head.iter().map(|&x| (f64::from(x) / norm) as f32).collect())
}

/// How batches are cut for one forward pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    /// Most padded tokens (texts x longest text) in one forward pass.
    pub max_batch_tokens: usize,
    /// Most texts in one forward pass.
    pub max_batch_texts: usize,
}

impl Default for BatchLimits {
    fn default() -> Self {
        BatchLimits { max_batch_tokens: 16384, max_batch_texts: 64 }
    }
}

/// Groups sequences into forward passes: longest first, each batch as full as the limits allow.
/// Sorting by length keeps padding small; the order never changes any vector (a text's vector
/// does not depend on its batch).
pub fn plan_batches(lengths: &[usize], limits: BatchLimits) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(lengths[i]));
    let mut batches: Vec<Vec<usize>> = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    for i in order {
        let longest = current.first().map_or(lengths[i], |&f| lengths[f]);
        let fits = current.len() < limits.max_batch_texts.max(1)
            && (current.len() + 1) * longest.max(1) <= limits.max_batch_tokens.max(1);
        if !current.is_empty() && !fits {
            batches.push(std::mem::take(&mut current));
        }
        current.push(i);
    }
    if !current.is_empty() {
        batches.push(current);
    }
    batches
}

/// Options for loading a model.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Device and dtype.
    pub compute: Compute,
    /// Token limit per text, special tokens included; `None` for the model's own
    /// (sentence-transformers' `max_seq_length`, or 8192 for Qwen3). Never above the position table.
    pub max_tokens: Option<usize>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions { compute: Compute::auto(), max_tokens: None }
    }
}

/// What a model does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelKind {
    /// Texts to vectors.
    Embedding,
    /// (query, document) pairs to relevance scores.
    Reranker,
}

impl ModelKind {
    /// The name used in the API ("embedding", "reranker").
    pub fn as_str(self) -> &'static str {
        match self {
            ModelKind::Embedding => "embedding",
            ModelKind::Reranker => "reranker",
        }
    }
}

/// Facts about a loaded model that callers store or validate against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelInfo {
    /// The folder or hub id it was loaded from.
    pub id: String,
    /// Embedding model or reranker.
    pub kind: ModelKind,
    /// `qwen3` or `bert`.
    pub architecture: &'static str,
    /// Output dimension.
    pub dim: usize,
    /// Token limit per text.
    pub max_tokens: usize,
    /// Whether queries take an instruction (Qwen3) or a fixed prefix at most (BERT family).
    pub takes_instruction: bool,
    /// Device and dtype, e.g. `cpu/f32`.
    pub compute: String,
    /// Hash of the files that decide the vectors (weights, config, tokenizer, pooling): see
    /// [`fingerprint::hash_files`].
    pub hash: String,
}

#[derive(Debug)]
enum Backbone {
    Qwen3(Qwen3),
    Bert(Bert),
}

/// Fixed prefixes of BERT-family models (e5's "query: " / "passage: ").
#[derive(Debug, Clone, Default)]
struct Prompts {
    query: Option<String>,
    document: Option<String>,
}

/// A loaded embedding model: tokenizer, weights, pooling. Runs on the calling thread; the server
/// and the CLI use it through [`Embedder`], which gives it a thread of its own.
#[derive(Debug)]
pub struct EmbeddingModel {
    info: ModelInfo,
    backbone: Backbone,
    tokenizer: TextTokenizer,
    prompts: Prompts,
}

#[derive(Deserialize)]
struct ModelType {
    model_type: String,
}

#[derive(Deserialize)]
struct StModule {
    path: String,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
struct PoolingConfig {
    #[serde(default)]
    pooling_mode_cls_token: bool,
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
    #[serde(default)]
    pooling_mode_max_tokens: bool,
    #[serde(default)]
    pooling_mode_mean_sqrt_len_tokens: bool,
}

#[derive(Deserialize)]
struct SentenceBertConfig {
    max_seq_length: Option<usize>,
}

#[derive(Deserialize, Default)]
struct StConfig {
    #[serde(default)]
    prompts: std::collections::HashMap<String, String>,
}

impl EmbeddingModel {
    /// Loads `spec`: a model folder, or a hub id in the local Hugging Face cache.
    pub fn load(spec: &str, opts: &LoadOptions) -> Result<Self> {
        let files = ModelFiles::locate(spec)?;
        Self::load_files(&files, opts)
    }

    /// Loads a located model.
    pub fn load_files(files: &ModelFiles, opts: &LoadOptions) -> Result<Self> {
        let config_path = files.require("config.json")?;
        let mt: ModelType = read_json(&config_path)?;
        let compute = &opts.compute;
        let Checkpoint { tokenizer: tokenizer_path, hash, vb } = Checkpoint::open(
            files,
            &[
                "modules.json",
                "sentence_bert_config.json",
                "config_sentence_transformers.json",
                "1_Pooling/config.json",
            ],
            compute,
        )?;
        match mt.model_type.as_str() {
            "qwen3" => {
                let cfg: Qwen3Config = read_json(&config_path)?;
                let model = Qwen3::load(vb, cfg, compute).map_err(ModelError::candle(&files.id))?;
                let max_tokens =
                    opts.max_tokens.unwrap_or(QWEN3_DEFAULT_MAX_TOKENS).min(model.max_positions());
                let eot = "<|endoftext|>";
                let probe = TextTokenizer::load(&tokenizer_path, max_tokens, None)?;
                let eot_id = probe.token_to_id(eot).ok_or_else(|| ModelError::Tokenizer {
                    reason: format!("{} has no {eot} token", tokenizer_path.display()),
                })?;
                let tokenizer = TextTokenizer::load(&tokenizer_path, max_tokens, Some(eot_id))?;
                Ok(EmbeddingModel {
                    info: ModelInfo {
                        id: files.id.clone(),
                        kind: ModelKind::Embedding,
                        architecture: "qwen3",
                        dim: model.dim(),
                        max_tokens,
                        takes_instruction: true,
                        compute: compute.describe(),
                        hash,
                    },
                    backbone: Backbone::Qwen3(model),
                    tokenizer,
                    prompts: Prompts::default(),
                })
            }
            "bert" => {
                let cfg: BertConfig = read_json(&config_path)?;
                let pooling = bert_pooling(files)?;
                let st_max = match files.find("sentence_bert_config.json")? {
                    Some(p) => read_json::<SentenceBertConfig>(&p)?.max_seq_length,
                    None => None,
                };
                let prompts = bert_prompts(files)?;
                let model =
                    Bert::load(vb, cfg, pooling, compute).map_err(ModelError::candle(&files.id))?;
                let max_tokens = opts
                    .max_tokens
                    .or(st_max)
                    .unwrap_or(model.max_positions())
                    .min(model.max_positions());
                let tokenizer = TextTokenizer::load(&tokenizer_path, max_tokens, None)?;
                Ok(EmbeddingModel {
                    info: ModelInfo {
                        id: files.id.clone(),
                        kind: ModelKind::Embedding,
                        architecture: "bert",
                        dim: model.dim(),
                        max_tokens,
                        takes_instruction: false,
                        compute: compute.describe(),
                        hash,
                    },
                    backbone: Backbone::Bert(model),
                    tokenizer,
                    prompts,
                })
            }
            other => Err(ModelError::UnsupportedModel {
                model_type: other.to_owned(),
                path: config_path,
            }),
        }
    }

    /// Facts about the model.
    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// The text the model sees for `text`: with the query instruction (Qwen3) or the model's
    /// query/document prefix (e5-style BERT models).
    pub fn format(&self, text: &str, kind: &EmbedKind) -> Result<String> {
        match (&self.backbone, kind) {
            (Backbone::Qwen3(_), EmbedKind::Query { instruction }) => {
                Ok(instructions::qwen3_query(
                    instruction.as_deref().unwrap_or(instructions::DEFAULT_TASK),
                    text,
                ))
            }
            (Backbone::Qwen3(_), EmbedKind::Document) => Ok(text.to_owned()),
            (Backbone::Bert(_), EmbedKind::Query { instruction: Some(_) }) => {
                Err(ModelError::InstructionNotSupported { model: self.info.id.clone() })
            }
            (Backbone::Bert(_), EmbedKind::Query { instruction: None }) => {
                Ok(format!("{}{text}", self.prompts.query.as_deref().unwrap_or("")))
            }
            (Backbone::Bert(_), EmbedKind::Document) => {
                Ok(format!("{}{text}", self.prompts.document.as_deref().unwrap_or("")))
            }
        }
    }

    /// Formats and tokenizes `texts`.
    pub fn tokenize<S: AsRef<str>>(&self, texts: &[S], kind: &EmbedKind) -> Result<Vec<Encoded>> {
        let formatted: Vec<String> =
            texts.iter().map(|t| self.format(t.as_ref(), kind)).collect::<Result<_>>()?;
        let refs: Vec<&str> = formatted.iter().map(String::as_str).collect();
        self.tokenizer.encode_batch(&refs)
    }

    /// One forward pass over `batch` (token ids, unpadded): `batch.len() * dim` floats, each row
    /// L2-normalised.
    pub fn forward(&self, batch: &[&[u32]]) -> Result<Vec<f32>> {
        let pooled = self.pooled(batch)?;
        let normed = layers::l2_normalize(&pooled).map_err(ModelError::candle(&self.info.id))?;
        normed
            .flatten_all()
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(ModelError::candle(&self.info.id))
    }

    /// The pooled, not yet normalised vectors `[B, dim]` (for tests against reference outputs).
    pub fn pooled(&self, batch: &[&[u32]]) -> Result<Tensor> {
        match &self.backbone {
            Backbone::Qwen3(m) => m.forward(batch),
            Backbone::Bert(m) => m.forward(batch),
        }
        .map_err(ModelError::candle(&self.info.id))
    }

    /// Embeds already tokenized texts on this thread, batched by `limits`.
    pub fn embed_encoded(&self, encoded: &[Encoded], limits: BatchLimits) -> Result<EmbedOutput> {
        let dim = self.info.dim;
        let mut vectors = vec![0f32; encoded.len() * dim];
        let lengths: Vec<usize> = encoded.iter().map(|e| e.ids.len()).collect();
        for batch in plan_batches(&lengths, limits) {
            let seqs: Vec<&[u32]> = batch.iter().map(|&i| encoded[i].ids.as_slice()).collect();
            let out = self.forward(&seqs)?;
            for (row, &i) in batch.iter().enumerate() {
                vectors[i * dim..(i + 1) * dim].copy_from_slice(&out[row * dim..(row + 1) * dim]);
            }
        }
        Ok(EmbedOutput {
            dim,
            vectors,
            truncated: encoded.iter().map(|e| e.truncated).collect(),
            token_counts: encoded.iter().map(|e| e.ids.len() as u32).collect(),
        })
    }

    /// Tokenizes and embeds `texts` on this thread. Blocks; never call it on an async runtime.
    pub fn embed<S: AsRef<str>>(
        &self,
        texts: &[S],
        kind: &EmbedKind,
        limits: BatchLimits,
    ) -> Result<EmbedOutput> {
        let encoded = self.tokenize(texts, kind)?;
        self.embed_encoded(&encoded, limits)
    }
}

/// What every model loads the same way: its tokenizer file, the hash of the files that decide
/// its outputs (config, tokenizer, weights and the `extra` files present), and its weights
/// memory-mapped for loading.
pub(crate) struct Checkpoint {
    pub(crate) tokenizer: std::path::PathBuf,
    pub(crate) hash: String,
    pub(crate) vb: VarBuilder<'static>,
}

impl Checkpoint {
    pub(crate) fn open(files: &ModelFiles, extra: &[&str], compute: &Compute) -> Result<Self> {
        let config = files.require("config.json")?;
        let tokenizer = files.require("tokenizer.json")?;
        let weights = files.weights()?;
        let mut hashed = vec![config, tokenizer.clone()];
        hashed.extend(weights.iter().cloned());
        for name in extra {
            hashed.extend(files.find(name)?);
        }
        let hash = fingerprint::hash_files(&hashed)?;
        // SAFETY: the weight files are memory-mapped read-only; like every safetensors loader we
        // rely on nobody truncating them while mapped. They are converted to the compute dtype
        // (a copy) on load, so the mapping is only read during loading.
        let vb = unsafe {
            VarBuilder::from_mmaped_safetensors(&weights, compute.dtype, &compute.device)
        }
        .map_err(ModelError::candle(&files.id))?;
        Ok(Checkpoint { tokenizer, hash, vb })
    }
}

/// The pooling named by the sentence-transformers Pooling module (its folder from modules.json,
/// else `1_Pooling`).
fn bert_pooling(files: &ModelFiles) -> Result<Pooling> {
    let mut dir = "1_Pooling".to_owned();
    if let Some(p) = files.find("modules.json")? {
        let modules: Vec<StModule> = read_json(&p)?;
        if let Some(m) = modules.iter().find(|m| m.kind.ends_with("Pooling")) {
            dir = m.path.clone();
        }
    }
    let name = format!("{dir}/config.json");
    let path = files.require(&name)?;
    let cfg: PoolingConfig = read_json(&path)?;
    match (
        cfg.pooling_mode_mean_tokens,
        cfg.pooling_mode_cls_token,
        cfg.pooling_mode_max_tokens,
        cfg.pooling_mode_mean_sqrt_len_tokens,
    ) {
        (true, false, false, false) => Ok(Pooling::Mean),
        (false, true, false, false) => Ok(Pooling::Cls),
        _ => Err(ModelError::BadConfig {
            path,
            reason: "only one of mean or cls pooling is supported".to_owned(),
        }),
    }
}

/// Query and document prefixes: the `prompts` of config_sentence_transformers.json, else e5's
/// documented "query: " / "passage: " for models named e5 (their configs predate `prompts`).
fn bert_prompts(files: &ModelFiles) -> Result<Prompts> {
    let st: StConfig = match files.find("config_sentence_transformers.json")? {
        Some(p) => read_json(&p)?,
        None => StConfig::default(),
    };
    let query = st.prompts.get("query").cloned();
    let document = st.prompts.get("document").or_else(|| st.prompts.get("passage")).cloned();
    if query.is_some() || document.is_some() {
        return Ok(Prompts { query, document });
    }
    let name = files.id.to_lowercase();
    if name.contains("e5-") && !name.contains("instruct") {
        return Ok(Prompts {
            query: Some("query: ".to_owned()),
            document: Some("passage: ".to_owned()),
        });
    }
    Ok(Prompts::default())
}
