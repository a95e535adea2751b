//! Fuzzes the gRPC edge's request checks: whatever bytes a client sends, decoding and the
//! conversions of `hirevec::server::convert` (and the vector check of `collection::prepare`) must
//! return an error or a value that keeps the limits they were given, never panic.
//!
//! Input: byte 0 picks the request type ([`KINDS`]), byte 1 the server settings (bits 0-1 a
//! collection config from [`CONFIGS`], bits 2-3 `--max-batch`, bits 4-5 `--max-text-bytes`); the
//! rest is the protobuf-encoded request. Each request goes through the same calls, in the same
//! order, as its handler in `src/server/grpc.rs`, up to where the handler reaches the engine or a
//! model. Get/Delete/List of collections are left out: their handlers convert nothing.
//!
//! With `HIREVEC_FUZZ_SEEDS=DIR` set, the binary writes one valid input per request type into
//! DIR and exits (`run.sh` seeds the corpus this way, without building a second binary).
#![no_main]

use std::collections::HashSet;
use std::sync::LazyLock;

use hirevec::models::instructions;
use hirevec::models::{EmbedKind, ModelInfo, ModelKind};
use hirevec::proto as pb;
use hirevec::server::collection::prepare;
use hirevec::server::convert;
use hirevec::server::model::{
    CollectionConfig, FieldMatch, Filter, MAX_FILTER_DEPTH, MAX_ID_BYTES, MAX_INSTRUCTION_BYTES,
    MAX_KEY_BYTES, MAX_TOP_K, ModelBinding, QueryInstruction, Value, decode_vector, encode_vector,
};
use hirevec::server::registry::{self, Registry};
use libfuzzer_sys::fuzz_target;
use prost::Message;

/// Request types, by the value of input byte 0 (modulo their number).
const KINDS: [&str; 11] = [
    "upsert",
    "search",
    "search_batch",
    "create_collection",
    "update_collection",
    "get_documents",
    "delete_documents",
    "count",
    "scroll",
    "embed",
    "rerank",
];

/// `--max-batch` values, picked by bits 2-3 of byte 1.
const MAX_BATCH: [usize; 4] = [1, 4, 64, 1000];
/// `--max-text-bytes` values, picked by bits 4-5 of byte 1.
const MAX_TEXT_BYTES: [usize; 4] = [0, 16, 1024, 1 << 20];

/// No models are loaded: creation with `config.model` and every model lookup must fail cleanly.
static MODELS: LazyLock<Registry> = LazyLock::new(|| Registry::from_embedders(Vec::new()));

/// Collection configs the upserts and searches are checked against, resolved by the same
/// `collection_config` as `Collections.Create`.
static CONFIGS: LazyLock<[CollectionConfig; 4]> = LazyLock::new(|| {
    let pb_configs = [
        pb::CollectionConfig { dim: 8, ..Default::default() },
        pb::CollectionConfig {
            dim: 16,
            stored_dim: Some(4),
            dtype: pb::Dtype::F32 as i32,
            ..Default::default()
        },
        pb::CollectionConfig { dim: 1, ..Default::default() },
        pb::CollectionConfig {
            dim: 3,
            stored_dim: Some(2),
            hnsw: Some(pb::HnswConfig { m: Some(4), ef_construction: Some(8), ef: Some(2) }),
            seal_threshold: Some(1000),
            ..Default::default()
        },
    ];
    pb_configs.map(|c| convert::collection_config(Some(c), &MODELS).expect("fixed config is valid"))
});

/// A stand-in for a loaded embedding model, for the instruction rules of `query_kind`.
fn model_info(takes_instruction: bool) -> ModelInfo {
    ModelInfo {
        id: "fuzz-model".into(),
        kind: ModelKind::Embedding,
        architecture: if takes_instruction { "qwen3" } else { "bert" },
        dim: 8,
        max_tokens: 512,
        takes_instruction,
        compute: "cpu/f32".into(),
        hash: "0".into(),
    }
}

/// Settings a request is checked under.
struct Limits {
    config: &'static CollectionConfig,
    max_batch: usize,
    max_text: usize,
}

fuzz_target!(
    init: {
        if let Some(dir) = std::env::var_os("HIREVEC_FUZZ_SEEDS") {
            write_seeds(std::path::Path::new(&dir));
            std::process::exit(0);
        }
    },
    |data: &[u8]| {
        let [kind, settings, msg @ ..] = data else { return };
        let limits = Limits {
            config: &CONFIGS[(settings & 3) as usize],
            max_batch: MAX_BATCH[((settings >> 2) & 3) as usize],
            max_text: MAX_TEXT_BYTES[((settings >> 4) & 3) as usize],
        };
        // Undecodable bytes are refused by tonic before any handler runs.
        let _ = match KINDS[*kind as usize % KINDS.len()] {
            "upsert" => pb::UpsertRequest::decode(msg).map(|r| upsert(r, &limits)),
            "search" => pb::SearchRequest::decode(msg).map(|r| search("", r, &limits)),
            "search_batch" => pb::SearchBatchRequest::decode(msg).map(|r| search_batch(r, &limits)),
            "create_collection" => pb::CreateCollectionRequest::decode(msg).map(create),
            "update_collection" => {
                pb::UpdateCollectionRequest::decode(msg).map(|r| update(r, &limits))
            }
            "get_documents" => pb::GetDocumentsRequest::decode(msg).map(|r| get(r, &limits)),
            "delete_documents" => {
                pb::DeleteDocumentsRequest::decode(msg).map(|r| delete(r, &limits))
            }
            "count" => pb::CountRequest::decode(msg).map(|r| {
                let _ = convert::filter("filter", r.filter).map(|f| f.map(|f| check_filter(&f, 0)));
            }),
            "scroll" => pb::ScrollRequest::decode(msg).map(|r| {
                let _ = convert::filter("filter", r.filter).map(|f| f.map(|f| check_filter(&f, 0)));
                convert::with(r.include);
            }),
            "embed" => pb::EmbedRequest::decode(msg).map(|r| embed(r, &limits)),
            "rerank" => pb::RerankRequest::decode(msg).map(|r| rerank(r, &limits)),
            other => unreachable!("{other}"),
        };
    }
);

/// `Documents.Upsert`: the batch conversion, then the collection's vector check.
fn upsert(r: pb::UpsertRequest, l: &Limits) {
    let n = r.documents.len();
    let Ok(docs) = convert::upsert_batch(r.documents, l.max_batch, l.max_text) else { return };
    assert_eq!(docs.len(), n);
    assert!(docs.len() <= l.max_batch, "{} documents past max_batch {}", docs.len(), l.max_batch);
    let mut ids = HashSet::new();
    for (i, d) in docs.iter().enumerate() {
        assert!((1..=MAX_ID_BYTES).contains(&d.id.len()));
        assert!(ids.insert(d.id.as_str()), "duplicate id {:?} accepted", d.id);
        assert!(d.text.len() <= l.max_text);
        assert!(!d.vector.is_empty() || !d.text.is_empty());
        for (k, v) in &d.payload {
            assert!((1..=MAX_KEY_BYTES).contains(&k.len()));
            check_value(v);
        }
        // Empty vectors wait for the model; `Collection::upsert` checks the others this way.
        if !d.vector.is_empty() {
            check_vector(l.config, &format!("documents[{i}].vector"), &d.vector);
        }
    }
}

/// `Collection::prepare` on a vector: what passes has the collection's dimension, comes out
/// unit length at `stored_dim`, and survives the stored encoding.
fn check_vector(c: &CollectionConfig, field: &str, v: &[f32]) {
    let Ok(p) = prepare(c, field, v) else { return };
    assert_eq!(v.len(), c.dim as usize, "vector of the wrong dimension passed");
    assert_eq!(p.len(), c.stored_dim as usize);
    let norm = p.iter().map(|&x| x as f64 * x as f64).sum::<f64>().sqrt();
    assert!((norm - 1.0).abs() < 1e-3, "prepared vector has norm {norm}");
    let back = decode_vector(c.dtype, c.stored_dim as usize, &encode_vector(c.dtype, &p));
    assert_eq!(back.map(|b| b.len()), Some(c.stored_dim as usize));
}

/// `Search.Search` (and each search of a batch): the plan keeps the request's limits.
fn search(field: &str, r: pb::SearchRequest, l: &Limits) {
    let (top_k, ef) = (r.top_k as usize, r.ef);
    let (has_vector, has_text) = (!r.vector.is_empty(), !r.text.is_empty());
    let Ok(plan) = convert::search(field, r, l.max_text) else { return };
    assert!((1..=MAX_TOP_K).contains(&top_k), "top_k {top_k} passed");
    assert!(has_vector != has_text, "exactly one of vector and text");
    assert_eq!(plan.text.is_some(), has_text);
    assert_eq!(plan.query.vector.is_empty(), has_text);
    assert_eq!(plan.query.ef, ef.map(|e| e as usize));
    assert!(plan.query.ef.is_none_or(|e| (1..=4096).contains(&e)));
    assert!(plan.query.min_score.is_none_or(f32::is_finite));
    match &plan.rerank {
        None => assert_eq!(plan.query.top_k, top_k),
        Some(rr) => {
            assert!(has_text, "rerank without a query text");
            assert_eq!(rr.top_k, top_k);
            assert_eq!(plan.query.top_k, rr.top_n);
            assert!(rr.top_n >= top_k && rr.top_n <= convert::MAX_RERANK_TOP_N.max(top_k));
            assert!(rr.min_score.is_none_or(f32::is_finite));
            assert!(plan.query.with.text, "reranking needs the hits' texts");
        }
    }
    if let Some(f) = &plan.query.filter {
        check_filter(f, 0);
    }
    if let Some(t) = &plan.text {
        assert!(t.text.len() <= l.max_text);
        // What the handler asks the model for, with and without an instruction-following model.
        let default = l.config.query_instruction.as_ref().map(|q| q.text());
        for takes in [false, true] {
            let info = model_info(takes);
            let kind =
                registry::query_kind(&info, field, t.instruction.as_deref(), &t.task, default);
            check_embed_kind(kind, takes);
        }
    } else {
        check_vector(l.config, &format!("{field}vector"), &plan.query.vector);
    }
}

/// `Search.SearchBatch`: the batch size check of the handler, then each search.
fn search_batch(r: pb::SearchBatchRequest, l: &Limits) {
    if r.searches.len() > l.max_batch {
        return;
    }
    for (i, s) in r.searches.into_iter().enumerate() {
        search(&format!("searches[{i}]."), s, l);
    }
}

/// `Collections.Create`: what passes is a valid config, and what the server returns for it
/// converts back to the same config.
fn create(r: pb::CreateCollectionRequest) {
    if let Ok(name) = convert::collection_name("name", &r.name) {
        assert!((1..=64).contains(&name.len()));
    }
    let Ok(c) = convert::collection_config(r.config, &MODELS) else { return };
    c.validate().expect("a converted config is valid");
    assert!(c.model.is_none(), "no model is loaded, yet one was bound");
    assert!(c.query_instruction.is_none(), "an instruction needs a model");
    let again = convert::collection_config(Some(convert::collection_config_out(&c)), &MODELS)
        .expect("the config the server returns converts back");
    assert_eq!(CollectionConfig { seed: c.seed, ..again }, c);
}

/// `Collections.Update`: the new settings and instruction, as the handler applies them to a
/// collection's config (`Collection::update` validates the result).
fn update(r: pb::UpdateCollectionRequest, l: &Limits) {
    let binding = ModelBinding { model: "fuzz-model".into(), hash: "0".into() };
    for model in [None, Some(&binding)] {
        let mut c = l.config.clone();
        c.model = model.cloned();
        if let Some(ef) = r.ef {
            c.hnsw.ef = ef;
        }
        if let Some(t) = r.seal_threshold {
            c.seal_threshold = t;
        }
        let (text, task) =
            (r.query_instruction.as_deref().unwrap_or(""), r.query_task.as_deref().unwrap_or(""));
        if r.query_instruction.is_some() || r.query_task.is_some() {
            match convert::query_instruction("", text, task, model) {
                Err(_) => continue,
                Ok(None) => assert!(text.is_empty() && task.is_empty()),
                Ok(Some(q)) => {
                    assert!(model.is_some(), "an instruction without a model passed");
                    match &q {
                        QueryInstruction::Text(t) => {
                            assert_eq!(t, text);
                            assert!(t.len() <= MAX_INSTRUCTION_BYTES);
                        }
                        QueryInstruction::Task(name) => {
                            assert_eq!(name, task);
                            instructions::task(name).expect("a task name that passed exists");
                        }
                    }
                    let _ = q.text();
                    c.query_instruction = Some(q);
                }
            }
        }
        if c.validate().is_ok() {
            assert!((1..=4096).contains(&c.hnsw.ef));
        }
    }
}

/// `Documents.Get`: the handler's id count check, then each id.
fn get(r: pb::GetDocumentsRequest, l: &Limits) {
    if r.ids.len() > l.max_batch {
        return;
    }
    for (i, id) in r.ids.iter().enumerate() {
        if convert::doc_id(&format!("ids[{i}]"), id).is_ok() {
            assert!((1..=MAX_ID_BYTES).contains(&id.len()));
        }
    }
    convert::with(r.include);
}

/// `Documents.Delete`: by ids or by filter; the handler expects a given filter to convert to
/// `Some`.
fn delete(r: pb::DeleteDocumentsRequest, l: &Limits) {
    use pb::delete_documents_request::Selector;
    match r.selector {
        None => {}
        Some(Selector::Ids(list)) => {
            if list.ids.len() > l.max_batch {
                return;
            }
            for (i, id) in list.ids.iter().enumerate() {
                let _ = convert::doc_id(&format!("ids.ids[{i}]"), id);
            }
        }
        Some(Selector::Filter(f)) => {
            if let Ok(f) = convert::filter("filter", Some(f)) {
                check_filter(&f.expect("filter given"), 0);
            }
        }
    }
}

/// `Models.Embed`, up to the model call (no model is loaded, so the lookup must fail).
fn embed(r: pb::EmbedRequest, l: &Limits) {
    for (i, t) in r.texts.iter().enumerate() {
        if convert::text_len(&format!("texts[{i}]"), t, l.max_text).is_err() {
            return;
        }
    }
    assert!(MODELS.embedder("model", &r.model).is_err());
    if convert::instruction_in("instruction", r.instruction.as_deref()).is_err() {
        return;
    }
    if r.is_query {
        for takes in [false, true] {
            let info = model_info(takes);
            let kind = registry::query_kind(&info, "", r.instruction.as_deref(), &r.task, None);
            check_embed_kind(kind, takes);
        }
    }
}

/// `Models.Rerank`, up to the model call.
fn rerank(r: pb::RerankRequest, l: &Limits) {
    if convert::text_len("query", &r.query, l.max_text).is_err() {
        return;
    }
    for (i, d) in r.documents.iter().enumerate() {
        if convert::text_len(&format!("documents[{i}]"), d, l.max_text).is_err() {
            return;
        }
    }
    assert!(MODELS.reranker("model", &r.model).is_err());
    if convert::instruction_in("instruction", r.instruction.as_deref()).is_err() {
        return;
    }
    match registry::requested_instruction("", r.instruction.as_deref(), &r.task) {
        Err(_) => assert!(!r.task.is_empty()),
        Ok(None) => assert!(r.instruction.is_none() && r.task.is_empty()),
        Ok(Some(i)) => match &r.instruction {
            Some(given) => assert_eq!(&i, given),
            None => assert_eq!(Ok(i.as_str()), instructions::task(&r.task).map_err(|_| ())),
        },
    }
}

/// What `query_kind` returned: a model without instructions never gets one, and an instruction
/// that is sent is never empty ("" means the bare text, embedded as a document).
fn check_embed_kind(kind: hirevec::error::Result<EmbedKind>, takes_instruction: bool) {
    match kind {
        Ok(EmbedKind::Query { instruction: Some(i) }) => {
            assert!(takes_instruction, "instruction {i:?} for a model that takes none");
            assert!(!i.is_empty());
        }
        Ok(EmbedKind::Document) => assert!(takes_instruction),
        Ok(_) | Err(_) => {}
    }
}

/// A converted payload value: floats are finite.
fn check_value(v: &Value) {
    if let Value::Float(f) = v {
        assert!(f.is_finite());
    }
}

/// A converted filter: no empty lists, keys within limits, scalar finite matches, ranges with a
/// finite bound, nesting within `MAX_FILTER_DEPTH`.
fn check_filter(f: &Filter, depth: usize) {
    assert!(depth <= MAX_FILTER_DEPTH, "filter nested {depth} levels passed");
    match f {
        Filter::Kind(kinds) => assert!(!kinds.is_empty()),
        Filter::Field { key, matches } => {
            assert!((1..=MAX_KEY_BYTES).contains(&key.len()));
            match matches {
                FieldMatch::AnyOf(values) => {
                    assert!(!values.is_empty());
                    for v in values {
                        assert!(!matches!(v, Value::StrList(_)), "a list matched as a scalar");
                        check_value(v);
                    }
                }
                FieldMatch::Range(r) => {
                    assert!(r.lower.is_some() || r.upper.is_some());
                    for (x, _) in r.lower.iter().chain(&r.upper) {
                        assert!(x.is_finite());
                    }
                }
                FieldMatch::Exists => {}
            }
        }
        Filter::AllOf(list) | Filter::AnyOf(list) | Filter::NoneOf(list) => {
            assert!(!list.is_empty());
            for sub in list {
                check_filter(sub, depth + 1);
            }
        }
    }
}

/// Writes one valid input per request type (settings byte 0: the 8-dimensional config,
/// `--max-batch` 1, no text; 0x2a: config 2, `--max-batch` 64, 1024 text bytes).
fn write_seeds(dir: &std::path::Path) {
    use pb::field_condition::Condition as C;
    use pb::filter::Condition as F;
    let value = |k: pb::value::Kind| pb::Value { kind: Some(k) };
    let field = |key: &str, c: C| pb::Filter {
        condition: Some(F::Field(pb::FieldCondition { key: key.into(), condition: Some(c) })),
    };
    let filter = pb::Filter {
        condition: Some(F::AllOf(pb::FilterList {
            filters: vec![
                pb::Filter {
                    condition: Some(F::Kind(pb::KindCondition {
                        kinds: vec![pb::DocumentKind::Resume as i32],
                    })),
                },
                field("city", C::Eq(value(pb::value::Kind::StringValue("Berlin".into())))),
                field(
                    "years",
                    C::Range(pb::Range { gte: Some(3.0), lt: Some(10.0), ..Default::default() }),
                ),
                field(
                    "skills",
                    C::InValues(pb::ValueList {
                        values: vec![value(pb::value::Kind::StringValue("rust".into()))],
                    }),
                ),
                pb::Filter {
                    condition: Some(F::NoneOf(pb::FilterList {
                        filters: vec![field("remote", C::Exists(pb::Exists {}))],
                    })),
                },
            ],
        })),
    };
    let doc = |id: &str, vector: Vec<f32>, text: &str| pb::Document {
        id: id.into(),
        kind: pb::DocumentKind::Resume as i32,
        text: text.into(),
        payload: [
            ("city".to_owned(), value(pb::value::Kind::StringValue("Berlin".into()))),
            ("years".to_owned(), value(pb::value::Kind::IntValue(5))),
            ("score".to_owned(), value(pb::value::Kind::FloatValue(0.5))),
            ("remote".to_owned(), value(pb::value::Kind::BoolValue(true))),
            (
                "skills".to_owned(),
                value(pb::value::Kind::StringList(pb::StringList {
                    values: vec!["rust".into(), "grpc".into()],
                })),
            ),
        ]
        .into(),
        vector,
        sequence: 0,
    };
    let search_req = pb::SearchRequest {
        collection: "cands".into(),
        vector: vec![0.5; 8],
        top_k: 10,
        ef: Some(64),
        filter: Some(filter.clone()),
        min_score: Some(0.1),
        include: Some(pb::Include { payload: true, text: true, vector: false }),
        ..Default::default()
    };
    let text_search = pb::SearchRequest {
        collection: "cands".into(),
        top_k: 5,
        text: "senior rust engineer".into(),
        task: "jd_to_resume".into(),
        rerank: Some(pb::Rerank {
            top_n: 50,
            instruction: Some("Judge the fit".into()),
            min_score: Some(0.2),
            ..Default::default()
        }),
        ..Default::default()
    };
    let seeds: Vec<(&str, u8, Vec<u8>)> = vec![
        (
            "upsert",
            0,
            pb::UpsertRequest {
                collection: "cands".into(),
                documents: vec![doc("a", vec![1.0, 0.0, 0.5, 0.0, 0.0, 0.0, 0.0, 0.25], "")],
            }
            .encode_to_vec(),
        ),
        (
            "upsert",
            0x2a,
            pb::UpsertRequest {
                collection: "cands".into(),
                documents: vec![
                    doc("a", vec![0.5], "five years of Rust"),
                    doc("b", Vec::new(), "text only"),
                ],
            }
            .encode_to_vec(),
        ),
        ("search", 0x20, search_req.encode_to_vec()),
        ("search", 0x2a, text_search.encode_to_vec()),
        (
            "search_batch",
            0x28,
            pb::SearchBatchRequest { searches: vec![search_req.clone(), text_search.clone()] }
                .encode_to_vec(),
        ),
        (
            "create_collection",
            0,
            pb::CreateCollectionRequest {
                name: "cands_v2-x".into(),
                config: Some(pb::CollectionConfig {
                    dim: 768,
                    stored_dim: Some(256),
                    dtype: pb::Dtype::F16 as i32,
                    metric: pb::Metric::Cosine as i32,
                    hnsw: Some(pb::HnswConfig {
                        m: Some(16),
                        ef_construction: Some(200),
                        ef: Some(64),
                    }),
                    seal_threshold: Some(5000),
                    ..Default::default()
                }),
            }
            .encode_to_vec(),
        ),
        (
            "update_collection",
            0,
            pb::UpdateCollectionRequest {
                name: "cands".into(),
                ef: Some(128),
                seal_threshold: Some(2000),
                query_task: Some("resume_to_jd".into()),
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        (
            "get_documents",
            0x08,
            pb::GetDocumentsRequest {
                collection: "cands".into(),
                ids: vec!["a".into(), "b".into()],
                include: Some(pb::Include { payload: true, text: false, vector: true }),
            }
            .encode_to_vec(),
        ),
        (
            "delete_documents",
            0x08,
            pb::DeleteDocumentsRequest {
                collection: "cands".into(),
                selector: Some(pb::delete_documents_request::Selector::Ids(pb::IdList {
                    ids: vec!["a".into()],
                })),
            }
            .encode_to_vec(),
        ),
        (
            "delete_documents",
            0,
            pb::DeleteDocumentsRequest {
                collection: "cands".into(),
                selector: Some(pb::delete_documents_request::Selector::Filter(filter.clone())),
            }
            .encode_to_vec(),
        ),
        (
            "count",
            0,
            pb::CountRequest { collection: "cands".into(), filter: Some(filter.clone()) }
                .encode_to_vec(),
        ),
        (
            "scroll",
            0,
            pb::ScrollRequest {
                collection: "cands".into(),
                filter: Some(filter),
                limit: 100,
                cursor: "42".into(),
                include: Some(pb::Include { payload: true, text: true, vector: true }),
            }
            .encode_to_vec(),
        ),
        (
            "embed",
            0x28,
            pb::EmbedRequest {
                texts: vec!["senior rust engineer".into()],
                is_query: true,
                task: "jd_to_resume".into(),
                dimensions: Some(256),
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        (
            "rerank",
            0x28,
            pb::RerankRequest {
                query: "senior rust engineer".into(),
                documents: vec!["five years of Rust".into(), "Java".into()],
                instruction: Some("Judge the fit".into()),
                ..Default::default()
            }
            .encode_to_vec(),
        ),
    ];
    std::fs::create_dir_all(dir).expect("create the corpus folder");
    for (i, (kind, settings, msg)) in seeds.into_iter().enumerate() {
        let k = KINDS.iter().position(|&k| k == kind).expect("known request type") as u8;
        let mut input = vec![k, settings];
        input.extend(msg);
        std::fs::write(dir.join(format!("seed-{i:02}-{kind}")), input).expect("write a seed");
    }
}
