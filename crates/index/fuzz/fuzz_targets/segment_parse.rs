//! Fuzzes the sealed-segment parser and the search over whatever it accepts.
//!
//! The first input byte picks a mode. Bit 0 set: after the fuzzer's mutation, the header
//! checksum is recomputed, so that mutated header fields reach the structural checks behind it
//! (otherwise almost every header mutation stops at the checksum). The remaining bytes are the
//! file. Whatever the bytes, `from_bytes`, `verify` and searches must return, never panic or read
//! out of bounds (run under AddressSanitizer).
#![no_main]

use hirevec_index::{SealedSegment, SearchParams, Segment};
use libfuzzer_sys::fuzz_target;

/// Size of the fixed header; its last four bytes are the CRC-32C of the bytes before them.
const HEADER_LEN: usize = 176;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, file)) = data.split_first() else { return };
    let mut file = file.to_vec();
    if mode & 1 == 1 && file.len() >= HEADER_LEN {
        let crc = crc32c::crc32c(&file[..HEADER_LEN - 4]);
        file[HEADER_LEN - 4..HEADER_LEN].copy_from_slice(&crc.to_le_bytes());
    }
    let Ok(seg) = SealedSegment::from_bytes(&file) else { return };
    let _ = seg.verify();
    let dim = seg.config().dim;
    let query: Vec<f32> = (0..dim).map(|i| ((i * 7 + 3) as f32).sin()).collect();
    let allowed: roaring::RoaringBitmap = (0..64).collect();
    for params in [
        SearchParams::new(5, 16),
        SearchParams::new(5, 16).with_filter(&allowed).with_exact_scan_threshold(0),
        SearchParams::new(5, 16).with_filter(&allowed),
    ] {
        let _ = seg.search(&query, &params);
    }
    let _ = seg.search_exact(&query, 3, None);
    for id in 0..4 {
        let _ = seg.vector(id);
        let _ = seg.contains(id);
    }
    let _ = seg.ids();
});
