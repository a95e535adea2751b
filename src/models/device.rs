//! Where models run and in which float type: chosen here and nowhere else, so a CUDA build only
//! has to enable candle's `cuda` feature.
//!
//! On CPU we compute in f32 whatever the checkpoint's dtype: candle's bf16/f16 CPU matmuls are
//! slower than its f32 ones (gemm's AVX-512 f32 kernels), and f32 arithmetic on bf16 weights is
//! exactly what the reference outputs in ../shared/fixtures were computed with.
use candle_core::{DType, Device};

/// A device and the dtype the weights are converted to on load.
#[derive(Debug, Clone)]
pub struct Compute {
    /// Where tensors live.
    pub device: Device,
    /// The dtype of weights and activations. Softmax and norms upcast to f32 where this is lower.
    pub dtype: DType,
}

impl Compute {
    /// The CPU in f32.
    pub fn cpu() -> Self {
        Compute { device: Device::Cpu, dtype: DType::F32 }
    }

    /// The first CUDA GPU in bf16 when this build has CUDA and one is present, else the CPU.
    pub fn auto() -> Self {
        if candle_core::utils::cuda_is_available()
            && let Ok(device) = Device::new_cuda(0)
        {
            return Compute { device, dtype: DType::BF16 };
        }
        Compute::cpu()
    }

    /// A short description for logs and benchmark reports, e.g. `cpu/f32`.
    pub fn describe(&self) -> String {
        let dev = match &self.device {
            Device::Cpu => "cpu".to_owned(),
            other => format!("{other:?}").to_lowercase(),
        };
        format!("{dev}/{:?}", self.dtype).to_lowercase()
    }
}
