//! RocksDB, the source of truth. This is the only module that imports `rocksdb`; everything else
//! speaks in the engine's types (`server::model`), so replacing the store changes one file.
//!
//! Layout: one column family per kind of record, keys prefixed by the collection's numeric id
//! (big-endian, so a collection is one contiguous key range and is dropped with `delete_range`):
//! - `collections`: name -> JSON [`CollectionRecord`] (rare writes, human-readable);
//! - `meta`: `next_collection_id`, and per collection `c` + id -> [`Counters`] and `p` + id ->
//!   the payload index snapshot (written with every sealed segment record);
//! - `ids`: coll + client id -> internal id (u32 BE);
//! - `docs`: coll + internal id -> [`DocRecord`] (kind, payload, sequence; protobuf-encoded);
//! - `texts`: coll + internal id -> UTF-8 text (kept apart so attribute scans skip it);
//! - `vectors`: coll + internal id -> the prepared vector at stored precision;
//! - `dead`: coll + internal id -> empty: tombstones that sealed segments need back after open;
//! - `segments`: coll + segment number (u64 BE) -> JSON [`SegmentRecord`].
//!
//! Every write that a client is told about goes through [`Storage::write`] with `sync = true`.
use std::path::Path;

use rocksdb::{
    ColumnFamily, ColumnFamilyDescriptor, DB, Direction, IteratorMode, Options, ReadOptions,
    WriteBatch, WriteOptions,
};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::server::model::{CollectionConfig, DocMeta, Kind, Payload, StoredDocument, Value, With};

const CF_COLLECTIONS: &str = "collections";
const CF_META: &str = "meta";
const CF_IDS: &str = "ids";
const CF_DOCS: &str = "docs";
const CF_TEXTS: &str = "texts";
const CF_VECTORS: &str = "vectors";
const CF_DEAD: &str = "dead";
const CF_SEGMENTS: &str = "segments";
const ALL_CFS: [&str; 8] =
    [CF_COLLECTIONS, CF_META, CF_IDS, CF_DOCS, CF_TEXTS, CF_VECTORS, CF_DEAD, CF_SEGMENTS];
const KEY_NEXT_COLLECTION_ID: &[u8] = b"next_collection_id";

/// A collection as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CollectionRecord {
    /// Numeric id, the key prefix of everything the collection owns. Never reused.
    pub id: u32,
    /// Name.
    pub name: String,
    /// Resolved config.
    pub config: CollectionConfig,
}

/// A sealed segment as recorded once its file is in place.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentRecord {
    /// Segment number within the collection (file `seg-<no>.hvs`).
    pub no: u64,
    /// First internal id the segment covers.
    pub lo: u32,
    /// One past the last internal id it covers; replay after restart starts here.
    pub hi: u32,
    /// Sequence number of the collection when the range was frozen (the watermark).
    pub watermark: u64,
}

/// Per-collection counters, written in the same batch as the writes that advance them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters {
    /// Next internal id to assign.
    pub next_iid: u32,
    /// Sequence number of the last write.
    pub seq: u64,
}

/// A document's attributes, encoded with protobuf so fields can be added later.
#[derive(Clone, PartialEq, prost::Message)]
struct DocRecord {
    #[prost(string, tag = "1")]
    id: String,
    #[prost(uint32, tag = "2")]
    kind: u32,
    #[prost(uint64, tag = "3")]
    seq: u64,
    #[prost(message, repeated, tag = "4")]
    payload: Vec<FieldRecord>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct FieldRecord {
    #[prost(string, tag = "1")]
    key: String,
    #[prost(oneof = "ValueRecord", tags = "2, 3, 4, 5, 6")]
    value: Option<ValueRecord>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
enum ValueRecord {
    #[prost(string, tag = "2")]
    Str(String),
    #[prost(sint64, tag = "3")]
    Int(i64),
    #[prost(double, tag = "4")]
    Float(f64),
    #[prost(bool, tag = "5")]
    Bool(bool),
    #[prost(message, tag = "6")]
    StrList(StrListRecord),
}

#[derive(Clone, PartialEq, prost::Message)]
struct StrListRecord {
    #[prost(string, repeated, tag = "1")]
    values: Vec<String>,
}

fn encode_doc(meta: &DocMeta) -> Vec<u8> {
    use prost::Message;
    let payload = meta
        .payload
        .iter()
        .map(|(k, v)| FieldRecord {
            key: k.clone(),
            value: Some(match v {
                Value::Str(s) => ValueRecord::Str(s.clone()),
                Value::Int(i) => ValueRecord::Int(*i),
                Value::Float(f) => ValueRecord::Float(*f),
                Value::Bool(b) => ValueRecord::Bool(*b),
                Value::StrList(l) => ValueRecord::StrList(StrListRecord { values: l.clone() }),
            }),
        })
        .collect();
    DocRecord { id: meta.id.clone(), kind: meta.kind.index() as u32, seq: meta.seq, payload }
        .encode_to_vec()
}

fn decode_doc(bytes: &[u8]) -> Result<DocMeta> {
    use prost::Message;
    let corrupt = |detail: String| Error::Corrupt { what: "document record".into(), detail };
    let rec = DocRecord::decode(bytes).map_err(|e| corrupt(e.to_string()))?;
    let kind = Kind::from_index(rec.kind as usize)
        .ok_or_else(|| corrupt(format!("unknown kind {}", rec.kind)))?;
    let mut payload = Payload::new();
    for f in rec.payload {
        let v = match f.value {
            Some(ValueRecord::Str(s)) => Value::Str(s),
            Some(ValueRecord::Int(i)) => Value::Int(i),
            Some(ValueRecord::Float(x)) => Value::Float(x),
            Some(ValueRecord::Bool(b)) => Value::Bool(b),
            Some(ValueRecord::StrList(l)) => Value::StrList(l.values),
            None => return Err(corrupt(format!("field {:?} has no value", f.key))),
        };
        payload.insert(f.key, v);
    }
    Ok(DocMeta { id: rec.id, kind, payload, seq: rec.seq })
}

fn rocks(op: &'static str) -> impl FnOnce(rocksdb::Error) -> Error {
    move |e| Error::Storage { op, message: e.into_string() }
}

fn key(coll: u32, iid: u32) -> [u8; 8] {
    let mut k = [0u8; 8];
    k[..4].copy_from_slice(&coll.to_be_bytes());
    k[4..].copy_from_slice(&iid.to_be_bytes());
    k
}

fn ext_key(coll: u32, ext: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(4 + ext.len());
    k.extend_from_slice(&coll.to_be_bytes());
    k.extend_from_slice(ext.as_bytes());
    k
}

fn counters_key(coll: u32) -> [u8; 5] {
    let mut k = [b'c'; 5];
    k[1..].copy_from_slice(&coll.to_be_bytes());
    k
}

fn payload_snapshot_key(coll: u32) -> [u8; 5] {
    let mut k = [b'p'; 5];
    k[1..].copy_from_slice(&coll.to_be_bytes());
    k
}

fn iid_of(k: &[u8]) -> Result<u32> {
    let b: [u8; 4] = k.get(4..8).and_then(|s| s.try_into().ok()).ok_or_else(|| Error::Corrupt {
        what: "storage key".into(),
        detail: format!("expected 8 bytes, found {}", k.len()),
    })?;
    Ok(u32::from_be_bytes(b))
}

/// The RocksDB store.
pub struct Storage {
    db: DB,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage").field("path", &self.db.path()).finish()
    }
}

impl Storage {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Self> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_compression_type(rocksdb::DBCompressionType::Lz4);
        opts.increase_parallelism(2);
        let cfs = ALL_CFS.iter().map(|name| {
            let mut o = Options::default();
            o.set_compression_type(rocksdb::DBCompressionType::Lz4);
            ColumnFamilyDescriptor::new(*name, o)
        });
        let db = DB::open_cf_descriptors(&opts, dir, cfs).map_err(rocks("open"))?;
        Ok(Self { db })
    }

    fn cf(&self, name: &str) -> &ColumnFamily {
        // Every family is created in `open`, so a missing handle is a programming error.
        self.db.cf_handle(name).expect("column family created at open")
    }

    fn prefix_iter(
        &self,
        cf: &str,
        from: Vec<u8>,
        upper: Vec<u8>,
    ) -> rocksdb::DBIteratorWithThreadMode<'_, DB> {
        let mut ro = ReadOptions::default();
        ro.set_iterate_upper_bound(upper);
        self.db.iterator_cf_opt(self.cf(cf), ro, IteratorMode::From(&from, Direction::Forward))
    }

    /// All collections.
    pub fn collections(&self) -> Result<Vec<CollectionRecord>> {
        let mut out = Vec::new();
        for item in self.db.iterator_cf(self.cf(CF_COLLECTIONS), IteratorMode::Start) {
            let (k, v) = item.map_err(rocks("list collections"))?;
            let rec: CollectionRecord = serde_json::from_slice(&v).map_err(|e| Error::Corrupt {
                what: format!("collection record {:?}", String::from_utf8_lossy(&k)),
                detail: e.to_string(),
            })?;
            out.push(rec);
        }
        Ok(out)
    }

    /// Stores a new collection with a fresh numeric id. The caller guarantees the name is free.
    pub fn create_collection(
        &self,
        name: &str,
        config: CollectionConfig,
    ) -> Result<CollectionRecord> {
        let meta = self.cf(CF_META);
        let id = match self.db.get_cf(meta, KEY_NEXT_COLLECTION_ID).map_err(rocks("read"))? {
            Some(v) => u32::from_le_bytes(v.as_slice().try_into().map_err(|_| Error::Corrupt {
                what: "next_collection_id".into(),
                detail: format!("{} bytes", v.len()),
            })?),
            None => 0,
        };
        let next = id.checked_add(1).ok_or_else(|| Error::Overloaded {
            what: "all 2^32 collection ids have been used".into(),
        })?;
        let rec = CollectionRecord { id, name: name.to_owned(), config };
        let mut b = WriteBatch::default();
        b.put_cf(meta, KEY_NEXT_COLLECTION_ID, next.to_le_bytes());
        b.put_cf(meta, counters_key(id), encode_counters(Counters::default()));
        b.put_cf(self.cf(CF_COLLECTIONS), name.as_bytes(), serde_json::to_vec(&rec).unwrap());
        self.commit(b)?;
        Ok(rec)
    }

    /// Replaces a collection's record (settings that may change).
    pub fn update_collection(&self, rec: &CollectionRecord) -> Result<()> {
        let mut b = WriteBatch::default();
        b.put_cf(self.cf(CF_COLLECTIONS), rec.name.as_bytes(), serde_json::to_vec(rec).unwrap());
        self.commit(b)
    }

    /// Removes a collection and every record it owns, atomically.
    pub fn drop_collection(&self, rec: &CollectionRecord) -> Result<()> {
        let mut b = WriteBatch::default();
        b.delete_cf(self.cf(CF_COLLECTIONS), rec.name.as_bytes());
        b.delete_cf(self.cf(CF_META), counters_key(rec.id));
        b.delete_cf(self.cf(CF_META), payload_snapshot_key(rec.id));
        let lo = rec.id.to_be_bytes().to_vec();
        // Ids are u32, so the next prefix exists unless id == u32::MAX, which create refuses.
        let hi = (rec.id as u64 + 1).min(u32::MAX as u64) as u32;
        let hi = hi.to_be_bytes().to_vec();
        for cf in [CF_IDS, CF_DOCS, CF_TEXTS, CF_VECTORS, CF_DEAD, CF_SEGMENTS] {
            b.delete_range_cf(self.cf(cf), &lo, &hi);
        }
        self.commit(b)
    }

    /// The collection's counters.
    pub fn counters(&self, coll: u32) -> Result<Counters> {
        match self.db.get_cf(self.cf(CF_META), counters_key(coll)).map_err(rocks("read"))? {
            Some(v) => decode_counters(&v),
            None => Ok(Counters::default()),
        }
    }

    /// The latest payload index snapshot, if any.
    pub fn payload_snapshot(&self, coll: u32) -> Result<Option<Vec<u8>>> {
        self.db.get_cf(self.cf(CF_META), payload_snapshot_key(coll)).map_err(rocks("read"))
    }

    /// Internal ids of client ids (`None` where unknown).
    pub fn lookup_ids(&self, coll: u32, ids: &[&str]) -> Result<Vec<Option<u32>>> {
        let cf = self.cf(CF_IDS);
        self.db
            .multi_get_cf(ids.iter().map(|id| (cf, ext_key(coll, id))))
            .into_iter()
            .map(|r| r.map_err(rocks("read ids"))?.map(|v| decode_iid(&v)).transpose())
            .collect()
    }

    /// Attributes of documents by internal id (`None` where deleted).
    pub fn doc_metas(&self, coll: u32, iids: &[u32]) -> Result<Vec<Option<DocMeta>>> {
        let cf = self.cf(CF_DOCS);
        self.db
            .multi_get_cf(iids.iter().map(|i| (cf, key(coll, *i))))
            .into_iter()
            .map(|r| r.map_err(rocks("read docs"))?.map(|v| decode_doc(&v)).transpose())
            .collect()
    }

    /// Documents by internal id, read from one snapshot (`None` where deleted). `decode` turns
    /// stored vector bytes into floats.
    pub fn documents(
        &self,
        coll: u32,
        iids: &[u32],
        with: With,
        decode: &dyn Fn(&[u8]) -> Option<Vec<f32>>,
    ) -> Result<Vec<Option<StoredDocument>>> {
        let snap = self.db.snapshot();
        self.documents_at(&snap, coll, iids, with, decode)
    }

    fn documents_at(
        &self,
        snap: &rocksdb::Snapshot<'_>,
        coll: u32,
        iids: &[u32],
        with: With,
        decode: &dyn Fn(&[u8]) -> Option<Vec<f32>>,
    ) -> Result<Vec<Option<StoredDocument>>> {
        let get = |cf: &str| -> Result<Vec<Option<Vec<u8>>>> {
            let h = self.cf(cf);
            snap.multi_get_cf_opt(iids.iter().map(|i| (h, key(coll, *i))), ReadOptions::default())
                .into_iter()
                .map(|r| r.map_err(rocks("read documents")))
                .collect()
        };
        let metas = get(CF_DOCS)?;
        let texts = if with.text { Some(get(CF_TEXTS)?) } else { None };
        let vectors = if with.vector { Some(get(CF_VECTORS)?) } else { None };
        let mut out = Vec::with_capacity(iids.len());
        for (i, meta) in metas.into_iter().enumerate() {
            let Some(meta) = meta else {
                out.push(None);
                continue;
            };
            let mut meta = decode_doc(&meta)?;
            if !with.payload {
                meta.payload.clear();
            }
            let text = match &texts {
                Some(t) => Some(match &t[i] {
                    Some(b) => String::from_utf8(b.clone()).map_err(|e| Error::Corrupt {
                        what: format!("text of internal id {}", iids[i]),
                        detail: e.to_string(),
                    })?,
                    None => String::new(),
                }),
                None => None,
            };
            let vector = match &vectors {
                Some(v) => {
                    let bytes = v[i].as_deref().unwrap_or_default();
                    Some(decode(bytes).ok_or_else(|| Error::Corrupt {
                        what: format!("vector of internal id {}", iids[i]),
                        detail: format!(
                            "{} bytes do not fit the collection's dtype/stored_dim",
                            bytes.len()
                        ),
                    })?)
                }
                None => None,
            };
            out.push(Some(StoredDocument { meta, text, vector }));
        }
        Ok(out)
    }

    /// Documents by client id, resolved and read from one snapshot so a concurrent upsert cannot
    /// make a live document look missing.
    pub fn documents_by_client_id(
        &self,
        coll: u32,
        ids: &[&str],
        with: With,
        decode: &dyn Fn(&[u8]) -> Option<Vec<f32>>,
    ) -> Result<Vec<Option<StoredDocument>>> {
        let snap = self.db.snapshot();
        let cf = self.cf(CF_IDS);
        let iids: Vec<Option<u32>> = snap
            .multi_get_cf_opt(ids.iter().map(|id| (cf, ext_key(coll, id))), ReadOptions::default())
            .into_iter()
            .map(|r| r.map_err(rocks("read ids"))?.map(|v| decode_iid(&v)).transpose())
            .collect::<Result<_>>()?;
        let found: Vec<u32> = iids.iter().flatten().copied().collect();
        let mut docs = self.documents_at(&snap, coll, &found, with, decode)?.into_iter();
        Ok(iids.iter().map(|i| i.and_then(|_| docs.next().flatten())).collect())
    }

    /// Calls `f` for every live document with internal id >= `from`, in id order.
    pub fn scan_docs_from(
        &self,
        coll: u32,
        from: u32,
        mut f: impl FnMut(u32, DocMeta),
    ) -> Result<()> {
        for item in self.prefix_iter(CF_DOCS, key(coll, from).to_vec(), next_prefix(coll)) {
            let (k, v) = item.map_err(rocks("scan docs"))?;
            f(iid_of(&k)?, decode_doc(&v)?);
        }
        Ok(())
    }

    /// Calls `f` for every stored vector with internal id >= `from`, in id order.
    pub fn scan_vectors(&self, coll: u32, from: u32, mut f: impl FnMut(u32, &[u8])) -> Result<()> {
        for item in self.prefix_iter(CF_VECTORS, key(coll, from).to_vec(), next_prefix(coll)) {
            let (k, v) = item.map_err(rocks("scan vectors"))?;
            f(iid_of(&k)?, &v);
        }
        Ok(())
    }

    /// Stored vectors of the given internal ids.
    pub fn vectors(&self, coll: u32, iids: &[u32]) -> Result<Vec<Option<Vec<u8>>>> {
        let cf = self.cf(CF_VECTORS);
        self.db
            .multi_get_cf(iids.iter().map(|i| (cf, key(coll, *i))))
            .into_iter()
            .map(|r| r.map_err(rocks("read vectors")))
            .collect()
    }

    /// Tombstoned internal ids in `lo..hi`.
    pub fn dead_in_range(&self, coll: u32, lo: u32, hi: u32) -> Result<Vec<u32>> {
        let mut out = Vec::new();
        let upper = if hi == u32::MAX { next_prefix(coll) } else { key(coll, hi).to_vec() };
        for item in self.prefix_iter(CF_DEAD, key(coll, lo).to_vec(), upper) {
            let (k, _) = item.map_err(rocks("scan tombstones"))?;
            out.push(iid_of(&k)?);
        }
        Ok(out)
    }

    /// The collection's sealed segments, by number.
    pub fn segments(&self, coll: u32) -> Result<Vec<SegmentRecord>> {
        let mut out = Vec::new();
        let from = coll.to_be_bytes().to_vec();
        for item in self.prefix_iter(CF_SEGMENTS, from, next_prefix(coll)) {
            let (_, v) = item.map_err(rocks("scan segments"))?;
            out.push(serde_json::from_slice(&v).map_err(|e| Error::Corrupt {
                what: "segment record".into(),
                detail: e.to_string(),
            })?);
        }
        Ok(out)
    }

    /// Starts an atomic write to one collection.
    pub fn batch(&self, coll: u32) -> Batch<'_> {
        Batch { storage: self, coll, inner: WriteBatch::default() }
    }

    fn commit(&self, b: WriteBatch) -> Result<()> {
        let mut wo = WriteOptions::default();
        // Acknowledged writes must survive kill -9 and power loss: sync the WAL before replying.
        wo.set_sync(true);
        self.db.write_opt(b, &wo).map_err(rocks("write"))
    }

    /// Flushes memtables and syncs the WAL (graceful shutdown), so the next open replays little.
    pub fn flush(&self) -> Result<()> {
        self.db.flush_wal(true).map_err(rocks("flush wal"))?;
        let cfs: Vec<&ColumnFamily> = ALL_CFS.iter().map(|n| self.cf(n)).collect();
        self.db.flush_cfs_opt(&cfs, &rocksdb::FlushOptions::default()).map_err(rocks("flush"))
    }
}

fn next_prefix(coll: u32) -> Vec<u8> {
    // Keys of collection u32::MAX would have no upper prefix; create_collection never hands it out.
    (coll.saturating_add(1)).to_be_bytes().to_vec()
}

fn decode_iid(v: &[u8]) -> Result<u32> {
    Ok(u32::from_be_bytes(v.try_into().map_err(|_| Error::Corrupt {
        what: "id map entry".into(),
        detail: format!("{} bytes", v.len()),
    })?))
}

fn encode_counters(c: Counters) -> [u8; 12] {
    let mut b = [0u8; 12];
    b[..4].copy_from_slice(&c.next_iid.to_le_bytes());
    b[4..].copy_from_slice(&c.seq.to_le_bytes());
    b
}

fn decode_counters(v: &[u8]) -> Result<Counters> {
    if v.len() != 12 {
        return Err(Error::Corrupt {
            what: "counters".into(),
            detail: format!("{} bytes", v.len()),
        });
    }
    Ok(Counters {
        next_iid: u32::from_le_bytes(v[..4].try_into().unwrap()),
        seq: u64::from_le_bytes(v[4..].try_into().unwrap()),
    })
}

/// One atomic, synced write to a collection.
pub struct Batch<'a> {
    storage: &'a Storage,
    coll: u32,
    inner: WriteBatch,
}

impl std::fmt::Debug for Batch<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch").field("coll", &self.coll).field("len", &self.inner.len()).finish()
    }
}

impl Batch<'_> {
    /// Stores a document version under `iid` and points its client id at it.
    pub fn put_document(&mut self, iid: u32, meta: &DocMeta, text: &str, vector: &[u8]) {
        let s = self.storage;
        let k = key(self.coll, iid);
        self.inner.put_cf(s.cf(CF_IDS), ext_key(self.coll, &meta.id), iid.to_be_bytes());
        self.inner.put_cf(s.cf(CF_DOCS), k, encode_doc(meta));
        if !text.is_empty() {
            self.inner.put_cf(s.cf(CF_TEXTS), k, text.as_bytes());
        }
        self.inner.put_cf(s.cf(CF_VECTORS), k, vector);
    }

    /// Tombstones `iid`: drops its document, text and vector and records it as dead. With
    /// `client_id`, the client id is unmapped too (a delete; an upsert re-points it instead).
    pub fn tombstone(&mut self, iid: u32, client_id: Option<&str>) {
        let s = self.storage;
        let k = key(self.coll, iid);
        if let Some(id) = client_id {
            self.inner.delete_cf(s.cf(CF_IDS), ext_key(self.coll, id));
        }
        self.inner.delete_cf(s.cf(CF_DOCS), k);
        self.inner.delete_cf(s.cf(CF_TEXTS), k);
        self.inner.delete_cf(s.cf(CF_VECTORS), k);
        self.inner.put_cf(s.cf(CF_DEAD), k, b"");
    }

    /// Forgets the tombstone of an id that no segment holds any more (after compaction).
    pub fn forget_tombstone(&mut self, iid: u32) {
        self.inner.delete_cf(self.storage.cf(CF_DEAD), key(self.coll, iid));
    }

    /// Records the counters.
    pub fn set_counters(&mut self, c: Counters) {
        self.inner.put_cf(self.storage.cf(CF_META), counters_key(self.coll), encode_counters(c));
    }

    /// Records a sealed segment (or replaces the record with the same number).
    pub fn put_segment(&mut self, rec: &SegmentRecord) {
        let mut k = self.coll.to_be_bytes().to_vec();
        k.extend_from_slice(&rec.no.to_be_bytes());
        self.inner.put_cf(self.storage.cf(CF_SEGMENTS), k, serde_json::to_vec(rec).unwrap());
    }

    /// Replaces the payload index snapshot.
    pub fn put_payload_snapshot(&mut self, bytes: &[u8]) {
        self.inner.put_cf(self.storage.cf(CF_META), payload_snapshot_key(self.coll), bytes);
    }

    /// Removes a segment record.
    pub fn delete_segment(&mut self, no: u64) {
        let mut k = self.coll.to_be_bytes().to_vec();
        k.extend_from_slice(&no.to_be_bytes());
        self.inner.delete_cf(self.storage.cf(CF_SEGMENTS), k);
    }

    /// Applies the batch atomically with a synced WAL.
    pub fn commit(self) -> Result<()> {
        self.storage.commit(self.inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::model::{DEFAULT_EF, HnswConfig};

    fn config() -> CollectionConfig {
        CollectionConfig {
            dim: 4,
            stored_dim: 4,
            dtype: hirevec_index::Dtype::F16,
            hnsw: HnswConfig { m: 16, ef_construction: 100, ef: DEFAULT_EF },
            seal_threshold: 1000,
            seed: 7,
            model: None,
            query_instruction: None,
        }
    }

    #[test]
    fn documents_round_trip_and_tombstones_are_listed_by_range() {
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::open(dir.path()).unwrap();
        let a = s.create_collection("a", config()).unwrap();
        let b = s.create_collection("b", config()).unwrap();
        assert_ne!(a.id, b.id);
        let mut payload = Payload::new();
        payload.insert("skills".into(), Value::StrList(vec!["rust".into(), "sql".into()]));
        payload.insert("years".into(), Value::Int(-3));
        payload.insert("score".into(), Value::Float(0.5));
        payload.insert("remote".into(), Value::Bool(true));
        let meta = DocMeta { id: "x".into(), kind: Kind::Resume, payload, seq: 9 };
        let mut w = s.batch(a.id);
        w.put_document(5, &meta, "hello", &[1, 2, 3, 4, 5, 6, 7, 8]);
        w.put_document(6, &DocMeta { id: "y".into(), ..meta.clone() }, "", &[0; 8]);
        w.set_counters(Counters { next_iid: 7, seq: 9 });
        w.commit().unwrap();
        assert_eq!(s.counters(a.id).unwrap(), Counters { next_iid: 7, seq: 9 });
        assert_eq!(s.lookup_ids(a.id, &["x", "z"]).unwrap(), vec![Some(5), None]);
        assert_eq!(s.lookup_ids(b.id, &["x"]).unwrap(), vec![None]);
        let with = With { payload: true, text: true, vector: true };
        let docs = s
            .documents_by_client_id(a.id, &["x", "z"], with, &|b| Some(vec![b.len() as f32]))
            .unwrap();
        let d = docs[0].as_ref().unwrap();
        assert_eq!(d.meta, meta);
        assert_eq!(d.text.as_deref(), Some("hello"));
        assert_eq!(d.vector, Some(vec![8.0]));
        assert!(docs[1].is_none());

        let mut w = s.batch(a.id);
        w.tombstone(5, Some("x"));
        w.commit().unwrap();
        assert_eq!(s.lookup_ids(a.id, &["x"]).unwrap(), vec![None]);
        assert_eq!(s.dead_in_range(a.id, 0, 6).unwrap(), vec![5]);
        assert_eq!(s.dead_in_range(a.id, 6, u32::MAX).unwrap(), Vec::<u32>::new());
        let mut seen = vec![];
        s.scan_docs_from(a.id, 0, |iid, m| seen.push((iid, m.id))).unwrap();
        assert_eq!(seen, vec![(6, "y".to_string())]);

        s.drop_collection(&a).unwrap();
        assert_eq!(s.lookup_ids(a.id, &["y"]).unwrap(), vec![None]);
        assert_eq!(s.collections().unwrap().len(), 1);
    }
}
