//! The simsimd kernels (f32 and f16) against the f64 scalar reference.
//!
//! Tolerance: |simd - reference| <= 1e-5 * sum(|a_i * b_i|) + 1e-6. Both sides read the same
//! (already rounded) elements, so the only difference is accumulation order and precision; the
//! bound is relative to the sum of magnitudes because cancellation can make the dot itself tiny.

use hirevec_index::{dot, dot_reference, prepare_vector};
use proptest::prelude::*;

fn bound<T: hirevec_index::Element>(a: &[T], b: &[T]) -> f64 {
    let mag: f64 =
        a.iter().zip(b).map(|(x, y)| (x.to_f32() as f64 * y.to_f32() as f64).abs()).sum();
    1e-5 * mag + 1e-6
}

fn pair(max_dim: usize) -> impl Strategy<Value = (Vec<f32>, Vec<f32>)> {
    (1..=max_dim).prop_flat_map(|d| {
        (prop::collection::vec(-4.0f32..4.0, d), prop::collection::vec(-4.0f32..4.0, d))
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn f32_dot_matches_reference((a, b) in pair(1100)) {
        let got = dot(&a, &b) as f64;
        let want = dot_reference(&a, &b);
        prop_assert!((got - want).abs() <= bound(&a, &b), "dim {}: {got} vs {want}", a.len());
    }

    #[test]
    fn f16_dot_matches_reference((a, b) in pair(1100)) {
        let a: Vec<half::f16> = a.iter().map(|&x| half::f16::from_f32(x)).collect();
        let b: Vec<half::f16> = b.iter().map(|&x| half::f16::from_f32(x)).collect();
        let got = dot(&a, &b) as f64;
        let want = dot_reference(&a, &b);
        prop_assert!((got - want).abs() <= bound(&a, &b), "dim {}: {got} vs {want}", a.len());
    }

    /// f16 storage of unit vectors changes cosine by at most ~1e-3 (f16 has an 11-bit mantissa).
    #[test]
    fn f16_storage_keeps_cosine((a, b) in pair(1100)) {
        let (Ok(a), Ok(b)) = (prepare_vector(&a, a.len(), a.len()), prepare_vector(&b, b.len(), b.len())) else {
            return Ok(());
        };
        let exact = dot_reference(&a, &b);
        let a16: Vec<half::f16> = a.iter().map(|&x| half::f16::from_f32(x)).collect();
        let b16: Vec<half::f16> = b.iter().map(|&x| half::f16::from_f32(x)).collect();
        let got = dot(&a16, &b16) as f64;
        prop_assert!((got - exact).abs() <= 2e-3, "dim {}: {got} vs {exact}", a.len());
    }

    #[test]
    fn prepare_cuts_and_normalises(v in prop::collection::vec(-100.0f32..100.0, 2..300), cut in 1usize..300) {
        let cut = cut.min(v.len());
        match prepare_vector(&v, v.len(), cut) {
            Ok(p) => {
                prop_assert_eq!(p.len(), cut);
                let norm: f64 = p.iter().map(|&x| x as f64 * x as f64).sum::<f64>().sqrt();
                prop_assert!((norm - 1.0).abs() < 1e-5);
                // Same direction as the kept prefix.
                let scale = p[0] as f64 / v[0] as f64;
                if v[0] != 0.0 {
                    for (x, y) in p.iter().zip(&v) {
                        prop_assert!((*x as f64 - scale * *y as f64).abs() < 1e-5);
                    }
                }
            }
            Err(hirevec_index::Error::ZeroVector { .. }) => prop_assert!(v[..cut].iter().all(|&x| x == 0.0)),
            Err(e) => prop_assert!(false, "unexpected error {e}"),
        }
    }
}

#[test]
fn prepare_rejects_bad_input() {
    use hirevec_index::Error;
    assert!(matches!(
        prepare_vector(&[1.0, 2.0], 3, 3),
        Err(Error::Dimension { expected: 3, received: 2 })
    ));
    assert!(matches!(
        prepare_vector(&[1.0, f32::NAN, 0.0], 3, 3),
        Err(Error::NonFinite { index: 1, .. })
    ));
    assert!(matches!(
        prepare_vector(&[1.0, 0.0, f32::INFINITY], 3, 2),
        Err(Error::NonFinite { index: 2, .. })
    ));
    assert!(matches!(
        prepare_vector(&[0.0, 0.0, 5.0], 3, 2),
        Err(Error::ZeroVector { stored_dim: 2 })
    ));
}
