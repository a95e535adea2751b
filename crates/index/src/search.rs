//! The HNSW search routines, written once over the [`Graph`] view so that the growing (in-memory)
//! and the sealed (mmapped) segments run the very same code and return the very same results.
//!
//! Invariants the callers keep:
//! - every node id a view hands out is `< view.node_count()`; views over untrusted bytes
//!   (sealed files) drop out-of-range ids instead of returning them;
//! - distances are `-dot(query, vector)` on unit vectors: smaller is closer, and the score
//!   reported to users is the dot product itself (cosine similarity);
//! - ties are broken by node offset inside the walk and by id in the results, so a search is a
//!   pure function of the graph, the query and the parameters.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use parking_lot::Mutex;

use crate::filter::Filter;
use crate::params::{Hit, SearchParams};
use crate::vector::Element;

/// What the search needs from a segment.
pub(crate) trait Graph {
    type Elem: Element;
    /// Number of node slots; node ids are `< node_count()`.
    fn node_count(&self) -> usize;
    /// The entry point and the top layer, or `None` when the graph is empty.
    fn entry(&self) -> Option<(u32, usize)>;
    /// The node's vector, or `None` when it is not (yet) published.
    fn vector(&self, node: u32) -> Option<&[Self::Elem]>;
    /// Calls `f` for each neighbour of `node` on `level`, in stored order.
    fn for_each_neighbor<F: FnMut(u32)>(&self, node: u32, level: usize, f: F);
    /// The caller's id of the node.
    fn id(&self, node: u32) -> u32;
    /// Whether the node was deleted.
    fn is_deleted(&self, node: u32) -> bool;
    /// The node holding `id`, if any (deleted or not).
    fn node_of(&self, id: u32) -> Option<u32>;
    /// Hints the CPU to fetch the node's vector; a no-op where unsupported.
    #[inline]
    fn prefetch(&self, node: u32) {
        if let Some(v) = self.vector(node) {
            prefetch_ptr(v.as_ptr().cast());
        }
    }
}

#[inline(always)]
fn prefetch_ptr(p: *const i8) {
    #[cfg(target_arch = "x86_64")]
    {
        // Prefetching is only a hint: it never faults, whatever the address.
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        // SAFETY: `_mm_prefetch` needs SSE, which every x86_64 CPU has; it does not dereference.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(p) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// A node at a distance from the query; ordered by distance, then node offset.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Candidate {
    pub dist: f32,
    pub node: u32,
}

impl PartialEq for Candidate {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Candidate {}
impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> Ordering {
        self.dist.total_cmp(&other.dist).then(self.node.cmp(&other.node))
    }
}

/// Min-heap adapter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Nearest(pub std::cmp::Reverse<Candidate>);

/// A visited set that is cleared in O(1) by bumping an epoch (hnswlib's visited-list trick).
/// Epochs are `u16`, as in hnswlib: the array is touched at random once per neighbour, and at
/// half the size of `u32` marks it stays in cache for twice as many nodes. It is zeroed once
/// every 65,535 searches.
#[derive(Debug)]
pub(crate) struct Visited {
    marks: Vec<u16>,
    epoch: u16,
}

impl Visited {
    fn new(n: usize) -> Self {
        Visited { marks: vec![0; n], epoch: 0 }
    }

    fn reset(&mut self, n: usize) {
        if self.marks.len() < n {
            self.marks.resize(n, 0);
        }
        self.epoch = self.epoch.wrapping_add(1);
        if self.epoch == 0 {
            self.marks.fill(0);
            self.epoch = 1;
        }
    }

    /// Marks `node`; returns true if it was not marked before.
    #[inline]
    pub(crate) fn insert(&mut self, node: u32) -> bool {
        match self.marks.get_mut(node as usize) {
            Some(m) if *m != self.epoch => {
                *m = self.epoch;
                true
            }
            _ => false,
        }
    }
}

/// Scratch space reused across searches: visited marks and the two heaps.
#[derive(Debug)]
pub(crate) struct Scratch {
    pub visited: Visited,
    candidates: BinaryHeap<Nearest>,
    top: BinaryHeap<Candidate>,
    /// The unvisited neighbours of the node being expanded.
    fresh: Vec<u32>,
}

impl Scratch {
    /// Clears the visited marks (O(1)) for a new layer search over `n` nodes.
    pub(crate) fn visited_reset(&mut self, n: usize) {
        self.visited.reset(n);
    }
}

/// A pool of [`Scratch`], so concurrent searches never allocate a visited array per query.
#[derive(Debug, Default)]
pub(crate) struct ScratchPool {
    free: Mutex<Vec<Scratch>>,
}

impl ScratchPool {
    pub(crate) fn take(&self, n: usize) -> Scratch {
        let mut s = self.free.lock().pop().unwrap_or_else(|| Scratch {
            visited: Visited::new(n),
            candidates: BinaryHeap::new(),
            top: BinaryHeap::new(),
            fresh: Vec::new(),
        });
        s.visited.reset(n);
        s.candidates.clear();
        s.top.clear();
        s
    }

    pub(crate) fn give(&self, s: Scratch) {
        self.free.lock().push(s);
    }
}

#[inline]
fn distance<G: Graph>(g: &G, query: &[G::Elem], node: u32) -> Option<f32> {
    g.vector(node).map(|v| -G::Elem::dot(query, v))
}

/// Greedy walk on one upper layer (ef = 1): moves to the closest neighbour until none is closer.
pub(crate) fn greedy_closest<G: Graph>(
    g: &G,
    query: &[G::Elem],
    mut cur: Candidate,
    level: usize,
) -> Candidate {
    loop {
        let mut best = cur;
        g.for_each_neighbor(cur.node, level, |n| {
            if let Some(d) = distance(g, query, n) {
                let c = Candidate { dist: d, node: n };
                if c < best {
                    best = c;
                }
            }
        });
        if best.node == cur.node {
            return cur;
        }
        cur = best;
    }
}

/// Which nodes the layer search may put in its result list.
pub(crate) enum Accept<'a> {
    /// Every node (graph construction).
    All,
    /// Live nodes the filter allows (queries). Rejected nodes are still expanded.
    Live(Option<&'a dyn Filter>),
}

impl Accept<'_> {
    #[inline]
    fn accepts<G: Graph>(&self, g: &G, node: u32) -> bool {
        match self {
            Accept::All => true,
            Accept::Live(filter) => {
                !g.is_deleted(node) && filter.is_none_or(|f| f.allows(g.id(node)))
            }
        }
    }
}

/// SEARCH-LAYER of the paper with ef candidates, returning the accepted nodes nearest first.
/// The walk expands every node it reaches, accepted or not; it stops when the nearest unexpanded
/// candidate is farther than the worst of `ef` accepted results.
pub(crate) fn search_layer<G: Graph>(
    g: &G,
    query: &[G::Elem],
    entry: &[Candidate],
    ef: usize,
    level: usize,
    accept: &Accept<'_>,
    scratch: &mut Scratch,
) -> Vec<Candidate> {
    let Scratch { visited, candidates, top, fresh } = scratch;
    candidates.clear();
    top.clear();
    for &e in entry {
        if visited.insert(e.node) {
            candidates.push(Nearest(std::cmp::Reverse(e)));
            if accept.accepts(g, e.node) {
                top.push(e);
                if top.len() > ef {
                    top.pop();
                }
            }
        }
    }
    while let Some(Nearest(std::cmp::Reverse(c))) = candidates.pop() {
        if top.len() >= ef && top.peek().is_some_and(|worst| c.dist > worst.dist) {
            break;
        }
        // Collect the unvisited neighbours first and ask for their vectors, so the memory
        // fetches overlap with the distance computations instead of stalling each one.
        fresh.clear();
        g.for_each_neighbor(c.node, level, |n| {
            if visited.insert(n) {
                fresh.push(n);
            }
        });
        for &n in fresh.iter() {
            g.prefetch(n);
        }
        for &n in fresh.iter() {
            let Some(dist) = distance(g, query, n) else {
                continue;
            };
            let worst = top.peek().map_or(f32::INFINITY, |w| w.dist);
            if top.len() < ef || dist < worst {
                let cand = Candidate { dist, node: n };
                candidates.push(Nearest(std::cmp::Reverse(cand)));
                if accept.accepts(g, n) {
                    top.push(cand);
                    if top.len() > ef {
                        top.pop();
                    }
                }
            }
        }
    }
    let mut out: Vec<Candidate> = top.drain().collect();
    out.sort_unstable();
    out
}

/// A full k-NN query: greedy descent through the upper layers, then an ef-search on layer 0
/// restricted to live, allowed nodes; or an exact scan when a filter leaves few candidates.
pub(crate) fn knn<G: Graph>(
    g: &G,
    query: &[G::Elem],
    params: &SearchParams<'_>,
    pool: &ScratchPool,
) -> Vec<Hit> {
    let live = g.node_count();
    if let Some(filter) = params.filter {
        let threshold = params.exact_scan_threshold as u64;
        if filter.count() <= threshold {
            return exact_over_ids(g, query, params.top_k, filter);
        }
        if live as u64 <= threshold {
            return exact_over_nodes(g, query, params.top_k, Some(filter));
        }
    }
    let Some((ep, top_level)) = g.entry() else {
        return Vec::new();
    };
    let Some(d) = distance(g, query, ep) else {
        return Vec::new();
    };
    let mut cur = Candidate { dist: d, node: ep };
    for level in (1..=top_level).rev() {
        cur = greedy_closest(g, query, cur, level);
    }
    let mut scratch = pool.take(live);
    let found = search_layer(
        g,
        query,
        &[cur],
        params.ef.max(params.top_k),
        0,
        &Accept::Live(params.filter),
        &mut scratch,
    );
    pool.give(scratch);
    to_hits(g, found, params.top_k)
}

fn to_hits<G: Graph>(g: &G, found: Vec<Candidate>, top_k: usize) -> Vec<Hit> {
    let mut hits: Vec<Hit> =
        found.into_iter().map(|c| Hit { id: g.id(c.node), score: -c.dist }).collect();
    sort_hits(&mut hits);
    hits.truncate(top_k);
    hits
}

/// Best first; equal scores by id, so results are deterministic.
pub(crate) fn sort_hits(hits: &mut [Hit]) {
    hits.sort_unstable_by(|a, b| b.score.total_cmp(&a.score).then(a.id.cmp(&b.id)));
}

/// Keeps the `k` best of a stream of hits.
struct TopK {
    k: usize,
    heap: BinaryHeap<HitOrd>,
}

/// Orders hits worst-first for a bounded max-heap: lower score is "greater", then higher id.
#[derive(Clone, Copy)]
struct HitOrd(Hit);
impl PartialEq for HitOrd {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for HitOrd {}
impl PartialOrd for HitOrd {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for HitOrd {
    fn cmp(&self, other: &Self) -> Ordering {
        other.0.score.total_cmp(&self.0.score).then(self.0.id.cmp(&other.0.id))
    }
}

impl TopK {
    fn new(k: usize) -> Self {
        TopK { k, heap: BinaryHeap::with_capacity(k + 1) }
    }
    fn push(&mut self, hit: Hit) {
        self.heap.push(HitOrd(hit));
        if self.heap.len() > self.k {
            self.heap.pop();
        }
    }
    fn into_sorted(self) -> Vec<Hit> {
        let mut v: Vec<Hit> = self.heap.into_iter().map(|h| h.0).collect();
        sort_hits(&mut v);
        v
    }
}

/// Exact search over the ids a filter allows (looked up, not scanned).
fn exact_over_ids<G: Graph>(g: &G, query: &[G::Elem], k: usize, filter: &dyn Filter) -> Vec<Hit> {
    let mut top = TopK::new(k);
    filter.for_each_id(&mut |id| {
        let Some(node) = g.node_of(id) else { return };
        if g.is_deleted(node) {
            return;
        }
        if let Some(v) = g.vector(node) {
            top.push(Hit { id, score: G::Elem::dot(query, v) });
        }
    });
    top.into_sorted()
}

/// Exact search over every node of the segment.
pub(crate) fn exact_over_nodes<G: Graph>(
    g: &G,
    query: &[G::Elem],
    k: usize,
    filter: Option<&dyn Filter>,
) -> Vec<Hit> {
    let mut top = TopK::new(k);
    for node in 0..g.node_count() as u32 {
        if g.is_deleted(node) {
            continue;
        }
        let id = g.id(node);
        if filter.is_some_and(|f| !f.allows(id)) {
            continue;
        }
        if let Some(v) = g.vector(node) {
            top.push(Hit { id, score: G::Elem::dot(query, v) });
        }
    }
    top.into_sorted()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visited_survives_epoch_wraparound() {
        let mut v = Visited::new(4);
        for round in 0..70_000u32 {
            v.reset(4);
            let node = round % 4;
            assert!(v.insert(node), "round {round}: a fresh epoch must see nothing visited");
            assert!(!v.insert(node), "round {round}: a node is visited once per epoch");
        }
        v.reset(6);
        assert!(v.insert(5), "growing the set works");
        assert!(!v.insert(6), "ids outside the set count as visited, never as new");
    }
}
