//! Shared test helpers: a minimal .npy reader for the real vectors in ../shared/data, seeded
//! sampling, and exact (f64) ground truth.
#![allow(dead_code)]

use std::path::PathBuf;

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

/// `../shared/data/onet-minilm-384/vectors_f16.npy`: 73,376 real 384-d sentence embeddings.
pub fn onet_path() -> PathBuf {
    let root =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/onet-minilm-384");
    root.join("vectors_f16.npy")
}

/// Reads a little-endian `<f2` or `<f4` 2-D .npy file into rows of f32.
pub fn read_npy(path: &std::path::Path) -> Vec<Vec<f32>> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(&bytes[..6], b"\x93NUMPY", "{}: not a .npy file", path.display());
    let (header_len, start) = if bytes[6] == 1 {
        (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10)
    } else {
        (u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize, 12)
    };
    let header = std::str::from_utf8(&bytes[start..start + header_len]).unwrap();
    let shape: Vec<usize> = header
        .split("'shape': (")
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap()
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let (rows, cols) = (shape[0], shape[1]);
    let data = &bytes[start + header_len..];
    if header.contains("'<f2'") {
        data.chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect::<Vec<_>>()
            .chunks_exact(cols)
            .take(rows)
            .map(|r| r.to_vec())
            .collect()
    } else {
        assert!(header.contains("'<f4'"), "unsupported dtype in {header}");
        data.chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect::<Vec<_>>()
            .chunks_exact(cols)
            .take(rows)
            .map(|r| r.to_vec())
            .collect()
    }
}

/// A seeded split of the real vectors: `n_base` base rows and `n_queries` query rows.
pub fn onet_split(seed: u64, n_base: usize, n_queries: usize) -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
    let mut all = read_npy(&onet_path());
    let mut rng = StdRng::seed_from_u64(seed);
    all.shuffle(&mut rng);
    let queries = all.split_off(all.len() - n_queries);
    all.truncate(n_base);
    (all, queries)
}

/// Exact top-k ids by cosine in f64, ties by id, over `base` (ids = row numbers) restricted to
/// `allowed`.
pub fn exact_topk(
    base: &[Vec<f32>],
    query: &[f32],
    k: usize,
    allowed: impl Fn(u32) -> bool,
) -> Vec<u32> {
    let norm = |v: &[f32]| v.iter().map(|&x| x as f64 * x as f64).sum::<f64>().sqrt();
    let qn = norm(query);
    let mut scored: Vec<(f64, u32)> = base
        .iter()
        .enumerate()
        .filter(|(i, _)| allowed(*i as u32))
        .map(|(i, v)| {
            let dot: f64 = v.iter().zip(query).map(|(&a, &b)| a as f64 * b as f64).sum();
            (dot / (norm(v) * qn), i as u32)
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    scored.into_iter().take(k).map(|(_, i)| i).collect()
}

/// |found ∩ truth| / |truth|, averaged.
pub fn recall(found: &[Vec<u32>], truth: &[Vec<u32>]) -> f64 {
    let mut hit = 0usize;
    let mut total = 0usize;
    for (f, t) in found.iter().zip(truth) {
        total += t.len();
        hit += t.iter().filter(|id| f.contains(id)).count();
    }
    hit as f64 / total.max(1) as f64
}

/// Inserts rows with ids = row numbers from `threads` threads.
pub fn build(seg: &hirevec_index::GrowingSegment, base: &[Vec<f32>], threads: usize) {
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= base.len() {
                        break;
                    }
                    seg.insert(i as u32, &base[i]).unwrap();
                }
            });
        }
    });
}

/// The seed for a randomized test: `HIREVEC_TEST_SEED` if set, else `default`; printed so a
/// failure can be replayed.
pub fn seed(test: &str, default: u64) -> u64 {
    let seed =
        std::env::var("HIREVEC_TEST_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(default);
    println!("{test}: seed {seed} (replay with HIREVEC_TEST_SEED={seed})");
    seed
}
