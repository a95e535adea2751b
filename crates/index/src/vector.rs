//! Vector element types, the distance kernels and input preparation (validate, Matryoshka cut,
//! normalise). Vectors are unit length, so cosine similarity is a dot product.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// How vectors are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dtype {
    /// 32-bit IEEE floats.
    F32,
    /// 16-bit IEEE floats (`half::f16`): half the memory, recall within a few thousandths.
    F16,
}

impl Dtype {
    /// The lower-case name, as used on the command line and in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Dtype::F32 => "f32",
            Dtype::F16 => "f16",
        }
    }

    /// Bytes per component.
    pub fn size(self) -> usize {
        match self {
            Dtype::F32 => 4,
            Dtype::F16 => 2,
        }
    }

    pub(crate) fn code(self) -> u32 {
        match self {
            Dtype::F32 => 1,
            Dtype::F16 => 2,
        }
    }

    pub(crate) fn from_code(code: u32) -> Option<Self> {
        match code {
            1 => Some(Dtype::F32),
            2 => Some(Dtype::F16),
            _ => None,
        }
    }
}

impl fmt::Display for Dtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Dtype {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "f32" | "float32" => Ok(Dtype::F32),
            "f16" | "float16" => Ok(Dtype::F16),
            other => Err(Error::InvalidConfig {
                field: "dtype",
                reason: format!("unknown dtype {other:?}, expected f32 or f16"),
            }),
        }
    }
}

/// A stored component type. Implemented for `f32` and `half::f16`.
pub trait Element: bytemuck::Pod + Send + Sync + fmt::Debug + 'static {
    /// The dtype tag of this element.
    const DTYPE: Dtype;
    /// Rounds an `f32` to this type.
    fn from_f32(x: f32) -> Self;
    /// Widens to `f32`.
    fn to_f32(self) -> f32;
    /// Dot product through simsimd (SIMD chosen at run time).
    fn dot(a: &[Self], b: &[Self]) -> f32;
}

impl Element for f32 {
    const DTYPE: Dtype = Dtype::F32;
    #[inline]
    fn from_f32(x: f32) -> Self {
        x
    }
    #[inline]
    fn to_f32(self) -> f32 {
        self
    }
    #[inline]
    fn dot(a: &[f32], b: &[f32]) -> f32 {
        // Lengths always match inside the crate; `None` only comes from a length mismatch.
        <f32 as simsimd::SpatialSimilarity>::dot(a, b).unwrap_or(f64::NAN) as f32
    }
}

impl Element for half::f16 {
    const DTYPE: Dtype = Dtype::F16;
    #[inline]
    fn from_f32(x: f32) -> Self {
        half::f16::from_f32(x)
    }
    #[inline]
    fn to_f32(self) -> f32 {
        half::f16::to_f32(self)
    }
    #[inline]
    fn dot(a: &[half::f16], b: &[half::f16]) -> f32 {
        #[cfg(target_arch = "x86_64")]
        if avx512::usable() {
            return avx512::dot_f16(a, b);
        }
        <simsimd::f16 as simsimd::SpatialSimilarity>::dot(as_simsimd_f16(a), as_simsimd_f16(b))
            .unwrap_or(f64::NAN) as f32
    }
}

/// An f16 dot product for CPUs with AVX-512F but without AVX512-FP16 (AMD Zen 4, Intel Skylake
/// to Ice Lake). On those simsimd falls back to its 256-bit F16C kernel, which made f16 segments
/// search about 20% slower than f32 ones here; converting 16 halves at a time with
/// `vcvtph2ps zmm` and accumulating in f32 restores the AVX-512 width. CPUs with AVX512-FP16
/// (Sapphire Rapids) keep simsimd's native kernel.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;
    use std::sync::OnceLock;

    pub(super) fn usable() -> bool {
        static USABLE: OnceLock<bool> = OnceLock::new();
        *USABLE.get_or_init(|| {
            is_x86_feature_detected!("avx512f") && !is_x86_feature_detected!("avx512fp16")
        })
    }

    #[inline]
    pub(super) fn dot_f16(a: &[half::f16], b: &[half::f16]) -> f32 {
        assert_eq!(a.len(), b.len());
        // SAFETY: `usable()` checked that the CPU has AVX-512F, the only feature the kernel uses.
        unsafe { dot_f16_avx512(a, b) }
    }

    #[target_feature(enable = "avx512f")]
    unsafe fn dot_f16_avx512(a: &[half::f16], b: &[half::f16]) -> f32 {
        let n = a.len();
        let (pa, pb) = (a.as_ptr().cast::<__m256i>(), b.as_ptr().cast::<__m256i>());
        // Two accumulators hide the FMA latency.
        let mut acc0 = _mm512_setzero_ps();
        let mut acc1 = _mm512_setzero_ps();
        let mut i = 0;
        while i + 32 <= n {
            // SAFETY: i + 32 <= n, so both 16-element loads at i and i + 16 are in bounds;
            // `loadu` has no alignment requirement.
            unsafe {
                let a0 = _mm512_cvtph_ps(_mm256_loadu_si256(pa.byte_add(i * 2)));
                let b0 = _mm512_cvtph_ps(_mm256_loadu_si256(pb.byte_add(i * 2)));
                let a1 = _mm512_cvtph_ps(_mm256_loadu_si256(pa.byte_add(i * 2 + 32)));
                let b1 = _mm512_cvtph_ps(_mm256_loadu_si256(pb.byte_add(i * 2 + 32)));
                acc0 = _mm512_fmadd_ps(a0, b0, acc0);
                acc1 = _mm512_fmadd_ps(a1, b1, acc1);
            }
            i += 32;
        }
        if i + 16 <= n {
            // SAFETY: i + 16 <= n: one 16-element load is in bounds.
            unsafe {
                let a0 = _mm512_cvtph_ps(_mm256_loadu_si256(pa.byte_add(i * 2)));
                let b0 = _mm512_cvtph_ps(_mm256_loadu_si256(pb.byte_add(i * 2)));
                acc0 = _mm512_fmadd_ps(a0, b0, acc0);
            }
            i += 16;
        }
        let mut sum = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
        for j in i..n {
            sum += a[j].to_f32() * b[j].to_f32();
        }
        sum
    }
}

#[inline]
fn as_simsimd_f16(v: &[half::f16]) -> &[simsimd::f16] {
    // SAFETY: `half::f16` and `simsimd::f16` are both `#[repr(transparent)]` over `u16`, so the
    // two slices have the same layout, alignment and length; every bit pattern is valid for both.
    unsafe { std::slice::from_raw_parts(v.as_ptr().cast::<simsimd::f16>(), v.len()) }
}

/// The scalar reference: dot product of two vectors of any element type, accumulated in `f64`.
/// Tests hold the SIMD kernels to it.
pub fn dot_reference<T: Element>(a: &[T], b: &[T]) -> f64 {
    assert_eq!(a.len(), b.len(), "dot_reference: lengths differ");
    a.iter().zip(b).map(|(x, y)| x.to_f32() as f64 * y.to_f32() as f64).sum()
}

/// The SIMD kernel the index uses, exposed for benches and tests. Panics on a length mismatch.
pub fn dot<T: Element>(a: &[T], b: &[T]) -> f32 {
    assert_eq!(a.len(), b.len(), "dot: lengths differ");
    T::dot(a, b)
}

/// Validates an input vector and turns it into what a segment stores: checks the length and that
/// every component is finite, keeps the first `stored_dim` components (Matryoshka) and
/// L2-normalises them. Queries go through the same function, so they are cut the same way.
pub fn prepare_vector(input: &[f32], dim: usize, stored_dim: usize) -> Result<Vec<f32>> {
    if input.len() != dim {
        return Err(Error::Dimension { expected: dim, received: input.len() });
    }
    if let Some((index, &value)) = input.iter().enumerate().find(|(_, x)| !x.is_finite()) {
        return Err(Error::NonFinite { index, value });
    }
    let kept = &input[..stored_dim.min(dim)];
    // f64 so that vectors with huge or tiny components still normalise without overflow.
    let norm = kept.iter().map(|&x| x as f64 * x as f64).sum::<f64>().sqrt();
    if norm == 0.0 || !norm.is_finite() {
        return Err(Error::ZeroVector { stored_dim: kept.len() });
    }
    Ok(kept.iter().map(|&x| (x as f64 / norm) as f32).collect())
}

/// A query as a segment of `config` compares it: validated, cut, normalised, in the stored type.
pub(crate) fn prepare_query<T: Element>(
    config: &crate::SegmentConfig,
    query: &[f32],
) -> Result<Vec<T>> {
    Ok(convert(&prepare_vector(query, config.dim, config.stored_dim)?))
}

pub(crate) fn convert<T: Element>(v: &[f32]) -> Vec<T> {
    v.iter().map(|&x| T::from_f32(x)).collect()
}
