//! The gRPC edge: each handler converts the request (`convert`), runs the engine call on a
//! blocking thread, and converts the answer. Errors become statuses in one place
//! (`impl From<Error> for Status` in `error.rs`).
use std::sync::Arc;

use tokio::sync::Semaphore;
use tonic::{Request, Response, Status, Streaming};

use super::collection::Collection;
use super::convert;
use super::engine::Engine;
use crate::error::{Error, Result};
use crate::proto as pb;
use crate::proto::collections_server::Collections;
use crate::proto::documents_server::Documents;
use crate::proto::search_server::Search;

/// Shared by the three services.
#[derive(Debug, Clone)]
pub struct Ctx {
    engine: Arc<Engine>,
    permits: Arc<Semaphore>,
    max_inflight: usize,
}

impl Ctx {
    /// A context over `engine` admitting `max_inflight` concurrent engine calls.
    pub fn new(engine: Arc<Engine>, max_inflight: usize) -> Self {
        Self { engine, permits: Arc::new(Semaphore::new(max_inflight)), max_inflight }
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
        let config = convert::collection_config(req.config)?;
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
                c.update(req.ef, req.seal_threshold)?;
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

impl DocumentsService {
    async fn upsert_one(&self, req: pb::UpsertRequest) -> Result<(u64, u64)> {
        let docs = convert::upsert_batch(req.documents, self.0.max_batch())?;
        let n = docs.len() as u64;
        let name = req.collection;
        let seq = self.0.run(move |e| e.get(&name)?.upsert(docs)).await?;
        Ok((n, seq))
    }
}

#[tonic::async_trait]
impl Documents for DocumentsService {
    async fn upsert(
        &self,
        req: Request<pb::UpsertRequest>,
    ) -> Result<Response<pb::UpsertResponse>, Status> {
        let (upserted, sequence) = self.upsert_one(req.into_inner()).await?;
        Ok(Response::new(pb::UpsertResponse { upserted, sequence }))
    }

    async fn upsert_stream(
        &self,
        req: Request<Streaming<pb::UpsertRequest>>,
    ) -> Result<Response<pb::UpsertResponse>, Status> {
        let mut stream = req.into_inner();
        let (mut upserted, mut sequence) = (0, 0);
        // Batches are applied one after another, in order; each is durable before the next is read.
        while let Some(msg) = stream.message().await? {
            let (n, seq) = self.upsert_one(msg).await?;
            upserted += n;
            sequence = seq;
        }
        Ok(Response::new(pb::UpsertResponse { upserted, sequence }))
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

fn response(hits: Vec<super::collection::SearchHit>) -> pb::SearchResponse {
    pb::SearchResponse {
        hits: hits
            .into_iter()
            .map(|h| pb::SearchHit {
                id: h.doc.meta.id,
                score: h.score,
                kind: convert::kind_out(h.doc.meta.kind),
                payload: convert::payload_out(&h.doc.meta.payload),
                text: h.doc.text.unwrap_or_default(),
                vector: h.doc.vector.unwrap_or_default(),
            })
            .collect(),
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
        let q = convert::search("", req)?;
        let hits = self.0.run(move |e| e.get(&name)?.search(&q, "")).await?;
        Ok(Response::new(response(hits)))
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
        let queries = searches
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                let field = format!("searches[{i}].");
                let name = r.collection.clone();
                convert::search(&field, r).map(|q| (field, name, q))
            })
            .collect::<Result<Vec<_>>>()?;
        let results = self
            .0
            .run(move |e| {
                use rayon::prelude::*;
                // One blocking task, the queries spread over the rayon pool.
                queries
                    .par_iter()
                    .map(|(field, name, q)| {
                        e.get(name)
                            .map_err(|_| Error::CollectionNotFound { name: name.clone() })?
                            .search(q, field)
                    })
                    .collect::<Result<Vec<_>>>()
            })
            .await?;
        Ok(Response::new(pb::SearchBatchResponse {
            results: results.into_iter().map(response).collect(),
        }))
    }
}
