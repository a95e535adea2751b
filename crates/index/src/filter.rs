//! The allowed-id set a filtered search takes.

/// A set of allowed ids. The graph walk asks [`Filter::allows`] for every node it would return;
/// when [`Filter::count`] is small the search enumerates the ids instead and scans them exactly.
pub trait Filter: Sync {
    /// Whether `id` may be returned.
    fn allows(&self, id: u32) -> bool;
    /// How many ids the filter allows (an upper bound is fine).
    fn count(&self) -> u64;
    /// Calls `f` with every allowed id.
    fn for_each_id(&self, f: &mut dyn FnMut(u32));
}

impl Filter for roaring::RoaringBitmap {
    #[inline]
    fn allows(&self, id: u32) -> bool {
        self.contains(id)
    }
    fn count(&self) -> u64 {
        self.len()
    }
    fn for_each_id(&self, f: &mut dyn FnMut(u32)) {
        self.iter().for_each(f)
    }
}
