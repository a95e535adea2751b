//! Qwen3-Reranker: a Qwen3 causal LM asked, in its chat format, whether a document meets a
//! query; the score is P("yes") against "no" at the last position.
//!
//! The prompt is the one of the model card's usage example: the system turn below, a user turn
//! `<Instruct>: {instruction}\n<Query>: {query}\n<Document>: {document}`, then the assistant turn
//! opened with an empty think block. As in that example, the three parts are tokenized
//! separately and concatenated, and only the middle one is ever truncated (from its end, so the
//! document loses its tail and the closing tokens the answer depends on stay).
//!
//! Only the output head's rows for "yes" and "no" are kept: the score needs two logits, so a
//! `[hidden, vocab]` projection per pair would be 75 000 times more work than needed.
use std::path::Path;

use candle_core::{DType, Tensor};
use candle_nn::VarBuilder;
use serde::Deserialize;
use tokenizers::Tokenizer;

use super::error::{ModelError, Result};
use super::queue::{Batched, EmbedderConfig, Worker, split_round};
use super::qwen3::{Qwen3, Qwen3Config};
use super::resolve::{ModelFiles, read_json};
use super::{
    BatchLimits, Checkpoint, LoadOptions, ModelInfo, ModelKind, QWEN3_DEFAULT_MAX_TOKENS,
    instructions, plan_batches,
};

/// The system turn of Qwen3-Reranker's prompt.
pub const SYSTEM: &str = "Judge whether the Document meets the requirements based on the Query \
                          and the Instruct provided. Note that the answer can only be \"yes\" or \
                          \"no\".";

const PREFIX_AFTER_SYSTEM: &str = "<|im_end|>\n<|im_start|>user\n";
/// Closes the user turn and opens the assistant's with an empty think block, so the next token
/// is the answer.
pub const SUFFIX: &str = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n";

/// The prompt before the user content.
pub fn prefix() -> String {
    format!("<|im_start|>system\n{SYSTEM}{PREFIX_AFTER_SYSTEM}")
}

/// One (query, document) pair to score.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    /// What is looked for (a job description, a short query).
    pub query: String,
    /// The candidate text (a resume).
    pub document: String,
    /// The task sentence; `None` for the model's default ([`instructions::DEFAULT_TASK`]),
    /// `Some("")` for none (the `<Instruct>` line is left out).
    pub instruction: Option<String>,
}

/// The user content of a pair, and where the document starts in it (bytes).
pub fn user_content(pair: &Pair) -> (String, usize) {
    let head = match pair.instruction.as_deref() {
        Some("") => format!("<Query>: {}\n<Document>: ", pair.query),
        i => format!(
            "<Instruct>: {}\n<Query>: {}\n<Document>: ",
            i.unwrap_or(instructions::DEFAULT_TASK),
            pair.query
        ),
    };
    let start = head.len();
    (head + &pair.document, start)
}

/// Scores of a list of pairs, in input order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RerankOutput {
    /// P(yes) of pair i, in 0..1.
    pub scores: Vec<f32>,
    /// Whether pair i's document was cut to fit the token limit.
    pub truncated: Vec<bool>,
    /// Tokens of pair i's prompt.
    pub token_counts: Vec<u32>,
}

/// A tokenized prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptIds {
    /// The whole prompt's token ids.
    pub ids: Vec<u32>,
    /// Whether the document was cut.
    pub truncated: bool,
}

#[derive(Deserialize)]
struct HeadConfig {
    #[serde(default)]
    tie_word_embeddings: bool,
    model_type: String,
}

/// A loaded Qwen3-Reranker. Runs on the calling thread; the server uses it through
/// [`Reranker`], which gives it a thread of its own.
#[derive(Debug)]
pub struct RerankModel {
    info: ModelInfo,
    backbone: Qwen3,
    /// `[hidden, 2]`: the output head's "yes" and "no" rows, transposed for one matmul.
    head_t: Tensor,
    tokenizer: Tokenizer,
    prefix: Vec<u32>,
    suffix: Vec<u32>,
    yes_id: u32,
    no_id: u32,
}

fn tok_err(e: impl std::fmt::Display) -> ModelError {
    ModelError::Tokenizer { reason: e.to_string() }
}

impl RerankModel {
    /// Loads `spec`: a model folder, or a hub id in the local Hugging Face cache.
    pub fn load(spec: &str, opts: &LoadOptions) -> Result<Self> {
        let files = ModelFiles::locate(spec)?;
        Self::load_files(&files, opts)
    }

    /// Loads a located Qwen3ForCausalLM checkpoint.
    pub fn load_files(files: &ModelFiles, opts: &LoadOptions) -> Result<Self> {
        let config_path = files.require("config.json")?;
        let head_cfg: HeadConfig = read_json(&config_path)?;
        if head_cfg.model_type != "qwen3" {
            return Err(ModelError::UnsupportedModel {
                model_type: head_cfg.model_type,
                path: config_path,
            });
        }
        let cfg: Qwen3Config = read_json(&config_path)?;
        let compute = &opts.compute;
        let id = &files.id;
        let Checkpoint { tokenizer: tokenizer_path, hash, vb } =
            Checkpoint::open(files, &[], compute)?;
        let (tokenizer, yes_id, no_id) = load_tokenizer(&tokenizer_path)?;
        let head_t = output_rows(&vb, &cfg, head_cfg.tie_word_embeddings, &[yes_id, no_id])
            .map_err(ModelError::candle(id))?;
        let backbone = Qwen3::load(vb, cfg, compute).map_err(ModelError::candle(id))?;
        let max_tokens =
            opts.max_tokens.unwrap_or(QWEN3_DEFAULT_MAX_TOKENS).min(backbone.max_positions());
        let encode = |s: &str| -> Result<Vec<u32>> {
            Ok(tokenizer.encode_fast(s, false).map_err(tok_err)?.get_ids().to_vec())
        };
        let prefix = encode(&prefix())?;
        let suffix = encode(SUFFIX)?;
        // The prompt must leave room for the instruction, query and at least some document.
        if prefix.len() + suffix.len() + 16 > max_tokens {
            return Err(ModelError::Tokenizer {
                reason: format!(
                    "token limit {max_tokens} leaves no room for a pair after the {} tokens of \
                     the reranker prompt",
                    prefix.len() + suffix.len()
                ),
            });
        }
        Ok(RerankModel {
            info: ModelInfo {
                id: id.clone(),
                kind: ModelKind::Reranker,
                architecture: "qwen3",
                dim: 0,
                max_tokens,
                takes_instruction: true,
                compute: compute.describe(),
                hash,
            },
            backbone,
            head_t,
            tokenizer,
            prefix,
            suffix,
            yes_id,
            no_id,
        })
    }

    /// Facts about the model (`dim` is 0: a reranker outputs a score).
    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// The token ids of "yes" and "no", whose logits make the score.
    pub fn answer_ids(&self) -> (u32, u32) {
        (self.yes_id, self.no_id)
    }

    /// Tokenizes the prompts of `pairs`, cutting documents so each prompt fits the token limit.
    pub fn tokenize(&self, pairs: &[Pair]) -> Result<Vec<PromptIds>> {
        let budget = self.info.max_tokens - self.prefix.len() - self.suffix.len();
        let contents: Vec<(String, usize)> = pairs.iter().map(user_content).collect();
        // Byte offsets are needed to find where the document starts, so not encode_fast.
        let encs = self
            .tokenizer
            .encode_batch(contents.iter().map(|(c, _)| c.as_str()).collect::<Vec<_>>(), false)
            .map_err(tok_err)?;
        encs.iter()
            .zip(&contents)
            .map(|(enc, (_, doc_start))| {
                let ids = enc.get_ids();
                let truncated = ids.len() > budget;
                let keep = if truncated {
                    // Tokens wholly before the document: the instruction and the query, which
                    // are never cut (a cut query would score a different question).
                    let head =
                        enc.get_offsets().iter().take_while(|(_, end)| end <= doc_start).count();
                    if head >= budget {
                        return Err(ModelError::PromptTooLong {
                            tokens: head + self.prefix.len() + self.suffix.len(),
                            limit: self.info.max_tokens,
                        });
                    }
                    budget
                } else {
                    ids.len()
                };
                let mut out = Vec::with_capacity(self.prefix.len() + keep + self.suffix.len());
                out.extend_from_slice(&self.prefix);
                out.extend_from_slice(&ids[..keep]);
                out.extend_from_slice(&self.suffix);
                Ok(PromptIds { ids: out, truncated })
            })
            .collect()
    }

    /// The "yes" and "no" logits of each prompt in one forward pass, `[B, 2]` as f32 rows.
    pub fn logits(&self, batch: &[&[u32]]) -> Result<Vec<[f32; 2]>> {
        let id = &self.info.id;
        let last = self.backbone.forward(batch).map_err(ModelError::candle(id))?;
        let logits = super::layers::matmul(&last, &self.head_t)
            .and_then(|t| t.to_dtype(DType::F32))
            .and_then(|t| t.to_vec2::<f32>())
            .map_err(ModelError::candle(id))?;
        Ok(logits.into_iter().map(|r| [r[0], r[1]]).collect())
    }

    /// Scores tokenized prompts on this thread, batched by `limits`.
    pub fn score_encoded(
        &self,
        prompts: &[PromptIds],
        limits: BatchLimits,
    ) -> Result<RerankOutput> {
        let mut scores = vec![0f32; prompts.len()];
        let lengths: Vec<usize> = prompts.iter().map(|p| p.ids.len()).collect();
        for batch in plan_batches(&lengths, limits) {
            let seqs: Vec<&[u32]> = batch.iter().map(|&i| prompts[i].ids.as_slice()).collect();
            for (&i, [yes, no]) in batch.iter().zip(self.logits(&seqs)?) {
                scores[i] = sigmoid(yes - no);
            }
        }
        Ok(RerankOutput {
            scores,
            truncated: prompts.iter().map(|p| p.truncated).collect(),
            token_counts: lengths.iter().map(|&n| n as u32).collect(),
        })
    }

    /// Tokenizes and scores `pairs` on this thread. Blocks; never call it on an async runtime.
    pub fn score(&self, pairs: &[Pair], limits: BatchLimits) -> Result<RerankOutput> {
        let prompts = self.tokenize(pairs)?;
        self.score_encoded(&prompts, limits)
    }
}

/// P(yes) from the two logits: softmax over {yes, no}, which is the logistic of the difference.
fn sigmoid(x: f32) -> f32 {
    (1.0 / (1.0 + (-f64::from(x)).exp())) as f32
}

/// The tokenizer with padding and truncation off (we place and cut tokens ourselves), and the
/// ids of the answer tokens.
fn load_tokenizer(path: &Path) -> Result<(Tokenizer, u32, u32)> {
    let mut tokenizer = Tokenizer::from_file(path)
        .map_err(|e| ModelError::Tokenizer { reason: format!("{}: {e}", path.display()) })?;
    tokenizer.with_padding(None);
    tokenizer.with_truncation(None).map_err(tok_err)?;
    let id = |t: &str| {
        tokenizer.token_to_id(t).ok_or_else(|| ModelError::Tokenizer {
            reason: format!("{} has no {t:?} token, so it is not a Qwen3-Reranker", path.display()),
        })
    };
    let (yes, no) = (id("yes")?, id("no")?);
    Ok((tokenizer, yes, no))
}

/// `[hidden, rows.len()]`: the given rows of the output head (`lm_head.weight`, or the input
/// embeddings when tied), transposed. The full head is read once and dropped.
fn output_rows(
    vb: &VarBuilder,
    cfg: &Qwen3Config,
    tied: bool,
    rows: &[u32],
) -> candle_core::Result<Tensor> {
    let shape = (cfg.vocab_size, cfg.hidden_size);
    let head = if vb.contains_tensor("lm_head.weight") {
        vb.get(shape, "lm_head.weight")?
    } else if tied && vb.contains_tensor("model.embed_tokens.weight") {
        vb.get(shape, "model.embed_tokens.weight")?
    } else if tied {
        vb.get(shape, "embed_tokens.weight")?
    } else {
        candle_core::bail!("no lm_head.weight and tie_word_embeddings is false")
    };
    let idx = Tensor::new(rows, head.device())?;
    head.index_select(&idx, 0)?.t()?.contiguous()
}

/// A reranker on its own thread, fed by the same kind of bounded, batching queue as
/// [`super::Embedder`].
#[derive(Clone)]
pub struct Reranker {
    worker: Worker<RerankModel>,
}

impl std::fmt::Debug for Reranker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reranker").field("info", self.info()).finish()
    }
}

impl Reranker {
    /// Starts the model thread. `config` bounds pairs the way it bounds texts for embedders.
    pub fn spawn(model: std::sync::Arc<RerankModel>, config: EmbedderConfig) -> Result<Self> {
        Ok(Reranker { worker: Worker::spawn(model, config)? })
    }

    /// Facts about the model.
    pub fn info(&self) -> &ModelInfo {
        self.worker.info()
    }

    /// Pairs queued or being scored now (the metrics' queue depth).
    pub fn queue_depth(&self) -> usize {
        self.worker.depth()
    }

    /// Scores `pairs`; score i is pair i's. Waits without blocking the runtime.
    pub async fn rerank(&self, pairs: Vec<Pair>) -> Result<RerankOutput> {
        self.worker.call(pairs).await
    }

    /// Like [`rerank`](Self::rerank), blocking the calling thread: for the CLI and benchmarks.
    pub fn rerank_blocking(&self, pairs: Vec<Pair>) -> Result<RerankOutput> {
        self.worker.call_blocking(pairs)
    }
}

impl Batched for RerankModel {
    type Job = Vec<Pair>;
    type Output = RerankOutput;
    const THREAD: &'static str = "hirevec-rerank";

    fn items(job: &Self::Job) -> usize {
        job.len()
    }

    fn empty(&self) -> RerankOutput {
        RerankOutput::default()
    }

    fn info(&self) -> &ModelInfo {
        RerankModel::info(self)
    }

    fn process(&self, jobs: &[Vec<Pair>], limits: BatchLimits) -> Vec<Result<RerankOutput>> {
        let encoded: Vec<Result<Vec<PromptIds>>> = jobs.iter().map(|p| self.tokenize(p)).collect();
        let all: Vec<PromptIds> =
            encoded.iter().flatten().flat_map(|enc| enc.iter().cloned()).collect();
        let out = if all.is_empty() { Ok(self.empty()) } else { self.score_encoded(&all, limits) };
        split_round(encoded, out, &self.info.id, |out, r| RerankOutput {
            scores: out.scores[r.clone()].to_vec(),
            truncated: out.truncated[r.clone()].to_vec(),
            token_counts: out.token_counts[r].to_vec(),
        })
    }
}
