//! Qwen3 backbone (Qwen3-Embedding 0.6B/4B/8B and checkpoints of the same layout), written here
//! rather than taken from candle-transformers because that one has no padding mask: a left-padded
//! batch must give each text the vector it gets alone.
//!
//! Batch layout: texts are left-padded, so every row's last position holds its final token
//! (`<|endoftext|>`), whose last hidden state is the embedding. Rotary positions count from each
//! row's first real token, so a padded row computes exactly what it would alone (RoPE is relative,
//! so this also equals transformers' positions counted from the pad).
use candle_core::{D, DType, Module, Result, Tensor};
use candle_nn::VarBuilder;
use serde::Deserialize;

use super::device::Compute;
use super::layers::{Linear, attention};

/// The fields of a Qwen3 config.json this backbone reads.
#[derive(Debug, Clone, Deserialize)]
pub struct Qwen3Config {
    /// Hidden size, the embedding dimension.
    pub hidden_size: usize,
    /// MLP inner size.
    pub intermediate_size: usize,
    /// Decoder layers.
    pub num_hidden_layers: usize,
    /// Query heads.
    pub num_attention_heads: usize,
    /// Key-value heads (grouped-query attention).
    pub num_key_value_heads: usize,
    /// Per-head size; absent in some configs, then hidden / heads.
    pub head_dim: Option<usize>,
    /// RMSNorm epsilon.
    pub rms_norm_eps: f64,
    /// RoPE base at the top level (real Qwen3 checkpoints) ...
    pub rope_theta: Option<f64>,
    /// ... or inside transformers 5's `rope_parameters`.
    pub rope_parameters: Option<RopeParameters>,
    /// Longest sequence the positions were trained for.
    pub max_position_embeddings: usize,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Whether q/k/v/o have biases (false for Qwen3).
    #[serde(default)]
    pub attention_bias: bool,
}

/// transformers 5's `rope_parameters`.
#[derive(Debug, Clone, Deserialize)]
pub struct RopeParameters {
    /// RoPE base.
    pub rope_theta: Option<f64>,
    /// Only "default" is supported.
    pub rope_type: Option<String>,
}

impl Qwen3Config {
    fn head_dim(&self) -> usize {
        self.head_dim.unwrap_or(self.hidden_size / self.num_attention_heads)
    }

    /// The RoPE base, from wherever the config keeps it.
    pub fn rope_theta(&self) -> Option<f64> {
        self.rope_theta.or_else(|| self.rope_parameters.as_ref().and_then(|p| p.rope_theta))
    }
}

#[derive(Debug)]
struct Layer {
    input_norm: Tensor,
    qkv: Linear,
    q_norm: Tensor,
    k_norm: Tensor,
    o: Linear,
    post_norm: Tensor,
    gate_up: Linear,
    down: Linear,
}

/// A loaded Qwen3 backbone.
#[derive(Debug)]
pub struct Qwen3 {
    cfg: Qwen3Config,
    embed: Tensor,
    layers: Vec<Layer>,
    norm: Tensor,
    /// `[max_position_embeddings, head_dim / 2]` tables, indexed by position.
    cos: Tensor,
    sin: Tensor,
    compute: Compute,
}

fn linear(
    vb: &VarBuilder,
    name: &str,
    out: usize,
    inp: usize,
    bias: bool,
) -> Result<(Tensor, Option<Tensor>)> {
    let vb = vb.pp(name);
    let w = vb.get((out, inp), "weight")?;
    let b = if bias { Some(vb.get(out, "bias")?) } else { None };
    Ok((w, b))
}

impl Qwen3 {
    /// Loads the backbone from `vb`, whose keys may or may not start with `model.`.
    pub fn load(vb: VarBuilder, cfg: Qwen3Config, compute: &Compute) -> Result<Self> {
        if let Some(kind) = cfg.rope_parameters.as_ref().and_then(|p| p.rope_type.as_deref())
            && kind != "default"
        {
            candle_core::bail!("rope_type {kind:?} is not supported (only \"default\")");
        }
        let theta = cfg
            .rope_theta()
            .ok_or_else(|| candle_core::Error::Msg("config has no rope_theta".into()))?;
        let vb = if vb.contains_tensor("model.embed_tokens.weight") { vb.pp("model") } else { vb };
        let (h, hd) = (cfg.hidden_size, cfg.head_dim());
        let (nq, nkv) = (cfg.num_attention_heads, cfg.num_key_value_heads);
        if nq % nkv != 0 {
            candle_core::bail!(
                "num_attention_heads {nq} is not a multiple of num_key_value_heads {nkv}"
            );
        }
        let embed = vb.get((cfg.vocab_size, h), "embed_tokens.weight")?;
        let mut layers = Vec::with_capacity(cfg.num_hidden_layers);
        for i in 0..cfg.num_hidden_layers {
            let lb = vb.pp(format!("layers.{i}"));
            let ab = lb.pp("self_attn");
            let bias = cfg.attention_bias;
            let qkv = Linear::fused(&[
                linear(&ab, "q_proj", nq * hd, h, bias)?,
                linear(&ab, "k_proj", nkv * hd, h, bias)?,
                linear(&ab, "v_proj", nkv * hd, h, bias)?,
            ])?;
            let (ow, ob) = linear(&ab, "o_proj", h, nq * hd, bias)?;
            let mb = lb.pp("mlp");
            let im = cfg.intermediate_size;
            let gate_up = Linear::fused(&[
                linear(&mb, "gate_proj", im, h, false)?,
                linear(&mb, "up_proj", im, h, false)?,
            ])?;
            let (dw, _) = linear(&mb, "down_proj", h, im, false)?;
            layers.push(Layer {
                input_norm: lb.get(h, "input_layernorm.weight")?,
                qkv,
                q_norm: ab.get(hd, "q_norm.weight")?,
                k_norm: ab.get(hd, "k_norm.weight")?,
                o: Linear::new(ow, ob)?,
                post_norm: lb.get(h, "post_attention_layernorm.weight")?,
                gate_up,
                down: Linear::new(dw, None)?,
            });
        }
        let norm = vb.get(h, "norm.weight")?;
        let (cos, sin) = rope_tables(theta, hd, cfg.max_position_embeddings, compute)?;
        Ok(Qwen3 { cfg, embed, layers, norm, cos, sin, compute: compute.clone() })
    }

    /// The embedding dimension.
    pub fn dim(&self) -> usize {
        self.cfg.hidden_size
    }

    /// The longest input the positions allow.
    pub fn max_positions(&self) -> usize {
        self.cfg.max_position_embeddings
    }

    /// The last hidden state of each text's final token, `[B, hidden]`, not normalised.
    /// `batch` holds token ids without padding; this left-pads them.
    pub fn forward(&self, batch: &[&[u32]]) -> Result<Tensor> {
        let dev = &self.compute.device;
        let b = batch.len();
        let l = batch.iter().map(|s| s.len()).max().unwrap_or(0);
        if b == 0 || l == 0 {
            candle_core::bail!("empty batch or empty text");
        }
        if l > self.cfg.max_position_embeddings {
            candle_core::bail!(
                "sequence of {l} tokens exceeds max_position_embeddings {}",
                self.cfg.max_position_embeddings
            );
        }
        let pads: Vec<usize> = batch.iter().map(|s| l - s.len()).collect();
        let mut ids = Vec::with_capacity(b * l);
        let mut pos = Vec::with_capacity(b * l);
        for (s, &pad) in batch.iter().zip(&pads) {
            // The pad id is never attended to; 0 is a valid row of the embedding table.
            ids.extend(std::iter::repeat_n(0u32, pad));
            ids.extend_from_slice(s);
            pos.extend(std::iter::repeat_n(0u32, pad));
            pos.extend(0..s.len() as u32);
        }
        let ids = Tensor::from_vec(ids, b * l, dev)?;
        let pos = Tensor::from_vec(pos, b * l, dev)?;
        let half = self.cfg.head_dim() / 2;
        let cos = self.cos.index_select(&pos, 0)?.reshape((b, l, half))?;
        let sin = self.sin.index_select(&pos, 0)?.reshape((b, l, half))?;
        // Causal and padding mask, built per chunk of rows: query i sees key j when j <= i and
        // j is not padding. Padding queries see nothing useful but stay finite (no -inf rows).
        let mask = |rows: std::ops::Range<usize>| -> Result<Tensor> {
            let n = rows.len();
            let mut m = vec![0f32; n * l * l];
            for (r, &pad) in pads[rows].iter().enumerate() {
                let block = &mut m[r * l * l..(r + 1) * l * l];
                for i in 0..l {
                    for (j, v) in block[i * l..(i + 1) * l].iter_mut().enumerate() {
                        if j > i || j < pad {
                            *v = f32::MIN;
                        }
                    }
                }
            }
            Tensor::from_vec(m, (n, 1, l, l), dev)
        };
        let mut x = self.embed.index_select(&ids, 0)?.reshape((b, l, self.cfg.hidden_size))?;
        for layer in &self.layers {
            x = self.layer(layer, &x, &cos, &sin, &mask)?;
        }
        // Only the last position is pooled; RMSNorm is per position, so normalise just those.
        let last = x.narrow(1, l - 1, 1)?.squeeze(1)?;
        rms_norm(&last, &self.norm, self.cfg.rms_norm_eps)
    }

    fn layer(
        &self,
        layer: &Layer,
        x: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        mask: &dyn Fn(std::ops::Range<usize>) -> Result<Tensor>,
    ) -> Result<Tensor> {
        let (b, l, _) = x.dims3()?;
        let hd = self.cfg.head_dim();
        let (nq, nkv) = (self.cfg.num_attention_heads, self.cfg.num_key_value_heads);
        let eps = self.cfg.rms_norm_eps;

        let hx = rms_norm(x, &layer.input_norm, eps)?;
        let qkv = layer.qkv.forward(&hx)?;
        let heads = |start: usize, n: usize, norm: Option<&Tensor>| -> Result<Tensor> {
            let t =
                qkv.narrow(D::Minus1, start * hd, n * hd)?.contiguous()?.reshape((b, l, n, hd))?;
            let t = match norm {
                Some(w) => rms_norm(&t, w, eps)?,
                None => t,
            };
            t.transpose(1, 2)?.contiguous()
        };
        let q = heads(0, nq, Some(&layer.q_norm))?;
        let k = heads(nq, nkv, Some(&layer.k_norm))?;
        let v = heads(nq + nkv, nkv, None)?;
        let q = candle_nn::rotary_emb::rope(&q, cos, sin)?;
        let k = candle_nn::rotary_emb::rope(&k, cos, sin)?;
        let attn = attention(&q, &k, &v, mask)?;
        let x = layer.o.forward_add(&attn, x)?;

        let hx = rms_norm(&x, &layer.post_norm, eps)?;
        let gu = layer.gate_up.forward(&hx)?;
        let im = self.cfg.intermediate_size;
        let act = (candle_nn::ops::silu(&gu.narrow(D::Minus1, 0, im)?)?
            * gu.narrow(D::Minus1, im, im)?)?;
        layer.down.forward_add(&act, &x)
    }
}

/// RMSNorm in f32 whatever the compute dtype, as transformers' Qwen3RMSNorm does.
fn rms_norm(x: &Tensor, w: &Tensor, eps: f64) -> Result<Tensor> {
    let dt = x.dtype();
    let y = candle_nn::ops::rms_norm(
        &x.to_dtype(DType::F32)?.contiguous()?,
        &w.to_dtype(DType::F32)?,
        eps as f32,
    )?;
    y.to_dtype(dt)
}

/// cos/sin tables computed the way transformers does in f32 (inverse frequencies as
/// `1 / theta^(2i/d)` in f32, the angle as an f32 product), then the cosine of that f32 angle
/// taken in f64, so long positions carry the same angle rounding as the reference.
fn rope_tables(
    theta: f64,
    head_dim: usize,
    max_pos: usize,
    compute: &Compute,
) -> Result<(Tensor, Tensor)> {
    let half = head_dim / 2;
    let inv: Vec<f32> =
        (0..half).map(|i| 1.0f32 / (theta as f32).powf((2 * i) as f32 / head_dim as f32)).collect();
    let mut cos = Vec::with_capacity(max_pos * half);
    let mut sin = Vec::with_capacity(max_pos * half);
    for p in 0..max_pos {
        for &f in &inv {
            let angle = (p as f32 * f) as f64;
            cos.push(angle.cos() as f32);
            sin.push(angle.sin() as f32);
        }
    }
    let dev = &compute.device;
    let cos = Tensor::from_vec(cos, (max_pos, half), dev)?.to_dtype(compute.dtype)?;
    let sin = Tensor::from_vec(sin, (max_pos, half), dev)?.to_dtype(compute.dtype)?;
    Ok((cos, sin))
}
