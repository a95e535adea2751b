//! Segment behaviour: typed errors, tombstones, concurrency, save -> open -> search equality.

mod common;

use std::io::Cursor;
use std::sync::atomic::{AtomicBool, Ordering};

use hirevec_index::{
    Dtype, Error, GrowingSegment, SealedSegment, SearchParams, Segment, SegmentConfig,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use roaring::RoaringBitmap;

fn random_vectors(seed: u64, n: usize, dim: usize) -> Vec<Vec<f32>> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n).map(|_| (0..dim).map(|_| rng.random_range(-1.0f32..1.0)).collect()).collect()
}

fn config(dim: usize, dtype: Dtype) -> SegmentConfig {
    let mut c = SegmentConfig::new(dim);
    c.dtype = dtype;
    c
}

#[test]
fn inserts_report_typed_errors() {
    let seg = GrowingSegment::new(config(4, Dtype::F32), 2).unwrap();
    assert!(matches!(
        seg.insert(1, &[1.0, 2.0]),
        Err(Error::Dimension { expected: 4, received: 2 })
    ));
    assert!(matches!(
        seg.insert(1, &[1.0, f32::NAN, 0.0, 0.0]),
        Err(Error::NonFinite { index: 1, .. })
    ));
    assert!(matches!(seg.insert(1, &[0.0; 4]), Err(Error::ZeroVector { .. })));
    seg.insert(1, &[1.0, 0.0, 0.0, 0.0]).unwrap();
    assert!(matches!(seg.insert(1, &[0.0, 1.0, 0.0, 0.0]), Err(Error::DuplicateId { id: 1 })));
    seg.insert(2, &[0.0, 1.0, 0.0, 0.0]).unwrap();
    assert!(matches!(seg.insert(3, &[0.0, 0.0, 1.0, 0.0]), Err(Error::Full { capacity: 2 })));
    assert_eq!(seg.len(), 2, "rejected inserts store nothing");
    assert!(matches!(
        seg.search(&[1.0, 0.0], &SearchParams::new(1, 8)),
        Err(Error::Dimension { .. })
    ));
    assert!(matches!(
        seg.search(&[1.0, 0.0, 0.0, 0.0], &SearchParams::new(0, 8)),
        Err(Error::InvalidConfig { field: "top_k", .. })
    ));
    seg.freeze();
    assert!(matches!(seg.insert(4, &[1.0, 1.0, 0.0, 0.0]), Err(Error::Frozen)));
    // Searches and deletes still work on a frozen segment.
    assert_eq!(seg.search(&[1.0, 0.0, 0.0, 0.0], &SearchParams::new(1, 8)).unwrap()[0].id, 1);
    assert!(seg.delete(1));
    assert_eq!(seg.search(&[1.0, 0.0, 0.0, 0.0], &SearchParams::new(1, 8)).unwrap()[0].id, 2);

    let mut bad = config(4, Dtype::F16);
    bad.stored_dim = 5;
    assert!(matches!(
        GrowingSegment::new(bad, 10),
        Err(Error::InvalidConfig { field: "stored_dim", .. })
    ));
    bad.stored_dim = 4;
    bad.hnsw.m = 1;
    assert!(matches!(GrowingSegment::new(bad, 10), Err(Error::InvalidConfig { field: "m", .. })));
}

#[test]
fn results_are_sorted_by_score_then_id() {
    let seg = GrowingSegment::new(config(2, Dtype::F32), 10).unwrap();
    // Three identical vectors: equal scores must come out by ascending id.
    for id in [30, 10, 20] {
        seg.insert(id, &[1.0, 0.0]).unwrap();
    }
    seg.insert(5, &[0.0, 1.0]).unwrap();
    let hits = seg.search(&[1.0, 0.0], &SearchParams::new(4, 16)).unwrap();
    assert_eq!(hits.iter().map(|h| h.id).collect::<Vec<_>>(), [10, 20, 30, 5]);
    assert!((hits[0].score - 1.0).abs() < 1e-6 && hits[3].score.abs() < 1e-6);
}

#[test]
fn searches_run_while_inserts_go_on() {
    let seed = common::seed("concurrent", 99);
    let data = random_vectors(seed, 6000, 32);
    let seg = GrowingSegment::new(config(32, Dtype::F16), data.len()).unwrap();
    let done = AtomicBool::new(false);
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..3 {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= data.len() {
                        break;
                    }
                    seg.insert(i as u32, &data[i]).unwrap();
                }
            });
        }
        s.spawn(|| {
            let mut rounds = 0;
            while !done.load(Ordering::Relaxed) || rounds < 10 {
                let q = &data[rounds % data.len()];
                let hits = seg.search(q, &SearchParams::new(10, 32)).unwrap();
                for w in hits.windows(2) {
                    assert!(w[0].score >= w[1].score);
                }
                rounds += 1;
            }
        });
        while next.load(Ordering::Relaxed) < data.len() {
            std::thread::yield_now();
        }
        done.store(true, Ordering::Relaxed);
    });
    assert_eq!(seg.len(), data.len());
    // Every vector finds itself once the build is over.
    let mut found = 0;
    for (i, v) in data.iter().enumerate().step_by(20) {
        let hits = seg.search(v, &SearchParams::new(1, 64)).unwrap();
        found += (hits[0].id == i as u32) as usize;
    }
    assert!(found >= 295, "only {found}/300 vectors found themselves (seed {seed})");
}

#[test]
fn sealed_bytes_and_file_round_trip() {
    let seed = common::seed("round_trip", 5);
    for dtype in [Dtype::F32, Dtype::F16] {
        let data = random_vectors(seed, 3000, 24);
        let mut c = config(24, dtype);
        c.stored_dim = 20;
        c.hnsw.m = 8;
        let seg = GrowingSegment::new(c, 4000).unwrap();
        common::build(&seg, &data, 2);
        for id in (0..3000).step_by(13) {
            seg.delete(id);
        }
        let (cursor, len) = seg.write_to(Cursor::new(Vec::new())).unwrap();
        let bytes = cursor.into_inner();
        assert_eq!(bytes.len() as u64, len);
        let sealed = SealedSegment::from_bytes(&bytes).unwrap();
        sealed.verify().unwrap();
        assert_eq!(sealed.config(), seg.config());
        assert_eq!(sealed.deleted_count(), seg.deleted_count());
        assert_eq!(sealed.ids(), seg.ids());
        let allowed: RoaringBitmap = (0..3000).filter(|i| i % 3 == 0).collect();
        for q in data.iter().step_by(50) {
            for p in [SearchParams::new(10, 40), SearchParams::new(5, 40).with_filter(&allowed)] {
                assert_eq!(seg.search(q, &p).unwrap(), sealed.search(q, &p).unwrap());
            }
        }
        assert_eq!(sealed.vector(7), seg.vector(7));
        assert!(!sealed.contains(13) && sealed.contains(14));
        // Deletes after sealing are in memory and act at once.
        assert!(sealed.delete(14));
        assert!(!sealed.contains(14));

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.hvs");
        assert_eq!(seg.write_sealed(&path).unwrap(), len);
        assert_eq!(std::fs::read(&path).unwrap(), bytes, "the file is deterministic");
        let names: Vec<_> =
            std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["s.hvs"], "no temporary file is left behind");
    }
}

#[test]
fn empty_segment_seals_and_searches() {
    let seg = GrowingSegment::new(config(8, Dtype::F16), 10).unwrap();
    let (c, _) = seg.write_to(Cursor::new(Vec::new())).unwrap();
    let sealed = SealedSegment::from_bytes(&c.into_inner()).unwrap();
    sealed.verify().unwrap();
    assert!(sealed.search(&[1.0; 8], &SearchParams::new(3, 8)).unwrap().is_empty());
}
