//! Criterion benches of the index crate: the dot-product kernels (simsimd through
//! `hirevec_index::dot` against the scalar f64 reference) and searches on a sealed segment,
//! unfiltered and filtered. Everything is seeded, so two runs measure the same work.
//!
//!     cargo bench --bench index                 # all
//!     cargo bench --bench index -- search/      # only the searches
//!
//! Recall is not measured here (`hirevec bench ann` does that on real data); these benches track
//! the cost of the kernels and of one search so that regressions show up between commits.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use half::f16;
use hirevec_index::{
    Dtype, GrowingSegment, SealedSegment, SearchParams, Segment, SegmentConfig, dot, dot_reference,
};
use rand::rngs::StdRng;
use rand::seq::index::sample;
use rand::{Rng, SeedableRng};
use roaring::RoaringBitmap;

const SEED: u64 = 0x6b65_726e_656c;
/// Dimensions of GloVe-50, MiniLM (384) and the larger sentence-embedding models (1024).
const KERNEL_DIMS: [usize; 3] = [50, 384, 1024];

fn random_vec(rng: &mut StdRng, dim: usize) -> Vec<f32> {
    (0..dim).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

fn kernels(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(SEED);
    let mut group = c.benchmark_group("dot");
    for dim in KERNEL_DIMS {
        let a = random_vec(&mut rng, dim);
        let b = random_vec(&mut rng, dim);
        let (a16, b16): (Vec<f16>, Vec<f16>) = (
            a.iter().map(|&x| f16::from_f32(x)).collect(),
            b.iter().map(|&x| f16::from_f32(x)).collect(),
        );
        group.throughput(Throughput::Elements(dim as u64));
        group.bench_with_input(BenchmarkId::new("simsimd_f32", dim), &dim, |bch, _| {
            bch.iter(|| dot::<f32>(black_box(&a), black_box(&b)))
        });
        group.bench_with_input(BenchmarkId::new("scalar_f32", dim), &dim, |bch, _| {
            bch.iter(|| dot_reference::<f32>(black_box(&a), black_box(&b)))
        });
        group.bench_with_input(BenchmarkId::new("simsimd_f16", dim), &dim, |bch, _| {
            bch.iter(|| dot::<f16>(black_box(&a16), black_box(&b16)))
        });
        group.bench_with_input(BenchmarkId::new("scalar_f16", dim), &dim, |bch, _| {
            bch.iter(|| dot_reference::<f16>(black_box(&a16), black_box(&b16)))
        });
    }
    group.finish();
}

/// Base vectors for the search benches.
const N: usize = 20_000;
const DIM: usize = 384;
/// Uniform random vectors in 384 dimensions have no neighbourhood structure (every point is
/// about equally far from every other), so HNSW degenerates towards a full scan on them;
/// sentence embeddings instead lie near a low-dimensional manifold. So the vectors are a random
/// linear map of a `LATENT`-dimensional point plus a little full-dimensional noise: intrinsic
/// dimension like real embeddings, at no cost of shipping data.
const LATENT: usize = 24;
const NOISE: f32 = 0.05;
const QUERIES: usize = 500;

struct Fixture {
    _dir: tempfile::TempDir,
    segment: SealedSegment,
    queries: Vec<Vec<f32>>,
}

/// `projection` is `LATENT` rows of `DIM` components.
fn embedded(rng: &mut StdRng, projection: &[Vec<f32>]) -> Vec<f32> {
    let mut v: Vec<f32> = (0..DIM).map(|_| NOISE * rng.random_range(-1.0f32..1.0)).collect();
    for row in projection {
        let z = rng.random_range(-1.0f32..1.0);
        v.iter_mut().zip(row).for_each(|(x, p)| *x += z * p);
    }
    v
}

fn fixture(dtype: Dtype) -> Fixture {
    let mut rng = StdRng::seed_from_u64(SEED ^ 0x5e_a5c4);
    let projection: Vec<Vec<f32>> = (0..LATENT).map(|_| random_vec(&mut rng, DIM)).collect();
    let base: Vec<Vec<f32>> = (0..N).map(|_| embedded(&mut rng, &projection)).collect();
    let queries = (0..QUERIES).map(|_| embedded(&mut rng, &projection)).collect();

    let mut config = SegmentConfig::new(DIM);
    config.dtype = dtype;
    config.hnsw.seed = SEED;
    let growing = GrowingSegment::new(config, N).expect("segment");
    // Built on all cores: the build is set-up here, not what is measured.
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= N {
                        break;
                    }
                    growing.insert(i as u32, &base[i]).expect("insert");
                }
            });
        }
    });
    growing.freeze();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bench.seg");
    growing.write_sealed(&path).expect("write_sealed");
    drop(growing);
    let segment = SealedSegment::open(&path).expect("open");
    Fixture { _dir: dir, segment, queries }
}

/// Every `1 / fraction`-th id on average, chosen at random (seeded): a filter with no
/// correlation to the vectors, the hard case for a filtered graph walk.
fn random_filter(rng: &mut StdRng, fraction: f64) -> RoaringBitmap {
    let amount = ((N as f64) * fraction).round() as usize;
    sample(rng, N, amount).into_iter().map(|i| i as u32).collect()
}

fn search(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(SEED ^ 0xf1_17e5);
    let filter_10 = random_filter(&mut rng, 0.10);
    let filter_1 = random_filter(&mut rng, 0.01);
    for dtype in [Dtype::F16, Dtype::F32] {
        // Built on first use, outside `b.iter`, so a run filtered to other benches
        // (`cargo bench -- dot/`) does not pay for building segments it never searches.
        let fx = std::sync::OnceLock::new();
        let mut group = c.benchmark_group(format!("search/{dtype}/n{N}_d{DIM}_k10_ef64"));
        group.throughput(Throughput::Elements(1));
        let cases: [(&str, Option<&RoaringBitmap>); 3] = [
            ("unfiltered", None),
            ("filter_10pct", Some(&filter_10)),
            ("filter_1pct", Some(&filter_1)),
        ];
        for (name, filter) in cases {
            let mut params = SearchParams::new(10, 64);
            if let Some(f) = filter {
                params = params.with_filter(f);
            }
            let mut q = 0;
            group.bench_function(name, |b| {
                let fx = fx.get_or_init(|| fixture(dtype));
                b.iter(|| {
                    // Cycle through the queries so one lucky query does not decide the figure.
                    q = (q + 1) % fx.queries.len();
                    fx.segment.search(black_box(&fx.queries[q]), &params).expect("search")
                })
            });
        }
        group.finish();
    }
}

criterion_group!(benches, kernels, search);
criterion_main!(benches);
