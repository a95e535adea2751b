//! Damaged segment files: seeded random mutations (flipped bytes, truncations, overwritten
//! runs, bad magic and version) must give a typed error at open or at `verify()`, and searching
//! a damaged file that passed the O(1) open checks must not panic or read out of bounds.

mod common;

use std::io::Cursor;

use hirevec_index::{
    Dtype, Error, GrowingSegment, SealedSegment, SearchParams, Segment, SegmentConfig,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use roaring::RoaringBitmap;

fn sample_file(seed: u64, dtype: Dtype) -> (Vec<u8>, Vec<Vec<f32>>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let data: Vec<Vec<f32>> =
        (0..600).map(|_| (0..12).map(|_| rng.random_range(-1.0f32..1.0)).collect()).collect();
    let mut c = SegmentConfig::new(12);
    c.dtype = dtype;
    c.hnsw.m = 4; // small m: many upper layers, so the upper sections are exercised
    let seg = GrowingSegment::new(c, 600).unwrap();
    common::build(&seg, &data, 1);
    for id in (0..600).step_by(9) {
        seg.delete(id);
    }
    let (cur, _) = seg.write_to(Cursor::new(Vec::new())).unwrap();
    (cur.into_inner(), data)
}

/// Opens, verifies and, when open succeeded, searches. Returns whether damage was detected.
fn exercise(bytes: &[u8], queries: &[Vec<f32>], filter: &RoaringBitmap) -> bool {
    match SealedSegment::from_bytes(bytes) {
        Err(e) => {
            assert!(e.is_corruption(), "open gave a non-corruption error: {e}");
            true
        }
        Ok(seg) => {
            // Whatever the damage, searches must return (possibly wrong) results, not panic.
            for q in queries {
                let _ = seg.search(q, &SearchParams::new(5, 20));
                let _ = seg.search(
                    q,
                    &SearchParams::new(5, 20).with_filter(filter).with_exact_scan_threshold(0),
                );
                let _ = seg.search(q, &SearchParams::new(5, 20).with_filter(filter));
                let _ = seg.search_exact(q, 5, None);
            }
            let _ = seg.ids();
            let _ = seg.vector(3);
            match seg.verify() {
                Err(e) => {
                    assert!(matches!(e, Error::Corrupt(_)));
                    true
                }
                Ok(()) => false,
            }
        }
    }
}

#[test]
fn random_mutations_are_detected_without_panics() {
    let seed = common::seed("corruption", 424_242);
    let mut rng = StdRng::seed_from_u64(seed);
    for dtype in [Dtype::F32, Dtype::F16] {
        let (good, data) = sample_file(seed, dtype);
        let queries: Vec<Vec<f32>> = data.iter().step_by(150).cloned().collect();
        let filter: RoaringBitmap = (0..600).step_by(4).collect();
        assert!(!exercise(&good, &queries, &filter), "the intact file must pass");

        for case in 0..600 {
            let mut bad = good.clone();
            let what = case % 4;
            match what {
                // one flipped bit anywhere
                0 => {
                    let i = rng.random_range(0..bad.len());
                    bad[i] ^= 1 << rng.random_range(0..8);
                }
                // one byte set to a random different value
                1 => {
                    let i = rng.random_range(0..bad.len());
                    bad[i] = bad[i].wrapping_add(rng.random_range(1..=255));
                }
                // truncation at a random length
                2 => bad.truncate(rng.random_range(0..bad.len())),
                // a run of random bytes
                _ => {
                    let start = rng.random_range(0..bad.len());
                    let end = (start + rng.random_range(1..64)).min(bad.len());
                    for b in &mut bad[start..end] {
                        *b = rng.random();
                    }
                    if bad == good {
                        continue;
                    }
                }
            }
            assert!(
                exercise(&bad, &queries, &filter),
                "case {case} (kind {what}) went undetected (seed {seed})"
            );
        }
    }
}

#[test]
fn wrong_magic_and_version_are_typed() {
    let (good, _) = sample_file(1, Dtype::F16);
    let mut bad = good.clone();
    bad[0] = b'X';
    assert!(matches!(SealedSegment::from_bytes(&bad), Err(Error::BadMagic)));
    let mut bad = good.clone();
    bad[8..12].copy_from_slice(&2u32.to_le_bytes());
    assert!(matches!(
        SealedSegment::from_bytes(&bad),
        Err(Error::UnsupportedVersion { found: 2, supported: 1 })
    ));
    assert!(SealedSegment::from_bytes(&[]).is_err());
    assert!(SealedSegment::from_bytes(&good[..100]).is_err());
    let dir = tempfile::tempdir().unwrap();
    let missing = SealedSegment::open(&dir.path().join("nope.hvs"));
    assert!(matches!(missing, Err(Error::Io { .. })));
}
