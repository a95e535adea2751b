//! The models the server loaded at start-up, by id. Collections bind an embedding model by id and
//! remember its hash; every text request checks the binding here, so a collection never mixes
//! vectors of two models. Loading happens once, before the server listens; requests only look
//! models up.
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::models::{
    self, DEFAULT_MODEL_DIR, EmbedKind, Embedder, EmbedderConfig, EmbeddingModel, LoadOptions,
    ModelInfo, RerankModel, Reranker,
};
use crate::server::model::ModelBinding;

/// What `--model` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSpec {
    /// The default model folder when it exists, else no model (with a warning).
    Auto,
    /// No model: collections take client vectors only.
    None,
    /// A folder or hub id.
    Load(String),
}

impl ModelSpec {
    /// Parses one `--model` value.
    pub fn parse(s: &str) -> ModelSpec {
        match s.trim() {
            "auto" | "" => ModelSpec::Auto,
            "none" => ModelSpec::None,
            other => ModelSpec::Load(other.to_owned()),
        }
    }
}

/// How to load and run the embedding models.
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// The `--model` values, in order; the first loaded model is the default.
    pub models: Vec<ModelSpec>,
    /// The `--reranker` values, in order; the first is the default.
    pub rerankers: Vec<String>,
    /// Token limit per text (`None`: each model's own).
    pub max_tokens: Option<usize>,
    /// Token limit per reranker prompt (`None`: 8192 within the model's positions).
    pub rerank_max_tokens: Option<usize>,
    /// Queue and batching of each model thread.
    pub embedder: EmbedderConfig,
}

/// Loaded models by id.
#[derive(Debug, Default)]
pub struct Registry {
    embedders: BTreeMap<String, Embedder>,
    default_embedder: Option<String>,
    rerankers: BTreeMap<String, Reranker>,
    default_reranker: Option<String>,
}

/// A search may rerank up to this many hits, so a reranker queue takes at least this many pairs
/// per request.
const MIN_RERANK_REQUEST: usize = 1000;

impl Registry {
    /// Loads every model named in `opts` (blocking: seconds to minutes for large models). A model
    /// that was asked for by name and fails to load fails the start-up: a server that silently
    /// runs without the model its collections are bound to would refuse every text request.
    pub fn load(opts: &RegistryOptions) -> Result<Registry> {
        let mut reg = Registry::default();
        let load = LoadOptions { max_tokens: opts.max_tokens, ..LoadOptions::default() };
        for spec in &opts.models {
            let id = match spec {
                ModelSpec::None => continue,
                ModelSpec::Auto if !Path::new(DEFAULT_MODEL_DIR).is_dir() => {
                    tracing::warn!(
                        dir = DEFAULT_MODEL_DIR,
                        "no embedding model: the default model is missing (fetch it with \
                         scripts/setup-models.sh, or pass --model); collections take vectors only"
                    );
                    continue;
                }
                ModelSpec::Auto => DEFAULT_MODEL_DIR.to_owned(),
                ModelSpec::Load(id) => id.clone(),
            };
            if reg.embedders.contains_key(&id) {
                continue;
            }
            let started = std::time::Instant::now();
            let model = EmbeddingModel::load(&id, &load)
                .map_err(|e| Error::ModelLoad { id: id.clone(), reason: e.to_string() })?;
            let embedder = Embedder::spawn(Arc::new(model), opts.embedder)
                .map_err(|e| Error::ModelLoad { id: id.clone(), reason: e.to_string() })?;
            let info = embedder.info();
            tracing::info!(model = %id, architecture = info.architecture, dim = info.dim,
                max_tokens = info.max_tokens, compute = %info.compute, hash = %info.hash,
                elapsed_ms = started.elapsed().as_millis() as u64, "embedding model loaded");
            reg.default_embedder.get_or_insert_with(|| id.clone());
            reg.embedders.insert(id, embedder);
        }
        let load = LoadOptions { max_tokens: opts.rerank_max_tokens, ..LoadOptions::default() };
        let queue = EmbedderConfig {
            max_request_texts: opts.embedder.max_request_texts.max(MIN_RERANK_REQUEST),
            max_pending_texts: opts.embedder.max_pending_texts.max(MIN_RERANK_REQUEST),
            ..opts.embedder
        };
        for id in &opts.rerankers {
            if reg.rerankers.contains_key(id) {
                continue;
            }
            let started = std::time::Instant::now();
            let failed =
                |e: models::ModelError| Error::ModelLoad { id: id.clone(), reason: e.to_string() };
            let model = RerankModel::load(id, &load).map_err(failed)?;
            let reranker = Reranker::spawn(Arc::new(model), queue).map_err(failed)?;
            let info = reranker.info();
            tracing::info!(model = %id, max_tokens = info.max_tokens, compute = %info.compute,
                hash = %info.hash, elapsed_ms = started.elapsed().as_millis() as u64,
                "reranker loaded");
            reg.default_reranker.get_or_insert_with(|| id.clone());
            reg.rerankers.insert(id.clone(), reranker);
        }
        Ok(reg)
    }

    /// Adds rerankers (the first becomes the default if none is); for tests and tools.
    pub fn with_rerankers(mut self, rerankers: Vec<Reranker>) -> Registry {
        for r in rerankers {
            let id = r.info().id.clone();
            self.default_reranker.get_or_insert_with(|| id.clone());
            self.rerankers.insert(id, r);
        }
        self
    }

    /// The reranker `id` (the default one for `""`); `field` names the request field for the
    /// error.
    pub fn reranker(&self, field: &str, id: &str) -> Result<&Reranker> {
        lookup(
            &self.rerankers,
            self.default_reranker.as_deref(),
            field,
            id,
            "reranker",
            "no reranker is loaded (start the server with --reranker DIR|ID, e.g. a \
             Qwen3-Reranker-0.6B folder)",
        )
    }

    /// A registry holding the given embedders (the first is the default); for tests and tools
    /// that load models themselves.
    pub fn from_embedders(embedders: Vec<Embedder>) -> Registry {
        let mut reg = Registry::default();
        for e in embedders {
            let id = e.info().id.clone();
            reg.default_embedder.get_or_insert_with(|| id.clone());
            reg.embedders.insert(id, e);
        }
        reg
    }

    /// The embedding models, by id.
    pub fn embedders(&self) -> impl Iterator<Item = &Embedder> {
        self.embedders.values()
    }

    /// (id, "embedding" or "reranker", items queued or in a forward pass) of every model thread.
    pub fn queue_depths(&self) -> Vec<(String, &'static str, usize)> {
        let e = self.embedders.iter().map(|(id, m)| (id.clone(), "embedding", m.queue_depth()));
        let r = self.rerankers.iter().map(|(id, m)| (id.clone(), "reranker", m.queue_depth()));
        e.chain(r).collect()
    }

    /// The id of the default embedding model, if any model is loaded.
    pub fn default_embedder(&self) -> Option<&str> {
        self.default_embedder.as_deref()
    }

    /// The embedding model `id` (the default one for `""`); `field` names the request field for
    /// the error.
    pub fn embedder(&self, field: &str, id: &str) -> Result<&Embedder> {
        lookup(
            &self.embedders,
            self.default_embedder.as_deref(),
            field,
            id,
            "model",
            "no embedding model is loaded (start the server with --model DIR|ID; the default \
             model comes from scripts/setup-models.sh)",
        )
    }

    /// The binding a new collection gets for model `id`.
    pub fn bind(&self, field: &str, id: &str) -> Result<(ModelBinding, usize)> {
        let e = self.embedder(field, id)?;
        let info = e.info();
        Ok((ModelBinding { model: info.id.clone(), hash: info.hash.clone() }, info.dim))
    }

    /// The embedder that collection `collection` is bound to, refusing a missing or changed model.
    pub fn bound(&self, collection: &str, binding: Option<&ModelBinding>) -> Result<&Embedder> {
        let Some(b) = binding else {
            return Err(Error::FailedPrecondition {
                what: format!(
                    "collection {collection:?} has no embedding model, so its documents need \
                     vectors and its searches a vector (bind a model with config.model at \
                     creation)"
                ),
            });
        };
        let Some(e) = self.embedders.get(&b.model) else {
            return Err(Error::FailedPrecondition {
                what: format!(
                    "collection {collection:?} is bound to model {:?}, which this server did not \
                     load (start it with --model {})",
                    b.model, b.model
                ),
            });
        };
        if e.info().hash != b.hash {
            return Err(Error::FailedPrecondition {
                what: format!(
                    "collection {collection:?} was written with model {:?} hashing {}, but the \
                     loaded model hashes {}: its files changed, and vectors of two models do not \
                     compare",
                    b.model,
                    b.hash,
                    e.info().hash
                ),
            });
        }
        Ok(e)
    }
}

/// Model `id` of `models`, or the default one for `""`. A request naming a model that is not
/// loaded is bad input (INVALID_ARGUMENT on `field`); asking for the default when there is none
/// is the server's state (FAILED_PRECONDITION, with `none` saying how to start it).
fn lookup<'a, T>(
    models: &'a BTreeMap<String, T>,
    default: Option<&str>,
    field: &str,
    id: &str,
    what: &str,
    none: &str,
) -> Result<&'a T> {
    let id = match id {
        "" => default.ok_or_else(|| Error::FailedPrecondition { what: none.to_owned() })?,
        id => id,
    };
    models.get(id).ok_or_else(|| {
        let loaded: Vec<String> = models.keys().map(|k| format!("{k:?}")).collect();
        Error::invalid(
            field,
            format!("{what} {id:?} is not loaded; loaded: [{}]", loaded.join(", ")),
        )
    })
}

/// Facts about every loaded model, for `Models.List`, with whether it is its kind's default.
pub fn infos(reg: &Registry) -> Vec<(ModelInfo, bool)> {
    let embedders = reg
        .embedders()
        .map(|e| (e.info().clone(), reg.default_embedder() == Some(e.info().id.as_str())));
    let rerankers = reg
        .rerankers
        .values()
        .map(|r| (r.info().clone(), reg.default_reranker.as_deref() == Some(r.info().id.as_str())));
    embedders.chain(rerankers).collect()
}

/// The instruction a request asks for: its text (`Some("")`: none), a built-in task by name, or
/// `None` for the default (the collection's, else the model's).
pub fn requested_instruction(
    field: &str,
    instruction: Option<&str>,
    task: &str,
) -> Result<Option<String>> {
    match (instruction, task) {
        (Some(_), t) if !t.is_empty() => {
            Err(Error::invalid(format!("{field}task"), "give instruction or task, not both"))
        }
        (Some(i), _) => Ok(Some(i.to_owned())),
        (None, "") => Ok(None),
        (None, t) => models::instructions::task(t)
            .map(|s| Some(s.to_owned()))
            .map_err(|e| Error::invalid(format!("{field}task"), e.to_string())),
    }
}

/// What a query embedding asks the model for, from the request's and the collection's
/// instruction settings. `instruction` is the request's (`Some("")` = none); `task` its built-in
/// name; `default` the collection's default instruction text.
pub fn query_kind(
    info: &ModelInfo,
    field: &str,
    instruction: Option<&str>,
    task: &str,
    default: Option<&str>,
) -> Result<EmbedKind> {
    let requested = requested_instruction(field, instruction, task)?;
    if !info.takes_instruction {
        // BERT-family models have at most a fixed query prefix; a collection default cannot be
        // set for them (refused at creation), a request's explicit one is an error.
        if requested.as_deref().is_some_and(|i| !i.is_empty()) {
            let f = if instruction.is_some() { "instruction" } else { "task" };
            return Err(Error::invalid(
                format!("{field}{f}"),
                format!("model {:?} ({}) takes no instruction", info.id, info.architecture),
            ));
        }
        return Ok(EmbedKind::Query { instruction: None });
    }
    Ok(match requested.or_else(|| default.map(str::to_owned)) {
        // "No instruction" for an instruction-following model: the bare text, as a document is
        // embedded (used to measure what the instruction brings).
        Some(i) if i.is_empty() => EmbedKind::Document,
        Some(i) => EmbedKind::Query { instruction: Some(i) },
        None => EmbedKind::Query { instruction: None },
    })
}
