//! A lock-free bitset of deleted nodes, indexed by node offset. Searches read it on every
//! candidate, deletes set bits concurrently; nothing ever clears a bit.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

#[derive(Debug)]
pub(crate) struct Tombstones {
    words: Box<[AtomicU64]>,
    count: AtomicUsize,
}

impl Tombstones {
    pub(crate) fn new(nodes: usize) -> Self {
        let words = (0..nodes.div_ceil(64)).map(|_| AtomicU64::new(0)).collect();
        Tombstones { words, count: AtomicUsize::new(0) }
    }

    /// Starts from the words stored in a sealed file (a copy of `nodes / 64` words, so opening
    /// a segment stays cheap); bits past `nodes` are cleared.
    pub(crate) fn from_words(nodes: usize, stored: &[u64]) -> Self {
        let n_words = nodes.div_ceil(64);
        let mut count = 0;
        let words: Box<[AtomicU64]> = (0..n_words)
            .map(|i| {
                let mut w = stored.get(i).copied().unwrap_or(0);
                if i == n_words - 1 && !nodes.is_multiple_of(64) {
                    w &= (1u64 << (nodes % 64)) - 1;
                }
                count += w.count_ones() as usize;
                AtomicU64::new(w)
            })
            .collect();
        Tombstones { words, count: AtomicUsize::new(count) }
    }

    #[inline]
    pub(crate) fn is_set(&self, node: u32) -> bool {
        let node = node as usize;
        self.words.get(node / 64).is_some_and(|w| w.load(Ordering::Relaxed) >> (node % 64) & 1 == 1)
    }

    /// Marks `node`; returns whether it was newly marked.
    pub(crate) fn set(&self, node: u32) -> bool {
        let node = node as usize;
        let Some(word) = self.words.get(node / 64) else {
            return false;
        };
        let bit = 1u64 << (node % 64);
        let fresh = word.fetch_or(bit, Ordering::Relaxed) & bit == 0;
        if fresh {
            self.count.fetch_add(1, Ordering::Relaxed);
        }
        fresh
    }

    pub(crate) fn count(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    pub(crate) fn words(&self) -> impl Iterator<Item = u64> + '_ {
        self.words.iter().map(|w| w.load(Ordering::Relaxed))
    }
}
