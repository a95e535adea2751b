//! Model-based test of the engine: proptest generates sequences of upserts, deletes (by id and by
//! filter), searches, counts, gets, scrolls and restarts (clean and crash-like), runs them
//! against a real `Engine` on a temporary directory, and compares every answer with an exact
//! in-memory model (a `BTreeMap` of id -> document).
//!
//! In process rather than through the binary: a restart is `shutdown` (or a bare drop, which is
//! what a crash leaves) and `Engine::open` on the same directory, cheap enough for thousands of
//! operations. The gRPC edge is covered by `tests/api.rs`; this is about the engine's state.
//!
//! Searches are exact, so the comparison is too: a filter that allows fewer documents than the
//! exact-scan threshold is answered by a scan, and without a filter `ef` exceeds every segment's
//! size, so the graph walk cannot stop before it has seen every reachable node.
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use hirevec::server::collection::{Collection, SearchQuery};
use hirevec::server::engine::{Engine, EngineOptions};
use hirevec::server::model::{
    CollectionConfig, FieldMatch, Filter, HnswConfig, Kind, MIN_SEAL_THRESHOLD, NewDocument,
    Payload, Range, Value, With,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, RngSeed, TestCaseError, TestRng, TestRunner};
use rand::{Rng, SeedableRng};

/// Client ids come from a small pool so that overwrites and deletes of live ids are common.
const POOL: u8 = 40;
const DIM: u32 = 8;
const COLL: &str = "m";

/// A document as the test writes it; the vector comes from `vseed` so shrinking keeps it valid.
#[derive(Debug, Clone)]
struct DocSpec {
    id: u8,
    vseed: u64,
    kind: u8,
    n: i64,
    tag: Option<u8>,
}

/// The filters the test uses, each simple enough for the model to evaluate by hand.
#[derive(Debug, Clone)]
enum FilterSpec {
    NEq(i64),
    NRange(i64, i64),
    Kinds(Vec<u8>),
    HasTag,
    Not(Box<FilterSpec>),
    Either(Box<FilterSpec>, Box<FilterSpec>),
}

#[derive(Debug, Clone)]
enum Op {
    Upsert(Vec<DocSpec>),
    /// Many batches over the whole pool: pushes the growing segment past the seal threshold so
    /// seals (and, with overwrites tombstoning sealed ids, compactions) run in the background.
    Bulk {
        batches: usize,
        seed: u64,
    },
    DeleteIds(Vec<u8>),
    DeleteFilter(FilterSpec),
    Search {
        vseed: u64,
        top_k: usize,
        filter: Option<FilterSpec>,
    },
    Count(Option<FilterSpec>),
    Get(Vec<u8>),
    Scroll {
        page: usize,
        filter: Option<FilterSpec>,
    },
    Restart {
        clean: bool,
    },
}

fn kind_of(k: u8) -> Kind {
    Kind::ALL[k as usize % 3]
}

fn vector_of(vseed: u64) -> Vec<f32> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(vseed);
    // Away from zero in the first component: the engine refuses zero vectors.
    let mut v: Vec<f32> = (0..DIM).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    v[0] += if v[0] < 0.0 { -0.05 } else { 0.05 };
    v
}

/// What the engine stores: unit length (dtype f32, so no rounding beyond this).
fn stored(v: &[f32]) -> Vec<f32> {
    hirevec_index::prepare_vector(v, v.len(), v.len()).unwrap()
}

fn filter_of(f: &FilterSpec) -> Filter {
    let field = |matches| Filter::Field { key: "n".into(), matches };
    match f {
        FilterSpec::NEq(x) => field(FieldMatch::AnyOf(vec![Value::Int(*x)])),
        FilterSpec::NRange(lo, hi) => field(FieldMatch::Range(Range {
            lower: Some((*lo as f64, true)),
            upper: Some((*hi as f64, false)),
        })),
        FilterSpec::Kinds(ks) => Filter::Kind(ks.iter().map(|k| kind_of(*k)).collect()),
        FilterSpec::HasTag => Filter::Field { key: "tag".into(), matches: FieldMatch::Exists },
        FilterSpec::Not(f) => Filter::NoneOf(vec![filter_of(f)]),
        FilterSpec::Either(a, b) => Filter::AnyOf(vec![filter_of(a), filter_of(b)]),
    }
}

fn model_matches(d: &DocSpec, f: &FilterSpec) -> bool {
    match f {
        FilterSpec::NEq(x) => d.n == *x,
        FilterSpec::NRange(lo, hi) => (*lo..*hi).contains(&d.n),
        FilterSpec::Kinds(ks) => ks.iter().any(|k| kind_of(*k) == kind_of(d.kind)),
        FilterSpec::HasTag => d.tag.is_some(),
        FilterSpec::Not(f) => !model_matches(d, f),
        FilterSpec::Either(a, b) => model_matches(d, a) || model_matches(d, b),
    }
}

fn id_of(i: u8) -> String {
    format!("d{i}")
}

fn payload_of(d: &DocSpec) -> Payload {
    let mut p = Payload::new();
    p.insert("n".into(), Value::Int(d.n));
    if let Some(t) = d.tag {
        p.insert("tag".into(), Value::Str(format!("t{t}")));
    }
    p
}

fn new_document(d: &DocSpec) -> NewDocument {
    NewDocument {
        id: id_of(d.id),
        kind: kind_of(d.kind),
        text: format!("text {}", d.vseed),
        payload: payload_of(d),
        vector: vector_of(d.vseed),
    }
}

fn doc_spec() -> impl Strategy<Value = DocSpec> {
    (0..POOL, any::<u64>(), 0u8..3, 0i64..8, proptest::option::of(0u8..4))
        .prop_map(|(id, vseed, kind, n, tag)| DocSpec { id, vseed, kind, n, tag })
}

fn filter_spec() -> impl Strategy<Value = FilterSpec> {
    let leaf = prop_oneof![
        (0i64..8).prop_map(FilterSpec::NEq),
        (0i64..8, 1i64..5).prop_map(|(lo, len)| FilterSpec::NRange(lo, lo + len)),
        proptest::collection::vec(0u8..3, 1..3).prop_map(FilterSpec::Kinds),
        Just(FilterSpec::HasTag),
    ];
    leaf.prop_recursive(2, 4, 2, |inner| {
        prop_oneof![
            inner.clone().prop_map(|f| FilterSpec::Not(Box::new(f))),
            (inner.clone(), inner).prop_map(|(a, b)| FilterSpec::Either(Box::new(a), Box::new(b))),
        ]
    })
}

fn op() -> impl Strategy<Value = Op> {
    let ids = || proptest::collection::vec(0..POOL, 1..8);
    prop_oneof![
        6 => proptest::collection::vec(doc_spec(), 1..12).prop_map(Op::Upsert),
        1 => (10usize..30, any::<u64>()).prop_map(|(batches, seed)| Op::Bulk { batches, seed }),
        2 => ids().prop_map(Op::DeleteIds),
        1 => filter_spec().prop_map(Op::DeleteFilter),
        4 => (any::<u64>(), 1usize..15, proptest::option::of(filter_spec()))
            .prop_map(|(vseed, top_k, filter)| Op::Search { vseed, top_k, filter }),
        1 => proptest::option::of(filter_spec()).prop_map(Op::Count),
        1 => ids().prop_map(Op::Get),
        1 => (1usize..30, proptest::option::of(filter_spec()))
            .prop_map(|(page, filter)| Op::Scroll { page, filter }),
        1 => any::<bool>().prop_map(|clean| Op::Restart { clean }),
    ]
}

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
        dim: DIM,
        stored_dim: DIM,
        // f32: the stored vector is exactly the normalised input, so scores compare tightly.
        dtype: hirevec_index::Dtype::F32,
        hnsw: HnswConfig { m: 8, ef_construction: 32, ef: 32 },
        seal_threshold: MIN_SEAL_THRESHOLD,
        seed: 7,
        model: None,
        query_instruction: None,
    }
}

/// The model: live documents by client id, and the sequence number the engine must report.
#[derive(Debug, Default)]
struct Model {
    docs: BTreeMap<String, DocSpec>,
    seq: u64,
}

fn fail(msg: String) -> TestCaseError {
    TestCaseError::fail(msg)
}

fn check_doc(
    got: &hirevec::server::model::StoredDocument,
    want: &DocSpec,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(&got.meta.id, &id_of(want.id));
    prop_assert_eq!(got.meta.kind, kind_of(want.kind));
    prop_assert_eq!(&got.meta.payload, &payload_of(want));
    if let Some(v) = &got.vector {
        prop_assert_eq!(v, &stored(&vector_of(want.vseed)), "vector of {}", got.meta.id);
    }
    if let Some(t) = &got.text {
        prop_assert_eq!(t, &format!("text {}", want.vseed));
    }
    Ok(())
}

/// Upserts a batch (distinct ids, last one wins, as a client would dedupe) into engine and model.
fn upsert(c: &Collection, m: &mut Model, batch: &[DocSpec]) -> Result<(), TestCaseError> {
    let mut by_id: BTreeMap<u8, DocSpec> = BTreeMap::new();
    for d in batch {
        by_id.insert(d.id, d.clone());
    }
    let docs: Vec<NewDocument> = by_id.values().map(new_document).collect();
    let seq = c.upsert(docs).map_err(|e| fail(format!("upsert: {e}")))?;
    m.seq += 1;
    prop_assert_eq!(seq, m.seq, "upsert sequence");
    for d in by_id.into_values() {
        m.docs.insert(id_of(d.id), d);
    }
    Ok(())
}

fn search(
    c: &Collection,
    m: &Model,
    vseed: u64,
    top_k: usize,
    filter: &Option<FilterSpec>,
) -> Result<(), TestCaseError> {
    let q = vector_of(vseed);
    let query = SearchQuery {
        vector: q.clone(),
        top_k,
        // Above any segment's size here (seal threshold 1000 plus at most one batch).
        ef: Some(4096),
        filter: filter.as_ref().map(filter_of),
        min_score: None,
        with: With { payload: true, text: false, vector: false },
    };
    let hits = c.search(&query, "").map_err(|e| fail(format!("search: {e}")))?;
    let qn = stored(&q);
    let score = |d: &DocSpec| -> f32 {
        stored(&vector_of(d.vseed)).iter().zip(&qn).map(|(a, b)| a * b).sum()
    };
    let mut want: Vec<(f32, &String)> = m
        .docs
        .iter()
        .filter(|(_, d)| filter.as_ref().is_none_or(|f| model_matches(d, f)))
        .map(|(id, d)| (score(d), id))
        .collect();
    want.sort_by(|a, b| b.0.total_cmp(&a.0));
    let expected = want.len().min(top_k);
    prop_assert_eq!(hits.len(), expected, "hits for {:?} (top_k {})", filter, top_k);
    const TOL: f32 = 1e-5;
    let mut seen = std::collections::HashSet::new();
    for (i, h) in hits.iter().enumerate() {
        let id = &h.doc.meta.id;
        prop_assert!(seen.insert(id.clone()), "{} returned twice", id);
        let d = m.docs.get(id).ok_or_else(|| fail(format!("search returned dead {id}")))?;
        prop_assert!(filter.as_ref().is_none_or(|f| model_matches(d, f)), "{} breaks filter", id);
        check_doc(&h.doc, d)?;
        prop_assert!((h.score - score(d)).abs() < TOL, "{}: score {} vs {}", id, h.score, score(d));
        if i > 0 {
            prop_assert!(hits[i - 1].score >= h.score, "hits out of order");
        }
    }
    // Exact top-k, ties within the tolerance allowed either way: nothing left out scores
    // better than the worst hit returned.
    if let Some(worst) = hits.last() {
        for (s, id) in &want {
            if !seen.contains(*id) {
                prop_assert!(
                    *s <= worst.score + TOL,
                    "{} (score {}) missing from the top {} (worst hit {})",
                    id,
                    s,
                    top_k,
                    worst.score
                );
            }
        }
    }
    Ok(())
}

/// What the sequences exercised, so the test can say it reached the paths it is about.
#[derive(Debug, Default)]
struct Coverage {
    ops: AtomicUsize,
    /// Sequences in which a background seal ran before any restart.
    background_seals: AtomicUsize,
    /// Operations answered while a sealed segment existed.
    ops_with_sealed: AtomicUsize,
    /// Restarts, clean and crash-like.
    restarts: AtomicUsize,
}

/// Runs one sequence against a fresh engine.
fn run_case(ops: &[Op], cov: &Coverage) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let open = || Engine::open(options(dir.path())).map_err(|e| fail(format!("open: {e}")));
    let mut engine = Some(open()?);
    let mut c = engine.as_ref().unwrap().create(COLL, config()).unwrap();
    let mut m = Model::default();
    let (mut restarted, mut sealed_in_background) = (false, false);
    for op in ops {
        cov.ops.fetch_add(1, Ordering::Relaxed);
        match op {
            Op::Upsert(batch) => upsert(&c, &mut m, batch)?,
            Op::Bulk { batches, seed } => {
                let mut rng = rand::rngs::StdRng::seed_from_u64(*seed);
                for _ in 0..*batches {
                    let batch: Vec<DocSpec> = (0..POOL)
                        .map(|id| DocSpec {
                            id,
                            vseed: rng.random(),
                            kind: rng.random_range(0..3),
                            n: rng.random_range(0..8),
                            tag: rng.random_bool(0.5).then(|| rng.random_range(0..4)),
                        })
                        .collect();
                    upsert(&c, &mut m, &batch)?;
                }
            }
            Op::DeleteIds(ids) => {
                let names: Vec<String> = ids.iter().map(|i| id_of(*i)).collect();
                let (deleted, seq) =
                    c.delete_ids(&names).map_err(|e| fail(format!("delete ids: {e}")))?;
                let mut want = 0;
                for n in &names {
                    want += u64::from(m.docs.remove(n).is_some());
                }
                if want > 0 {
                    m.seq += 1;
                }
                prop_assert_eq!((deleted, seq), (want, m.seq), "delete {:?}", ids);
            }
            Op::DeleteFilter(f) => {
                let (deleted, seq) =
                    c.delete_filter(&filter_of(f)).map_err(|e| fail(format!("delete: {e}")))?;
                let before = m.docs.len();
                m.docs.retain(|_, d| !model_matches(d, f));
                let want = (before - m.docs.len()) as u64;
                if want > 0 {
                    m.seq += 1;
                }
                prop_assert_eq!((deleted, seq), (want, m.seq), "delete filter {:?}", f);
            }
            Op::Search { vseed, top_k, filter } => search(&c, &m, *vseed, *top_k, filter)?,
            Op::Count(f) => {
                let got = c.count(f.as_ref().map(filter_of).as_ref()).unwrap();
                let want =
                    m.docs.values().filter(|d| f.as_ref().is_none_or(|f| model_matches(d, f)));
                prop_assert_eq!(got, want.count() as u64, "count {:?}", f);
            }
            Op::Get(ids) => {
                let names: Vec<String> = ids.iter().map(|i| id_of(*i)).collect();
                let with = With { payload: true, text: true, vector: true };
                let got = c.get(&names, with).map_err(|e| fail(format!("get: {e}")))?;
                prop_assert_eq!(got.len(), names.len());
                for (n, g) in names.iter().zip(&got) {
                    match (g, m.docs.get(n)) {
                        (None, None) => {}
                        (Some(g), Some(want)) => check_doc(g, want)?,
                        (g, want) => {
                            return Err(fail(format!("get {n}: engine {g:?}, model {want:?}")));
                        }
                    }
                }
            }
            Op::Scroll { page, filter } => {
                let f = filter.as_ref().map(filter_of);
                let with = With { payload: true, text: false, vector: true };
                let mut got = BTreeMap::new();
                let mut cursor = 0;
                loop {
                    let (docs, next) = c.scroll(f.as_ref(), cursor, *page, with).unwrap();
                    prop_assert!(docs.len() <= *page);
                    for d in docs {
                        let id = d.meta.id.clone();
                        prop_assert!(got.insert(id.clone(), d).is_none(), "{} scrolled twice", id);
                    }
                    match next {
                        Some(n) => cursor = n,
                        None => break,
                    }
                }
                let want: Vec<&String> = m
                    .docs
                    .iter()
                    .filter(|(_, d)| filter.as_ref().is_none_or(|f| model_matches(d, f)))
                    .map(|(id, _)| id)
                    .collect();
                prop_assert_eq!(got.keys().collect::<Vec<_>>(), want, "scroll {:?}", filter);
                for (id, d) in &got {
                    check_doc(d, &m.docs[id])?;
                }
            }
            Op::Restart { clean } => {
                let e = engine.take().unwrap();
                drop(c);
                if *clean {
                    e.shutdown().map_err(|e| fail(format!("shutdown: {e}")))?;
                }
                // Without shutdown this is what a crash leaves (every write was synced).
                drop(e);
                restarted = true;
                cov.restarts.fetch_add(1, Ordering::Relaxed);
                engine = Some(open()?);
                c = engine.as_ref().unwrap().get(COLL).unwrap();
            }
        }
        // After every operation: the document count and the sequence match the model.
        let stats = c.stats();
        prop_assert_eq!(stats.documents, m.docs.len() as u64, "documents after {:?}", op);
        prop_assert_eq!(stats.sequence, m.seq, "sequence after {:?}", op);
        if stats.sealed_segments > 0 {
            cov.ops_with_sealed.fetch_add(1, Ordering::Relaxed);
            sealed_in_background |= !restarted;
        }
    }
    if sealed_in_background {
        cov.background_seals.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

#[test]
fn engine_matches_an_exact_model() {
    let seed = std::env::var("HIREVEC_TEST_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(88);
    println!("seed {seed} (set HIREVEC_TEST_SEED to replay)");
    let cases = 64;
    let config = Config {
        cases,
        rng_algorithm: RngAlgorithm::ChaCha,
        rng_seed: RngSeed::Fixed(seed),
        // Replays come from the printed seed, not from files in the source tree.
        failure_persistence: None,
        ..Config::default()
    };
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&u64::to_le_bytes(seed));
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &key));
    let cov = Coverage::default();
    let runs = AtomicUsize::new(0);
    let result = runner.run(&proptest::collection::vec(op(), 1..40), |ops| {
        runs.fetch_add(1, Ordering::Relaxed);
        run_case(&ops, &cov)
    });
    println!("{} sequences run ({cases} cases asked): {cov:?}", runs.load(Ordering::Relaxed));
    if let Err(e) = result {
        panic!("seed {seed}: {e}");
    }
    // The sequences must reach what the test is about; a change to the generators that stops
    // them from doing so should fail here rather than pass vacuously.
    assert!(cov.background_seals.load(Ordering::Relaxed) > 0, "no background seal: {cov:?}");
    assert!(cov.ops_with_sealed.load(Ordering::Relaxed) > 0, "no sealed segment: {cov:?}");
    assert!(cov.restarts.load(Ordering::Relaxed) > 0, "no restart: {cov:?}");
}
