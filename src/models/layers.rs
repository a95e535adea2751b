//! Small building blocks shared by the model files: a linear layer that runs as one 2-D matmul,
//! attention with an additive mask computed in bounded-size chunks, and the CPU matmul both use.
use candle_core::{
    CpuStorage, CustomOp1, CustomOp2, CustomOp3, D, DType, Layout, Module, Result, Shape, Tensor,
    bail,
};

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
        let a = cpu_f32(s1, l1, "hirevec-cpu-matmul (left side)")?;
        let CpuStorage::F32(b) = s2 else { bail!("{}: f32 only", self.name()) };
        let (da, db) = (l1.dims(), l2.dims());
        let rank = da.len();
        if rank < 2
            || db.len() != rank
            || da[..rank - 2] != db[..rank - 2]
            || da[rank - 1] != db[rank - 2]
        {
            bail!("{}: shapes {da:?} x {db:?} do not multiply", self.name());
        }
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
        if batch * m * k > a.len() {
            bail!("{}: the left side's view is outside its buffer", self.name());
        }
        let parallelism = gemm_parallelism();
        let mut dst = vec![0f32; batch * m * n];
        for (i, &b_off) in b_offsets.iter().enumerate() {
            // SAFETY: the left side holds batch*m*k contiguous elements, each right-side view's
            // furthest element is in bounds (checked above), and dst holds batch*m*n elements;
            // gemm reads and writes only inside these m x k, k x n and m x n views.
            unsafe {
                gemm_f32(
                    (m, n, k),
                    (dst.as_mut_ptr().add(i * m * n), n as isize, 1),
                    false,
                    (a.as_ptr().add(i * m * k), k as isize, 1),
                    (b.as_ptr().add(b_off), b_rs, b_cs),
                    1.0,
                    parallelism,
                );
            }
        }
        let mut out = da.to_vec();
        out[rank - 1] = n;
        Ok((CpuStorage::F32(dst), Shape::from(out)))
    }
}

/// One f32 matrix product through gemm: `dst = scale * lhs rhs`, or `dst += scale * lhs rhs`
/// when `accumulate`. Each matrix is given as (first element, row stride, column stride), in
/// elements, so transposed and interleaved views are read in place.
///
/// # Safety
/// Every element of the `m x k` lhs, `k x n` rhs and `m x n` dst views must lie inside its
/// buffer, and nothing else may touch dst's view during the call.
unsafe fn gemm_f32(
    (m, n, k): (usize, usize, usize),
    dst: (*mut f32, isize, isize),
    accumulate: bool,
    lhs: (*const f32, isize, isize),
    rhs: (*const f32, isize, isize),
    scale: f32,
    parallelism: gemm::Parallelism,
) {
    // SAFETY: the caller guarantees the views; gemm reads and writes nothing else.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.0,
            dst.2,
            dst.1,
            accumulate,
            lhs.0,
            lhs.2,
            lhs.1,
            rhs.0,
            rhs.2,
            rhs.1,
            if accumulate { 1.0 } else { 0.0 },
            scale,
            false,
            false,
            false,
            parallelism,
        )
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

fn gemm_parallelism() -> gemm::Parallelism {
    if rayon::current_num_threads() < 2 {
        gemm::Parallelism::None
    } else {
        gemm::Parallelism::Rayon(rayon::current_num_threads())
    }
}

/// A contiguous f32 view of a CPU tensor's storage, or an error naming `what`.
fn cpu_f32<'s>(s: &'s CpuStorage, l: &Layout, what: &str) -> Result<&'s [f32]> {
    let CpuStorage::F32(v) = s else { bail!("{what}: f32 only") };
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&v[a..b]),
        None => bail!("{what}: must be contiguous"),
    }
}

/// `x W^T + bias (+ residual)` for `[m, k]` rows on the CPU in one pass over the output: the
/// output starts as the bias (plus the residual) and gemm accumulates the product into it, so
/// neither the bias nor the residual costs a separate sweep over `[m, n]` (candle's elementwise
/// kernels, which ran those adds, took 3% of MiniLM's time at 128 texts before).
#[derive(Debug)]
struct CpuLinear<'a> {
    bias: Option<&'a [f32]>,
}

impl CpuLinear<'_> {
    fn run(
        &self,
        x: &[f32],
        w: &[f32],
        k: usize,
        residual: Option<&[f32]>,
    ) -> Result<(CpuStorage, Shape)> {
        use rayon::prelude::*;
        if k == 0 || !x.len().is_multiple_of(k) || !w.len().is_multiple_of(k) {
            bail!(
                "hirevec-cpu-linear: {} inputs and {} weights do not split into rows of {k}",
                x.len(),
                w.len()
            );
        }
        let (m, n) = (x.len() / k, w.len() / k);
        if self.bias.is_some_and(|b| b.len() != n) || residual.is_some_and(|r| r.len() != m * n) {
            bail!("hirevec-cpu-linear: bias or residual does not match [{m}, {n}]");
        }
        let mut dst = vec![0f32; m * n];
        let read_dst = self.bias.is_some() || residual.is_some();
        if read_dst && n > 0 {
            dst.par_chunks_mut(n * 64).enumerate().for_each(|(c, rows)| {
                for (r, row) in rows.chunks_mut(n).enumerate() {
                    let i = c * 64 + r;
                    match (self.bias, residual) {
                        (Some(b), Some(res)) => {
                            for ((d, b), x) in row.iter_mut().zip(b).zip(&res[i * n..(i + 1) * n]) {
                                *d = b + x;
                            }
                        }
                        (Some(b), None) => row.copy_from_slice(b),
                        (None, Some(res)) => row.copy_from_slice(&res[i * n..(i + 1) * n]),
                        (None, None) => {}
                    }
                }
            });
        }
        // SAFETY: x holds m*k, w k*n (row-major [k, n]) and dst m*n elements, all contiguous;
        // gemm reads and writes only inside these views.
        unsafe {
            gemm_f32(
                (m, n, k),
                (dst.as_mut_ptr(), n as isize, 1),
                read_dst,
                (x.as_ptr(), k as isize, 1),
                (w.as_ptr(), n as isize, 1),
                1.0,
                gemm_parallelism(),
            );
        }
        Ok((CpuStorage::F32(dst), Shape::from((m, n))))
    }
}

impl CustomOp2 for CpuLinear<'_> {
    fn name(&self) -> &'static str {
        "hirevec-cpu-linear"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (k, name) = (l2.dims()[0], CustomOp2::name(self));
        self.run(cpu_f32(s1, l1, name)?, cpu_f32(s2, l2, name)?, k, None)
    }
}

impl CustomOp3 for CpuLinear<'_> {
    fn name(&self) -> &'static str {
        "hirevec-cpu-linear-residual"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let k = l2.dims()[0];
        let name = CustomOp3::name(self);
        self.run(cpu_f32(s1, l1, name)?, cpu_f32(s2, l2, name)?, k, Some(cpu_f32(s3, l3, name)?))
    }
}

/// `y = x W^T + b` over the last dimension. Inputs of any rank are flattened to one 2-D matmul:
/// candle would otherwise run one small matmul per batch row.
#[derive(Debug, Clone)]
pub(crate) struct Linear {
    /// `[in, out]`, stored transposed and contiguous so the matmul reads it row-major.
    weight_t: Tensor,
    bias: Option<Tensor>,
    /// The bias as plain floats when the layer runs on the CPU in f32 ([`CpuLinear`]).
    bias_cpu: Option<std::sync::Arc<[f32]>>,
}

impl Linear {
    /// From a `[out, in]` weight as stored in checkpoints.
    pub(crate) fn new(weight: Tensor, bias: Option<Tensor>) -> Result<Self> {
        let weight_t = weight.t()?.contiguous()?;
        let bias_cpu = match &bias {
            Some(b) if b.device().is_cpu() && b.dtype() == DType::F32 => {
                Some(b.flatten_all()?.to_vec1::<f32>()?.into())
            }
            _ => None,
        };
        Ok(Linear { weight_t, bias, bias_cpu })
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

    /// `x W^T + b + residual`, `residual` shaped like the output: the residual connection of a
    /// transformer block, folded into the matmul on the CPU.
    pub(crate) fn forward_add(&self, x: &Tensor, residual: &Tensor) -> Result<Tensor> {
        self.apply(x, Some(residual))
    }

    fn apply(&self, x: &Tensor, residual: Option<&Tensor>) -> Result<Tensor> {
        let dims = x.dims().to_vec();
        let (rows, inner) =
            (dims[..dims.len() - 1].iter().product::<usize>(), dims[dims.len() - 1]);
        let mut out = dims;
        *out.last_mut().expect("rank >= 1") = self.out_dim();
        let x2 = x.reshape((rows, inner))?;
        let on_cpu_f32 = x.device().is_cpu()
            && x.dtype() == DType::F32
            && self.weight_t.dtype() == DType::F32
            && residual.is_none_or(|r| r.dtype() == DType::F32)
            && (self.bias.is_none() || self.bias_cpu.is_some());
        if on_cpu_f32 {
            let op = CpuLinear { bias: self.bias_cpu.as_deref() };
            let x2 = x2.contiguous()?;
            let y = match residual {
                Some(r) => x2.apply_op3_no_bwd(
                    &self.weight_t,
                    &r.reshape((rows, self.out_dim()))?.contiguous()?,
                    &op,
                )?,
                None => x2.apply_op2_no_bwd(&self.weight_t, &op)?,
            };
            return y.reshape(out);
        }
        let y = x2.matmul(&self.weight_t)?;
        let y = match &self.bias {
            Some(b) => y.broadcast_add(b)?,
            None => y,
        };
        let y = y.reshape(out)?;
        match residual {
            Some(r) => y + r,
            None => Ok(y),
        }
    }
}

impl Module for Linear {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.apply(x, None)
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

/// Self-attention over packed sequences without padding, for encoders (no causal mask, every
/// head its own key-value head).
///
/// `qkv` is `[T, 3 * H * Dh]`: the tokens of all sequences one after another, each row its
/// query, key and value projections side by side (as [`Linear::fused`] makes them).
/// `seqs` gives each sequence's first row and length, in order, covering every row. Returns
/// `[T, H * Dh]`, each token attending only to the tokens of its own sequence. Nothing is spent
/// on padding: a batch costs the sum of its sequences, not batch size times the longest.
pub(crate) fn packed_attention(
    qkv: &Tensor,
    seqs: &[(usize, usize)],
    heads: usize,
    head_dim: usize,
) -> Result<Tensor> {
    let h = heads * head_dim;
    let (t, width) = qkv.dims2()?;
    if width != 3 * h {
        bail!("packed attention: qkv has {width} columns, not 3 x {heads} x {head_dim}");
    }
    // The sequences tile the rows in order, as the packing lays them out.
    let mut next = 0;
    for &(start, n) in seqs {
        if start != next {
            bail!("packed attention: a sequence starts at row {start}, not {next}");
        }
        next += n;
    }
    if next != t {
        bail!("packed attention: the sequences cover {next} rows of qkv's {t}");
    }
    if qkv.device().is_cpu() && qkv.dtype() == DType::F32 {
        return qkv.contiguous()?.apply_op1_no_bwd(&CpuPackedAttention { seqs, heads, head_dim });
    }
    packed_attention_per_sequence(qkv, seqs, heads, head_dim)
}

/// [`packed_attention`] elsewhere than on the CPU in f32: one sequence at a time through the
/// general [`attention`], no mask needed.
fn packed_attention_per_sequence(
    qkv: &Tensor,
    seqs: &[(usize, usize)],
    heads: usize,
    head_dim: usize,
) -> Result<Tensor> {
    let h = heads * head_dim;
    let mut outs = Vec::with_capacity(seqs.len());
    for &(start, n) in seqs {
        let rows = qkv.narrow(0, start, n)?;
        let part = |i: usize| -> Result<Tensor> {
            rows.narrow(1, i * h, h)?
                .reshape((1, n, heads, head_dim))?
                .transpose(1, 2)?
                .contiguous()
        };
        let no_mask = Tensor::zeros((1, 1, 1, n), DType::F32, qkv.device())?;
        let ctx = attention(&part(0)?, &part(1)?, &part(2)?, &|_| Ok(no_mask.clone()))?;
        outs.push(ctx.reshape((n, h))?);
    }
    Tensor::cat(&outs, 0)
}

/// [`packed_attention`] on the CPU: one task per (sequence, head), each two small gemm calls
/// that read q, k and v straight out of the qkv rows through strides (no transposed copies) and
/// write the context into its own columns of the output.
struct CpuPackedAttention<'a> {
    seqs: &'a [(usize, usize)],
    heads: usize,
    head_dim: usize,
}

/// The output pointer shared by the tasks; each writes a disjoint (rows, columns) block.
#[derive(Clone, Copy)]
struct OutPtr(*mut f32);

// SAFETY: tasks write disjoint blocks (their own sequence's rows x their own head's columns)
// and the buffer outlives the parallel loop.
unsafe impl Send for OutPtr {}
// SAFETY: as for Send.
unsafe impl Sync for OutPtr {}

impl OutPtr {
    /// The element `offset` places in. A method, so closures capture the Sync wrapper rather
    /// than its raw pointer field.
    ///
    /// # Safety
    /// `offset` must be inside the buffer.
    unsafe fn at(self, offset: usize) -> *mut f32 {
        // SAFETY: the caller keeps offset inside the buffer.
        unsafe { self.0.add(offset) }
    }
}

impl CustomOp1 for CpuPackedAttention<'_> {
    fn name(&self) -> &'static str {
        "hirevec-packed-attention"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        use rayon::prelude::*;
        let qkv = cpu_f32(s, l, self.name())?;
        let (hd, h) = (self.head_dim, self.heads * self.head_dim);
        let w = 3 * h;
        let t = qkv.len() / w;
        if !qkv.len().is_multiple_of(w) || self.seqs.iter().any(|&(start, n)| start + n > t) {
            bail!("{}: the sequences do not fit the {t} rows of qkv", self.name());
        }
        let mut out = vec![0f32; t * h];
        let dst = OutPtr(out.as_mut_ptr());
        let scale = 1.0 / (hd as f32).sqrt();
        // One scores buffer per worker, reused across its tasks.
        (0..self.seqs.len() * self.heads).into_par_iter().for_each_init(
            Vec::new,
            |scores, task| {
                let (start, n) = self.seqs[task / self.heads];
                let head = task % self.heads;
                if n == 0 {
                    return;
                }
                let base = start * w + head * hd;
                scores.resize(n * n, 0.0);
                // SAFETY: q rows start..start+n, columns [head*hd, (head+1)*hd) of qkv, and the k
                // and v blocks h and 2h columns further, are inside qkv (start + n <= t, checked
                // above); scores holds n x n; the output block (same rows, the head's columns of
                // an h-wide row) is written by this task alone.
                unsafe {
                    // scores = scale * q k^T: k^T read column-major out of k's rows.
                    gemm_f32(
                        (n, n, hd),
                        (scores.as_mut_ptr(), n as isize, 1),
                        false,
                        (qkv.as_ptr().add(base), w as isize, 1),
                        (qkv.as_ptr().add(base + h), 1, w as isize),
                        scale,
                        gemm::Parallelism::None,
                    );
                }
                for row in scores.chunks_mut(n) {
                    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    let mut sum = 0f32;
                    for x in row.iter_mut() {
                        *x = (*x - max).exp();
                        sum += *x;
                    }
                    let inv = 1.0 / sum;
                    for x in row.iter_mut() {
                        *x *= inv;
                    }
                }
                // SAFETY: as above: probs is n x n, v's block is inside qkv, the output block is this
                // task's own.
                unsafe {
                    gemm_f32(
                        (n, hd, n),
                        (dst.at(start * h + head * hd), h as isize, 1),
                        false,
                        (scores.as_ptr(), n as isize, 1),
                        (qkv.as_ptr().add(base + 2 * h), w as isize, 1),
                        1.0,
                        gemm::Parallelism::None,
                    );
                }
            },
        );
        Ok((CpuStorage::F32(out), Shape::from((t, h))))
    }
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
    if !x.device().is_cpu() || x.dtype() != DType::F32 {
        return x.gelu_erf();
    }
    x.contiguous()?.apply_op1_no_bwd(&CpuGeluErf)
}

/// [`gelu_erf`] on the CPU: reads the input once and writes the output once.
struct CpuGeluErf;

impl CustomOp1 for CpuGeluErf {
    fn name(&self) -> &'static str {
        "hirevec-gelu-erf"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        use rayon::prelude::*;
        let x = cpu_f32(s, l, self.name())?;
        let mut y = vec![0f32; x.len()];
        y.par_chunks_mut(16 * 1024).zip(x.par_chunks(16 * 1024)).for_each(|(y, x)| {
            for (y, &x) in y.iter_mut().zip(x) {
                *y = gelu_erf_scalar(x);
            }
        });
        Ok((CpuStorage::F32(y), l.shape().clone()))
    }
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
        // Each shape its own phase, so no two operands are the same values.
        let randn = |shape: &[usize]| fixed(shape, shape.iter().sum::<usize>() as f32);
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
            assert_close(&matmul(&x, &y).unwrap(), &want, 1e-5);
        }
    }

    /// Fixed pseudo-random values (no seed to print): a sine of the index, phase-shifted.
    fn fixed(shape: &[usize], phase: f32) -> Tensor {
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37 + phase).sin()).collect();
        Tensor::from_vec(v, shape, &candle_core::Device::Cpu).unwrap()
    }

    fn assert_close(got: &Tensor, want: &Tensor, tol: f32) {
        assert_eq!(got.dims(), want.dims());
        let got = got.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let want = want.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!((g - w).abs() <= tol * (1.0 + w.abs()), "element {i}: {g} vs {w}");
        }
    }

    #[test]
    fn linear_folds_bias_and_residual_as_candles_ops_would() {
        let x = fixed(&[2, 5, 7], 0.5);
        let (w, b) = (fixed(&[6, 7], 1.5), fixed(&[6], 2.5));
        let res = fixed(&[2, 5, 6], 3.5);
        let plain = (x.matmul(&w.t().unwrap().broadcast_left(2).unwrap()).unwrap())
            .broadcast_add(&b)
            .unwrap();
        let with_bias = Linear::new(w.clone(), Some(b)).unwrap();
        assert_close(&with_bias.forward(&x).unwrap(), &plain, 1e-5);
        assert_close(&with_bias.forward_add(&x, &res).unwrap(), &(&plain + &res).unwrap(), 1e-5);
        let no_bias = Linear::new(w.clone(), None).unwrap();
        let bare = x.matmul(&w.t().unwrap().broadcast_left(2).unwrap()).unwrap();
        assert_close(&no_bias.forward(&x).unwrap(), &bare, 1e-5);
        assert_close(&no_bias.forward_add(&x, &res).unwrap(), &(&bare + &res).unwrap(), 1e-5);
    }

    #[test]
    fn packed_attention_equals_each_sequence_attending_alone() {
        let (heads, hd) = (3, 4);
        let h = heads * hd;
        // Lengths 5, 1 and 3 packed into 9 rows.
        let seqs = [(0, 5), (5, 1), (6, 3)];
        let qkv = fixed(&[9, 3 * h], 0.25);
        let got = packed_attention(&qkv, &seqs, heads, hd).unwrap();
        assert_eq!(got.dims(), &[9, h]);
        for &(start, n) in &seqs {
            // Reference: candle's own ops on this sequence alone, head by head.
            let rows = qkv.narrow(0, start, n).unwrap();
            let mut heads_out = Vec::new();
            for j in 0..heads {
                let q = rows.narrow(1, j * hd, hd).unwrap();
                let k = rows.narrow(1, h + j * hd, hd).unwrap();
                let v = rows.narrow(1, 2 * h + j * hd, hd).unwrap().contiguous().unwrap();
                let scores = (q.matmul(&k.t().unwrap()).unwrap() / (hd as f64).sqrt()).unwrap();
                let probs = candle_nn::ops::softmax_last_dim(&scores).unwrap();
                heads_out.push(probs.matmul(&v).unwrap());
            }
            let want = Tensor::cat(&heads_out, 1).unwrap();
            assert_close(&got.narrow(0, start, n).unwrap(), &want, 1e-5);
        }
        // The path other devices take computes the same.
        let general = packed_attention_per_sequence(&qkv, &seqs, heads, hd).unwrap();
        assert_close(&general, &got, 1e-5);
        let bad = packed_attention(&qkv, &[(0, 5), (6, 3)], heads, hd).unwrap_err().to_string();
        assert!(bad.contains("starts at row 6, not 5"), "{bad}");
        let bad = packed_attention(&qkv, &[(0, 5), (5, 1)], heads, hd).unwrap_err().to_string();
        assert!(bad.contains("cover 6 rows of qkv's 9"), "{bad}");
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
