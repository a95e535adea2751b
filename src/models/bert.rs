//! BERT-family encoder (all-MiniLM-L6-v2, bge, e5) with sentence-transformers pooling. Written
//! here instead of using candle-transformers' BERT so the q/k/v projections run as one fused
//! matmul over the whole flattened batch, and that crate (and its hundred other models) stays out
//! of the build.
//!
//! Batch layout: no padding. The texts of a batch are packed into one `[tokens, hidden]` matrix;
//! every projection is one matmul over all of it and attention runs per text, so each text
//! computes exactly what it would alone and a batch costs its real tokens, not batch size times
//! the longest text.
use candle_core::{DType, Module, Result, Tensor};
use candle_nn::VarBuilder;
use serde::Deserialize;

use super::device::Compute;
use super::layers::{self, Linear};

/// The fields of a BERT config.json this encoder reads.
#[derive(Debug, Clone, Deserialize)]
pub struct BertConfig {
    /// Hidden size, the embedding dimension.
    pub hidden_size: usize,
    /// Feed-forward inner size.
    pub intermediate_size: usize,
    /// Encoder layers.
    pub num_hidden_layers: usize,
    /// Attention heads.
    pub num_attention_heads: usize,
    /// Longest input the position table covers.
    pub max_position_embeddings: usize,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Token type table size.
    #[serde(default = "default_type_vocab")]
    pub type_vocab_size: usize,
    /// LayerNorm epsilon.
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    /// Activation: "gelu" (erf), "gelu_new"/"gelu_pytorch_tanh" (tanh approximation) or "relu".
    #[serde(default = "default_act")]
    pub hidden_act: String,
    /// Only "absolute" is supported.
    #[serde(default)]
    pub position_embedding_type: Option<String>,
}

fn default_type_vocab() -> usize {
    2
}
fn default_eps() -> f64 {
    1e-12
}
fn default_act() -> String {
    "gelu".to_owned()
}

/// How token states become one vector (sentence-transformers' `1_Pooling/config.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pooling {
    /// Mean over the non-padding tokens.
    Mean,
    /// The first token's (`[CLS]`) state.
    Cls,
}

#[derive(Debug, Clone, Copy)]
enum Act {
    GeluErf,
    GeluTanh,
    Relu,
}

#[derive(Debug)]
struct LayerNorm {
    w: Tensor,
    b: Tensor,
    eps: f32,
}

impl LayerNorm {
    fn load(vb: VarBuilder, h: usize, eps: f64) -> Result<Self> {
        // Old checkpoints name the parameters gamma/beta.
        let (w, b) = if vb.contains_tensor("weight") {
            (vb.get(h, "weight")?, vb.get(h, "bias")?)
        } else {
            (vb.get(h, "gamma")?, vb.get(h, "beta")?)
        };
        Ok(LayerNorm { w, b, eps: eps as f32 })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let dt = x.dtype();
        let y = candle_nn::ops::layer_norm(
            &x.to_dtype(DType::F32)?.contiguous()?,
            &self.w.to_dtype(DType::F32)?,
            &self.b.to_dtype(DType::F32)?,
            self.eps,
        )?;
        y.to_dtype(dt)
    }
}

#[derive(Debug)]
struct Layer {
    qkv: Linear,
    attn_out: Linear,
    attn_norm: LayerNorm,
    inter: Linear,
    out: Linear,
    out_norm: LayerNorm,
}

/// A loaded BERT encoder with its pooling.
#[derive(Debug)]
pub struct Bert {
    cfg: BertConfig,
    word: Tensor,
    position: Tensor,
    /// Row 0 of the token type table: single-text inputs are all type 0.
    type0: Tensor,
    emb_norm: LayerNorm,
    layers: Vec<Layer>,
    act: Act,
    pooling: Pooling,
    compute: Compute,
}

fn linear(vb: &VarBuilder, out: usize, inp: usize) -> Result<(Tensor, Option<Tensor>)> {
    Ok((vb.get((out, inp), "weight")?, Some(vb.get(out, "bias")?)))
}

impl Bert {
    /// Loads the encoder; keys may carry a `bert.` prefix (BertModel saved inside a task model).
    pub fn load(
        vb: VarBuilder,
        cfg: BertConfig,
        pooling: Pooling,
        compute: &Compute,
    ) -> Result<Self> {
        if let Some(p) = cfg.position_embedding_type.as_deref()
            && p != "absolute"
        {
            candle_core::bail!(
                "position_embedding_type {p:?} is not supported (only \"absolute\")"
            );
        }
        let act = match cfg.hidden_act.as_str() {
            "gelu" => Act::GeluErf,
            "gelu_new" | "gelu_pytorch_tanh" => Act::GeluTanh,
            "relu" => Act::Relu,
            other => candle_core::bail!("hidden_act {other:?} is not supported"),
        };
        let vb = if vb.contains_tensor("bert.embeddings.word_embeddings.weight") {
            vb.pp("bert")
        } else {
            vb
        };
        let h = cfg.hidden_size;
        let eb = vb.pp("embeddings");
        let word = eb.get((cfg.vocab_size, h), "word_embeddings.weight")?;
        let position = eb.get((cfg.max_position_embeddings, h), "position_embeddings.weight")?;
        let type0 = eb.get((cfg.type_vocab_size, h), "token_type_embeddings.weight")?.get(0)?;
        let emb_norm = LayerNorm::load(eb.pp("LayerNorm"), h, cfg.layer_norm_eps)?;
        let mut layers = Vec::with_capacity(cfg.num_hidden_layers);
        for i in 0..cfg.num_hidden_layers {
            let lb = vb.pp(format!("encoder.layer.{i}"));
            let sb = lb.pp("attention.self");
            let qkv = Linear::fused(&[
                linear(&sb.pp("query"), h, h)?,
                linear(&sb.pp("key"), h, h)?,
                linear(&sb.pp("value"), h, h)?,
            ])?;
            let (ow, ob) = linear(&lb.pp("attention.output.dense"), h, h)?;
            let (iw, ib) = linear(&lb.pp("intermediate.dense"), cfg.intermediate_size, h)?;
            let (uw, ub) = linear(&lb.pp("output.dense"), h, cfg.intermediate_size)?;
            layers.push(Layer {
                qkv,
                attn_out: Linear::new(ow, ob)?,
                attn_norm: LayerNorm::load(
                    lb.pp("attention.output.LayerNorm"),
                    h,
                    cfg.layer_norm_eps,
                )?,
                inter: Linear::new(iw, ib)?,
                out: Linear::new(uw, ub)?,
                out_norm: LayerNorm::load(lb.pp("output.LayerNorm"), h, cfg.layer_norm_eps)?,
            });
        }
        Ok(Bert {
            cfg,
            word,
            position,
            type0,
            emb_norm,
            layers,
            act,
            pooling,
            compute: compute.clone(),
        })
    }

    /// The embedding dimension.
    pub fn dim(&self) -> usize {
        self.cfg.hidden_size
    }

    /// The longest input the position table allows.
    pub fn max_positions(&self) -> usize {
        self.cfg.max_position_embeddings
    }

    /// Pooled sentence vectors `[B, hidden]`, not normalised. `batch` holds token ids without
    /// padding, and they stay unpadded: the sequences are packed one after another into
    /// `[tokens, hidden]` rows, the projections run over all rows at once and attention runs
    /// per sequence ([`layers::packed_attention`]).
    pub fn forward(&self, batch: &[&[u32]]) -> Result<Tensor> {
        let dev = &self.compute.device;
        let longest = batch.iter().map(|s| s.len()).max().unwrap_or(0);
        if batch.is_empty() || batch.iter().any(|s| s.is_empty()) {
            candle_core::bail!("empty batch or empty text");
        }
        if longest > self.cfg.max_position_embeddings {
            candle_core::bail!(
                "sequence of {longest} tokens exceeds max_position_embeddings {}",
                self.cfg.max_position_embeddings
            );
        }
        let h = self.cfg.hidden_size;
        let nh = self.cfg.num_attention_heads;
        let total: usize = batch.iter().map(|s| s.len()).sum();
        let mut ids = Vec::with_capacity(total);
        let mut positions = Vec::with_capacity(total);
        let mut seqs = Vec::with_capacity(batch.len());
        for s in batch {
            seqs.push((ids.len(), s.len()));
            ids.extend_from_slice(s);
            positions.extend(0..s.len() as u32);
        }
        let ids = Tensor::from_vec(ids, total, dev)?;
        let positions = Tensor::from_vec(positions, total, dev)?;

        let x = (self.word.index_select(&ids, 0)? + self.position.index_select(&positions, 0)?)?
            .broadcast_add(&self.type0)?;
        let mut x = self.emb_norm.forward(&x)?;
        for layer in &self.layers {
            let qkv = layer.qkv.forward(&x)?;
            let ctx = layers::packed_attention(&qkv, &seqs, nh, h / nh)?;
            x = layer.attn_norm.forward(&layer.attn_out.forward_add(&ctx, &x)?)?;
            let inter = layer.inter.forward(&x)?;
            let inter = match self.act {
                Act::GeluErf => layers::gelu_erf(&inter)?,
                Act::GeluTanh => inter.gelu()?,
                Act::Relu => inter.relu()?,
            };
            x = layer.out_norm.forward(&layer.out.forward_add(&inter, &x)?)?;
        }
        let x = x.to_dtype(DType::F32)?;
        match self.pooling {
            Pooling::Cls => {
                let firsts: Vec<u32> = seqs.iter().map(|&(s, _)| s as u32).collect();
                x.index_select(&Tensor::new(firsts.as_slice(), dev)?, 0)
            }
            Pooling::Mean => {
                let rows = seqs
                    .iter()
                    .map(|&(s, n)| x.narrow(0, s, n)?.mean_keepdim(0))
                    .collect::<Result<Vec<_>>>()?;
                Tensor::cat(&rows, 0)
            }
        }
    }
}
