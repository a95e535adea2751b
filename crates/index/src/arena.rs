//! Fixed-capacity vector storage for the growing segment, and the crate's memory-mapping. These
//! are the only places with `unsafe` storage access.
//!
//! Why not `RwLock<Vec<_>>`: inserts from several threads write different slots at the same time
//! while searches read published slots; a lock around the whole buffer would serialise them, and
//! a `Box` per vector would add a pointer chase to every distance computation. Instead each slot
//! is written exactly once, by the one thread that claimed it, *before* the slot is published
//! through an atomic with `Release` ordering; readers only touch slots they saw published with
//! `Acquire`. So there is never a concurrent write and read of the same slot.

use std::cell::UnsafeCell;
use std::fs::File;
use std::path::Path;

use crate::error::{Error, Result};

/// `slots * dim` elements in one zeroed allocation (pages are committed lazily by the OS).
pub(crate) struct VectorArena<T> {
    cells: Box<[UnsafeCell<T>]>,
    dim: usize,
}

// SAFETY: slots are written once by their claiming thread before being published, and only read
// after publication (see the module comment), so sharing the arena between threads is sound
// for element types that are themselves `Send + Sync`.
unsafe impl<T: Send + Sync> Sync for VectorArena<T> {}

impl<T: bytemuck::Pod> VectorArena<T> {
    pub(crate) fn new(slots: usize, dim: usize) -> Self {
        let zeroed: Box<[T]> = bytemuck::zeroed_slice_box(slots * dim);
        let len = zeroed.len();
        let raw = Box::into_raw(zeroed).cast::<UnsafeCell<T>>();
        // SAFETY: `UnsafeCell<T>` has the same in-memory representation as `T`, so a `[T]`
        // allocation of `len` elements is a valid `[UnsafeCell<T>]` allocation of `len` elements.
        let cells = unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(raw, len)) };
        VectorArena { cells, dim }
    }

    /// Writes slot `slot`.
    ///
    /// # Safety
    /// The caller is the only thread that ever writes `slot`, and no thread reads `slot` before
    /// the caller publishes it with a `Release` store that readers observe with `Acquire`.
    pub(crate) unsafe fn write(&self, slot: usize, v: &[T]) {
        assert_eq!(v.len(), self.dim);
        let cells = &self.cells[slot * self.dim..(slot + 1) * self.dim];
        for (cell, &x) in cells.iter().zip(v) {
            // SAFETY: by the contract above nobody else accesses this cell now.
            unsafe { *cell.get() = x };
        }
    }

    /// Reads slot `slot`.
    ///
    /// # Safety
    /// `slot` was written and published (the caller observed the publishing store with
    /// `Acquire`), so no write to it can happen any more.
    pub(crate) unsafe fn get(&self, slot: usize) -> &[T] {
        let cells = &self.cells[slot * self.dim..(slot + 1) * self.dim];
        // SAFETY: the cells are contiguous `UnsafeCell<T>`s with `T`'s layout, and by the
        // contract above they are never written again while this borrow lives.
        unsafe { std::slice::from_raw_parts(cells.as_ptr().cast::<T>(), self.dim) }
    }
}

/// Maps a sealed segment file read-only.
///
/// Segment files are immutable once renamed into place: hirevec never writes to them again and
/// replaces them only by renaming a new file over the name (which leaves existing mappings of
/// the old inode intact). A process outside hirevec truncating the file would make reads fault;
/// that is the standing limitation of every mmap-based store and is not something a bounds check
/// can prevent.
pub(crate) fn map_file(path: &Path) -> Result<memmap2::Mmap> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    // SAFETY: see the function comment: the file is never modified while mapped.
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
    // HNSW reads jump around the file; read-ahead only wastes page cache.
    #[cfg(unix)]
    let _ = map.advise(memmap2::Advice::Random);
    Ok(map)
}
