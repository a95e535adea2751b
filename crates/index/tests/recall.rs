//! Recall of the HNSW graph against exact (f64) search on real sentence embeddings
//! (../shared/data/onet-minilm-384, 384-d all-MiniLM-L6-v2 vectors of O*NET texts).
//! Bars: recall@10 >= 0.95 at ef = 64, m = 16, unfiltered and at 10% and 1% filter selectivity.

mod common;

use common::{build, exact_topk, onet_split, recall, seed};
use hirevec_index::{Dtype, GrowingSegment, SealedSegment, SearchParams, Segment, SegmentConfig};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use roaring::RoaringBitmap;

const N_BASE: usize = 20_000;
const N_QUERIES: usize = 200;
const K: usize = 10;
const EF: usize = 64;

fn config(dtype: Dtype, stored_dim: usize) -> SegmentConfig {
    let mut c = SegmentConfig::new(384);
    c.dtype = dtype;
    c.stored_dim = stored_dim;
    c
}

fn ids(hits: &[hirevec_index::Hit]) -> Vec<u32> {
    hits.iter().map(|h| h.id).collect()
}

fn search_all(seg: &dyn Segment, queries: &[Vec<f32>], params: &SearchParams<'_>) -> Vec<Vec<u32>> {
    queries.iter().map(|q| ids(&seg.search(q, params).unwrap())).collect()
}

#[test]
fn recall_unfiltered_filtered_tombstoned_and_sealed() {
    let seed = seed("recall", 20_261_122);
    let (base, queries) = onet_split(seed, N_BASE, N_QUERIES);
    let truth: Vec<Vec<u32>> = queries.iter().map(|q| exact_topk(&base, q, K, |_| true)).collect();

    for dtype in [Dtype::F32, Dtype::F16] {
        let seg = GrowingSegment::new(config(dtype, 384), N_BASE).unwrap();
        build(&seg, &base, 2);
        assert_eq!(seg.len(), N_BASE);

        let found = search_all(&seg, &queries, &SearchParams::new(K, EF));
        let r = recall(&found, &truth);
        println!("{dtype}: recall@{K} at ef={EF}: {r:.4}");
        assert!(r >= 0.95, "{dtype}: recall@{K} {r:.4} < 0.95 (seed {seed})");

        // Filters at 10% and 1% selectivity, walking the graph (threshold 0) and scanning the
        // allowed ids exactly (threshold usize::MAX), which must match the f64 truth.
        let mut rng = StdRng::seed_from_u64(seed ^ 0xF117E5);
        for selectivity in [0.10, 0.01] {
            let allowed: RoaringBitmap =
                (0..N_BASE as u32).filter(|_| rng.random_bool(selectivity)).collect();
            let truth_f: Vec<Vec<u32>> = queries
                .iter()
                .map(|q| exact_topk(&base, q, K, |id| allowed.contains(id)))
                .collect();
            for threshold in [0, usize::MAX] {
                let params = SearchParams::new(K, EF)
                    .with_filter(&allowed)
                    .with_exact_scan_threshold(threshold);
                let found = search_all(&seg, &queries, &params);
                for f in &found {
                    assert_eq!(f.len(), K, "a filtered search must still return top_k hits");
                    assert!(
                        f.iter().all(|id| allowed.contains(*id)),
                        "a filtered-out id was returned"
                    );
                }
                let r = recall(&found, &truth_f);
                println!(
                    "{dtype}: filtered {selectivity} (exact_scan_threshold {threshold}): recall {r:.4}"
                );
                let bar = if threshold == 0 { 0.95 } else { 0.99 };
                assert!(
                    r >= bar,
                    "{dtype}: filtered {selectivity} recall {r:.4} < {bar} (seed {seed})"
                );
            }
        }

        // Tombstones: delete every 10th id; none may come back and recall on the rest holds.
        for id in (0..N_BASE as u32).step_by(10) {
            assert!(seg.delete(id));
        }
        assert!(!seg.delete(0), "deleting twice reports nothing new");
        let truth_live: Vec<Vec<u32>> =
            queries.iter().map(|q| exact_topk(&base, q, K, |id| id % 10 != 0)).collect();
        let found = search_all(&seg, &queries, &SearchParams::new(K, EF));
        assert!(found.iter().flatten().all(|id| id % 10 != 0), "a deleted id was returned");
        let r = recall(&found, &truth_live);
        println!("{dtype}: recall with 10% tombstones: {r:.4}");
        assert!(r >= 0.95, "{dtype}: recall with tombstones {r:.4} < 0.95 (seed {seed})");

        // Seal, open, and compare every query hit for hit (ids and scores).
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seg.hvs");
        seg.write_sealed(&path).unwrap();
        let sealed = SealedSegment::open(&path).unwrap();
        sealed.verify().unwrap();
        assert_eq!(sealed.len(), N_BASE);
        assert_eq!(sealed.deleted_count(), N_BASE / 10);
        let allowed: RoaringBitmap = (0..N_BASE as u32).filter(|i| i % 7 == 0).collect();
        for q in &queries {
            for params in [
                SearchParams::new(K, EF),
                SearchParams::new(K, EF).with_filter(&allowed).with_exact_scan_threshold(0),
                SearchParams::new(K, EF).with_filter(&allowed),
            ] {
                assert_eq!(seg.search(q, &params).unwrap(), sealed.search(q, &params).unwrap());
            }
        }
    }
}

#[test]
fn matryoshka_segment_searches_the_truncated_space() {
    let seed = seed("matryoshka", 7);
    let (base, queries) = onet_split(seed, N_BASE, N_QUERIES);
    let cut = |v: &Vec<f32>| v[..128].to_vec();
    let base_cut: Vec<Vec<f32>> = base.iter().map(cut).collect();
    let truth: Vec<Vec<u32>> =
        queries.iter().map(|q| exact_topk(&base_cut, &cut(q), K, |_| true)).collect();

    let seg = GrowingSegment::new(config(Dtype::F16, 128), N_BASE).unwrap();
    build(&seg, &base, 2);
    let v = seg.vector(0).unwrap();
    assert_eq!(v.len(), 128);
    let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-3, "stored vectors are re-normalised after the cut: {norm}");
    let found = search_all(&seg, &queries, &SearchParams::new(K, EF));
    let r = recall(&found, &truth);
    println!("stored_dim 128 of 384: recall@{K} {r:.4}");
    assert!(r >= 0.95, "matryoshka recall {r:.4} < 0.95 (seed {seed})");
}
