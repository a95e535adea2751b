//! `hirevec crasher`: crash testing in the spirit of Qdrant's crasher. It runs the real server as
//! a child process, loads it from several concurrent writers, `kill -9`s it at a seeded random
//! moment, restarts it on the same data directory and checks over gRPC that every acknowledged
//! write survived and nothing else appeared; then the next cycle goes on from that state.
//!
//! It talks to the server only through the public gRPC API, like any client, so what it checks
//! is what a client can rely on. Bookkeeping follows `tests/durability.rs`: every id belongs to
//! one writer, which waits for each reply, so an id has one acknowledged state and at most the
//! operations of one failed request in doubt. A request cut off by the kill may or may not have
//! landed; the checker accepts either, then records what the server actually holds.
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use super::client::{ChildServer, Clients};
use crate::proto;

/// The collection the crasher creates and loads.
const COLLECTION: &str = "crasher";
/// Bound on the writers noticing the kill, for the same reason.
const WRITERS_LIMIT: Duration = Duration::from_secs(60);
/// The child's log filter unless HIREVEC_LOG says otherwise: warnings and errors of the engine,
/// without the start-up warning about a missing --api-key that every restart would repeat.
const CHILD_LOG: &str = "warn,hirevec::server=error,hirevec::server::collection=warn,\
                         hirevec::server::engine=warn";
/// Largest id list per Get and searches per SearchBatch (the server's default --max-batch is 1000).
const CHUNK: usize = 500;

/// Arguments of `hirevec crasher`.
#[derive(Debug, Clone, Args)]
pub struct CrasherArgs {
    /// Kill-restart-check cycles.
    #[arg(long, default_value_t = 10)]
    pub cycles: usize,
    /// Seed of every random choice (operations, vectors, kill moments, queries).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Concurrent writers; each owns its own ids.
    #[arg(long, default_value_t = 4)]
    pub writers: usize,
    /// Ids each writer draws from (small enough that overwrites and deletes of live ids are
    /// common).
    #[arg(long, default_value_t = 2000)]
    pub ids_per_writer: usize,
    /// Vector dimension of the collection.
    #[arg(long, default_value_t = 16)]
    pub dim: u32,
    /// Earliest kill, in milliseconds after the writers start.
    #[arg(long, default_value_t = 500)]
    pub min_run_ms: u64,
    /// Latest kill, in milliseconds after the writers start.
    #[arg(long, default_value_t = 3000)]
    pub max_run_ms: u64,
    /// Data directory of the server; it must not hold a `crasher` collection already [default: a
    /// temporary directory, removed after a clean run and kept after a violation].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// The `hirevec` binary to run as the server [default: this executable].
    #[arg(long)]
    pub bin: Option<PathBuf>,
    /// Also write the JSON report here.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// One kill-restart-check cycle, as reported.
#[derive(Debug, Serialize)]
struct CycleReport {
    cycle: usize,
    /// When the kill landed, after the writers started.
    kill_after_ms: u64,
    /// Operations (one per document upserted or id deleted) acknowledged in this cycle.
    acked_ops: u64,
    /// Operations whose request the kill cut off.
    in_doubt_ops: u64,
    /// Of those, how many the server turned out to hold.
    in_doubt_landed: u64,
    /// From spawning the server to its `listening on` line (opening the data included).
    restart_ms: u64,
    /// Time the checks took.
    check_ms: u64,
    /// Live documents after the restart.
    docs: usize,
    /// Sealed segment files and tombstones after the restart (seals and compactions at work).
    sealed_segments: u32,
    tombstones: u64,
}

/// The JSON report of a run.
#[derive(Debug, Serialize)]
struct Report {
    seed: u64,
    cycles: usize,
    writers: usize,
    ids_per_writer: usize,
    dim: u32,
    total_acked_ops: u64,
    total_acked_requests: u64,
    total_in_doubt_ops: u64,
    total_in_doubt_landed: u64,
    docs_at_end: usize,
    duration_s: f64,
    violations: usize,
    per_cycle: Vec<CycleReport>,
}

/// What the crasher knows about one id: the state the server must hold (`None`: absent, a
/// version otherwise) and the operations sent after it without an acknowledgement, each of which
/// may have landed. Versions only grow, so a version names one write for the whole run.
#[derive(Debug, Default, Clone)]
struct History {
    state: Option<u64>,
    pending: Vec<Option<u64>>,
    next_version: u64,
    /// The vector the server must return for a version: the client's, normalised and rounded to
    /// the stored precision exactly as the server does it.
    vectors: HashMap<u64, Vec<f32>>,
}

impl History {
    fn allowed(&self) -> Vec<Option<u64>> {
        let mut a = vec![self.state];
        a.extend(&self.pending);
        a
    }
}

/// What a writer did in one cycle.
#[derive(Debug, Default)]
struct WriterOutcome {
    acked_ops: u64,
    acked_requests: u64,
    in_doubt_ops: u64,
    /// A request that failed while the server was meant to be up.
    violation: Option<String>,
}

fn id_of(w: usize, n: usize) -> String {
    format!("w{w}-{n}")
}

/// `w{w}-{n}` back to `(w, n)`.
fn parse_id(id: &str) -> Option<(usize, usize)> {
    let (w, n) = id.strip_prefix('w')?.split_once('-')?;
    Some((w.parse().ok()?, n.parse().ok()?))
}

fn int(v: i64) -> proto::Value {
    proto::Value { kind: Some(proto::value::Kind::IntValue(v)) }
}

fn string(v: &str) -> proto::Value {
    proto::Value { kind: Some(proto::value::Kind::StringValue(v.into())) }
}

fn eq(key: &str, v: proto::Value) -> proto::Filter {
    proto::Filter {
        condition: Some(proto::filter::Condition::Field(proto::FieldCondition {
            key: key.into(),
            condition: Some(proto::field_condition::Condition::Eq(v)),
        })),
    }
}

fn int_field(payload: &HashMap<String, proto::Value>, key: &str) -> Option<i64> {
    match payload.get(key)?.kind {
        Some(proto::value::Kind::IntValue(v)) => Some(v),
        _ => None,
    }
}

/// The server as a child process: the tools' [`ChildServer`] over the crasher's data directory,
/// with no model and quiet logs.
fn start_server(bin: &Path, data_dir: &Path) -> Result<ChildServer> {
    let log = std::env::var("HIREVEC_LOG").unwrap_or_else(|_| CHILD_LOG.into());
    ChildServer::start_in(
        bin,
        data_dir,
        &[],
        &[("HIREVEC_MODEL", "none".into()), ("HIREVEC_LOG", log)],
    )
}

async fn clients(server: &ChildServer) -> Result<Clients> {
    super::client::connect(&server.addr, None).await
}

/// Settings the writers and the checker share.
#[derive(Debug, Clone, Copy)]
struct Shape {
    writers: usize,
    ids_per_writer: usize,
    dim: u32,
}

/// The vector the server stores for `raw`: unit length, then f16 (the collection's dtype).
fn stored_vector(raw: &[f32]) -> Vec<f32> {
    let dim = raw.len();
    hirevec_index::prepare_vector(raw, dim, dim)
        .expect("random vectors are finite and non-zero")
        .into_iter()
        .map(|x| half::f16::from_f32(x).to_f32())
        .collect()
}

fn random_vector(rng: &mut StdRng, dim: u32) -> Vec<f32> {
    // Bounded away from zero in the first component, so no vector is ever refused as zero.
    let mut v: Vec<f32> = (0..dim).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    v[0] = if v[0] < 0.0 { v[0] - 0.01 } else { v[0] + 0.01 };
    v
}

/// One writer's loop: random batches over its own ids until a request fails (the kill).
async fn writer(
    w: usize,
    mut c: Clients,
    mut hist: Vec<History>,
    mut rng: StdRng,
    shape: Shape,
    killing: Arc<AtomicBool>,
) -> (Vec<History>, WriterOutcome) {
    let mut out = WriterOutcome::default();
    loop {
        let op = rng.random_range(0..10);
        let size = if op < 8 { rng.random_range(1..=100) } else { rng.random_range(1..=10) };
        let size = size.min(shape.ids_per_writer);
        let mut picked = Vec::with_capacity(size);
        let mut seen = HashSet::new();
        while picked.len() < size {
            let n = rng.random_range(0..shape.ids_per_writer);
            if seen.insert(n) {
                picked.push(n);
            }
        }
        let result = if op < 8 {
            let mut docs = Vec::with_capacity(size);
            for &n in &picked {
                let h = &mut hist[n];
                h.next_version += 1;
                let version = h.next_version;
                let raw = random_vector(&mut rng, shape.dim);
                h.vectors.insert(version, stored_vector(&raw));
                h.pending.push(Some(version));
                let id = id_of(w, n);
                docs.push(proto::Document {
                    id: id.clone(),
                    kind: proto::DocumentKind::Resume as i32,
                    text: String::new(),
                    payload: [
                        ("version".to_string(), int(version as i64)),
                        ("writer".to_string(), int(w as i64)),
                        ("uid".to_string(), string(&id)),
                    ]
                    .into_iter()
                    .collect(),
                    vector: raw,
                    sequence: 0,
                });
            }
            let req = proto::UpsertRequest { collection: COLLECTION.into(), documents: docs };
            if op < 4 {
                c.documents.upsert(req).await.map(|_| ())
            } else {
                // One batch per stream, so the reply acknowledges exactly this batch.
                c.documents.upsert_stream(tokio_stream::iter(vec![req])).await.map(|_| ())
            }
        } else {
            for &n in &picked {
                hist[n].pending.push(None);
            }
            let ids = picked.iter().map(|&n| id_of(w, n)).collect();
            c.documents
                .delete(proto::DeleteDocumentsRequest {
                    collection: COLLECTION.into(),
                    selector: Some(proto::delete_documents_request::Selector::Ids(proto::IdList {
                        ids,
                    })),
                })
                .await
                .map(|_| ())
        };
        match result {
            Ok(()) => {
                for &n in &picked {
                    let h = &mut hist[n];
                    h.state = h.pending.pop().expect("this request's operation is pending");
                    h.pending.clear();
                }
                out.acked_ops += size as u64;
                out.acked_requests += 1;
            }
            Err(status) => {
                out.in_doubt_ops += size as u64;
                if !killing.load(Ordering::Acquire) {
                    out.violation = Some(format!(
                        "writer {w}: request failed while the server was up: {status}"
                    ));
                }
                return (hist, out);
            }
        }
    }
}

/// What one check found.
#[derive(Debug, Default)]
struct Checked {
    docs: usize,
    sealed_segments: u32,
    tombstones: u64,
    in_doubt_landed: u64,
    violations: Vec<String>,
}

/// A live document as Scroll returned it.
struct Live {
    version: u64,
    writer: i64,
    vector: Vec<f32>,
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Verifies the restarted server against the histories, then resolves every in-doubt id to what
/// the server holds, so the next cycle starts from known state.
async fn check(
    c: &mut Clients,
    hist: &mut [Vec<History>],
    shape: Shape,
    rng: &mut StdRng,
) -> Result<Checked> {
    let mut out = Checked::default();
    let v = &mut out.violations;

    // Everything Scroll returns, with payload and vector.
    let mut live: HashMap<String, Live> = HashMap::new();
    let mut cursor = String::new();
    loop {
        let page = c
            .documents
            .scroll(proto::ScrollRequest {
                collection: COLLECTION.into(),
                filter: None,
                limit: 1000,
                cursor: cursor.clone(),
                include: Some(proto::Include { payload: true, text: false, vector: true }),
            })
            .await
            .context("scroll")?
            .into_inner();
        for d in page.documents {
            let (Some(version), Some(writer)) =
                (int_field(&d.payload, "version"), int_field(&d.payload, "writer"))
            else {
                v.push(format!("{}: payload without version or writer: {:?}", d.id, d.payload));
                continue;
            };
            let doc = Live { version: version as u64, writer, vector: d.vector };
            if live.insert(d.id.clone(), doc).is_some() {
                v.push(format!("{}: returned twice by Scroll", d.id));
            }
        }
        if page.next_cursor.is_empty() {
            break;
        }
        cursor = page.next_cursor;
    }
    out.docs = live.len();

    // Count, per-writer Count and the collection's document count agree with Scroll.
    let count = |filter| proto::CountRequest { collection: COLLECTION.into(), filter };
    let total = c.documents.count(count(None)).await.context("count")?.into_inner().count;
    if total as usize != live.len() {
        v.push(format!("Count says {total}, Scroll returned {} documents", live.len()));
    }
    for w in 0..shape.writers {
        let n = c
            .documents
            .count(count(Some(eq("writer", int(w as i64)))))
            .await
            .context("count")?
            .into_inner()
            .count;
        let scrolled = live.values().filter(|d| d.writer == w as i64).count();
        if n as usize != scrolled {
            v.push(format!("Count(writer = {w}) says {n}, Scroll returned {scrolled}"));
        }
    }
    let info = c
        .collections
        .get(proto::GetCollectionRequest { name: COLLECTION.into() })
        .await
        .context("get collection")?
        .into_inner();
    (out.sealed_segments, out.tombstones) = (info.sealed_segments, info.tombstones);
    if info.documents as usize != live.len() {
        v.push(format!(
            "Collections.Get says {} documents, Scroll returned {}",
            info.documents,
            live.len()
        ));
    }

    // Every id: what the server holds is allowed by its history, with that version's vector.
    for d in live.keys() {
        if !parse_id(d).is_some_and(|(w, n)| w < shape.writers && n < shape.ids_per_writer) {
            v.push(format!("phantom document {d:?}: no writer sent it"));
        }
    }
    for (w, hs) in hist.iter_mut().enumerate() {
        // A writer stops at its first failed request, so the ids with pending operations are
        // exactly the ones of its one request in doubt, which must have landed whole or not at
        // all. Only ids whose pending operation differs from their state say which.
        let (mut decidable, mut landed) = (0, 0);
        for (n, h) in hs.iter_mut().enumerate() {
            let id = id_of(w, n);
            let doc = live.get(&id);
            let got = doc.map(|d| d.version);
            let allowed = h.allowed();
            if let Some(&op) = h.pending.first()
                && op != h.state
            {
                decidable += 1;
                landed += usize::from(got == op);
            }
            if !allowed.contains(&got) {
                if got.is_some_and(|g| g > h.next_version) {
                    v.push(format!("phantom version: {id} holds version {got:?}, never sent"));
                } else {
                    v.push(format!(
                        "{id}: found version {got:?}, allowed {allowed:?} (None = absent)"
                    ));
                }
                continue;
            }
            if let (Some(d), Some(version)) = (doc, got)
                && h.vectors[&version] != d.vector
            {
                v.push(format!(
                    "{id} version {version}: stored vector {:?} differs from the one sent {:?}",
                    d.vector, h.vectors[&version]
                ));
            }
            if got != h.state {
                out.in_doubt_landed += 1;
            }
            h.state = got;
            h.pending.clear();
            h.vectors.retain(|k, _| Some(*k) == got);
        }
        if landed > 0 && landed < decidable {
            v.push(format!(
                "writer {w}: request cut off by the kill landed for {landed} of its {decidable} \
                 ids (a batch must land whole or not at all)"
            ));
        }
    }

    // Get by id agrees with Scroll (Get reads the id map, Scroll the payload index).
    let ids: Vec<String> = (0..shape.writers)
        .flat_map(|w| (0..shape.ids_per_writer).map(move |n| id_of(w, n)))
        .collect();
    for chunk in ids.chunks(CHUNK) {
        let r = c
            .documents
            .get(proto::GetDocumentsRequest {
                collection: COLLECTION.into(),
                ids: chunk.to_vec(),
                include: Some(proto::Include { payload: true, text: false, vector: false }),
            })
            .await
            .context("get documents")?
            .into_inner();
        for d in &r.documents {
            let got = int_field(&d.payload, "version").map(|x| x as u64);
            let scrolled = live.get(&d.id).map(|l| l.version);
            if got.is_none() || got != scrolled {
                v.push(format!("{}: Get returns version {got:?}, Scroll {scrolled:?}", d.id));
            }
        }
        for id in &r.missing {
            if live.contains_key(id) {
                v.push(format!("{id}: Get says missing, Scroll returned it"));
            }
        }
    }

    // Every live document is in the vector index with its vector: a search restricted to its
    // uid (an exact scan of one id) finds it with cosine 1.
    let mut docs: Vec<(&String, &Live)> = live.iter().collect();
    docs.sort_by(|a, b| a.0.cmp(b.0));
    for chunk in docs.chunks(CHUNK) {
        let searches = chunk
            .iter()
            .map(|(id, d)| proto::SearchRequest {
                collection: COLLECTION.into(),
                vector: d.vector.clone(),
                top_k: 1,
                filter: Some(eq("uid", string(id))),
                ..Default::default()
            })
            .collect();
        let results = c
            .search
            .search_batch(proto::SearchBatchRequest { searches })
            .await
            .context("search batch")?
            .into_inner()
            .results;
        for ((id, _), r) in chunk.iter().zip(results) {
            match r.hits.first() {
                Some(h) if h.id == **id && h.score > 0.999 && r.hits.len() == 1 => {}
                _ => v.push(format!("{id} is not in the vector index as stored: {:?}", r.hits)),
            }
        }
    }

    // Random searches, with and without a filter, return only live documents with their stored
    // payload and the right score.
    for q in 0..8 {
        let raw = random_vector(rng, shape.dim);
        let query = hirevec_index::prepare_vector(&raw, raw.len(), raw.len()).expect("non-zero");
        let writer = (q % 2 == 1).then(|| rng.random_range(0..shape.writers) as i64);
        let top_k = 20;
        let r = c
            .search
            .search(proto::SearchRequest {
                collection: COLLECTION.into(),
                vector: raw,
                top_k,
                filter: writer.map(|w| eq("writer", int(w))),
                include: Some(proto::Include { payload: true, text: false, vector: false }),
                ..Default::default()
            })
            .await
            .context("search")?
            .into_inner();
        let matching = live.values().filter(|d| writer.is_none_or(|w| d.writer == w)).count();
        if r.hits.len() != matching.min(top_k as usize) {
            v.push(format!(
                "search (writer filter {writer:?}) returned {} hits, {matching} documents match",
                r.hits.len()
            ));
        }
        let mut seen = HashSet::new();
        for (i, h) in r.hits.iter().enumerate() {
            let Some(d) = live.get(&h.id) else {
                v.push(format!("search returned {:?}, which Scroll does not list", h.id));
                continue;
            };
            if !seen.insert(&h.id) {
                v.push(format!("search returned {:?} twice", h.id));
            }
            let version = int_field(&h.payload, "version").map(|x| x as u64);
            if version != Some(d.version) {
                v.push(format!("search hit {}: version {version:?}, stored {}", h.id, d.version));
            }
            if writer.is_some_and(|w| d.writer != w) {
                v.push(format!("search hit {} breaks the filter writer = {writer:?}", h.id));
            }
            // f16 query and vector: a few thousandths of slack.
            let expected = dot(&query, &d.vector);
            if (h.score - expected).abs() > 5e-3 {
                v.push(format!("search hit {}: score {} for cosine {expected}", h.id, h.score));
            }
            if i > 0 && r.hits[i - 1].score < h.score {
                v.push(format!("search hits out of order at {i}: {:?}", r.hits));
            }
        }
    }
    Ok(out)
}

/// Creates the collection: vectors only, a small seal threshold so that seals and compactions
/// run while the load goes on and when the kill lands.
async fn create_collection(c: &mut Clients, dim: u32) -> Result<()> {
    let config = proto::CollectionConfig {
        dim,
        dtype: proto::Dtype::F16 as i32,
        seal_threshold: Some(1000),
        // A cheaper build than the default: more writes per cycle, same code paths.
        hnsw: Some(proto::HnswConfig { m: Some(16), ef_construction: Some(64), ef: None }),
        ..Default::default()
    };
    match c
        .collections
        .create(proto::CreateCollectionRequest { name: COLLECTION.into(), config: Some(config) })
        .await
    {
        Ok(_) => Ok(()),
        Err(s) if s.code() == tonic::Code::AlreadyExists => {
            bail!("collection {COLLECTION:?} exists already: give an empty --data-dir")
        }
        Err(s) => Err(anyhow!("create collection: {s}")),
    }
}

/// Runs `hirevec crasher`; an error (exit status 1) for any violation.
pub fn run(args: CrasherArgs) -> Result<()> {
    if args.writers == 0 || args.ids_per_writer == 0 || args.cycles == 0 {
        bail!("--writers, --ids-per-writer and --cycles must be positive");
    }
    if args.min_run_ms > args.max_run_ms {
        bail!("--min-run-ms must not exceed --max-run-ms");
    }
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(run_async(args))
}

async fn run_async(args: CrasherArgs) -> Result<()> {
    let bin = match &args.bin {
        Some(b) => b.clone(),
        None => std::env::current_exe().context("find this executable")?,
    };
    let (data_dir, temporary) = match &args.data_dir {
        Some(d) => (d.clone(), false),
        None => {
            let d = std::env::temp_dir().join(format!(
                "hirevec-crasher-{}-{}",
                std::process::id(),
                args.seed
            ));
            (d, true)
        }
    };
    std::fs::create_dir_all(&data_dir).with_context(|| format!("create {}", data_dir.display()))?;
    println!(
        "crasher: seed {} (pass --seed to replay), {} writers, data in {}",
        args.seed,
        args.writers,
        data_dir.display()
    );
    let shape = Shape { writers: args.writers, ids_per_writer: args.ids_per_writer, dim: args.dim };
    let mut rng = StdRng::seed_from_u64(args.seed);
    let started = Instant::now();

    let mut server = start_server(&bin, &data_dir)?;
    create_collection(&mut clients(&server).await?, args.dim).await?;
    let mut hist: Vec<Vec<History>> =
        (0..args.writers).map(|_| vec![History::default(); args.ids_per_writer]).collect();
    let mut per_cycle = Vec::with_capacity(args.cycles);
    let mut violations = Vec::new();
    let (mut acked_requests, mut docs_at_end) = (0, 0);

    for cycle in 1..=args.cycles {
        let killing = Arc::new(AtomicBool::new(false));
        let c = clients(&server).await?;
        let tasks: Vec<_> = (0..args.writers)
            .map(|w| {
                let wrng = StdRng::seed_from_u64(rng.random());
                let h = std::mem::take(&mut hist[w]);
                tokio::spawn(writer(w, c.clone(), h, wrng, shape, killing.clone()))
            })
            .collect();
        let kill_after = rng.random_range(args.min_run_ms..=args.max_run_ms);
        tokio::time::sleep(Duration::from_millis(kill_after)).await;
        killing.store(true, Ordering::Release);
        server.kill9()?;

        let (mut acked_ops, mut in_doubt_ops) = (0, 0);
        for (w, t) in tasks.into_iter().enumerate() {
            let (h, o) = tokio::time::timeout(WRITERS_LIMIT, t)
                .await
                .context("a writer did not notice the kill")??;
            hist[w] = h;
            acked_ops += o.acked_ops;
            in_doubt_ops += o.in_doubt_ops;
            acked_requests += o.acked_requests;
            violations.extend(o.violation);
        }

        let restart = Instant::now();
        server = start_server(&bin, &data_dir)?;
        let restart_ms = restart.elapsed().as_millis() as u64;
        let check_started = Instant::now();
        let mut c = clients(&server).await?;
        let checked = check(&mut c, &mut hist, shape, &mut rng).await?;
        let check_ms = check_started.elapsed().as_millis() as u64;
        println!(
            "cycle {cycle}/{}: killed after {kill_after} ms, {acked_ops} ops acked, \
             {in_doubt_ops} in doubt ({} landed); restart {restart_ms} ms; {} docs, {} sealed \
             segments, {} tombstones; {}",
            args.cycles,
            checked.in_doubt_landed,
            checked.docs,
            checked.sealed_segments,
            checked.tombstones,
            if checked.violations.is_empty() {
                "ok".to_string()
            } else {
                format!("{} VIOLATIONS", checked.violations.len())
            }
        );
        docs_at_end = checked.docs;
        per_cycle.push(CycleReport {
            cycle,
            kill_after_ms: kill_after,
            acked_ops,
            in_doubt_ops,
            in_doubt_landed: checked.in_doubt_landed,
            restart_ms,
            check_ms,
            docs: checked.docs,
            sealed_segments: checked.sealed_segments,
            tombstones: checked.tombstones,
        });
        violations.extend(checked.violations.into_iter().map(|v| format!("cycle {cycle}: {v}")));
        if !violations.is_empty() {
            break;
        }
    }
    drop(server);

    let report = Report {
        seed: args.seed,
        cycles: per_cycle.len(),
        writers: args.writers,
        ids_per_writer: args.ids_per_writer,
        dim: args.dim,
        total_acked_ops: per_cycle.iter().map(|c| c.acked_ops).sum(),
        total_acked_requests: acked_requests,
        total_in_doubt_ops: per_cycle.iter().map(|c| c.in_doubt_ops).sum(),
        total_in_doubt_landed: per_cycle.iter().map(|c| c.in_doubt_landed).sum(),
        docs_at_end,
        duration_s: started.elapsed().as_secs_f64(),
        violations: violations.len(),
        per_cycle,
    };
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, json).with_context(|| format!("write {}", path.display()))?;
    }
    println!(
        "crasher: {} cycles, {} ops acked ({} requests), {} in doubt ({} landed), {} docs at end, \
         {:.1} s, {} violations",
        report.cycles,
        report.total_acked_ops,
        report.total_acked_requests,
        report.total_in_doubt_ops,
        report.total_in_doubt_landed,
        report.docs_at_end,
        report.duration_s,
        report.violations
    );
    if !violations.is_empty() {
        for v in &violations {
            eprintln!("VIOLATION {v}");
        }
        bail!(
            "{} violations (seed {}); data kept in {}",
            violations.len(),
            args.seed,
            data_dir.display()
        );
    }
    if temporary {
        let _ = std::fs::remove_dir_all(&data_dir);
    }
    Ok(())
}
