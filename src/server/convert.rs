//! Protobuf <-> engine types. Everything a client sends is checked here (structure, lengths,
//! finiteness) with errors naming the request field; what depends on a collection (dimensions)
//! is checked by the collection.
use super::model::{
    self, CollectionConfig, DEFAULT_EF, DEFAULT_EF_CONSTRUCTION, DEFAULT_M, DEFAULT_SEAL_THRESHOLD,
    FieldMatch, Filter, HnswConfig, Kind, MAX_FILTER_DEPTH, MAX_ID_BYTES, MAX_KEY_BYTES,
    NewDocument, Payload, QueryInstruction, Range, StoredDocument, Value, With,
};
use super::registry::Registry;
use crate::error::{Error, Result};
use crate::proto as pb;

/// Checks a collection name: it becomes a directory name, so it is kept to a safe alphabet.
pub fn collection_name(field: &str, name: &str) -> Result<String> {
    if name.is_empty() || name.len() > 64 {
        return Err(Error::invalid(field, "must be 1 to 64 characters"));
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        return Err(Error::invalid(field, "may contain only A-Z, a-z, 0-9, '_' and '-'"));
    }
    Ok(name.to_owned())
}

/// Resolves a requested config, filling defaults; a named model is bound (its id and hash) from
/// the models the server loaded.
pub fn collection_config(
    c: Option<pb::CollectionConfig>,
    models: &Registry,
) -> Result<CollectionConfig> {
    let mut c =
        c.ok_or_else(|| Error::invalid("config", "is required (at least config.dim or model)"))?;
    if !c.model_hash.is_empty() {
        return Err(Error::invalid(
            "config.model_hash",
            "is set by the server from the loaded model; leave it empty",
        ));
    }
    let model = match c.model.as_str() {
        "" => None,
        id => {
            let (binding, model_dim) = models.bind("config.model", id)?;
            let model_dim = model_dim as u32;
            if c.dim == 0 {
                c.dim = model_dim;
            } else if c.dim != model_dim {
                return Err(Error::invalid(
                    "config.dim",
                    format!(
                        "is {} but model {id:?} outputs {model_dim} values; leave it 0 or set \
                         stored_dim to keep fewer (Matryoshka)",
                        c.dim
                    ),
                ));
            }
            Some(binding)
        }
    };
    if c.dim == 0 {
        return Err(Error::invalid(
            "config.dim",
            "is required and must be positive (or bind a model with config.model)",
        ));
    }
    let query_instruction =
        query_instruction("config.", &c.query_instruction, &c.query_task, model.as_ref())?;
    if let (Some(_), Some(b)) = (&query_instruction, &model) {
        let takes = models.embedder("config.model", &b.model)?.info().takes_instruction;
        if !takes {
            let f = if c.query_task.is_empty() { "query_instruction" } else { "query_task" };
            return Err(Error::invalid(
                format!("config.{f}"),
                format!("model {:?} takes no instruction", b.model),
            ));
        }
    }
    let dtype = match pb::Dtype::try_from(c.dtype) {
        Ok(pb::Dtype::Unspecified | pb::Dtype::F16) => hirevec_index::Dtype::F16,
        Ok(pb::Dtype::F32) => hirevec_index::Dtype::F32,
        Err(_) => return Err(Error::invalid("config.dtype", format!("unknown value {}", c.dtype))),
    };
    match pb::Metric::try_from(c.metric) {
        Ok(pb::Metric::Unspecified | pb::Metric::Cosine) => {}
        Err(_) => {
            return Err(Error::invalid("config.metric", format!("unknown value {}", c.metric)));
        }
    }
    let h = c.hnsw.unwrap_or_default();
    let config = CollectionConfig {
        dim: c.dim,
        stored_dim: c.stored_dim.unwrap_or(c.dim),
        dtype,
        hnsw: HnswConfig {
            m: h.m.unwrap_or(DEFAULT_M),
            ef_construction: h.ef_construction.unwrap_or(DEFAULT_EF_CONSTRUCTION),
            ef: h.ef.unwrap_or(DEFAULT_EF),
        },
        seal_threshold: c.seal_threshold.unwrap_or(DEFAULT_SEAL_THRESHOLD),
        seed: rand::random(),
        model,
        query_instruction,
    };
    config.validate()?;
    Ok(config)
}

/// The resolved config as clients see it.
pub fn collection_config_out(c: &CollectionConfig) -> pb::CollectionConfig {
    pb::CollectionConfig {
        dim: c.dim,
        stored_dim: Some(c.stored_dim),
        dtype: match c.dtype {
            hirevec_index::Dtype::F32 => pb::Dtype::F32,
            hirevec_index::Dtype::F16 => pb::Dtype::F16,
        } as i32,
        metric: pb::Metric::Cosine as i32,
        hnsw: Some(pb::HnswConfig {
            m: Some(c.hnsw.m),
            ef_construction: Some(c.hnsw.ef_construction),
            ef: Some(c.hnsw.ef),
        }),
        seal_threshold: Some(c.seal_threshold),
        model: c.model.as_ref().map(|b| b.model.clone()).unwrap_or_default(),
        model_hash: c.model.as_ref().map(|b| b.hash.clone()).unwrap_or_default(),
        query_instruction: match &c.query_instruction {
            Some(QueryInstruction::Text(t)) => t.clone(),
            _ => String::new(),
        },
        query_task: match &c.query_instruction {
            Some(QueryInstruction::Task(t)) => t.clone(),
            _ => String::new(),
        },
    }
}

/// A default query instruction from its two fields (`prefix` + `query_instruction` /
/// `query_task`); both empty is none.
pub fn query_instruction(
    prefix: &str,
    text: &str,
    task: &str,
    model: Option<&model::ModelBinding>,
) -> Result<Option<QueryInstruction>> {
    let q = match (text, task) {
        ("", "") => return Ok(None),
        (_, "") => QueryInstruction::Text(text.to_owned()),
        ("", _) => QueryInstruction::Task(task.to_owned()),
        _ => {
            return Err(Error::invalid(
                format!("{prefix}query_task"),
                "give query_instruction or query_task, not both",
            ));
        }
    };
    if model.is_none() {
        let f = if task.is_empty() { "query_instruction" } else { "query_task" };
        return Err(Error::invalid(format!("{prefix}{f}"), "needs an embedding model (model)"));
    }
    match &q {
        QueryInstruction::Text(t) => {
            instruction_in(&format!("{prefix}query_instruction"), Some(t))?
        }
        QueryInstruction::Task(name) => {
            crate::models::instructions::task(name)
                .map_err(|e| Error::invalid(format!("{prefix}query_task"), e.to_string()))?;
        }
    }
    Ok(Some(q))
}

/// Checks a client document id.
pub fn doc_id(field: &str, id: &str) -> Result<()> {
    if id.is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    if id.len() > MAX_ID_BYTES {
        return Err(Error::invalid(
            field,
            format!("must be at most {MAX_ID_BYTES} bytes, is {}", id.len()),
        ));
    }
    Ok(())
}

fn kind_in(field: &str, k: i32) -> Result<Kind> {
    match pb::DocumentKind::try_from(k) {
        Ok(pb::DocumentKind::Jd) => Ok(Kind::Jd),
        Ok(pb::DocumentKind::Resume) => Ok(Kind::Resume),
        Ok(pb::DocumentKind::Other | pb::DocumentKind::Unspecified) => Ok(Kind::Other),
        Err(_) => Err(Error::invalid(field, format!("unknown kind {k}"))),
    }
}

/// The wire value of a kind.
pub fn kind_out(k: Kind) -> i32 {
    (match k {
        Kind::Jd => pb::DocumentKind::Jd,
        Kind::Resume => pb::DocumentKind::Resume,
        Kind::Other => pb::DocumentKind::Other,
    }) as i32
}

fn value_in(field: &str, v: pb::Value) -> Result<Value> {
    use pb::value::Kind as K;
    match v.kind {
        Some(K::StringValue(s)) => Ok(Value::Str(s)),
        Some(K::IntValue(i)) => Ok(Value::Int(i)),
        Some(K::FloatValue(f)) if f.is_finite() => Ok(Value::Float(f)),
        Some(K::FloatValue(_)) => Err(Error::invalid(field, "float must be finite")),
        Some(K::BoolValue(b)) => Ok(Value::Bool(b)),
        Some(K::StringList(l)) => Ok(Value::StrList(l.values)),
        None => Err(Error::invalid(field, "value has no kind set")),
    }
}

fn value_out(v: &Value) -> pb::Value {
    use pb::value::Kind as K;
    pb::Value {
        kind: Some(match v {
            Value::Str(s) => K::StringValue(s.clone()),
            Value::Int(i) => K::IntValue(*i),
            Value::Float(f) => K::FloatValue(*f),
            Value::Bool(b) => K::BoolValue(*b),
            Value::StrList(l) => K::StringList(pb::StringList { values: l.clone() }),
        }),
    }
}

/// Payload as clients see it.
pub fn payload_out(p: &Payload) -> std::collections::HashMap<String, pb::Value> {
    p.iter().map(|(k, v)| (k.clone(), value_out(v))).collect()
}

fn key_in(field: &str, key: &str) -> Result<()> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(Error::invalid(field, format!("key must be 1 to {MAX_KEY_BYTES} bytes")));
    }
    Ok(())
}

/// Converts and checks an upsert batch: size, ids (distinct), kinds, payloads, vector presence.
/// Refuses a text longer than `max` bytes (`--max-text-bytes`): texts are stored, embedded and
/// read back for reranking, so one huge text would cost every later request that touches it.
pub fn text_len(field: &str, text: &str, max: usize) -> Result<()> {
    if text.len() > max {
        return Err(Error::invalid(
            field,
            format!("{} bytes; at most {max} allowed (--max-text-bytes)", text.len()),
        ));
    }
    Ok(())
}

/// Converts an upsert batch: at most `max_batch` documents, texts of at most `max_text_bytes`.
pub fn upsert_batch(
    docs: Vec<pb::Document>,
    max_batch: usize,
    max_text_bytes: usize,
) -> Result<Vec<NewDocument>> {
    if docs.len() > max_batch {
        return Err(Error::invalid(
            "documents",
            format!("{} documents in one batch; at most {max_batch} allowed", docs.len()),
        ));
    }
    let mut seen = std::collections::HashMap::with_capacity(docs.len());
    let mut out = Vec::with_capacity(docs.len());
    for (i, d) in docs.into_iter().enumerate() {
        let f = |name: &str| format!("documents[{i}].{name}");
        doc_id(&f("id"), &d.id)?;
        if let Some(j) = seen.insert(d.id.clone(), i) {
            return Err(Error::invalid(
                f("id"),
                format!("{:?} also appears at documents[{j}]", d.id),
            ));
        }
        let kind = kind_in(&f("kind"), d.kind)?;
        text_len(&f("text"), &d.text, max_text_bytes)?;
        let mut payload = Payload::new();
        for (k, v) in d.payload {
            let field = format!("documents[{i}].payload[{k:?}]");
            key_in(&field, &k)?;
            payload.insert(k, value_in(&field, v)?);
        }
        // An empty vector with a text asks the server to embed the text (checked against the
        // collection's model by the caller); with neither there is nothing to index.
        if d.vector.is_empty() && d.text.is_empty() {
            return Err(Error::invalid(
                f("vector"),
                "give a vector, or a text for the collection's embedding model to embed",
            ));
        }
        out.push(NewDocument { id: d.id, kind, text: d.text, payload, vector: d.vector });
    }
    Ok(out)
}

/// Converts and checks a filter (`None` when unset).
pub fn filter(field: &str, f: Option<pb::Filter>) -> Result<Option<Filter>> {
    f.map(|f| filter_at(field, f, 0)).transpose()
}

fn filter_list(field: &str, l: pb::FilterList, depth: usize) -> Result<Vec<Filter>> {
    if l.filters.is_empty() {
        return Err(Error::invalid(format!("{field}.filters"), "must not be empty"));
    }
    l.filters
        .into_iter()
        .enumerate()
        .map(|(i, f)| filter_at(&format!("{field}.filters[{i}]"), f, depth + 1))
        .collect()
}

fn scalar(field: &str, v: pb::Value) -> Result<Value> {
    match value_in(field, v)? {
        Value::StrList(_) => {
            Err(Error::invalid(field, "a list cannot be matched; give one string"))
        }
        v => Ok(v),
    }
}

fn bound(field: &str, v: Option<f64>) -> Result<Option<f64>> {
    match v {
        Some(x) if !x.is_finite() => Err(Error::invalid(field, "must be finite")),
        v => Ok(v),
    }
}

fn filter_at(field: &str, f: pb::Filter, depth: usize) -> Result<Filter> {
    use pb::field_condition::Condition as C;
    use pb::filter::Condition as F;
    if depth > MAX_FILTER_DEPTH {
        return Err(Error::invalid(field, format!("nested deeper than {MAX_FILTER_DEPTH} levels")));
    }
    match f.condition {
        None => {
            Err(Error::invalid(field, "no condition set (leave the filter unset to match all)"))
        }
        Some(F::Kind(k)) => {
            if k.kinds.is_empty() {
                return Err(Error::invalid(format!("{field}.kind.kinds"), "must not be empty"));
            }
            let kinds = k
                .kinds
                .iter()
                .enumerate()
                .map(|(i, k)| {
                    let field = format!("{field}.kind.kinds[{i}]");
                    match pb::DocumentKind::try_from(*k) {
                        Ok(pb::DocumentKind::Unspecified) => {
                            Err(Error::invalid(field, "must be JD, RESUME or OTHER"))
                        }
                        _ => kind_in(&field, *k),
                    }
                })
                .collect::<Result<_>>()?;
            Ok(Filter::Kind(kinds))
        }
        Some(F::Field(c)) => {
            let field = format!("{field}.field");
            key_in(&format!("{field}.key"), &c.key)?;
            let matches = match c.condition {
                None => {
                    return Err(Error::invalid(
                        &field,
                        "no condition set (eq, in_values, range or exists)",
                    ));
                }
                Some(C::Eq(v)) => FieldMatch::AnyOf(vec![scalar(&format!("{field}.eq"), v)?]),
                Some(C::InValues(l)) => {
                    if l.values.is_empty() {
                        return Err(Error::invalid(
                            format!("{field}.in_values.values"),
                            "must not be empty",
                        ));
                    }
                    FieldMatch::AnyOf(
                        l.values
                            .into_iter()
                            .enumerate()
                            .map(|(i, v)| scalar(&format!("{field}.in_values.values[{i}]"), v))
                            .collect::<Result<_>>()?,
                    )
                }
                Some(C::Range(r)) => {
                    let f = |n: &str| format!("{field}.range.{n}");
                    let (gt, gte) = (bound(&f("gt"), r.gt)?, bound(&f("gte"), r.gte)?);
                    let (lt, lte) = (bound(&f("lt"), r.lt)?, bound(&f("lte"), r.lte)?);
                    if gt.is_some() && gte.is_some() {
                        return Err(Error::invalid(f("gt"), "give gt or gte, not both"));
                    }
                    if lt.is_some() && lte.is_some() {
                        return Err(Error::invalid(f("lt"), "give lt or lte, not both"));
                    }
                    let lower = gt.map(|x| (x, false)).or(gte.map(|x| (x, true)));
                    let upper = lt.map(|x| (x, false)).or(lte.map(|x| (x, true)));
                    if lower.is_none() && upper.is_none() {
                        return Err(Error::invalid(
                            format!("{field}.range"),
                            "needs at least one bound",
                        ));
                    }
                    FieldMatch::Range(Range { lower, upper })
                }
                Some(C::Exists(_)) => FieldMatch::Exists,
            };
            Ok(Filter::Field { key: c.key, matches })
        }
        Some(F::AllOf(l)) => Ok(Filter::AllOf(filter_list(&format!("{field}.all_of"), l, depth)?)),
        Some(F::AnyOf(l)) => Ok(Filter::AnyOf(filter_list(&format!("{field}.any_of"), l, depth)?)),
        Some(F::NoneOf(l)) => {
            Ok(Filter::NoneOf(filter_list(&format!("{field}.none_of"), l, depth)?))
        }
    }
}

/// What to return with documents.
pub fn with(w: Option<pb::Include>) -> With {
    let w = w.unwrap_or_default();
    With { payload: w.payload, text: w.text, vector: w.vector }
}

/// A stored document as clients see it.
pub fn document_out(d: StoredDocument) -> pb::Document {
    pb::Document {
        id: d.meta.id,
        kind: kind_out(d.meta.kind),
        text: d.text.unwrap_or_default(),
        payload: payload_out(&d.meta.payload),
        vector: d.vector.unwrap_or_default(),
        sequence: d.meta.seq,
    }
}

/// A text query: what to embed and with which instruction.
#[derive(Debug, Clone)]
pub struct TextQuery {
    /// The query text.
    pub text: String,
    /// The request's instruction (`Some("")`: none).
    pub instruction: Option<String>,
    /// The request's built-in task name (empty: none).
    pub task: String,
}

/// Reranking asked for by a search.
#[derive(Debug, Clone)]
pub struct RerankSpec {
    /// Vector hits to rerank.
    pub top_n: usize,
    /// Hits to return after reranking (the request's top_k).
    pub top_k: usize,
    /// The reranker's instruction, resolved from the request's text or task name (`None`: the
    /// model's default, `Some("")`: none).
    pub instruction: Option<String>,
    /// Minimum rerank score.
    pub min_score: Option<f32>,
    /// Reranker id (empty: the default).
    pub model: String,
}

/// Most hits a search may rerank.
pub const MAX_RERANK_TOP_N: usize = 1000;

/// A converted search request: the vector search, and what the edge must do around it.
#[derive(Debug, Clone)]
pub struct SearchPlan {
    /// The vector search; `vector` is empty while a text query waits to be embedded.
    pub query: super::collection::SearchQuery,
    /// The query text, when the request gave text instead of a vector.
    pub text: Option<TextQuery>,
    /// Reranking, when asked for.
    pub rerank: Option<RerankSpec>,
}

/// Converts a search request (`field` prefixes error paths, e.g. `searches[2].`).
pub fn search(field: &str, r: pb::SearchRequest, max_text_bytes: usize) -> Result<SearchPlan> {
    text_len(&format!("{field}text"), &r.text, max_text_bytes)?;
    let top_k = r.top_k as usize;
    if !(1..=model::MAX_TOP_K).contains(&top_k) {
        return Err(Error::invalid(
            format!("{field}top_k"),
            format!("must be in 1..={}", model::MAX_TOP_K),
        ));
    }
    if let Some(ef) = r.ef
        && !(1..=4096).contains(&ef)
    {
        return Err(Error::invalid(format!("{field}ef"), "must be in 1..=4096"));
    }
    if let Some(m) = r.min_score
        && !m.is_finite()
    {
        return Err(Error::invalid(format!("{field}min_score"), "must be finite"));
    }
    let text = match (r.vector.is_empty(), r.text.is_empty()) {
        (true, true) => {
            return Err(Error::invalid(
                format!("{field}vector"),
                "give a vector, or a text for the collection's embedding model",
            ));
        }
        (false, false) => {
            return Err(Error::invalid(format!("{field}text"), "give vector or text, not both"));
        }
        (false, true) => {
            if r.instruction.is_some() || !r.task.is_empty() {
                let f = if r.task.is_empty() { "instruction" } else { "task" };
                return Err(Error::invalid(
                    format!("{field}{f}"),
                    "applies to text queries only (this request has a vector)",
                ));
            }
            None
        }
        (true, false) => {
            instruction_in(&format!("{field}instruction"), r.instruction.as_deref())?;
            Some(TextQuery { text: r.text.clone(), instruction: r.instruction, task: r.task })
        }
    };
    let rerank = match r.rerank {
        None => None,
        Some(rr) => {
            let top_n = match rr.top_n as usize {
                0 => top_k,
                n => n,
            };
            if !(top_k..=MAX_RERANK_TOP_N.max(top_k)).contains(&top_n) {
                return Err(Error::invalid(
                    format!("{field}rerank.top_n"),
                    format!("must be 0 (top_k) or in top_k..={MAX_RERANK_TOP_N}"),
                ));
            }
            if let Some(m) = rr.min_score
                && !m.is_finite()
            {
                return Err(Error::invalid(format!("{field}rerank.min_score"), "must be finite"));
            }
            if r.text.is_empty() {
                return Err(Error::invalid(
                    format!("{field}rerank"),
                    "needs the query as text (the reranker reads query and document texts)",
                ));
            }
            instruction_in(&format!("{field}rerank.instruction"), rr.instruction.as_deref())?;
            // Resolved here, so a bad task name is refused before any embedding or search.
            let instruction = super::registry::requested_instruction(
                &format!("{field}rerank."),
                rr.instruction.as_deref(),
                &rr.task,
            )?;
            Some(RerankSpec { top_n, top_k, instruction, min_score: rr.min_score, model: rr.model })
        }
    };
    // Reranking reads the hits' texts, and a wider vector search feeds it.
    let mut with = with(r.include);
    let mut k = top_k;
    if let Some(rr) = &rerank {
        k = rr.top_n;
        with.text = true;
    }
    Ok(SearchPlan {
        query: super::collection::SearchQuery {
            vector: r.vector,
            top_k: k,
            ef: r.ef.map(|e| e as usize),
            filter: filter(&format!("{field}filter"), r.filter)?,
            min_score: r.min_score,
            with,
        },
        text,
        rerank,
    })
}

/// Checks the length of an instruction.
pub fn instruction_in(field: &str, i: Option<&str>) -> Result<()> {
    if let Some(i) = i
        && i.len() > model::MAX_INSTRUCTION_BYTES
    {
        return Err(Error::invalid(
            field,
            format!("at most {} bytes", model::MAX_INSTRUCTION_BYTES),
        ));
    }
    Ok(())
}
