//! Build and search parameters, named as in the HNSW paper.

use crate::error::{Error, Result};
use crate::filter::Filter;
use crate::vector::Dtype;

/// Largest `m` accepted: neighbour lists are stored inline with a fixed width of `2 * m`.
pub const MAX_M: usize = 128;
/// Largest dimension accepted (Qwen3-Embedding-8B has 4096).
pub const MAX_DIM: usize = 65_536;

/// HNSW construction parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HnswParams {
    /// Neighbours kept per node on the upper layers (`M`); layer 0 keeps `m0 = 2 * m`.
    pub m: usize,
    /// Size of the dynamic candidate list while inserting.
    pub ef_construction: usize,
    /// Seed of the level assignment. A node's level depends only on the seed and its id, so the
    /// level structure does not depend on thread scheduling.
    pub seed: u64,
}

impl Default for HnswParams {
    fn default() -> Self {
        HnswParams { m: 16, ef_construction: 200, seed: 0x6869_7265_7665_6321 }
    }
}

impl HnswParams {
    /// Neighbours kept per node on layer 0.
    pub fn m0(&self) -> usize {
        2 * self.m
    }
}

/// What a segment stores and how its graph is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentConfig {
    /// Length of the vectors callers pass (inserts and queries).
    pub dim: usize,
    /// Components kept (Matryoshka truncation); `stored_dim <= dim`.
    pub stored_dim: usize,
    /// Element type of the stored vectors.
    pub dtype: Dtype,
    /// Graph parameters.
    pub hnsw: HnswParams,
}

impl SegmentConfig {
    /// A config for `dim`-dimensional vectors: no truncation, f16, default HNSW parameters.
    pub fn new(dim: usize) -> Self {
        SegmentConfig { dim, stored_dim: dim, dtype: Dtype::F16, hnsw: HnswParams::default() }
    }

    /// Checks every field against its limit.
    pub fn validate(&self) -> Result<()> {
        let invalid = |field, reason: String| Err(Error::InvalidConfig { field, reason });
        if self.dim == 0 || self.dim > MAX_DIM {
            return invalid("dim", format!("{} is not in 1..={MAX_DIM}", self.dim));
        }
        if self.stored_dim == 0 || self.stored_dim > self.dim {
            return invalid(
                "stored_dim",
                format!("{} is not in 1..={} (dim)", self.stored_dim, self.dim),
            );
        }
        if self.hnsw.m < 2 || self.hnsw.m > MAX_M {
            return invalid("m", format!("{} is not in 2..={MAX_M}", self.hnsw.m));
        }
        if self.hnsw.ef_construction == 0 || self.hnsw.ef_construction > 10_000 {
            return invalid(
                "ef_construction",
                format!("{} is not in 1..=10000", self.hnsw.ef_construction),
            );
        }
        Ok(())
    }
}

/// One result: the caller's id and the cosine similarity to the query.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    /// The id given at insert.
    pub id: u32,
    /// Cosine similarity in [-1, 1] (a dot product of unit vectors).
    pub score: f32,
}

/// Default of [`SearchParams::exact_scan_threshold`].
pub const DEFAULT_EXACT_SCAN_THRESHOLD: usize = 2048;

/// Parameters of one search.
#[derive(Clone, Copy)]
pub struct SearchParams<'a> {
    /// Number of results.
    pub top_k: usize,
    /// Size of the dynamic candidate list on layer 0; raised to `top_k` when smaller.
    pub ef: usize,
    /// Only ids the filter allows are returned. The graph walk still passes through the others.
    pub filter: Option<&'a dyn crate::filter::Filter>,
    /// When the filter allows at most this many ids, or the segment holds at most this many
    /// vectors, a filtered search scans the allowed vectors exactly instead of walking the graph.
    pub exact_scan_threshold: usize,
}

impl std::fmt::Debug for SearchParams<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SearchParams")
            .field("top_k", &self.top_k)
            .field("ef", &self.ef)
            .field("filter", &self.filter.map(|f| f.count()))
            .field("exact_scan_threshold", &self.exact_scan_threshold)
            .finish()
    }
}

impl<'a> SearchParams<'a> {
    /// `top_k` results with a candidate list of `ef`, no filter.
    pub fn new(top_k: usize, ef: usize) -> Self {
        SearchParams { top_k, ef, filter: None, exact_scan_threshold: DEFAULT_EXACT_SCAN_THRESHOLD }
    }

    /// Restricts results to the ids `filter` allows.
    pub fn with_filter(mut self, filter: &'a dyn Filter) -> Self {
        self.filter = Some(filter);
        self
    }

    /// Sets [`SearchParams::exact_scan_threshold`].
    pub fn with_exact_scan_threshold(mut self, threshold: usize) -> Self {
        self.exact_scan_threshold = threshold;
        self
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.top_k == 0 || self.top_k > 100_000 {
            return Err(Error::InvalidConfig {
                field: "top_k",
                reason: format!("{} is not in 1..=100000", self.top_k),
            });
        }
        if self.ef > 100_000 {
            return Err(Error::InvalidConfig {
                field: "ef",
                reason: format!("{} is above the limit 100000", self.ef),
            });
        }
        Ok(())
    }
}
