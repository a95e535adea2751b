//! One collection: its segments (one growing, frozen ones waiting to be sealed, sealed files), its
//! payload index, and the write path that keeps them in step with RocksDB.
//!
//! Invariants:
//! - RocksDB is written (one synced batch) before memory is touched, so anything in memory is
//!   durable and a crash loses at most unacknowledged work.
//! - Writes to a collection are serialised by `write` (a plain mutex taken on blocking threads,
//!   never across an `.await`); reads (search, get, count, scroll) never take it.
//! - Internal ids are assigned in increasing order, so every segment covers a contiguous id range
//!   `lo..hi`; the sealed segments, sealed in order by one worker, cover `0..H` and restart
//!   replays ids `>= H` from RocksDB.
//! - The segment set is an immutable snapshot behind an `Arc`, swapped under a short lock;
//!   searches clone the `Arc` and never block a seal or a compaction.
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use hirevec_index::{GrowingSegment, Hit, SealedSegment, SearchParams, Segment};
use parking_lot::{Mutex, RwLock};
use roaring::RoaringBitmap;

use super::engine::{Background, Job};
use super::model::{
    CollectionConfig, DocMeta, Filter, NewDocument, StoredDocument, With, decode_vector,
    encode_vector,
};
use super::payload_index::PayloadIndex;
use crate::error::{Error, Result};
use crate::storage::{CollectionRecord, Counters, SegmentRecord, Storage};

/// A growing segment (or a frozen one waiting for its file) and the id range it covers.
#[derive(Debug)]
pub struct GrowingEntry {
    seg: GrowingSegment,
    lo: u32,
    /// `u32::MAX` while it takes inserts; the next free id once frozen.
    hi: AtomicU32,
    /// Sequence number when frozen (the watermark recorded with the sealed file).
    watermark: AtomicU64,
    capacity: usize,
}

#[derive(Debug)]
struct SealedEntry {
    seg: SealedSegment,
    rec: SegmentRecord,
    /// Set while a compaction of this segment is queued or running.
    compacting: AtomicBool,
}

/// A consistent view of the segments; replaced, never mutated, so readers need no lock.
#[derive(Debug, Clone)]
struct SegmentSet {
    growing: Arc<GrowingEntry>,
    frozen: Vec<Arc<GrowingEntry>>,
    sealed: Vec<Arc<SealedEntry>>,
}

impl SegmentSet {
    fn all(&self) -> impl Iterator<Item = &dyn Segment> {
        std::iter::once(&self.growing.seg as &dyn Segment)
            .chain(self.frozen.iter().map(|e| &e.seg as &dyn Segment))
            .chain(self.sealed.iter().map(|e| &e.seg as &dyn Segment))
    }

    /// The segment whose id range holds `iid`.
    fn holding(&self, iid: u32) -> Option<&dyn Segment> {
        if let Some(s) = self.sealed.iter().find(|e| (e.rec.lo..e.rec.hi).contains(&iid)) {
            return Some(&s.seg);
        }
        if let Some(f) =
            self.frozen.iter().find(|e| (e.lo..e.hi.load(Ordering::Acquire)).contains(&iid))
        {
            return Some(&f.seg);
        }
        (iid >= self.growing.lo).then_some(&self.growing.seg as &dyn Segment)
    }
}

/// Server-wide knobs a collection follows.
#[derive(Debug, Clone, Copy)]
pub struct Tuning {
    /// Tombstone fraction of a sealed segment that triggers its compaction.
    pub compaction_threshold: f64,
    /// Filters allowing at most this many ids are answered by an exact scan of those ids
    /// instead of a graph walk.
    pub exact_scan_threshold: usize,
}

/// State only the writer touches.
#[derive(Debug)]
struct WriteState {
    counters: Counters,
    /// Ids handed to the current growing segment.
    growing_assigned: usize,
    next_segment_no: u64,
}

/// A search request, validated except for what depends on the collection.
#[derive(Debug, Clone)]
pub struct SearchQuery {
    /// Query vector (`dim` values).
    pub vector: Vec<f32>,
    /// Hits wanted.
    pub top_k: usize,
    /// Candidate list size (defaults to the collection's).
    pub ef: Option<usize>,
    /// Allowed documents.
    pub filter: Option<Filter>,
    /// Minimum cosine similarity.
    pub min_score: Option<f32>,
    /// What to return with each hit.
    pub with: With,
}

/// One search hit with its document.
#[derive(Debug, Clone)]
pub struct SearchHit {
    /// Cosine similarity.
    pub score: f32,
    /// The document.
    pub doc: StoredDocument,
}

/// Counts reported by `Collections.Get`.
#[derive(Debug, Clone, Copy, Default)]
pub struct CollectionStats {
    /// Live documents.
    pub documents: u64,
    /// Sealed segment files.
    pub sealed_segments: u32,
    /// Vectors in sealed segments, tombstoned ones included.
    pub sealed_vectors: u64,
    /// Vectors in growing and frozen segments.
    pub growing_vectors: u64,
    /// Tombstones still held by segments.
    pub tombstones: u64,
    /// Last acknowledged sequence number.
    pub sequence: u64,
}

/// A collection.
#[derive(Debug)]
pub struct Collection {
    name: String,
    id: u32,
    dir: PathBuf,
    config: RwLock<CollectionConfig>,
    storage: Arc<Storage>,
    background: Background,
    tuning: Tuning,
    write: Mutex<WriteState>,
    /// Taken by seals, compactions and drop, so files are never written into a dropped collection.
    maintenance: Mutex<()>,
    segments: RwLock<Arc<SegmentSet>>,
    payload: RwLock<PayloadIndex>,
    dropped: AtomicBool,
    /// Sequence number of the last acknowledged write (readable without the write lock).
    acked_seq: AtomicU64,
    me: std::sync::Weak<Collection>,
}

fn segment_file(dir: &Path, no: u64) -> PathBuf {
    dir.join(format!("seg-{no:08}.hvs"))
}

fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.to_owned();
    move |source| Error::Io { op, path, source }
}

/// Checks a vector against the collection and returns it prepared (unit length, `stored_dim`),
/// with errors that name `field`.
pub fn prepare(config: &CollectionConfig, field: &str, v: &[f32]) -> Result<Vec<f32>> {
    use hirevec_index::Error as E;
    let (dim, stored_dim) = (config.dim as usize, config.stored_dim as usize);
    if v.len() != dim {
        return Err(Error::Dimension { field: field.into(), expected: dim, received: v.len() });
    }
    if let Some(i) = v.iter().position(|x| !x.is_finite()) {
        return Err(Error::invalid(
            format!("{field}[{i}]"),
            "must be finite (NaN or infinity found)",
        ));
    }
    hirevec_index::prepare_vector(v, dim, stored_dim).map_err(|e| match e {
        E::ZeroVector { .. } => Error::invalid(
            field,
            format!("must not be zero in its first {stored_dim} values (stored_dim)"),
        ),
        other => Error::invalid(field, other.to_string()),
    })
}

/// Pads a stored (`stored_dim`) vector to `dim` with zeros, the form segment inserts take: the
/// index cuts back to `stored_dim`, so the padding never reaches the graph.
fn padded(config: &CollectionConfig, v: Vec<f32>) -> Vec<f32> {
    let mut v = v;
    v.resize(config.dim as usize, 0.0);
    v
}

impl Collection {
    /// Opens a collection at start-up: sealed segments (cheap: mmap plus header checks), tombstones
    /// of sealed ranges, a replay of ids after the sealed ranges, and the payload index.
    pub(super) fn open(
        storage: Arc<Storage>,
        rec: CollectionRecord,
        dir: PathBuf,
        background: Background,
        tuning: Tuning,
    ) -> Result<Arc<Self>> {
        std::fs::create_dir_all(&dir).map_err(io("create", &dir))?;
        let config = rec.config.clone();
        let mut records = storage.segments(rec.id)?;
        records.sort_by_key(|r| r.lo);
        remove_orphans(&dir, &records)?;

        let mut sealed = Vec::with_capacity(records.len());
        let mut covered_to = 0u32;
        for r in &records {
            let path = segment_file(&dir, r.no);
            let seg = match SealedSegment::open(&path) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(collection = %rec.name, file = %path.display(), error = %e,
                        "sealed segment failed its checks; rebuilding it from RocksDB");
                    rebuild_from_storage(&storage, rec.id, &config, r, &path)?
                }
            };
            for iid in storage.dead_in_range(rec.id, r.lo, r.hi)? {
                seg.delete(iid);
            }
            if r.lo == covered_to {
                covered_to = r.hi;
            }
            sealed.push(Arc::new(SealedEntry {
                seg,
                rec: r.clone(),
                compacting: AtomicBool::new(false),
            }));
        }

        // Replay: everything after the sealed prefix goes into a fresh growing segment, in id
        // order, so the graph is built by the same sequence of inserts as before the restart.
        let mut replay: Vec<(u32, Vec<f32>)> = Vec::new();
        let mut bad = None;
        storage.scan_vectors(rec.id, covered_to, |iid, bytes| {
            if records.iter().any(|r| (r.lo..r.hi).contains(&iid)) {
                return;
            }
            match decode_vector(config.dtype, config.stored_dim as usize, bytes) {
                Some(v) => replay.push((iid, padded(&config, v))),
                None => bad = Some(iid),
            }
        })?;
        if let Some(iid) = bad {
            return Err(Error::Corrupt {
                what: format!("vector of internal id {iid} in collection {:?}", rec.name),
                detail: "length does not fit dtype and stored_dim".into(),
            });
        }
        let capacity = (config.seal_threshold as usize).max(replay.len());
        let growing = GrowingSegment::new(config.segment_config(), capacity)?;
        for (iid, v) in &replay {
            growing.insert(*iid, v)?;
        }

        let payload = load_payload_index(&storage, &rec)?;

        let counters = storage.counters(rec.id)?;
        let next_segment_no = records.iter().map(|r| r.no + 1).max().unwrap_or(0);
        tracing::info!(collection = %rec.name, sealed = sealed.len(), replayed = replay.len(),
            documents = payload.live().len(), "collection opened");
        let coll = Arc::new_cyclic(|me| Self {
            me: me.clone(),
            acked_seq: AtomicU64::new(counters.seq),
            name: rec.name,
            id: rec.id,
            dir,
            config: RwLock::new(config),
            storage,
            background,
            tuning,
            write: Mutex::new(WriteState {
                counters,
                growing_assigned: replay.len(),
                next_segment_no,
            }),
            maintenance: Mutex::new(()),
            segments: RwLock::new(Arc::new(SegmentSet {
                growing: Arc::new(GrowingEntry {
                    seg: growing,
                    lo: covered_to,
                    hi: AtomicU32::new(u32::MAX),
                    watermark: AtomicU64::new(0),
                    capacity,
                }),
                frozen: Vec::new(),
                sealed,
            })),
            payload: RwLock::new(payload),
            dropped: AtomicBool::new(false),
        });
        {
            let mut w = coll.write.lock();
            coll.retire_if_full(&mut w)?;
        }
        for e in coll.segments.read().sealed.iter() {
            coll.maybe_compact(e);
        }
        Ok(coll)
    }

    /// Name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Current config.
    pub fn config(&self) -> CollectionConfig {
        self.config.read().clone()
    }

    fn check_alive(&self) -> Result<()> {
        if self.dropped.load(Ordering::Acquire) {
            return Err(Error::CollectionNotFound { name: self.name.clone() });
        }
        Ok(())
    }

    fn decoder(&self) -> impl Fn(&[u8]) -> Option<Vec<f32>> + use<> {
        let c = self.config();
        move |b| decode_vector(c.dtype, c.stored_dim as usize, b)
    }

    /// Inserts or replaces a batch atomically. The batch must be validated (distinct ids, well
    /// formed payloads); dimensions are checked here, before anything is written.
    pub fn upsert(&self, docs: Vec<NewDocument>) -> Result<u64> {
        let config = self.config();
        let prepared: Vec<Vec<f32>> = docs
            .iter()
            .enumerate()
            .map(|(i, d)| prepare(&config, &format!("documents[{i}].vector"), &d.vector))
            .collect::<Result<_>>()?;
        if docs.is_empty() {
            return Ok(self.write.lock().counters.seq);
        }

        let mut w = self.write.lock();
        self.check_alive()?;
        let ids: Vec<&str> = docs.iter().map(|d| d.id.as_str()).collect();
        let old_iids: Vec<u32> =
            self.storage.lookup_ids(self.id, &ids)?.into_iter().flatten().collect();
        let old_metas = self.storage.doc_metas(self.id, &old_iids)?;
        let n = u32::try_from(docs.len()).expect("batch size is bounded by --max-batch");
        let first = w.counters.next_iid;
        let next = first
            .checked_add(n)
            .filter(|n| *n < u32::MAX)
            .ok_or_else(|| Error::IdsExhausted { name: self.name.clone() })?;
        let seq = w.counters.seq + 1;

        let metas: Vec<DocMeta> = docs
            .iter()
            .map(|d| DocMeta { id: d.id.clone(), kind: d.kind, payload: d.payload.clone(), seq })
            .collect();
        let mut batch = self.storage.batch(self.id);
        for iid in &old_iids {
            batch.tombstone(*iid, None);
        }
        // The index gets exactly what RocksDB keeps (the prepared vector at stored precision),
        // so a replay after a crash inserts the same bits as the original write did.
        let mut stored = Vec::with_capacity(docs.len());
        for (i, (d, meta)) in docs.iter().zip(&metas).enumerate() {
            let bytes = encode_vector(config.dtype, &prepared[i]);
            batch.put_document(first + i as u32, meta, &d.text, &bytes);
            let v = decode_vector(config.dtype, config.stored_dim as usize, &bytes)
                .expect("encode_vector output decodes");
            stored.push(padded(&config, v));
        }
        let counters = Counters { next_iid: next, seq };
        batch.set_counters(counters);
        // Make room before committing, so a failure here leaves RocksDB untouched.
        self.make_room(&mut w, docs.len())?;
        batch.commit()?;
        w.counters = counters;
        self.acked_seq.store(seq, Ordering::Release);

        // Durable from here on; memory follows. Old versions go first so a concurrent search
        // never sees two versions of one document.
        let set = self.segments.read().clone();
        self.tombstone_in_memory(&set, &old_iids, &old_metas);
        for (i, v) in stored.iter().enumerate() {
            let iid = first + i as u32;
            if let Err(e) = set.growing.seg.insert(iid, v) {
                tracing::error!(collection = %self.name, iid, error = %e,
                    "insert failed after the write was stored; a restart will replay it");
                return Err(e.into());
            }
        }
        {
            let mut p = self.payload.write();
            for (i, meta) in metas.iter().enumerate() {
                p.add(first + i as u32, meta);
            }
        }
        w.growing_assigned += docs.len();
        self.retire_if_full(&mut w)?;
        Ok(seq)
    }

    /// Deletes documents by client id; returns (deleted, sequence).
    pub fn delete_ids(&self, ids: &[String]) -> Result<(u64, u64)> {
        let mut w = self.write.lock();
        self.check_alive()?;
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let iids: Vec<u32> =
            self.storage.lookup_ids(self.id, &refs)?.into_iter().flatten().collect();
        self.delete_locked(&mut w, iids)
    }

    /// Deletes the documents matching a filter; returns (deleted, sequence).
    pub fn delete_filter(&self, filter: &Filter) -> Result<(u64, u64)> {
        let mut w = self.write.lock();
        self.check_alive()?;
        let iids: Vec<u32> = self.payload.read().evaluate(filter).iter().collect();
        self.delete_locked(&mut w, iids)
    }

    fn delete_locked(&self, w: &mut WriteState, mut iids: Vec<u32>) -> Result<(u64, u64)> {
        iids.sort_unstable();
        iids.dedup();
        if iids.is_empty() {
            return Ok((0, w.counters.seq));
        }
        let metas = self.storage.doc_metas(self.id, &iids)?;
        let mut batch = self.storage.batch(self.id);
        let mut deleted = 0;
        for (iid, meta) in iids.iter().zip(&metas) {
            if let Some(m) = meta {
                batch.tombstone(*iid, Some(&m.id));
                deleted += 1;
            }
        }
        let counters = Counters { seq: w.counters.seq + 1, ..w.counters };
        batch.set_counters(counters);
        batch.commit()?;
        w.counters = counters;
        self.acked_seq.store(counters.seq, Ordering::Release);
        let set = self.segments.read().clone();
        self.tombstone_in_memory(&set, &iids, &metas);
        Ok((deleted, counters.seq))
    }

    fn tombstone_in_memory(&self, set: &SegmentSet, iids: &[u32], metas: &[Option<DocMeta>]) {
        if iids.is_empty() {
            return;
        }
        {
            let mut p = self.payload.write();
            for (iid, meta) in iids.iter().zip(metas) {
                if let Some(m) = meta {
                    p.remove(*iid, m);
                }
            }
        }
        for iid in iids {
            if let Some(seg) = set.holding(*iid) {
                seg.delete(*iid);
            }
        }
        for e in &set.sealed {
            self.maybe_compact(e);
        }
    }

    /// Ensures the growing segment can take `n` more vectors, retiring it if not.
    fn make_room(&self, w: &mut WriteState, n: usize) -> Result<()> {
        let capacity = self.segments.read().growing.capacity;
        if (w.growing_assigned > 0 && w.growing_assigned + n > capacity) || n > capacity {
            self.retire(w, n)?;
        }
        Ok(())
    }

    fn retire_if_full(&self, w: &mut WriteState) -> Result<()> {
        if w.growing_assigned >= self.config().seal_threshold as usize {
            self.retire(w, 0)?;
        }
        Ok(())
    }

    /// Freezes the growing segment's id range, starts a new one and queues the old one for
    /// sealing. Runs under the write lock, so no insert is in flight.
    fn retire(&self, w: &mut WriteState, at_least: usize) -> Result<()> {
        let config = self.config();
        let capacity = (config.seal_threshold as usize).max(at_least);
        let fresh = GrowingSegment::new(config.segment_config(), capacity)?;
        let mut set = (**self.segments.read()).clone();
        let old = std::mem::replace(
            &mut set.growing,
            Arc::new(GrowingEntry {
                seg: fresh,
                lo: w.counters.next_iid,
                hi: AtomicU32::new(u32::MAX),
                watermark: AtomicU64::new(0),
                capacity,
            }),
        );
        old.hi.store(w.counters.next_iid, Ordering::Release);
        old.watermark.store(w.counters.seq, Ordering::Release);
        let queue = old.seg.len() > 0;
        if queue {
            set.frozen.push(old.clone());
        }
        *self.segments.write() = Arc::new(set);
        w.growing_assigned = 0;
        if queue {
            tracing::debug!(collection = %self.name, lo = old.lo, hi = w.counters.next_iid, "growing segment frozen");
            self.submit(|collection| Job::Seal { collection, entry: old });
        }
        Ok(())
    }

    fn submit(&self, job: impl FnOnce(Arc<Collection>) -> Job) {
        // `me` upgrades unless the collection is being torn down, when the job is moot anyway.
        if let Some(me) = self.me.upgrade() {
            self.background.submit(job(me));
        }
    }

    /// Seals one frozen segment: write the file, open it, restore tombstones that arrived while
    /// writing, record it in RocksDB, then swap it in. Called by the background worker, and at
    /// shutdown by [`Collection::seal_all`].
    fn seal(&self, entry: &Arc<GrowingEntry>) -> Result<()> {
        let _m = self.maintenance.lock();
        if self.dropped.load(Ordering::Acquire) {
            return Ok(());
        }
        entry.seg.freeze();
        let no = {
            let mut w = self.write.lock();
            w.next_segment_no += 1;
            w.next_segment_no - 1
        };
        let path = segment_file(&self.dir, no);
        let bytes = entry.seg.write_sealed(&path)?;
        let seg = SealedSegment::open(&path)?;
        let rec = SegmentRecord {
            no,
            lo: entry.lo,
            hi: entry.hi.load(Ordering::Acquire),
            watermark: entry.watermark.load(Ordering::Acquire),
        };
        let sealed = {
            let w = self.write.lock();
            for iid in self.storage.dead_in_range(self.id, rec.lo, rec.hi)? {
                seg.delete(iid);
            }
            let mut b = self.storage.batch(self.id);
            b.put_segment(&rec);
            // Under the write lock the payload index matches RocksDB exactly.
            b.put_payload_snapshot(&self.payload.read().encode(w.counters.next_iid));
            b.commit()?;
            let sealed =
                Arc::new(SealedEntry { seg, rec: rec.clone(), compacting: AtomicBool::new(false) });
            let mut set = (**self.segments.read()).clone();
            set.frozen.retain(|e| !Arc::ptr_eq(e, entry));
            set.sealed.push(sealed.clone());
            *self.segments.write() = Arc::new(set);
            sealed
        };
        tracing::info!(collection = %self.name, no, lo = rec.lo, hi = rec.hi, bytes, "segment sealed");
        self.maybe_compact(&sealed);
        Ok(())
    }

    fn maybe_compact(&self, e: &Arc<SealedEntry>) {
        let len = e.seg.len();
        if len == 0 {
            return;
        }
        let fraction = e.seg.deleted_count() as f64 / len as f64;
        if fraction > self.tuning.compaction_threshold && !e.compacting.swap(true, Ordering::AcqRel)
        {
            let no = e.rec.no;
            self.submit(|collection| Job::Compact { collection, no });
        }
    }

    /// Rewrites sealed segment `no` without its tombstoned vectors.
    fn compact(&self, no: u64) -> Result<()> {
        let _m = self.maintenance.lock();
        if self.dropped.load(Ordering::Acquire) {
            return Ok(());
        }
        let Some(old) = self.segments.read().sealed.iter().find(|e| e.rec.no == no).cloned() else {
            return Ok(());
        };
        let config = self.config();
        let live = old.seg.ids();
        let fresh = GrowingSegment::new(config.segment_config(), live.len().max(1))?;
        for iid in &live {
            if let Some(v) = old.seg.vector(*iid) {
                fresh.insert(*iid, &padded(&config, v))?;
            }
        }
        fresh.freeze();
        let new_no = self.next_segment_no();
        let path = segment_file(&self.dir, new_no);
        fresh.write_sealed(&path)?;
        let seg = SealedSegment::open(&path)?;
        self.replace_sealed(&old, seg, new_no, "compacted")?;
        tracing::info!(collection = %self.name, old = old.rec.no, new = new_no,
            dropped = old.seg.len() - rec_len(&self.segments.read(), new_no), "segment compacted");
        Ok(())
    }

    /// Runs a background job for this collection.
    pub(super) fn run_job(&self, job: &Job) -> Result<()> {
        match job {
            Job::Seal { entry, .. } => self.seal(entry),
            Job::Compact { no, .. } => self.compact(*no),
            Job::Verify { .. } => self.verify_sealed(),
        }
    }

    /// Checks the body checksum of every sealed file (opening checks only the header and the
    /// section sizes); a damaged file is rebuilt from RocksDB, which holds every live vector.
    /// Searches go on meanwhile: readers bounds-check what they read, so a damaged file gives
    /// wrong hits until it is replaced, never a fault.
    fn verify_sealed(&self) -> Result<()> {
        let entries = self.segments.read().sealed.clone();
        for e in entries {
            if self.dropped.load(Ordering::Acquire) {
                return Ok(());
            }
            if let Err(err) = e.seg.verify() {
                tracing::error!(collection = %self.name, segment = e.rec.no, error = %err,
                    "sealed segment failed its checksum; rebuilding it from RocksDB");
                self.repair(e.rec.no)?;
                tracing::info!(collection = %self.name, segment = e.rec.no, "segment rebuilt");
            }
        }
        Ok(())
    }

    /// Replaces sealed segment `no` by a file rebuilt from the vectors RocksDB holds for its id
    /// range, under a new segment number (like compaction: the damaged file stays mapped for the
    /// searches that hold it, and a crash midway leaves either the old record or the new one).
    fn repair(&self, no: u64) -> Result<()> {
        let _m = self.maintenance.lock();
        if self.dropped.load(Ordering::Acquire) {
            return Ok(());
        }
        let Some(old) = self.segments.read().sealed.iter().find(|e| e.rec.no == no).cloned() else {
            return Ok(());
        };
        let config = self.config();
        let new_no = self.next_segment_no();
        let path = segment_file(&self.dir, new_no);
        let seg = rebuild_from_storage(&self.storage, self.id, &config, &old.rec, &path)?;
        self.replace_sealed(&old, seg, new_no, "damaged")
    }

    fn next_segment_no(&self) -> u64 {
        let mut w = self.write.lock();
        w.next_segment_no += 1;
        w.next_segment_no - 1
    }

    /// Swaps sealed segment `old` for `seg` (a rewrite of the same id range, file `new_no`):
    /// one RocksDB batch moves the record, then the segment set changes and the old file goes.
    /// Under the write lock no delete lands between reading the tombstones and the swap.
    fn replace_sealed(
        &self,
        old: &SealedEntry,
        seg: SealedSegment,
        new_no: u64,
        why: &str,
    ) -> Result<()> {
        let rec = SegmentRecord { no: new_no, ..old.rec.clone() };
        {
            let w = self.write.lock();
            let held: RoaringBitmap = seg.ids().into_iter().collect();
            let mut b = self.storage.batch(self.id);
            for iid in self.storage.dead_in_range(self.id, rec.lo, rec.hi)? {
                if held.contains(iid) {
                    // Deleted while the new file was written: it holds the id, keep it dead.
                    seg.delete(iid);
                } else {
                    b.forget_tombstone(iid);
                }
            }
            b.delete_segment(old.rec.no);
            b.put_segment(&rec);
            // Tombstones forgotten above must not come back through an older snapshot.
            b.put_payload_snapshot(&self.payload.read().encode(w.counters.next_iid));
            b.commit()?;
            let mut set = (**self.segments.read()).clone();
            for e in set.sealed.iter_mut() {
                if e.rec.no == old.rec.no {
                    *e = Arc::new(SealedEntry {
                        seg,
                        rec: rec.clone(),
                        compacting: AtomicBool::new(false),
                    });
                    break;
                }
            }
            *self.segments.write() = Arc::new(set);
        }
        let old_path = segment_file(&self.dir, old.rec.no);
        // Searches that still hold the old Arc keep their mapping; unlinking is safe on Unix.
        if let Err(e) = std::fs::remove_file(&old_path) {
            tracing::warn!(file = %old_path.display(), error = %e, "could not remove {why} segment");
        }
        Ok(())
    }

    /// Seals the growing segment and every frozen one now (graceful shutdown), so the next start
    /// opens files instead of rebuilding graphs.
    pub(super) fn seal_all(&self) -> Result<()> {
        {
            let mut w = self.write.lock();
            if w.growing_assigned > 0 {
                let config = self.config();
                let mut set = (**self.segments.read()).clone();
                let fresh =
                    GrowingSegment::new(config.segment_config(), config.seal_threshold as usize)?;
                let old = std::mem::replace(
                    &mut set.growing,
                    Arc::new(GrowingEntry {
                        seg: fresh,
                        lo: w.counters.next_iid,
                        hi: AtomicU32::new(u32::MAX),
                        watermark: AtomicU64::new(0),
                        capacity: config.seal_threshold as usize,
                    }),
                );
                old.hi.store(w.counters.next_iid, Ordering::Release);
                old.watermark.store(w.counters.seq, Ordering::Release);
                set.frozen.push(old);
                *self.segments.write() = Arc::new(set);
                w.growing_assigned = 0;
            }
        }
        let frozen = self.segments.read().frozen.clone();
        for e in &frozen {
            self.seal(e)?;
        }
        Ok(())
    }

    /// Drops the collection: its records (one atomic batch), then its files. Waits for a running
    /// seal or compaction; a crash between the two steps leaves only unrecorded files, which
    /// `remove_orphans` clears if the name is created again.
    pub(super) fn drop_all(&self) -> Result<()> {
        let _m = self.maintenance.lock();
        let _w = self.write.lock();
        self.dropped.store(true, Ordering::Release);
        let config = self.config();
        self.storage.drop_collection(&CollectionRecord {
            id: self.id,
            name: self.name.clone(),
            config,
        })?;
        match std::fs::remove_dir_all(&self.dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::Io { op: "remove", path: self.dir.clone(), source: e }),
        }
        // The collection's own folder (`collections/<name>`) holds only `segments/`.
        if let Some(parent) = self.dir.parent() {
            let _ = std::fs::remove_dir(parent);
        }
        Ok(())
    }

    /// Changes the settings that may change (the caller's `change` touches only those: default
    /// `ef`, seal threshold, default query instruction); validated and stored before it applies.
    pub fn update(
        &self,
        change: impl FnOnce(&mut CollectionConfig) -> Result<()>,
    ) -> Result<CollectionConfig> {
        let _w = self.write.lock();
        self.check_alive()?;
        let mut c = self.config();
        change(&mut c)?;
        c.validate()?;
        self.storage.update_collection(&CollectionRecord {
            id: self.id,
            name: self.name.clone(),
            config: c.clone(),
        })?;
        *self.config.write() = c.clone();
        Ok(c)
    }

    /// Top-k search over every segment with the filter applied inside each graph walk.
    pub fn search(&self, q: &SearchQuery, field: &str) -> Result<Vec<SearchHit>> {
        let config = self.config();
        prepare(&config, &format!("{field}vector"), &q.vector)?;
        let allowed = q.filter.as_ref().map(|f| self.payload.read().evaluate(f));
        if allowed.as_ref().is_some_and(|a| a.is_empty()) {
            return Ok(Vec::new());
        }
        let ef = q.ef.unwrap_or(config.hnsw.ef as usize).max(q.top_k);
        let mut params = SearchParams::new(q.top_k, ef)
            .with_exact_scan_threshold(self.tuning.exact_scan_threshold);
        if let Some(a) = &allowed {
            params = params.with_filter(a);
        }
        let set = self.segments.read().clone();
        let mut hits: Vec<Hit> = Vec::new();
        for seg in set.all() {
            hits.extend(seg.search(&q.vector, &params)?);
        }
        hits.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.id.cmp(&b.id)));
        if let Some(min) = q.min_score {
            hits.retain(|h| h.score >= min);
        }
        hits.truncate(q.top_k);
        let iids: Vec<u32> = hits.iter().map(|h| h.id).collect();
        let docs = self.storage.documents(self.id, &iids, q.with, &self.decoder())?;
        // A hit deleted between the walk and the read is dropped rather than returned half-empty.
        Ok(hits
            .into_iter()
            .zip(docs)
            .filter_map(|(h, d)| d.map(|doc| SearchHit { score: h.score, doc }))
            .collect())
    }

    /// Documents by client id, in request order (`None` where missing).
    pub fn get(&self, ids: &[String], with: With) -> Result<Vec<Option<StoredDocument>>> {
        self.check_alive()?;
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        self.storage.documents_by_client_id(self.id, &refs, with, &self.decoder())
    }

    /// Live documents matching the filter.
    pub fn count(&self, filter: Option<&Filter>) -> Result<u64> {
        self.check_alive()?;
        let p = self.payload.read();
        Ok(match filter {
            Some(f) => p.evaluate(f).len(),
            None => p.live().len(),
        })
    }

    /// A page of documents matching the filter with internal id >= `cursor`, and the cursor of
    /// the next page.
    pub fn scroll(
        &self,
        filter: Option<&Filter>,
        cursor: u32,
        limit: usize,
        with: With,
    ) -> Result<(Vec<StoredDocument>, Option<u32>)> {
        self.check_alive()?;
        let page: Vec<u32> = {
            let p = self.payload.read();
            match filter {
                Some(f) => p.evaluate(f).range(cursor..).take(limit + 1).collect(),
                None => p.live().range(cursor..).take(limit + 1).collect(),
            }
        };
        let next = page.get(limit).copied();
        let iids = &page[..page.len().min(limit)];
        let docs = self.storage.documents(self.id, iids, with, &self.decoder())?;
        Ok((docs.into_iter().flatten().collect(), next))
    }

    /// Counts for `Collections.Get`.
    pub fn stats(&self) -> CollectionStats {
        let set = self.segments.read().clone();
        let documents = self.payload.read().live().len();
        let mut s = CollectionStats {
            documents,
            sealed_segments: set.sealed.len() as u32,
            sequence: self.acked_seq.load(Ordering::Acquire),
            ..Default::default()
        };
        for e in &set.sealed {
            s.sealed_vectors += e.seg.len() as u64;
        }
        for seg in std::iter::once(&set.growing).chain(&set.frozen) {
            s.growing_vectors += seg.seg.len() as u64;
        }
        s.tombstones = set.all().map(|g| g.deleted_count() as u64).sum();
        s
    }
}

fn rec_len(set: &SegmentSet, no: u64) -> usize {
    set.sealed.iter().find(|e| e.rec.no == no).map_or(0, |e| e.seg.len())
}

/// The payload index at start-up: the latest snapshot minus the ids tombstoned since, plus the
/// documents written after it (ids are assigned in order, so those are the ids >= its cover).
/// Without a snapshot (nothing sealed yet, or an unreadable one) every document is scanned.
fn load_payload_index(storage: &Storage, rec: &CollectionRecord) -> Result<PayloadIndex> {
    let (mut payload, covers) = match storage.payload_snapshot(rec.id)? {
        Some(bytes) => match PayloadIndex::decode(&bytes) {
            Ok(p) => p,
            Err(detail) => {
                tracing::error!(collection = %rec.name, %detail,
                    "payload index snapshot unreadable; rebuilding from documents");
                (PayloadIndex::default(), 0)
            }
        },
        None => (PayloadIndex::default(), 0),
    };
    if covers > 0 {
        let dead: RoaringBitmap = storage.dead_in_range(rec.id, 0, covers)?.into_iter().collect();
        payload.forget(&dead);
    }
    storage.scan_docs_from(rec.id, covers, |iid, meta| payload.add(iid, &meta))?;
    Ok(payload)
}

/// Rebuilds a sealed segment whose file failed its checks from the vectors in RocksDB.
fn rebuild_from_storage(
    storage: &Storage,
    coll: u32,
    config: &CollectionConfig,
    rec: &SegmentRecord,
    path: &Path,
) -> Result<SealedSegment> {
    let mut vectors = Vec::new();
    storage.scan_vectors(coll, rec.lo, |iid, bytes| {
        if iid < rec.hi {
            vectors.push((iid, bytes.to_vec()));
        }
    })?;
    let seg = GrowingSegment::new(config.segment_config(), vectors.len().max(1))?;
    for (iid, bytes) in vectors {
        let v =
            decode_vector(config.dtype, config.stored_dim as usize, &bytes).ok_or_else(|| {
                Error::Corrupt {
                    what: format!("vector of internal id {iid}"),
                    detail: "bad length".into(),
                }
            })?;
        seg.insert(iid, &padded(config, v))?;
    }
    seg.freeze();
    seg.write_sealed(path)?;
    Ok(SealedSegment::open(path)?)
}

/// Deletes files in the segment folder that no record names: temporaries of an interrupted
/// write, and files sealed but not recorded before a crash (their ids are replayed instead).
fn remove_orphans(dir: &Path, records: &[SegmentRecord]) -> Result<()> {
    let keep: std::collections::HashSet<PathBuf> =
        records.iter().map(|r| segment_file(dir, r.no)).collect();
    for entry in std::fs::read_dir(dir).map_err(io("list", dir))? {
        let path = entry.map_err(io("list", dir))?.path();
        if path.is_file() && !keep.contains(&path) {
            tracing::info!(file = %path.display(), "removing unrecorded segment file");
            std::fs::remove_file(&path).map_err(io("remove", &path))?;
        }
    }
    Ok(())
}
