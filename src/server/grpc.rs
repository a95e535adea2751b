//! The gRPC edge: each handler converts the request (`convert`), runs the engine call on a
//! blocking thread, and converts the answer. Errors become statuses in one place
//! (`impl From<Error> for Status` in `error.rs`).
use std::sync::Arc;

use tokio::sync::Semaphore;
use tonic::{Request, Response, Status, Streaming};

use super::collection::Collection;
use super::convert::{self, SearchPlan};
use super::engine::Engine;
use super::registry::{self, Registry};
use crate::error::{Error, Result};
use crate::models::{EmbedKind, Pair};
use crate::proto as pb;
use crate::proto::collections_server::Collections;
use crate::proto::documents_server::Documents;
use crate::proto::models_server::Models;
use crate::proto::search_server::Search;

/// Shared by the services.
#[derive(Debug, Clone)]
pub struct Ctx {
    engine: Arc<Engine>,
    models: Arc<Registry>,
    permits: Arc<Semaphore>,
    max_inflight: usize,
    max_text_bytes: usize,
}

impl Ctx {
    /// A context over `engine` and the loaded `models`, admitting `max_inflight` concurrent
    /// engine calls and texts of at most `max_text_bytes`.
    pub fn new(
        engine: Arc<Engine>,
        models: Arc<Registry>,
        max_inflight: usize,
        max_text_bytes: usize,
    ) -> Self {
        let permits = Arc::new(Semaphore::new(max_inflight));
        Self { engine, models, permits, max_inflight, max_text_bytes }
    }

    /// Runs engine work on a blocking thread: index walks, inserts and RocksDB I/O never run on
    /// the async workers. Past `max_inflight` the request is refused, not queued, so overload
    /// shows up as RESOURCE_EXHAUSTED instead of unbounded latency.
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Engine) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let permit = self.permits.clone().try_acquire_owned().map_err(|_| Error::Overloaded {
            what: format!("more than {} requests in progress", self.max_inflight),
        })?;
        let engine = self.engine.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            f(&engine)
        })
        .await
        .map_err(|e| Error::Internal { what: format!("engine task failed: {e}") })?
    }

    fn max_batch(&self) -> usize {
        self.engine.options().max_batch
    }
}

fn info(c: &Collection) -> pb::CollectionInfo {
    let s = c.stats();
    pb::CollectionInfo {
        name: c.name().to_owned(),
        config: Some(convert::collection_config_out(&c.config())),
        documents: s.documents,
        sealed_segments: s.sealed_segments,
        sealed_vectors: s.sealed_vectors,
        growing_vectors: s.growing_vectors,
        tombstones: s.tombstones,
        sequence: s.sequence,
    }
}

/// `hirevec.v1.Collections`.
#[derive(Debug, Clone)]
pub struct CollectionsService(pub Ctx);

#[tonic::async_trait]
impl Collections for CollectionsService {
    async fn create(
        &self,
        req: Request<pb::CreateCollectionRequest>,
    ) -> Result<Response<pb::CollectionInfo>, Status> {
        let req = req.into_inner();
        let name = convert::collection_name("name", &req.name)?;
        let config = convert::collection_config(req.config, &self.0.models)?;
        let c = self.0.run(move |e| e.create(&name, config)).await?;
        Ok(Response::new(info(&c)))
    }

    async fn get(
        &self,
        req: Request<pb::GetCollectionRequest>,
    ) -> Result<Response<pb::CollectionInfo>, Status> {
        let name = req.into_inner().name;
        let c = self.0.run(move |e| e.get(&name)).await?;
        Ok(Response::new(info(&c)))
    }

    async fn list(
        &self,
        _req: Request<pb::ListCollectionsRequest>,
    ) -> Result<Response<pb::ListCollectionsResponse>, Status> {
        let all = self.0.run(|e| Ok(e.list())).await?;
        Ok(Response::new(pb::ListCollectionsResponse {
            collections: all.iter().map(|c| info(c)).collect(),
        }))
    }

    async fn update(
        &self,
        req: Request<pb::UpdateCollectionRequest>,
    ) -> Result<Response<pb::CollectionInfo>, Status> {
        let req = req.into_inner();
        let c = self
            .0
            .run(move |e| {
                let c = e.get(&req.name)?;
                c.update(|config| {
                    if let Some(ef) = req.ef {
                        config.hnsw.ef = ef;
                    }
                    if let Some(t) = req.seal_threshold {
                        config.seal_threshold = t;
                    }
                    // Either field replaces the default instruction; "" clears it.
                    if req.query_instruction.is_some() || req.query_task.is_some() {
                        config.query_instruction = convert::query_instruction(
                            "",
                            req.query_instruction.as_deref().unwrap_or(""),
                            req.query_task.as_deref().unwrap_or(""),
                            config.model.as_ref(),
                        )?;
                    }
                    Ok(())
                })?;
                Ok(c)
            })
            .await?;
        Ok(Response::new(info(&c)))
    }

    async fn delete(
        &self,
        req: Request<pb::DeleteCollectionRequest>,
    ) -> Result<Response<pb::DeleteCollectionResponse>, Status> {
        let name = req.into_inner().name;
        self.0.run(move |e| e.drop_collection(&name)).await?;
        Ok(Response::new(pb::DeleteCollectionResponse {}))
    }
}

/// `hirevec.v1.Documents`.
#[derive(Debug, Clone)]
pub struct DocumentsService(pub Ctx);

/// What one upsert message did.
#[derive(Debug, Default)]
struct Upserted {
    upserted: u64,
    sequence: u64,
    embedded: u64,
    truncated_ids: Vec<String>,
}

impl DocumentsService {
    async fn upsert_one(&self, req: pb::UpsertRequest) -> Result<Upserted> {
        let mut docs =
            convert::upsert_batch(req.documents, self.0.max_batch(), self.0.max_text_bytes)?;
        let name = req.collection;
        // Documents without a vector are embedded first, on the model's thread; the batch is
        // written only if every text embedded, so a refused batch still changes nothing.
        let need: Vec<usize> = (0..docs.len()).filter(|&i| docs[i].vector.is_empty()).collect();
        let mut truncated_ids = Vec::new();
        if !need.is_empty() {
            let config = self.0.engine.get(&name)?.config();
            if config.model.is_none() {
                // The client's mistake, not the server's state: name the document.
                return Err(Error::invalid(
                    format!("documents[{}].vector", need[0]),
                    format!(
                        "required: collection {name:?} has no embedding model to embed the text \
                         (bind one with config.model at creation)"
                    ),
                ));
            }
            let embedder = self.0.models.bound(&name, config.model.as_ref())?;
            let texts = need.iter().map(|&i| docs[i].text.clone()).collect();
            let out = embedder.embed(texts, EmbedKind::Document).await?;
            for (j, &i) in need.iter().enumerate() {
                docs[i].vector = out.vector(j).to_vec();
                if out.truncated[j] {
                    truncated_ids.push(docs[i].id.clone());
                }
            }
        }
        let upserted = docs.len() as u64;
        let sequence = self.0.run(move |e| e.get(&name)?.upsert(docs)).await?;
        Ok(Upserted { upserted, sequence, embedded: need.len() as u64, truncated_ids })
    }
}

fn upsert_response(u: Upserted) -> pb::UpsertResponse {
    pb::UpsertResponse {
        upserted: u.upserted,
        sequence: u.sequence,
        embedded: u.embedded,
        truncated_ids: u.truncated_ids,
    }
}

#[tonic::async_trait]
impl Documents for DocumentsService {
    async fn upsert(
        &self,
        req: Request<pb::UpsertRequest>,
    ) -> Result<Response<pb::UpsertResponse>, Status> {
        Ok(Response::new(upsert_response(self.upsert_one(req.into_inner()).await?)))
    }

    async fn upsert_stream(
        &self,
        req: Request<Streaming<pb::UpsertRequest>>,
    ) -> Result<Response<pb::UpsertResponse>, Status> {
        let mut stream = req.into_inner();
        let mut total = Upserted::default();
        // Batches are applied one after another, in order; each is durable before the next is read.
        while let Some(msg) = stream.message().await? {
            let u = self.upsert_one(msg).await?;
            total.upserted += u.upserted;
            total.sequence = u.sequence;
            total.embedded += u.embedded;
            total.truncated_ids.extend(u.truncated_ids);
        }
        Ok(Response::new(upsert_response(total)))
    }

    async fn get(
        &self,
        req: Request<pb::GetDocumentsRequest>,
    ) -> Result<Response<pb::GetDocumentsResponse>, Status> {
        let req = req.into_inner();
        if req.ids.len() > self.0.max_batch() {
            return Err(Error::invalid(
                "ids",
                format!("at most {} ids per request", self.0.max_batch()),
            )
            .into());
        }
        for (i, id) in req.ids.iter().enumerate() {
            convert::doc_id(&format!("ids[{i}]"), id)?;
        }
        let with = convert::with(req.include);
        let ids = req.ids;
        let name = req.collection;
        let (ids, docs) = self
            .0
            .run(move |e| {
                let docs = e.get(&name)?.get(&ids, with)?;
                Ok((ids, docs))
            })
            .await?;
        let mut out = pb::GetDocumentsResponse::default();
        for (id, d) in ids.into_iter().zip(docs) {
            match d {
                Some(d) => out.documents.push(convert::document_out(d)),
                None => out.missing.push(id),
            }
        }
        Ok(Response::new(out))
    }

    async fn delete(
        &self,
        req: Request<pb::DeleteDocumentsRequest>,
    ) -> Result<Response<pb::DeleteDocumentsResponse>, Status> {
        use pb::delete_documents_request::Selector;
        let req = req.into_inner();
        let name = req.collection;
        let (deleted, sequence) = match req.selector {
            None => return Err(Error::invalid("selector", "give ids or filter").into()),
            Some(Selector::Ids(l)) => {
                if l.ids.len() > self.0.max_batch() {
                    let msg = format!("at most {} ids per request", self.0.max_batch());
                    return Err(Error::invalid("ids.ids", msg).into());
                }
                for (i, id) in l.ids.iter().enumerate() {
                    convert::doc_id(&format!("ids.ids[{i}]"), id)?;
                }
                self.0.run(move |e| e.get(&name)?.delete_ids(&l.ids)).await?
            }
            Some(Selector::Filter(f)) => {
                let f = convert::filter("filter", Some(f))?.expect("filter given");
                self.0.run(move |e| e.get(&name)?.delete_filter(&f)).await?
            }
        };
        Ok(Response::new(pb::DeleteDocumentsResponse { deleted, sequence }))
    }

    async fn count(
        &self,
        req: Request<pb::CountRequest>,
    ) -> Result<Response<pb::CountResponse>, Status> {
        let req = req.into_inner();
        let f = convert::filter("filter", req.filter)?;
        let name = req.collection;
        let count = self.0.run(move |e| e.get(&name)?.count(f.as_ref())).await?;
        Ok(Response::new(pb::CountResponse { count }))
    }

    async fn scroll(
        &self,
        req: Request<pb::ScrollRequest>,
    ) -> Result<Response<pb::ScrollResponse>, Status> {
        let req = req.into_inner();
        let limit = match req.limit {
            0 => 100,
            l if l as usize > super::model::MAX_TOP_K => {
                let msg = format!("must be at most {}", super::model::MAX_TOP_K);
                return Err(Error::invalid("limit", msg).into());
            }
            l => l as usize,
        };
        let cursor = match req.cursor.as_str() {
            "" => 0,
            c => c.parse::<u32>().map_err(|_| {
                Error::invalid("cursor", "not a cursor returned by Scroll (pass next_cursor as is)")
            })?,
        };
        let f = convert::filter("filter", req.filter)?;
        let with = convert::with(req.include);
        let name = req.collection;
        let (docs, next) =
            self.0.run(move |e| e.get(&name)?.scroll(f.as_ref(), cursor, limit, with)).await?;
        Ok(Response::new(pb::ScrollResponse {
            documents: docs.into_iter().map(convert::document_out).collect(),
            next_cursor: next.map(|n| n.to_string()).unwrap_or_default(),
        }))
    }
}

/// `hirevec.v1.Search`.
#[derive(Debug, Clone)]
pub struct SearchService(pub Ctx);

/// A search's answer before conversion: hits with their rerank scores, and what was truncated.
struct Answer {
    hits: Vec<super::collection::SearchHit>,
    rerank_scores: Option<Vec<f32>>,
    query_truncated: bool,
    rerank_truncated_ids: Vec<String>,
}

impl Answer {
    /// Vector hits, not reranked.
    fn hits(hits: Vec<super::collection::SearchHit>, query_truncated: bool) -> Answer {
        Answer { hits, rerank_scores: None, query_truncated, rerank_truncated_ids: Vec::new() }
    }
}

fn response(a: Answer, include_text: bool) -> pb::SearchResponse {
    let rerank = a.rerank_scores.map(|s| s.into_iter().map(Some).collect::<Vec<_>>());
    let rerank = rerank.unwrap_or_else(|| vec![None; a.hits.len()]);
    pb::SearchResponse {
        hits: a
            .hits
            .into_iter()
            .zip(rerank)
            .map(|(h, rerank_score)| pb::SearchHit {
                id: h.doc.meta.id,
                score: h.score,
                kind: convert::kind_out(h.doc.meta.kind),
                payload: convert::payload_out(&h.doc.meta.payload),
                // Reranking reads the texts; they are returned only when asked for.
                text: if include_text { h.doc.text.unwrap_or_default() } else { String::new() },
                vector: h.doc.vector.unwrap_or_default(),
                rerank_score,
            })
            .collect(),
        query_truncated: a.query_truncated,
        rerank_truncated_ids: a.rerank_truncated_ids,
    }
}

impl SearchService {
    /// Embeds a text query with the collection's model and instruction; returns whether the
    /// text was truncated. A vector query is left as is.
    async fn embed_query(&self, field: &str, name: &str, plan: &mut SearchPlan) -> Result<bool> {
        let Some(t) = &plan.text else { return Ok(false) };
        let config = self.0.engine.get(name)?.config();
        let embedder = self.0.models.bound(name, config.model.as_ref())?;
        let kind = registry::query_kind(
            embedder.info(),
            field,
            t.instruction.as_deref(),
            &t.task,
            config.query_instruction.as_ref().map(|q| q.text()),
        )?;
        let out = embedder.embed(vec![t.text.clone()], kind).await?;
        plan.query.vector = out.vector(0).to_vec();
        Ok(out.truncated[0])
    }

    /// Runs one search end to end: embed, vector search, rerank.
    async fn answer(&self, field: String, name: String, mut plan: SearchPlan) -> Result<Answer> {
        let query_truncated = self.embed_query(&field, &name, &mut plan).await?;
        let (q, f, n) = (plan.query, field.clone(), name);
        let hits = self.0.run(move |e| e.get(&n)?.search(&q, &f)).await?;
        let mut answer = Answer::hits(hits, query_truncated);
        if let (Some(spec), Some(text)) = (plan.rerank, plan.text) {
            self.rerank(&field, &text.text, &spec, &mut answer).await?;
        }
        Ok(answer)
    }

    /// Reorders `answer.hits` by the reranker's score of (query, hit text), keeping the best
    /// `top_k` that pass the rerank `min_score`. Hits without a stored text cannot be judged and
    /// are left out.
    async fn rerank(
        &self,
        field: &str,
        query: &str,
        spec: &convert::RerankSpec,
        answer: &mut Answer,
    ) -> Result<()> {
        let reranker = self.0.models.reranker(&format!("{field}rerank.model"), &spec.model)?;
        let hits: Vec<_> = std::mem::take(&mut answer.hits)
            .into_iter()
            .filter(|h| h.doc.text.as_deref().is_some_and(|t| !t.is_empty()))
            .collect();
        let pairs = hits
            .iter()
            .map(|h| Pair {
                query: query.to_owned(),
                document: h.doc.text.clone().unwrap_or_default(),
                instruction: spec.instruction.clone(),
            })
            .collect();
        let out = reranker.rerank(pairs).await?;
        let mut scored: Vec<(f32, bool, super::collection::SearchHit)> = out
            .scores
            .into_iter()
            .zip(out.truncated)
            .zip(hits)
            .map(|((s, t), h)| (s, t, h))
            .filter(|(s, _, _)| spec.min_score.is_none_or(|m| *s >= m))
            .collect();
        // By rerank score; equal scores keep the vector search's order (score, then id).
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        scored.truncate(spec.top_k);
        answer.rerank_truncated_ids =
            scored.iter().filter(|(_, t, _)| *t).map(|(_, _, h)| h.doc.meta.id.clone()).collect();
        answer.rerank_scores = Some(scored.iter().map(|(s, _, _)| *s).collect());
        answer.hits = scored.into_iter().map(|(_, _, h)| h).collect();
        Ok(())
    }
}

#[tonic::async_trait]
impl Search for SearchService {
    async fn search(
        &self,
        req: Request<pb::SearchRequest>,
    ) -> Result<Response<pb::SearchResponse>, Status> {
        let req = req.into_inner();
        let name = req.collection.clone();
        let include_text = req.include.as_ref().is_some_and(|i| i.text);
        let plan = convert::search("", req, self.0.max_text_bytes)?;
        let answer = self.answer(String::new(), name, plan).await?;
        Ok(Response::new(response(answer, include_text)))
    }

    async fn search_batch(
        &self,
        req: Request<pb::SearchBatchRequest>,
    ) -> Result<Response<pb::SearchBatchResponse>, Status> {
        let searches = req.into_inner().searches;
        if searches.len() > self.0.max_batch() {
            let msg = format!("at most {} searches per batch", self.0.max_batch());
            return Err(Error::invalid("searches", msg).into());
        }
        let plans = searches
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                let field = format!("searches[{i}].");
                let name = r.collection.clone();
                let include_text = r.include.as_ref().is_some_and(|i| i.text);
                convert::search(&field, r, self.0.max_text_bytes)
                    .map(|p| (field, name, include_text, p))
            })
            .collect::<Result<Vec<_>>>()?;
        let text_or_rerank =
            plans.iter().any(|(_, _, _, p)| p.text.is_some() || p.rerank.is_some());
        if text_or_rerank {
            // Text queries wait on the model thread, whose queue batches concurrent requests
            // together, so the searches run as concurrent futures rather than one blocking task.
            let answers = futures::future::try_join_all(plans.into_iter().map(
                |(field, name, include_text, plan)| async move {
                    let a = self.answer(field, name, plan).await?;
                    Ok::<_, Error>(response(a, include_text))
                },
            ))
            .await?;
            return Ok(Response::new(pb::SearchBatchResponse { results: answers }));
        }
        let includes: Vec<bool> = plans.iter().map(|(_, _, t, _)| *t).collect();
        let results = self
            .0
            .run(move |e| {
                use rayon::prelude::*;
                // One blocking task, the queries spread over the rayon pool.
                plans
                    .par_iter()
                    .map(|(field, name, _, p)| {
                        e.get(name)
                            .map_err(|_| Error::CollectionNotFound { name: name.clone() })?
                            .search(&p.query, field)
                    })
                    .collect::<Result<Vec<_>>>()
            })
            .await?;
        Ok(Response::new(pb::SearchBatchResponse {
            results: results
                .into_iter()
                .zip(includes)
                .map(|(hits, include_text)| response(Answer::hits(hits, false), include_text))
                .collect(),
        }))
    }
}

/// `hirevec.v1.Models`.
#[derive(Debug, Clone)]
pub struct ModelsService(pub Ctx);

#[tonic::async_trait]
impl Models for ModelsService {
    async fn list(
        &self,
        _req: Request<pb::ListModelsRequest>,
    ) -> Result<Response<pb::ListModelsResponse>, Status> {
        let models = registry::infos(&self.0.models)
            .into_iter()
            .map(|(i, is_default)| pb::ModelInfo {
                id: i.id,
                kind: i.kind.as_str().into(),
                architecture: i.architecture.into(),
                dim: i.dim as u32,
                max_tokens: i.max_tokens as u32,
                takes_instruction: i.takes_instruction,
                hash: i.hash,
                compute: i.compute,
                is_default,
            })
            .collect();
        let tasks = crate::models::instructions::TASKS
            .iter()
            .map(|(n, t)| pb::Task { name: (*n).into(), instruction: (*t).into() })
            .collect();
        Ok(Response::new(pb::ListModelsResponse { models, tasks }))
    }

    async fn embed(
        &self,
        req: Request<pb::EmbedRequest>,
    ) -> Result<Response<pb::EmbedResponse>, Status> {
        let req = req.into_inner();
        for (i, t) in req.texts.iter().enumerate() {
            convert::text_len(&format!("texts[{i}]"), t, self.0.max_text_bytes)?;
        }
        let embedder = self.0.models.embedder("model", &req.model)?;
        let info = embedder.info();
        if req.texts.is_empty() || req.texts.len() > self.0.max_batch() {
            let msg = format!("give 1 to {} texts", self.0.max_batch());
            return Err(Error::invalid("texts", msg).into());
        }
        if let Some(i) = req.texts.iter().position(|t| t.is_empty()) {
            return Err(Error::invalid(format!("texts[{i}]"), "must not be empty").into());
        }
        convert::instruction_in("instruction", req.instruction.as_deref())?;
        let kind = if req.is_query {
            registry::query_kind(info, "", req.instruction.as_deref(), &req.task, None)?
        } else {
            if req.instruction.is_some() || !req.task.is_empty() {
                let f = if req.task.is_empty() { "instruction" } else { "task" };
                return Err(Error::invalid(f, "applies to queries only (set is_query)").into());
            }
            EmbedKind::Document
        };
        let dims = match req.dimensions {
            None | Some(0) => info.dim,
            Some(d) if d as usize > info.dim => {
                let msg = format!("must be at most the model's dimension {}", info.dim);
                return Err(Error::invalid("dimensions", msg).into());
            }
            Some(d) => d as usize,
        };
        let model = info.id.clone();
        let out = embedder.embed(req.texts, kind).await.map_err(Error::from)?;
        let out = if dims < out.dim { out.cut(dims).map_err(Error::from)? } else { out };
        let embeddings = (0..out.len())
            .map(|i| pb::Embedding {
                values: out.vector(i).to_vec(),
                truncated: out.truncated[i],
                tokens: out.token_counts[i],
            })
            .collect();
        Ok(Response::new(pb::EmbedResponse { model, dimensions: dims as u32, embeddings }))
    }

    async fn rerank(
        &self,
        req: Request<pb::RerankRequest>,
    ) -> Result<Response<pb::RerankResponse>, Status> {
        let req = req.into_inner();
        convert::text_len("query", &req.query, self.0.max_text_bytes)?;
        for (i, d) in req.documents.iter().enumerate() {
            convert::text_len(&format!("documents[{i}]"), d, self.0.max_text_bytes)?;
        }
        let reranker = self.0.models.reranker("model", &req.model)?;
        if req.query.is_empty() {
            return Err(Error::invalid("query", "must not be empty").into());
        }
        if req.documents.is_empty() || req.documents.len() > self.0.max_batch() {
            let msg = format!("give 1 to {} documents", self.0.max_batch());
            return Err(Error::invalid("documents", msg).into());
        }
        convert::instruction_in("instruction", req.instruction.as_deref())?;
        let instruction =
            registry::requested_instruction("", req.instruction.as_deref(), &req.task)?;
        let model = reranker.info().id.clone();
        let pairs = req
            .documents
            .into_iter()
            .map(|document| Pair {
                query: req.query.clone(),
                document,
                instruction: instruction.clone(),
            })
            .collect();
        let out = reranker.rerank(pairs).await.map_err(Error::from)?;
        let results = out
            .scores
            .into_iter()
            .zip(out.truncated)
            .enumerate()
            .map(|(i, (score, truncated))| pb::RerankResult { index: i as u32, score, truncated })
            .collect();
        Ok(Response::new(pb::RerankResponse { model, results }))
    }
}
