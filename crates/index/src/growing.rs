//! The growing segment: an in-memory HNSW graph that takes inserts from many threads while
//! searches run. Nothing is locked for a whole insert: a short lock claims the node slot and
//! registers the id, and while linking only the node whose neighbour list is being rewritten is
//! locked. Neighbour lists are arrays of atomics, so a search that reads a list while it is
//! rewritten sees old or new neighbours, never garbage.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{Seek, Write};
use std::path::Path;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use parking_lot::{Mutex, RwLock};

use crate::arena::VectorArena;
use crate::error::{Error, Result};
use crate::format::{self, Header, SectionWriter};
use crate::params::{Hit, SearchParams, SegmentConfig};
use crate::search::{self, Accept, Candidate, Graph, ScratchPool};
use crate::tombstones::Tombstones;
use crate::vector::{Element, prepare_vector};

/// `levels[node]` before the node's vector is written.
const UNPUBLISHED: u8 = u8::MAX;
const NO_ENTRY: u64 = u64::MAX;

pub(crate) struct Hnsw<T> {
    config: SegmentConfig,
    capacity: usize,
    m: usize,
    m0: usize,
    level_mult: f64,
    vectors: VectorArena<T>,
    /// The node's top layer; `UNPUBLISHED` until its vector is readable (Release/Acquire).
    levels: Box<[AtomicU8]>,
    /// Layer-0 lists, `m0 + 1` words per node: count, then neighbours.
    links0: Box<[AtomicU32]>,
    /// Lists of layers 1..=level, `m + 1` words each; set once before the node is published.
    upper: Box<[OnceLock<Box<[AtomicU32]>>]>,
    ids: Box<[AtomicU32]>,
    /// Held only while rewriting that node's neighbour lists.
    node_locks: Box<[Mutex<()>]>,
    id_map: RwLock<HashMap<u32, u32>>,
    len: AtomicUsize,
    /// `(top level << 32) | node`, or `NO_ENTRY`.
    entry: AtomicU64,
    tombstones: Tombstones,
    frozen: AtomicBool,
    in_flight: AtomicUsize,
    pool: ScratchPool,
}

impl<T: Element> Hnsw<T> {
    fn new(config: SegmentConfig, capacity: usize) -> Self {
        let m = config.hnsw.m;
        let m0 = config.hnsw.m0();
        let atomics = |n: usize| (0..n).map(|_| AtomicU32::new(0)).collect::<Box<[_]>>();
        Hnsw {
            config,
            capacity,
            m,
            m0,
            level_mult: 1.0 / (m as f64).ln(),
            vectors: VectorArena::new(capacity, config.stored_dim),
            levels: (0..capacity).map(|_| AtomicU8::new(UNPUBLISHED)).collect(),
            links0: atomics(capacity * (m0 + 1)),
            upper: (0..capacity).map(|_| OnceLock::new()).collect(),
            ids: atomics(capacity),
            node_locks: (0..capacity).map(|_| Mutex::new(())).collect(),
            id_map: RwLock::new(HashMap::new()),
            len: AtomicUsize::new(0),
            entry: AtomicU64::new(NO_ENTRY),
            tombstones: Tombstones::new(capacity),
            frozen: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            pool: ScratchPool::default(),
        }
    }

    /// The paper's level distribution, floor(-ln(U) * mL) with mL = 1/ln(M), drawn from a
    /// hash of the seed and the id so that it does not depend on insertion order or threads.
    fn level_for(&self, id: u32) -> usize {
        let mut x = self.config.hnsw.seed ^ (id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        // splitmix64 finaliser
        x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        x ^= x >> 31;
        let u = ((x >> 11) as f64 + 1.0) / (1u64 << 53) as f64; // (0, 1]
        ((-u.ln() * self.level_mult) as usize).min(format::MAX_LEVEL)
    }

    fn list(&self, node: u32, level: usize) -> Option<&[AtomicU32]> {
        let node = node as usize;
        if level == 0 {
            self.links0.get(node * (self.m0 + 1)..(node + 1) * (self.m0 + 1))
        } else {
            let w = self.m + 1;
            self.upper.get(node)?.get()?.get((level - 1) * w..level * w)
        }
    }

    fn entry_point(&self) -> Option<(u32, usize)> {
        let e = self.entry.load(Ordering::Acquire);
        (e != NO_ENTRY).then_some((e as u32, (e >> 32) as usize))
    }

    fn insert(&self, id: u32, input: &[f32]) -> Result<()> {
        let prepared = prepare_vector(input, self.config.dim, self.config.stored_dim)?;
        let v: Vec<T> = crate::vector::convert(&prepared);

        if self.frozen.load(Ordering::SeqCst) {
            return Err(Error::Frozen);
        }
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let _guard = InFlight(&self.in_flight);
        // Re-check after announcing ourselves: `freeze` sets the flag, then waits for zero.
        if self.frozen.load(Ordering::SeqCst) {
            return Err(Error::Frozen);
        }

        let node = {
            let mut map = self.id_map.write();
            if map.contains_key(&id) {
                return Err(Error::DuplicateId { id });
            }
            let node = self.len.load(Ordering::Relaxed);
            if node >= self.capacity {
                return Err(Error::Full { capacity: self.capacity });
            }
            self.len.store(node + 1, Ordering::Release);
            map.insert(id, node as u32);
            node
        };
        let level = self.level_for(id);
        self.ids[node].store(id, Ordering::Relaxed);
        // SAFETY: `node` was claimed above by this thread alone (under the id-map lock) and is
        // published only by the `levels` store below.
        unsafe { self.vectors.write(node, &v) };
        if level > 0 {
            let list = (0..level * (self.m + 1)).map(|_| AtomicU32::new(0)).collect();
            let _ = self.upper[node].set(list);
        }
        self.levels[node].store(level as u8, Ordering::Release);
        self.link(node as u32, level, &v);
        Ok(())
    }

    /// INSERT of the paper, from the point where the node is stored.
    fn link(&self, node: u32, level: usize, q: &[T]) {
        let (ep, max_level) = loop {
            match self.entry_point() {
                Some(e) => break e,
                None => {
                    let mine = (level as u64) << 32 | node as u64;
                    if self
                        .entry
                        .compare_exchange(NO_ENTRY, mine, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok()
                    {
                        return; // the first node: nothing to link to
                    }
                }
            }
        };
        let dist = |n: u32| self.vector(n).map_or(f32::INFINITY, |v| -T::dot(q, v));
        let mut cur = Candidate { dist: dist(ep), node: ep };
        for l in (level + 1..=max_level).rev() {
            cur = search::greedy_closest(self, q, cur, l);
        }
        let mut scratch = self.pool.take(self.capacity);
        let mut entry = vec![cur];
        for l in (0..=level.min(max_level)).rev() {
            scratch.visited_reset(self.capacity);
            let mut found = search::search_layer(
                self,
                q,
                &entry,
                self.config.hnsw.ef_construction,
                l,
                &Accept::All,
                &mut scratch,
            );
            // Another inserter may already have linked this node on a lower layer.
            found.retain(|c| c.node != node);
            let chosen = self.select_neighbors(&found, self.m);
            {
                let _lock = self.node_locks[node as usize].lock();
                if let Some(list) = self.list(node, l) {
                    write_list(list, &chosen);
                }
            }
            let mmax = if l == 0 { self.m0 } else { self.m };
            for c in &chosen {
                self.add_link(c.node, node, l, mmax);
            }
            if !found.is_empty() {
                entry = found;
            }
        }
        self.pool.give(scratch);
        if level > max_level {
            let mine = (level as u64) << 32 | node as u64;
            let mut cur = self.entry.load(Ordering::Acquire);
            while cur == NO_ENTRY || (cur >> 32) < level as u64 {
                match self.entry.compare_exchange(cur, mine, Ordering::AcqRel, Ordering::Acquire) {
                    Ok(_) => break,
                    Err(now) => cur = now,
                }
            }
        }
    }

    /// The neighbour-selection heuristic (the paper's Algorithm 4, without extending or keeping
    /// pruned candidates): walking candidates nearest first, keep one only if it is closer to the
    /// base than to every neighbour kept so far. This spreads links over directions and keeps
    /// clustered data connected. `candidates` must be sorted nearest first.
    fn select_neighbors(&self, candidates: &[Candidate], m: usize) -> Vec<Candidate> {
        if candidates.len() <= m {
            return candidates.to_vec();
        }
        let mut kept: Vec<(Candidate, &[T])> = Vec::with_capacity(m);
        for &c in candidates {
            if kept.len() >= m {
                break;
            }
            let Some(cv) = self.vector(c.node) else {
                continue;
            };
            if kept.iter().all(|(_, kv)| -T::dot(cv, kv) >= c.dist) {
                kept.push((c, cv));
            }
        }
        kept.into_iter().map(|(c, _)| c).collect()
    }

    /// Adds `new` to `node`'s list on `level`, re-selecting with the heuristic when it is full.
    fn add_link(&self, node: u32, new: u32, level: usize, mmax: usize) {
        let _lock = self.node_locks[node as usize].lock();
        let Some(list) = self.list(node, level) else {
            return;
        };
        let n = (list[0].load(Ordering::Relaxed) as usize).min(mmax);
        let current = || list[1..=n].iter().map(|a| a.load(Ordering::Relaxed));
        if current().any(|x| x == new) {
            return;
        }
        if n < mmax {
            list[1 + n].store(new, Ordering::Relaxed);
            list[0].store(n as u32 + 1, Ordering::Release);
            return;
        }
        let Some(base) = self.vector(node) else {
            return;
        };
        let mut cands: Vec<Candidate> = current()
            .chain(std::iter::once(new))
            .filter_map(|x| self.vector(x).map(|v| Candidate { dist: -T::dot(base, v), node: x }))
            .collect();
        cands.sort_unstable();
        let chosen = self.select_neighbors(&cands, mmax);
        write_list(list, &chosen);
    }

    fn freeze(&self) {
        self.frozen.store(true, Ordering::SeqCst);
        while self.in_flight.load(Ordering::SeqCst) != 0 {
            std::thread::yield_now();
        }
    }

    fn len(&self) -> usize {
        self.len.load(Ordering::Acquire).min(self.capacity)
    }

    fn search(&self, query: &[f32], params: &SearchParams<'_>) -> Result<Vec<Hit>> {
        params.validate()?;
        let q: Vec<T> = crate::vector::prepare_query(&self.config, query)?;
        Ok(search::knn(self, &q, params, &self.pool))
    }

    fn search_exact(
        &self,
        query: &[f32],
        top_k: usize,
        filter: Option<&dyn crate::Filter>,
    ) -> Result<Vec<Hit>> {
        let q: Vec<T> = crate::vector::prepare_query(&self.config, query)?;
        Ok(search::exact_over_nodes(self, &q, top_k, filter))
    }

    fn delete(&self, id: u32) -> bool {
        match self.id_map.read().get(&id) {
            Some(&node) => self.tombstones.set(node),
            None => false,
        }
    }

    fn contains(&self, id: u32) -> bool {
        self.id_map.read().get(&id).is_some_and(|&n| !self.tombstones.is_set(n))
    }

    fn stored_vector(&self, id: u32) -> Option<Vec<f32>> {
        let node = *self.id_map.read().get(&id)?;
        self.vector(node).map(|v| v.iter().map(|x| x.to_f32()).collect())
    }

    fn live_ids(&self) -> Vec<u32> {
        (0..self.len() as u32)
            .filter(|&n| self.vector(n).is_some() && !self.tombstones.is_set(n))
            .map(|n| self.ids[n as usize].load(Ordering::Relaxed))
            .collect()
    }

    /// Writes the sealed form of the graph. The segment must be frozen (no insert in flight), so
    /// every node is published and fully linked.
    fn write_to<W: Write + Seek>(&self, w: W) -> std::io::Result<(W, u64)> {
        let count = self.len();
        let mut out = SectionWriter::new(w)?;
        out.begin(format::VECTORS)?;
        for node in 0..count as u32 {
            let v = self.vector(node).ok_or_else(|| unpublished(node))?;
            out.write(format::VECTORS, bytemuck::cast_slice(v))?;
        }
        out.begin(format::LINKS0)?;
        let mut buf: Vec<u32> = Vec::with_capacity(self.m0 + 1);
        for node in 0..count as u32 {
            buf.clear();
            buf.extend(self.list(node, 0).into_iter().flatten().map(|a| a.load(Ordering::Acquire)));
            out.write(format::LINKS0, bytemuck::cast_slice(&buf))?;
        }
        out.begin(format::UPPER_INDEX)?;
        let mut offset = 0u64;
        out.write(format::UPPER_INDEX, &offset.to_le_bytes())?;
        for node in 0..count {
            offset += self.upper[node].get().map_or(0, |l| l.len() as u64);
            out.write(format::UPPER_INDEX, &offset.to_le_bytes())?;
        }
        out.begin(format::UPPER)?;
        for node in 0..count {
            if let Some(list) = self.upper[node].get() {
                buf.clear();
                buf.extend(list.iter().map(|a| a.load(Ordering::Acquire)));
                out.write(format::UPPER, bytemuck::cast_slice(&buf))?;
            }
        }
        out.begin(format::IDS)?;
        let ids: Vec<u32> = (0..count).map(|n| self.ids[n].load(Ordering::Relaxed)).collect();
        out.write(format::IDS, bytemuck::cast_slice(&ids))?;
        out.begin(format::ID_INDEX)?;
        let mut index: Vec<[u32; 2]> =
            ids.iter().enumerate().map(|(n, &id)| [id, n as u32]).collect();
        index.sort_unstable();
        out.write(format::ID_INDEX, bytemuck::cast_slice(&index))?;
        out.begin(format::DELETED)?;
        let words: Vec<u64> = self.tombstones.words().take(count.div_ceil(64)).collect();
        out.write(format::DELETED, bytemuck::cast_slice(&words))?;

        let (entry, max_level) = self.entry_point().unwrap_or((0, 0));
        let header = Header {
            magic: format::MAGIC,
            version: format::VERSION,
            header_len: format::HEADER_LEN as u32,
            dtype: self.config.dtype.code(),
            dim: self.config.dim as u32,
            stored_dim: self.config.stored_dim as u32,
            m: self.m as u32,
            m0: self.m0 as u32,
            ef_construction: self.config.hnsw.ef_construction as u32,
            count: count as u32,
            max_level: max_level as u32,
            entry_point: entry,
            deleted_count: (0..count as u32).filter(|&n| self.tombstones.is_set(n)).count() as u32,
            seed: self.config.hnsw.seed,
            file_len: 0,
            sections: [format::Section { offset: 0, len: 0 }; format::N_SECTIONS],
            body_crc: 0,
            header_crc: 0,
        };
        out.finish(header)
    }
}

fn unpublished(node: u32) -> std::io::Error {
    std::io::Error::other(format!("node {node} is not published; freeze the segment first"))
}

fn write_list(list: &[AtomicU32], chosen: &[Candidate]) {
    let n = chosen.len().min(list.len() - 1);
    for (slot, c) in list[1..].iter().zip(&chosen[..n]) {
        slot.store(c.node, Ordering::Relaxed);
    }
    list[0].store(n as u32, Ordering::Release);
}

struct InFlight<'a>(&'a AtomicUsize);
impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl<T: Element> Graph for Hnsw<T> {
    type Elem = T;

    fn node_count(&self) -> usize {
        self.len()
    }

    fn entry(&self) -> Option<(u32, usize)> {
        self.entry_point()
    }

    #[inline]
    fn vector(&self, node: u32) -> Option<&[T]> {
        let level = self.levels.get(node as usize)?.load(Ordering::Acquire);
        if level == UNPUBLISHED {
            return None;
        }
        // SAFETY: the Acquire load above saw the node published, so its slot is never written
        // again (see `arena`).
        Some(unsafe { self.vectors.get(node as usize) })
    }

    #[inline]
    fn for_each_neighbor<F: FnMut(u32)>(&self, node: u32, level: usize, mut f: F) {
        let Some(list) = self.list(node, level) else {
            return;
        };
        let n = (list[0].load(Ordering::Acquire) as usize).min(list.len() - 1);
        let len = self.len() as u32;
        for a in &list[1..=n] {
            let x = a.load(Ordering::Relaxed);
            if x < len {
                f(x);
            }
        }
    }

    #[inline]
    fn id(&self, node: u32) -> u32 {
        self.ids[node as usize].load(Ordering::Relaxed)
    }

    #[inline]
    fn is_deleted(&self, node: u32) -> bool {
        self.tombstones.is_set(node)
    }

    fn node_of(&self, id: u32) -> Option<u32> {
        self.id_map.read().get(&id).copied()
    }
}

macro_rules! dispatch {
    ($self:expr, $h:ident => $body:expr) => {
        match &$self.inner {
            Inner::F32($h) => $body,
            Inner::F16($h) => $body,
        }
    };
}

enum Inner {
    F32(Hnsw<f32>),
    F16(Hnsw<half::f16>),
}

/// An in-memory, mutable HNSW segment of fixed capacity. Inserts and searches take `&self` and
/// run concurrently from any number of threads.
pub struct GrowingSegment {
    inner: Inner,
}

impl std::fmt::Debug for GrowingSegment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let config = dispatch!(self, h => h.config);
        f.debug_struct("GrowingSegment")
            .field("config", &config)
            .field("len", &crate::Segment::len(self))
            .finish()
    }
}

impl GrowingSegment {
    /// An empty segment for up to `capacity` vectors. Memory for the vectors is reserved up
    /// front but committed by the OS only as it is written.
    pub fn new(config: SegmentConfig, capacity: usize) -> Result<Self> {
        config.validate()?;
        if capacity == 0 || capacity > u32::MAX as usize - 1 {
            return Err(Error::InvalidConfig {
                field: "capacity",
                reason: format!("{capacity} is not in 1..{}", u32::MAX),
            });
        }
        let inner = match config.dtype {
            crate::Dtype::F32 => Inner::F32(Hnsw::new(config, capacity)),
            crate::Dtype::F16 => Inner::F16(Hnsw::new(config, capacity)),
        };
        Ok(GrowingSegment { inner })
    }

    /// Inserts `vector` (of length `dim`) under `id`: validated, cut to `stored_dim`,
    /// normalised, stored and linked into the graph.
    pub fn insert(&self, id: u32, vector: &[f32]) -> Result<()> {
        dispatch!(self, h => h.insert(id, vector))
    }

    /// The capacity given at creation.
    pub fn capacity(&self) -> usize {
        dispatch!(self, h => h.capacity)
    }

    /// Refuses further inserts ([`Error::Frozen`]) and waits for those in flight to finish.
    /// Searches and deletes go on.
    pub fn freeze(&self) {
        dispatch!(self, h => h.freeze())
    }

    /// Whether [`GrowingSegment::freeze`] was called.
    pub fn is_frozen(&self) -> bool {
        dispatch!(self, h => h.frozen.load(Ordering::SeqCst))
    }

    /// Writes the sealed form to any seekable writer (used by tests on a `Cursor<Vec<u8>>`).
    /// Freezes the segment first. Returns the number of bytes written.
    pub fn write_to<W: Write + Seek>(&self, w: W) -> Result<(W, u64)> {
        self.freeze();
        dispatch!(self, h => h.write_to(w)).map_err(|e| Error::io("<writer>", e))
    }

    /// Freezes the segment and writes its sealed file at `path` atomically: to a temporary name
    /// in the same directory, fsync, rename over `path`, fsync the directory. Returns the file
    /// size. Open it with [`crate::SealedSegment::open`].
    pub fn write_sealed(&self, path: &Path) -> Result<u64> {
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let name = path.file_name().ok_or_else(|| Error::InvalidConfig {
            field: "path",
            reason: format!("{} has no file name", path.display()),
        })?;
        let tmp = dir.join(format!(".{}.tmp-{}", name.to_string_lossy(), std::process::id()));
        let result = (|| {
            let file = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
            let (file, len) = self.write_to(file)?;
            file.sync_all().map_err(|e| Error::io(&tmp, e))?;
            drop(file);
            fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
            File::open(dir).and_then(|d| d.sync_all()).map_err(|e| Error::io(dir, e))?;
            Ok(len)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    /// Exact (brute-force) search over every live vector: the reference the HNSW results are
    /// measured against.
    pub fn search_exact(
        &self,
        query: &[f32],
        top_k: usize,
        filter: Option<&dyn crate::Filter>,
    ) -> Result<Vec<Hit>> {
        dispatch!(self, h => h.search_exact(query, top_k, filter))
    }
}

impl crate::Segment for GrowingSegment {
    fn config(&self) -> &SegmentConfig {
        dispatch!(self, h => &h.config)
    }
    fn len(&self) -> usize {
        dispatch!(self, h => h.len())
    }
    fn deleted_count(&self) -> usize {
        dispatch!(self, h => h.tombstones.count())
    }
    fn contains(&self, id: u32) -> bool {
        dispatch!(self, h => h.contains(id))
    }
    fn delete(&self, id: u32) -> bool {
        dispatch!(self, h => h.delete(id))
    }
    fn search(&self, query: &[f32], params: &SearchParams<'_>) -> Result<Vec<Hit>> {
        dispatch!(self, h => h.search(query, params))
    }
    fn vector(&self, id: u32) -> Option<Vec<f32>> {
        dispatch!(self, h => h.stored_vector(id))
    }
    fn ids(&self) -> Vec<u32> {
        dispatch!(self, h => h.live_ids())
    }
}
