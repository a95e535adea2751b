//! Small building blocks shared by the model files: a linear layer that runs as one 2-D matmul,
//! and attention with an additive mask computed in bounded-size chunks.
use candle_core::{D, DType, Module, Result, Tensor};

/// `y = x W^T + b` over the last dimension. Inputs of any rank are flattened to one 2-D matmul:
/// candle would otherwise run one small matmul per batch row.
#[derive(Debug, Clone)]
pub(crate) struct Linear {
    /// `[in, out]`, stored transposed and contiguous so the matmul reads it row-major.
    weight_t: Tensor,
    bias: Option<Tensor>,
}

impl Linear {
    /// From a `[out, in]` weight as stored in checkpoints.
    pub(crate) fn new(weight: Tensor, bias: Option<Tensor>) -> Result<Self> {
        Ok(Linear { weight_t: weight.t()?.contiguous()?, bias })
    }

    /// Several projections of the same input fused into one (q, k, v; gate, up): the weights
    /// are stacked along `out`, so one matmul replaces several and the outputs sit side by side.
    pub(crate) fn fused(parts: &[(Tensor, Option<Tensor>)]) -> Result<Self> {
        let ws: Vec<&Tensor> = parts.iter().map(|(w, _)| w).collect();
        let weight = Tensor::cat(&ws, 0)?;
        let bias = if parts.iter().all(|(_, b)| b.is_some()) {
            let bs: Vec<&Tensor> = parts.iter().filter_map(|(_, b)| b.as_ref()).collect();
            Some(Tensor::cat(&bs, 0)?)
        } else {
            None
        };
        Linear::new(weight, bias)
    }

    pub(crate) fn out_dim(&self) -> usize {
        self.weight_t.dims()[1]
    }
}

impl Module for Linear {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let dims = x.dims().to_vec();
        let (rows, inner) =
            (dims[..dims.len() - 1].iter().product::<usize>(), dims[dims.len() - 1]);
        let y = x.reshape((rows, inner))?.matmul(&self.weight_t)?;
        let y = match &self.bias {
            Some(b) => y.broadcast_add(b)?,
            None => y,
        };
        let mut out = dims;
        *out.last_mut().expect("rank >= 1") = self.out_dim();
        y.reshape(out)
    }
}

/// The most f32 attention scores materialised at once; larger batches are split by rows and
/// key-value heads so long texts do not need gigabytes for one `[B, H, L, L]` tensor.
const SCORE_BUDGET: usize = 64 << 20;

/// Scaled dot-product attention with grouped key-value heads.
///
/// `q`: `[B, H, L, Dh]`, `k`/`v`: `[B, KV, L, Dh]` (H a multiple of KV; head h reads kv head
/// h / (H/KV), as transformers' `repeat_kv` does), all contiguous. `mask(rows)` returns the
/// additive mask for batch rows `rows`, broadcastable to `[rows.len(), 1, L, L]`: 0 where a query
/// may attend a key, a large negative number elsewhere. Scores and softmax are f32. Returns
/// `[B, L, H * Dh]`.
pub(crate) fn attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask: &dyn Fn(std::ops::Range<usize>) -> Result<Tensor>,
) -> Result<Tensor> {
    let (b, h, l, dh) = q.dims4()?;
    let kv = k.dim(1)?;
    let rep = h / kv;
    let scale = 1.0 / (dh as f64).sqrt();
    // Queries of the heads sharing one kv head stacked along the sequence: one matmul per kv
    // head instead of copying k and v `rep` times.
    let q = q.reshape((b, kv, rep * l, dh))?;
    let per_row_kv = rep * l * l;
    let kv_chunk = (SCORE_BUDGET / per_row_kv.max(1)).clamp(1, kv);
    let row_chunk = if kv_chunk < kv { 1 } else { (SCORE_BUDGET / (per_row_kv * kv)).clamp(1, b) };
    let mut rows_out = Vec::new();
    for r0 in (0..b).step_by(row_chunk) {
        let rn = row_chunk.min(b - r0);
        let m = mask(r0..r0 + rn)?;
        let mut heads_out = Vec::new();
        for h0 in (0..kv).step_by(kv_chunk) {
            let hn = kv_chunk.min(kv - h0);
            let qc = q.narrow(0, r0, rn)?.narrow(1, h0, hn)?;
            let kc = k.narrow(0, r0, rn)?.narrow(1, h0, hn)?;
            let vc = v.narrow(0, r0, rn)?.narrow(1, h0, hn)?;
            let scores = (qc.contiguous()?.matmul(&kc.t()?)? * scale)?.to_dtype(DType::F32)?;
            let scores = scores.reshape((rn, hn * rep, l, l))?.broadcast_add(&m)?;
            let probs = candle_nn::ops::softmax_last_dim(&scores)?.to_dtype(v.dtype())?;
            let out = probs.reshape((rn, hn, rep * l, l))?.matmul(&vc.contiguous()?)?;
            heads_out.push(out);
        }
        let out = if heads_out.len() == 1 {
            heads_out.pop().expect("one")
        } else {
            Tensor::cat(&heads_out, 1)?
        };
        rows_out.push(out);
    }
    let out =
        if rows_out.len() == 1 { rows_out.pop().expect("one") } else { Tensor::cat(&rows_out, 0)? };
    // [B, KV, rep*L, Dh] -> [B, H, L, Dh] -> [B, L, H*Dh]
    out.reshape((b, h, l, dh))?.transpose(1, 2)?.contiguous()?.reshape((b, l, h * dh))
}

/// L2-normalises each row of `[N, D]` (rows of zeros stay zero).
pub(crate) fn l2_normalize(x: &Tensor) -> Result<Tensor> {
    let x = x.to_dtype(DType::F32)?;
    let norm = x.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?.clamp(1e-12f32, f32::MAX)?;
    x.broadcast_div(&norm)
}

/// GELU with the exact (erf) form, as BERT checkpoints use. On the CPU in f32 it runs over all
/// cores with a closed-form erf (Abramowitz & Stegun 7.1.26, absolute error below 1.5e-7, far
/// under f32 rounding of the activations): candle's own op is single-threaded with a slower f64
/// erf, and was a sixth of MiniLM's forward time. Elsewhere candle's op is used.
pub(crate) fn gelu_erf(x: &Tensor) -> Result<Tensor> {
    use rayon::prelude::*;
    if !x.device().is_cpu() || x.dtype() != DType::F32 {
        return x.gelu_erf();
    }
    let shape = x.shape().clone();
    let mut v = x.flatten_all()?.to_vec1::<f32>()?;
    v.par_chunks_mut(16 * 1024).for_each(|c| {
        for y in c {
            *y = gelu_erf_scalar(*y);
        }
    });
    Tensor::from_vec(v, shape, x.device())
}

#[inline]
fn gelu_erf_scalar(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// erf by Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7), odd-extended to negative inputs.
#[inline]
fn erf(x: f32) -> f32 {
    const P: f32 = 0.327_591_1;
    const A: [f32; 5] = [0.254_829_6, -0.284_496_74, 1.421_413_8, -1.453_152, 1.061_405_4];
    let a = x.abs();
    let t = 1.0 / (1.0 + P * a);
    let poly = t * (A[0] + t * (A[1] + t * (A[2] + t * (A[3] + t * A[4]))));
    let y = 1.0 - poly * (-a * a).exp();
    y.copysign(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_gelu_erf_matches_candles_within_f32_rounding() {
        let xs: Vec<f32> = (-8000..=8000).map(|i| i as f32 / 1000.0).collect();
        let t = Tensor::from_vec(xs.clone(), xs.len(), &candle_core::Device::Cpu).unwrap();
        let ours = gelu_erf(&t).unwrap().to_vec1::<f32>().unwrap();
        let theirs = t.gelu_erf().unwrap().to_vec1::<f32>().unwrap();
        for ((x, a), b) in xs.iter().zip(&ours).zip(&theirs) {
            // Error of erf scaled by |x|/2, plus f32 rounding of values up to 8.
            assert!((a - b).abs() <= 1e-6 + 1e-6 * x.abs(), "gelu({x}): {a} vs {b}");
        }
    }
}
