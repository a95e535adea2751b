//! The sealed segment: an immutable HNSW graph read straight from a memory-mapped file (or from
//! bytes in memory). Opening runs only the O(1) header checks of [`crate::format`]; every id and
//! offset read from the body is bounds-checked at use.

use std::path::Path;

use crate::arena::map_file;
use crate::error::{Error, Result};
use crate::format::{self, Header, Layout};
use crate::params::{Hit, SearchParams, SegmentConfig};
use crate::search::{self, Graph, ScratchPool};
use crate::tombstones::Tombstones;
use crate::vector::{Dtype, Element};

enum Bytes {
    Mapped(memmap2::Mmap),
    /// `u64` words so that sections are at least 8-byte aligned.
    Owned(Vec<u64>, usize),
}

impl Bytes {
    fn as_slice(&self) -> &[u8] {
        match self {
            Bytes::Mapped(m) => m,
            Bytes::Owned(words, len) => &bytemuck::cast_slice(words)[..*len],
        }
    }
}

/// An immutable, memory-mapped HNSW segment. Deletes are kept in memory (the caller persists
/// them and re-applies them after [`SealedSegment::open`]).
pub struct SealedSegment {
    bytes: Bytes,
    header: Header,
    config: SegmentConfig,
    layout: Layout,
    tombstones: Tombstones,
    pool: ScratchPool,
}

impl std::fmt::Debug for SealedSegment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedSegment")
            .field("config", &self.config)
            .field("count", &self.header.count)
            .field("file_len", &self.header.file_len)
            .finish()
    }
}

/// Typed views of the sections, borrowed for one search.
pub(crate) struct View<'a, T> {
    vectors: &'a [T],
    dim: usize,
    links0: &'a [u32],
    m0: usize,
    upper_index: &'a [u64],
    upper: &'a [u32],
    m: usize,
    ids: &'a [u32],
    id_index: &'a [[u32; 2]],
    count: usize,
    entry: Option<(u32, usize)>,
    tombstones: &'a Tombstones,
}

fn section<'a, T: bytemuck::Pod>(bytes: &'a [u8], layout: &Layout, i: usize) -> Result<&'a [T]> {
    let raw = bytes
        .get(layout.sections[i].clone())
        .ok_or_else(|| Error::corrupt(format!("section {i} outside the file")))?;
    bytemuck::try_cast_slice(raw)
        .map_err(|e| Error::corrupt(format!("section {i} cannot be read as its type: {e:?}")))
}

impl SealedSegment {
    /// Maps the file at `path` and checks its header (O(1) in the number of vectors).
    pub fn open(path: &Path) -> Result<Self> {
        let map = map_file(path)?;
        Self::from_storage(Bytes::Mapped(map))
    }

    /// Reads a segment from bytes in memory (copied into an aligned buffer).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let mut words = vec![0u64; bytes.len().div_ceil(8)];
        bytemuck::cast_slice_mut::<u64, u8>(&mut words)[..bytes.len()].copy_from_slice(bytes);
        Self::from_storage(Bytes::Owned(words, bytes.len()))
    }

    fn from_storage(bytes: Bytes) -> Result<Self> {
        let (header, config, layout) = format::parse(bytes.as_slice())?;
        let count = header.count as usize;
        let deleted: &[u64] = section(bytes.as_slice(), &layout, format::DELETED)?;
        let tombstones = Tombstones::from_words(count, deleted);
        let seg = SealedSegment {
            bytes,
            header,
            config,
            layout,
            tombstones,
            pool: ScratchPool::default(),
        };
        // Cast every section once now, so a misaligned one fails at open, not at first search.
        match config.dtype {
            Dtype::F32 => seg.view::<f32>().map(drop)?,
            Dtype::F16 => seg.view::<half::f16>().map(drop)?,
        }
        Ok(seg)
    }

    fn view<T: Element>(&self) -> Result<View<'_, T>> {
        let b = self.bytes.as_slice();
        let l = &self.layout;
        let count = self.header.count as usize;
        Ok(View {
            vectors: section(b, l, format::VECTORS)?,
            dim: self.config.stored_dim,
            links0: section(b, l, format::LINKS0)?,
            m0: self.config.hnsw.m0(),
            upper_index: section(b, l, format::UPPER_INDEX)?,
            upper: section(b, l, format::UPPER)?,
            m: self.config.hnsw.m,
            ids: section(b, l, format::IDS)?,
            id_index: section(b, l, format::ID_INDEX)?,
            count,
            entry: (count > 0).then_some((self.header.entry_point, self.header.max_level as usize)),
            tombstones: &self.tombstones,
        })
    }

    /// Runs the full checksum over the file. Opening does not; call this in the background.
    pub fn verify(&self) -> Result<()> {
        format::verify_body(&self.header, self.bytes.as_slice())
    }

    fn node_of(&self, id: u32) -> Option<u32> {
        let index: &[[u32; 2]] =
            section(self.bytes.as_slice(), &self.layout, format::ID_INDEX).ok()?;
        let i = index.binary_search_by_key(&id, |p| p[0]).ok()?;
        let node = index[i][1];
        (node < self.header.count).then_some(node)
    }

    /// Size of the file in bytes.
    pub fn file_len(&self) -> u64 {
        self.header.file_len
    }

    /// Exact (brute-force) search over every live vector.
    pub fn search_exact(
        &self,
        query: &[f32],
        top_k: usize,
        filter: Option<&dyn crate::Filter>,
    ) -> Result<Vec<Hit>> {
        match self.config.dtype {
            Dtype::F32 => self.exact_typed::<f32>(query, top_k, filter),
            Dtype::F16 => self.exact_typed::<half::f16>(query, top_k, filter),
        }
    }

    fn exact_typed<T: Element>(
        &self,
        query: &[f32],
        top_k: usize,
        filter: Option<&dyn crate::Filter>,
    ) -> Result<Vec<Hit>> {
        let q: Vec<T> = crate::vector::prepare_query(&self.config, query)?;
        Ok(search::exact_over_nodes(&self.view::<T>()?, &q, top_k, filter))
    }

    fn search_typed<T: Element>(
        &self,
        query: &[f32],
        params: &SearchParams<'_>,
    ) -> Result<Vec<Hit>> {
        params.validate()?;
        let q: Vec<T> = crate::vector::prepare_query(&self.config, query)?;
        Ok(search::knn(&self.view::<T>()?, &q, params, &self.pool))
    }

    fn vector_typed<T: Element>(&self, id: u32) -> Option<Vec<f32>> {
        let view = self.view::<T>().ok()?;
        let node = view.node_of(id)?;
        view.vector(node).map(|v| v.iter().map(|x| x.to_f32()).collect())
    }
}

impl<T: Element> Graph for View<'_, T> {
    type Elem = T;

    fn node_count(&self) -> usize {
        self.count
    }

    fn entry(&self) -> Option<(u32, usize)> {
        self.entry
    }

    #[inline]
    fn vector(&self, node: u32) -> Option<&[T]> {
        let start = node as usize * self.dim;
        self.vectors.get(start..start + self.dim)
    }

    #[inline]
    fn for_each_neighbor<F: FnMut(u32)>(&self, node: u32, level: usize, mut f: F) {
        let list = if level == 0 {
            let w = self.m0 + 1;
            self.links0.get(node as usize * w..(node as usize + 1) * w)
        } else {
            let w = self.m + 1;
            let (Some(&start), Some(&end)) =
                (self.upper_index.get(node as usize), self.upper_index.get(node as usize + 1))
            else {
                return;
            };
            let from = start.saturating_add(((level - 1) * w) as u64);
            let to = from.saturating_add(w as u64);
            if to > end {
                return;
            }
            self.upper.get(from as usize..to as usize)
        };
        let Some((&n, rest)) = list.and_then(|l| l.split_first()) else {
            return;
        };
        for &x in &rest[..(n as usize).min(rest.len())] {
            if (x as usize) < self.count {
                f(x);
            }
        }
    }

    #[inline]
    fn id(&self, node: u32) -> u32 {
        self.ids.get(node as usize).copied().unwrap_or(u32::MAX)
    }

    #[inline]
    fn is_deleted(&self, node: u32) -> bool {
        self.tombstones.is_set(node)
    }

    fn node_of(&self, id: u32) -> Option<u32> {
        let i = self.id_index.binary_search_by_key(&id, |p| p[0]).ok()?;
        let node = self.id_index[i][1];
        ((node as usize) < self.count).then_some(node)
    }
}

macro_rules! typed {
    ($self:expr, $f:ident ( $($arg:expr),* )) => {
        match $self.config.dtype {
            Dtype::F32 => $self.$f::<f32>($($arg),*),
            Dtype::F16 => $self.$f::<half::f16>($($arg),*),
        }
    };
}

impl crate::Segment for SealedSegment {
    fn config(&self) -> &SegmentConfig {
        &self.config
    }
    fn len(&self) -> usize {
        self.header.count as usize
    }
    fn deleted_count(&self) -> usize {
        self.tombstones.count()
    }
    fn contains(&self, id: u32) -> bool {
        self.node_of(id).is_some_and(|n| !self.tombstones.is_set(n))
    }
    fn delete(&self, id: u32) -> bool {
        self.node_of(id).is_some_and(|n| self.tombstones.set(n))
    }
    fn search(&self, query: &[f32], params: &SearchParams<'_>) -> Result<Vec<Hit>> {
        typed!(self, search_typed(query, params))
    }
    fn vector(&self, id: u32) -> Option<Vec<f32>> {
        typed!(self, vector_typed(id))
    }
    fn ids(&self) -> Vec<u32> {
        let Ok(ids) = section::<u32>(self.bytes.as_slice(), &self.layout, format::IDS) else {
            return Vec::new();
        };
        ids.iter()
            .enumerate()
            .filter(|&(n, _)| !self.tombstones.is_set(n as u32))
            .map(|(_, &id)| id)
            .collect()
    }
}
