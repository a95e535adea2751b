//! The engine: the registry of collections over one RocksDB store, and the background worker that
//! seals and compacts segments. Everything here is synchronous; the gRPC edge calls it from
//! blocking threads.
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;

use parking_lot::{Mutex, RwLock};

use super::collection::{Collection, GrowingEntry, Tuning};
use super::model::CollectionConfig;
use crate::error::{Error, Result};
use crate::storage::Storage;

/// What the engine needs from the server config.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Data directory (RocksDB in `rocksdb/`, segment files in `collections/<name>/segments/`).
    pub data_dir: PathBuf,
    /// Most documents per upsert message and searches per batch.
    pub max_batch: usize,
    /// Tombstone fraction that triggers a compaction.
    pub compaction_threshold: f64,
    /// Filters allowing at most this many ids are scanned exactly instead of walked.
    pub exact_scan_threshold: usize,
}

impl EngineOptions {
    fn tuning(&self) -> Tuning {
        Tuning {
            compaction_threshold: self.compaction_threshold,
            exact_scan_threshold: self.exact_scan_threshold,
        }
    }
}

/// Work for the background worker.
#[derive(Debug)]
pub enum Job {
    /// Write a frozen growing segment to a sealed file.
    Seal {
        /// Owner.
        collection: Arc<Collection>,
        /// The frozen segment (opaque outside `collection`).
        entry: Arc<GrowingEntry>,
    },
    /// Rewrite a sealed segment without its tombstones.
    Compact {
        /// Owner.
        collection: Arc<Collection>,
        /// Segment number.
        no: u64,
    },
    /// Check the sealed files' checksums; rebuild a damaged one from RocksDB.
    Verify {
        /// Owner.
        collection: Arc<Collection>,
    },
}

impl Job {
    fn collection(&self) -> &Arc<Collection> {
        match self {
            Job::Seal { collection, .. }
            | Job::Compact { collection, .. }
            | Job::Verify { collection } => collection,
        }
    }
}

/// Handle to the single background worker. One worker, FIFO, is what keeps sealed id ranges a
/// contiguous prefix (see `collection`), and keeps file writes from competing with requests for
/// more than one core.
#[derive(Debug, Clone)]
pub struct Background {
    tx: Arc<Mutex<Option<mpsc::Sender<Job>>>>,
}

impl Background {
    fn start(stopping: Arc<AtomicBool>) -> (Self, std::thread::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel::<Job>();
        let handle = std::thread::Builder::new()
            .name("hirevec-background".into())
            .spawn(move || {
                while let Ok(job) = rx.recv() {
                    if stopping.load(Ordering::Acquire) {
                        // Left-over work is redone at shutdown (seal_all) or after restart (replay).
                        continue;
                    }
                    let coll = job.collection().clone();
                    if let Err(e) = coll.run_job(&job) {
                        tracing::error!(collection = coll.name(), error = %e, ?job, "background job failed");
                    }
                }
            })
            .expect("spawn background thread");
        (Self { tx: Arc::new(Mutex::new(Some(tx))) }, handle)
    }

    /// Queues a job; dropped silently after shutdown began.
    pub fn submit(&self, job: Job) {
        if let Some(tx) = self.tx.lock().as_ref() {
            let _ = tx.send(job);
        }
    }

    fn close(&self) {
        self.tx.lock().take();
    }
}

/// All collections over one store.
#[derive(Debug)]
pub struct Engine {
    storage: Arc<Storage>,
    options: EngineOptions,
    collections: RwLock<HashMap<String, Arc<Collection>>>,
    /// Serialises create and drop, which touch the registry and the store together.
    admin: Mutex<()>,
    background: Background,
    worker: Mutex<Option<std::thread::JoinHandle<()>>>,
    stopping: Arc<AtomicBool>,
}

fn segments_dir(data_dir: &Path, name: &str) -> PathBuf {
    data_dir.join("collections").join(name).join("segments")
}

impl Engine {
    /// Opens the data directory and every collection in it.
    pub fn open(options: EngineOptions) -> Result<Self> {
        let db_dir = options.data_dir.join("rocksdb");
        std::fs::create_dir_all(&db_dir).map_err(|source| Error::Io {
            op: "create",
            path: db_dir.clone(),
            source,
        })?;
        let storage = Arc::new(Storage::open(&db_dir)?);
        let stopping = Arc::new(AtomicBool::new(false));
        let (background, worker) = Background::start(stopping.clone());
        let mut collections = HashMap::new();
        for rec in storage.collections()? {
            let dir = segments_dir(&options.data_dir, &rec.name);
            let name = rec.name.clone();
            let c =
                Collection::open(storage.clone(), rec, dir, background.clone(), options.tuning())?;
            collections.insert(name, c);
        }
        Ok(Self {
            storage,
            options,
            collections: RwLock::new(collections),
            admin: Mutex::new(()),
            background,
            worker: Mutex::new(Some(worker)),
            stopping,
        })
    }

    /// Queues a checksum pass over every collection's sealed files on the background worker.
    pub fn verify_all(&self) {
        for c in self.list() {
            self.background.submit(Job::Verify { collection: c });
        }
    }

    /// Runs [`verify_all`](Self::verify_all) every `interval` on a thread of its own until the
    /// engine stops. The first pass comes one interval after start, so a restart is not slowed
    /// by reading every file.
    pub fn start_verifier(self: &Arc<Self>, interval: std::time::Duration) {
        let engine = Arc::downgrade(self);
        let stopping = self.stopping.clone();
        let spawned = std::thread::Builder::new().name("hirevec-verify".into()).spawn(move || {
            let tick = std::time::Duration::from_millis(200).min(interval);
            let mut waited = std::time::Duration::ZERO;
            loop {
                std::thread::sleep(tick);
                if stopping.load(Ordering::Acquire) {
                    return;
                }
                waited += tick;
                if waited >= interval {
                    waited = std::time::Duration::ZERO;
                    match engine.upgrade() {
                        Some(e) => e.verify_all(),
                        None => return,
                    }
                }
            }
        });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the segment verifier");
        }
    }

    /// Options.
    pub fn options(&self) -> &EngineOptions {
        &self.options
    }

    /// Creates a collection.
    pub fn create(&self, name: &str, config: CollectionConfig) -> Result<Arc<Collection>> {
        config.validate()?;
        let _admin = self.admin.lock();
        if self.collections.read().contains_key(name) {
            return Err(Error::CollectionExists { name: name.to_owned() });
        }
        let rec = self.storage.create_collection(name, config.clone())?;
        let c = Collection::open(
            self.storage.clone(),
            rec,
            segments_dir(&self.options.data_dir, name),
            self.background.clone(),
            self.options.tuning(),
        )?;
        self.collections.write().insert(name.to_owned(), c.clone());
        tracing::info!(collection = name, ?config, "collection created");
        Ok(c)
    }

    /// A collection by name.
    pub fn get(&self, name: &str) -> Result<Arc<Collection>> {
        self.collections
            .read()
            .get(name)
            .cloned()
            .ok_or_else(|| Error::CollectionNotFound { name: name.to_owned() })
    }

    /// All collections, by name.
    pub fn list(&self) -> Vec<Arc<Collection>> {
        let mut v: Vec<_> = self.collections.read().values().cloned().collect();
        v.sort_by(|a, b| a.name().cmp(b.name()));
        v
    }

    /// Drops a collection with its records and files.
    pub fn drop_collection(&self, name: &str) -> Result<()> {
        let _admin = self.admin.lock();
        let c = self.get(name)?;
        c.drop_all()?;
        self.collections.write().remove(name);
        tracing::info!(collection = name, "collection dropped");
        Ok(())
    }

    fn stop_background(&self) {
        self.stopping.store(true, Ordering::Release);
        self.background.close();
        if let Some(w) = self.worker.lock().take() {
            // The worker finishes the job it is on and skips the rest.
            let _ = w.join();
        }
    }

    /// Stops background work, seals every growing segment and flushes RocksDB. Requests must
    /// have stopped; the engine refuses nothing afterwards but should be dropped.
    pub fn shutdown(&self) -> Result<()> {
        self.stop_background();
        for c in self.list() {
            if let Err(e) = c.seal_all() {
                // Not fatal: the unsealed ranges are replayed from RocksDB at the next start.
                tracing::error!(collection = c.name(), error = %e, "sealing at shutdown failed");
            }
        }
        self.storage.flush()
    }
}

impl Drop for Engine {
    /// Without `shutdown` (a crash-like stop, as tools use to test replay), still stop the worker
    /// so it releases the collections and RocksDB closes when the last handle goes.
    fn drop(&mut self) {
        self.stop_background();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::collection::SearchQuery;
    use crate::server::model::{HnswConfig, Kind, NewDocument, Payload, Value, With};
    use rand::{Rng, SeedableRng};

    fn options(dir: &Path) -> EngineOptions {
        EngineOptions {
            data_dir: dir.to_owned(),
            max_batch: 1000,
            compaction_threshold: 0.3,
            exact_scan_threshold: hirevec_index::DEFAULT_EXACT_SCAN_THRESHOLD,
        }
    }

    fn config() -> CollectionConfig {
        CollectionConfig {
            dim: 8,
            stored_dim: 6,
            dtype: hirevec_index::Dtype::F16,
            hnsw: HnswConfig { m: 8, ef_construction: 64, ef: 64 },
            seal_threshold: 1000,
            seed: 1,
            model: None,
            query_instruction: None,
        }
    }

    fn top1(c: &Collection, v: &[f32]) -> String {
        let q = SearchQuery {
            vector: v.to_vec(),
            top_k: 1,
            ef: Some(128),
            filter: None,
            min_score: None,
            with: With::default(),
        };
        c.search(&q, "").unwrap()[0].doc.meta.id.clone()
    }

    /// Crash-like reopen (no shutdown: frozen segments may be unsealed and are replayed), then a
    /// clean shutdown (everything sealed) and another reopen: same documents, same answers.
    #[test]
    fn reopen_after_drop_and_after_shutdown() {
        let seed = 5;
        println!("seed {seed}");
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let dir = tempfile::tempdir().unwrap();
        let mut vectors = Vec::new();
        {
            let e = Engine::open(options(dir.path())).unwrap();
            let c = e.create("c", config()).unwrap();
            for b in 0..5 {
                let docs: Vec<NewDocument> = (0..500)
                    .map(|i| {
                        let v: Vec<f32> = (0..8).map(|_| rng.random_range(-1.0f32..1.0)).collect();
                        vectors.push(v.clone());
                        let mut payload = Payload::new();
                        payload.insert("n".into(), Value::Int(b * 500 + i));
                        NewDocument {
                            id: format!("d{}", b * 500 + i),
                            kind: Kind::Resume,
                            text: String::new(),
                            payload,
                            vector: v,
                        }
                    })
                    .collect();
                c.upsert(docs).unwrap();
            }
            assert_eq!(c.delete_ids(&["d3".to_string(), "d1700".to_string()]).unwrap().0, 2);
            assert!(e.create("c", config()).is_err());
        }
        let check = |e: &Engine| {
            let c = e.get("c").unwrap();
            assert_eq!(c.count(None).unwrap(), 2498);
            for i in [0usize, 999, 1000, 2499] {
                assert_eq!(top1(&c, &vectors[i]), format!("d{i}"));
            }
            let got = c
                .get(&["d3".into(), "d4".into()], With { payload: true, ..Default::default() })
                .unwrap();
            assert!(got[0].is_none());
            assert_eq!(got[1].as_ref().unwrap().meta.payload["n"], Value::Int(4));
            c.stats()
        };
        {
            let e = Engine::open(options(dir.path())).unwrap();
            check(&e);
            e.shutdown().unwrap();
        }
        let e = Engine::open(options(dir.path())).unwrap();
        let stats = check(&e);
        assert_eq!(stats.growing_vectors, 0, "a clean shutdown seals everything");
        // Replay skips tombstoned ids, so whether d3/d1700 are in a file depends on when the
        // first seals ran; live vectors do not.
        assert_eq!(stats.sealed_vectors - stats.tombstones, 2498);
        e.drop_collection("c").unwrap();
        assert!(e.get("c").is_err());
        assert!(!dir.path().join("collections/c").exists());
    }
}
