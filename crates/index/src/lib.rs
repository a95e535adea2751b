//! # hirevec-index
//!
//! HNSW (Malkov & Yashunin) over unit-length f32 or f16 vectors, with Matryoshka truncation,
//! filtered search and tombstones, in two forms:
//!
//! - [`GrowingSegment`]: in memory, fixed capacity, concurrent inserts and searches;
//! - [`SealedSegment`]: an immutable, checksummed file opened with `mmap` in O(1), returning
//!   exactly what the growing segment returned before it was sealed.
//!
//! Cosine similarity is a dot product because every vector is L2-normalised on the way in
//! (after keeping its first `stored_dim` components). Kernels go through `simsimd`.
//!
//! ```
//! use hirevec_index::{GrowingSegment, SealedSegment, Segment, SegmentConfig, SearchParams, Dtype};
//! use roaring::RoaringBitmap;
//!
//! let mut config = SegmentConfig::new(4);
//! config.dtype = Dtype::F32;
//! let growing = GrowingSegment::new(config, 100)?;
//! growing.insert(7, &[1.0, 0.0, 0.0, 0.0])?;
//! growing.insert(8, &[0.9, 0.1, 0.0, 0.0])?;
//! growing.insert(9, &[0.0, 1.0, 0.0, 0.0])?;
//!
//! let hits = growing.search(&[1.0, 0.0, 0.0, 0.0], &SearchParams::new(2, 16))?;
//! assert_eq!(hits.iter().map(|h| h.id).collect::<Vec<_>>(), [7, 8]);
//!
//! // Only ids 8 and 9 may be returned; the walk still passes through 7.
//! let allowed: RoaringBitmap = [8, 9].into_iter().collect();
//! let hits = growing.search(&[1.0, 0.0, 0.0, 0.0], &SearchParams::new(1, 16).with_filter(&allowed))?;
//! assert_eq!(hits[0].id, 8);
//!
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("segment-1.hvs");
//! growing.write_sealed(&path)?;
//! let sealed = SealedSegment::open(&path)?;
//! sealed.verify()?;
//! assert_eq!(sealed.search(&[1.0, 0.0, 0.0, 0.0], &SearchParams::new(2, 16))?, growing.search(&[1.0, 0.0, 0.0, 0.0], &SearchParams::new(2, 16))?);
//! # Ok::<(), hirevec_index::Error>(())
//! ```

mod arena;
mod error;
mod filter;
mod format;
mod growing;
mod params;
mod sealed;
mod search;
mod tombstones;
mod vector;

pub use error::{Error, Result};
pub use filter::Filter;
pub use growing::GrowingSegment;
pub use params::{
    DEFAULT_EXACT_SCAN_THRESHOLD, Hit, HnswParams, MAX_DIM, MAX_M, SearchParams, SegmentConfig,
};
pub use sealed::SealedSegment;
pub use vector::{Dtype, Element, dot, dot_reference, prepare_vector};

/// What the server needs from any segment, growing or sealed.
pub trait Segment: Send + Sync {
    /// The segment's parameters.
    fn config(&self) -> &SegmentConfig;
    /// Number of vectors stored, deleted ones included.
    fn len(&self) -> usize;
    /// Whether the segment stores no vector.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Number of deleted (tombstoned) vectors.
    fn deleted_count(&self) -> usize;
    /// Whether `id` is stored here and not deleted.
    fn contains(&self, id: u32) -> bool;
    /// Tombstones `id`; returns whether it was live here.
    fn delete(&self, id: u32) -> bool;
    /// The `top_k` nearest live vectors to `query` (of length `dim`) that the filter allows,
    /// best first, ties by id.
    fn search(&self, query: &[f32], params: &SearchParams<'_>) -> Result<Vec<Hit>>;
    /// The stored vector of `id` (normalised, `stored_dim` long, at stored precision).
    fn vector(&self, id: u32) -> Option<Vec<f32>>;
    /// The live ids, in node order.
    fn ids(&self) -> Vec<u32>;
}
