//! Small building blocks shared by the model files: a linear layer that runs as one 2-D matmul,
//! attention with an additive mask computed in bounded-size chunks, and the CPU matmul both use.
use candle_core::{CpuStorage, CustomOp2, D, DType, Layout, Module, Result, Shape, Tensor, bail};

/// `[.., m, k] x [.., k, n]` in f32 on the CPU through gemm, as candle's matmul does, minus its
/// per-call cost: candle looks the core count up on every matmul (an environment read and, where
/// the kernel reports no preferred cores, a parse of /proc/cpuinfo), which showed as 13% of
/// MiniLM's time on one text (57.7 -> 65.6 docs/s here; 86 -> 89 at 32 texts). The right side
/// may be any strided view (gemm takes row and column strides), so `k.t()` is never copied; the
/// left side is made contiguous.
#[derive(Debug)]
struct CpuMatmul;

impl CustomOp2 for CpuMatmul {
    fn name(&self) -> &'static str {
        "hirevec-cpu-matmul"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (CpuStorage::F32(a), CpuStorage::F32(b)) = (s1, s2) else {
            bail!("{}: f32 only", self.name())
        };
        let (da, db) = (l1.dims(), l2.dims());
        let rank = da.len();
        if rank < 2
            || db.len() != rank
            || da[..rank - 2] != db[..rank - 2]
            || da[rank - 1] != db[rank - 2]
        {
            bail!("{}: shapes {da:?} x {db:?} do not multiply", self.name());
        }
        let Some((a0, _)) = l1.contiguous_offsets() else {
            bail!("{}: the left side must be contiguous", self.name())
        };
        let (m, k, n) = (da[rank - 2], da[rank - 1], db[rank - 1]);
        let batch: usize = da[..rank - 2].iter().product();
        let sb = l2.stride();
        let (b_rs, b_cs) = (sb[rank - 2] as isize, sb[rank - 1] as isize);
        // Where each batch entry of the right side starts (any strides), checked so that its
        // furthest element is inside the buffer.
        let mut b_offsets = Vec::with_capacity(batch);
        for i in 0..batch {
            let (mut rest, mut off) = (i, l2.start_offset());
            for d in (0..rank - 2).rev() {
                off += (rest % db[d]) * sb[d];
                rest /= db[d];
            }
            let last =
                off + k.saturating_sub(1) * sb[rank - 2] + n.saturating_sub(1) * sb[rank - 1];
            if k * n > 0 && last >= b.len() {
                bail!("{}: the right side's view is outside its buffer", self.name());
            }
            b_offsets.push(off);
        }
        if a0 + batch * m * k > a.len() {
            bail!("{}: the left side's view is outside its buffer", self.name());
        }
        let parallelism = if rayon::current_num_threads() < 2 {
            gemm::Parallelism::None
        } else {
            gemm::Parallelism::Rayon(rayon::current_num_threads())
        };
        let mut dst = vec![0f32; batch * m * n];
        for (i, &b_off) in b_offsets.iter().enumerate() {
            // SAFETY: the left side is contiguous from a0 with batch*m*k elements in bounds, each
            // right-side view's furthest element is in bounds (checked above), and dst holds batch*m*n
            // elements; gemm reads and writes only inside these m x k, k x n and m x n views.
            unsafe {
                gemm::gemm(
                    m,
                    n,
                    k,
                    dst.as_mut_ptr().add(i * m * n),
                    1,
                    n as isize,
                    false,
                    a.as_ptr().add(a0 + i * m * k),
                    1,
                    k as isize,
                    b.as_ptr().add(b_off),
                    b_cs,
                    b_rs,
                    0.0,
                    1.0,
                    false,
                    false,
                    false,
                    parallelism,
                );
            }
        }
        let mut out = da.to_vec();
        out[rank - 1] = n;
        Ok((CpuStorage::F32(dst), Shape::from(out)))
    }
}

/// `a.matmul(b)`, through [`CpuMatmul`] for f32 on the CPU.
pub(crate) fn matmul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    if a.device().is_cpu() && a.dtype() == DType::F32 && b.dtype() == DType::F32 {
        a.contiguous()?.apply_op2_no_bwd(b, &CpuMatmul)
    } else {
        a.matmul(b)
    }
}

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
        let y = matmul(&x.reshape((rows, inner))?, &self.weight_t)?;
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
            let scores = (matmul(&qc, &kc.t()?)? * scale)?.to_dtype(DType::F32)?;
            let scores = scores.reshape((rn, hn * rep, l, l))?.broadcast_add(&m)?;
            let probs = candle_nn::ops::softmax_last_dim(&scores)?.to_dtype(v.dtype())?;
            let out = matmul(&probs.reshape((rn, hn, rep * l, l))?, &vc.contiguous()?)?;
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
    fn cpu_matmul_matches_candles_on_plain_and_transposed_views() {
        let dev = candle_core::Device::Cpu;
        // Fixed pseudo-random values (no seed to print): a sine of the index and the shape.
        let randn = |shape: &[usize]| {
            let n: usize = shape.iter().product();
            let phase = shape.iter().sum::<usize>() as f32;
            let v: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37 + phase).sin()).collect();
            Tensor::from_vec(v, shape, &dev).unwrap()
        };
        let a = randn(&[2, 3, 5, 7]);
        let cases = [
            (a.clone(), randn(&[2, 3, 7, 4])),
            (a.clone(), randn(&[2, 3, 4, 7]).t().unwrap()),
            (a.reshape((30, 7)).unwrap(), randn(&[7, 6])),
            // A transposed view of some heads only (attention over a chunk of kv heads), which
            // candle's own matmul refuses as a striding error when there are several rows.
            (
                a.narrow(1, 0, 3).unwrap(),
                randn(&[2, 4, 4, 7]).narrow(1, 1, 3).unwrap().t().unwrap(),
            ),
            // A narrowed left side, made contiguous first.
            (a.narrow(1, 1, 2).unwrap(), randn(&[2, 2, 7, 4])),
        ];
        for (x, y) in cases {
            // candle's matmul on contiguous copies is the reference.
            let want = x.contiguous().unwrap().matmul(&y.contiguous().unwrap()).unwrap();
            let got = matmul(&x, &y).unwrap();
            assert_eq!(got.dims(), want.dims());
            let want = want.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let got = got.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() <= 1e-5 * (1.0 + w.abs()), "{g} vs {w}");
            }
        }
    }

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
