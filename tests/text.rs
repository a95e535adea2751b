//! Text in, matches out, through the real server: collections bound to an embedding model, text
//! upserts, text searches with instructions, `Models.Embed`, and the refusals that keep a
//! collection's vectors from mixing two models.
mod common;

use common::*;
use hirevec::proto;
use hirevec::proto::DocumentKind::{Jd, Resume};
use tonic::Code;

fn assert_status<T: std::fmt::Debug>(r: Result<T, tonic::Status>, code: Code, needle: &str) {
    let e = r.expect_err("expected an error");
    assert_eq!(e.code(), code, "status {e:?}");
    assert!(e.message().contains(needle), "message {:?} should name {needle:?}", e.message());
}

fn text_doc(id: &str, kind: proto::DocumentKind, text: &str) -> proto::Document {
    proto::Document { id: id.into(), kind: kind as i32, text: text.into(), ..Default::default() }
}

const DOCS: &[(&str, &str)] = &[
    (
        "cv-rust",
        "Backend engineer, 6 years of Rust and Go, built Kafka pipelines and gRPC services at a \
         payments company.",
    ),
    (
        "cv-nurse",
        "Registered nurse with 8 years in intensive care units, patient monitoring and \
         medication administration.",
    ),
    (
        "cv-chef",
        "Head chef, ran a 40-cover restaurant kitchen, menu design, food cost control, staff \
         training.",
    ),
    (
        "cv-accountant",
        "Chartered accountant: audits, IFRS reporting, tax returns and month-end closing for \
         mid-size firms.",
    ),
    (
        "cv-driver",
        "Truck driver with a commercial licence, long-haul freight, 10 years without an \
         accident.",
    ),
];

async fn embed(
    c: &mut Clients,
    model: &str,
    texts: &[&str],
    is_query: bool,
    instruction: Option<&str>,
    task: &str,
    dimensions: Option<u32>,
) -> Vec<proto::Embedding> {
    c.models
        .embed(proto::EmbedRequest {
            model: model.into(),
            texts: texts.iter().map(|t| t.to_string()).collect(),
            is_query,
            instruction: instruction.map(str::to_owned),
            task: task.into(),
            dimensions,
        })
        .await
        .expect("embed")
        .into_inner()
        .embeddings
}

/// Creates collection "x" bound to `model` with a default query task (refused in these tests).
async fn create_with_task(
    c: &mut Clients,
    model: &str,
    task: &str,
) -> Result<tonic::Response<proto::CollectionInfo>, tonic::Status> {
    c.collections
        .create(proto::CreateCollectionRequest {
            name: "x".into(),
            config: Some(proto::CollectionConfig {
                model: model.into(),
                query_task: task.into(),
                ..Default::default()
            }),
        })
        .await
}

fn text_search(collection: &str, text: &str, top_k: u32) -> proto::SearchRequest {
    proto::SearchRequest {
        collection: collection.into(),
        text: text.into(),
        top_k,
        ef: Some(64),
        ..Default::default()
    }
}

fn ids(r: &proto::SearchResponse) -> Vec<&str> {
    r.hits.iter().map(|h| h.id.as_str()).collect()
}

/// The text search and the vector search with the vector `Models.Embed` returns for the same
/// query must agree hit for hit: the server embeds queries exactly as the Embed RPC does.
fn assert_same_hits(a: &proto::SearchResponse, b: &proto::SearchResponse) {
    assert_eq!(ids(a), ids(b));
    for (x, y) in a.hits.iter().zip(&b.hits) {
        assert!((x.score - y.score).abs() < 1e-5, "{} vs {}", x.score, y.score);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minilm_text_upsert_and_search_round_trip() {
    let model_dir = minilm_dir();
    let model = model_dir.to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), &["--model", model]);
    let mut c = server.clients().await;

    let listed = c.models.list(proto::ListModelsRequest {}).await.unwrap().into_inner();
    assert_eq!(listed.models.len(), 1);
    let info = &listed.models[0];
    assert_eq!((info.id.as_str(), info.dim, info.is_default), (model, 384, true));
    assert!(!info.takes_instruction);
    assert!(info.hash.starts_with("blake3:"), "{}", info.hash);
    let task_names: Vec<&str> = listed.tasks.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(task_names, ["jd_to_resume", "resume_to_jd", "jd_to_jd", "resume_to_resume"]);

    // dim left 0: it comes from the model; stored_dim cuts the Matryoshka way.
    let created = create(
        &mut c,
        "cvs",
        proto::CollectionConfig {
            model: model.into(),
            stored_dim: Some(128),
            ..Default::default()
        },
    )
    .await;
    let cfg = created.config.unwrap();
    assert_eq!((cfg.dim, cfg.stored_dim, cfg.model.as_str()), (384, Some(128), model));
    assert_eq!(cfg.model_hash, info.hash, "the collection records the model's hash");

    // A model-bound collection still takes client vectors, in the same batch as texts.
    let mut docs: Vec<proto::Document> =
        DOCS.iter().map(|(id, text)| text_doc(id, Resume, text)).collect();
    let own = embed(&mut c, "", &["Forklift operator in a warehouse"], false, None, "", None).await;
    docs.push(proto::Document {
        id: "cv-own-vector".into(),
        kind: Resume as i32,
        text: "Forklift operator in a warehouse".into(),
        vector: own[0].values.clone(),
        ..Default::default()
    });
    let long = "experienced welder and fabricator ".repeat(200);
    docs.push(text_doc("cv-long", Resume, &long));
    let up = c
        .documents
        .upsert(proto::UpsertRequest { collection: "cvs".into(), documents: docs })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((up.upserted, up.embedded), (7, 6));
    assert_eq!(up.truncated_ids, ["cv-long"], "the 1,000-word text passes MiniLM's 256 tokens");

    // The stored vector is the model's document vector cut to 128 values and re-normalised.
    let got = c
        .documents
        .get(proto::GetDocumentsRequest {
            collection: "cvs".into(),
            ids: vec!["cv-nurse".into()],
            include: Some(proto::Include { vector: true, text: true, ..Default::default() }),
        })
        .await
        .unwrap()
        .into_inner();
    let stored = &got.documents[0];
    assert_eq!(stored.text, DOCS[1].1);
    let want = embed(&mut c, "", &[DOCS[1].1], false, None, "", Some(128)).await;
    assert_eq!(stored.vector.len(), 128);
    for (a, b) in stored.vector.iter().zip(&want[0].values) {
        assert!((a - b).abs() < 2e-3, "stored {a} vs embedded {b} (f16 storage)");
    }

    // Queries as text find the matching resume first.
    for (query, expected) in [
        ("We are hiring a Rust developer to build distributed backend services", "cv-rust"),
        ("ICU nurse wanted for night shifts", "cv-nurse"),
        ("Sous chef for a busy restaurant kitchen", "cv-chef"),
        ("Auditor with IFRS experience", "cv-accountant"),
        ("Warehouse worker who can drive a forklift", "cv-own-vector"),
    ] {
        let r = c.search.search(text_search("cvs", query, 3)).await.unwrap().into_inner();
        assert_eq!(r.hits[0].id, expected, "query {query:?} gave {:?}", ids(&r));
        assert!(!r.query_truncated);
        // The query vector is the model's full 384 values; the collection cuts it to 128.
        let v = embed(&mut c, "", &[query], true, None, "", None).await;
        let by_vector = c
            .search
            .search(proto::SearchRequest {
                collection: "cvs".into(),
                vector: v[0].values.clone(),
                top_k: 3,
                ef: Some(64),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_same_hits(&r, &by_vector);
    }

    // SearchBatch mixes text and vector queries.
    let full =
        embed(&mut c, "", &["ICU nurse wanted for night shifts"], true, None, "", None).await;
    let batch = c
        .search
        .search_batch(proto::SearchBatchRequest {
            searches: vec![
                text_search("cvs", "ICU nurse wanted for night shifts", 3),
                proto::SearchRequest {
                    collection: "cvs".into(),
                    vector: full[0].values.clone(),
                    top_k: 3,
                    ef: Some(64),
                    ..Default::default()
                },
            ],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(batch.results[0].hits[0].id, "cv-nurse");
    assert_same_hits(&batch.results[0], &batch.results[1]);

    // MiniLM takes no instruction: a request that sends one is told so, by field.
    let mut with_instruction = text_search("cvs", "nurse", 3);
    with_instruction.instruction = Some("Find nurses".into());
    assert_status(
        c.search.search(with_instruction).await,
        Code::InvalidArgument,
        "instruction: model",
    );
    let mut with_task = text_search("cvs", "nurse", 3);
    with_task.task = "jd_to_resume".into();
    assert_status(c.search.search(with_task).await, Code::InvalidArgument, "task");
    assert_status(
        create_with_task(&mut c, model, "jd_to_resume").await,
        Code::InvalidArgument,
        "config.query_task",
    );
    assert_status(
        c.collections
            .create(proto::CreateCollectionRequest {
                name: "x".into(),
                config: Some(proto::CollectionConfig {
                    model: model.into(),
                    dim: 512,
                    ..Default::default()
                }),
            })
            .await,
        Code::InvalidArgument,
        "config.dim",
    );
    assert_status(
        c.collections
            .create(proto::CreateCollectionRequest {
                name: "x".into(),
                config: Some(proto::CollectionConfig {
                    model: "no/such-model".into(),
                    ..Default::default()
                }),
            })
            .await,
        Code::InvalidArgument,
        "config.model",
    );

    // A collection without a model refuses text, and the refused batch writes nothing.
    create(&mut c, "plain", config(384)).await;
    let mixed = vec![
        proto::Document {
            id: "a".into(),
            kind: Jd as i32,
            vector: full[0].values.clone(),
            ..Default::default()
        },
        text_doc("b", Jd, "text only"),
    ];
    assert_status(
        c.documents
            .upsert(proto::UpsertRequest { collection: "plain".into(), documents: mixed })
            .await,
        Code::InvalidArgument,
        "documents[1].vector",
    );
    let count = c
        .documents
        .count(proto::CountRequest { collection: "plain".into(), filter: None })
        .await
        .unwrap()
        .into_inner()
        .count;
    assert_eq!(count, 0, "a refused batch changes nothing");
    assert_status(
        c.search.search(text_search("plain", "nurse", 3)).await,
        Code::FailedPrecondition,
        "no embedding model",
    );

    // Embed: Matryoshka cut re-normalises; bad requests name the field.
    let cut = embed(&mut c, "", &["Rust engineer"], true, None, "", Some(64)).await;
    let norm: f32 = cut[0].values.iter().map(|x| x * x).sum::<f32>().sqrt();
    assert_eq!(cut[0].values.len(), 64);
    assert!((norm - 1.0).abs() < 1e-5, "norm {norm}");
    let bad = |f: fn(&mut proto::EmbedRequest)| {
        let mut r = proto::EmbedRequest { texts: vec!["x".into()], ..Default::default() };
        f(&mut r);
        r
    };
    assert_status(c.models.embed(bad(|r| r.texts.clear())).await, Code::InvalidArgument, "texts");
    assert_status(
        c.models.embed(bad(|r| r.texts.push(String::new()))).await,
        Code::InvalidArgument,
        "texts[1]",
    );
    assert_status(
        c.models.embed(bad(|r| r.dimensions = Some(385))).await,
        Code::InvalidArgument,
        "dimensions",
    );
    assert_status(
        c.models.embed(bad(|r| r.model = "other".into())).await,
        Code::InvalidArgument,
        "model",
    );
    assert_status(
        c.models.embed(bad(|r| r.task = "jd_to_resume".into())).await,
        Code::InvalidArgument,
        "task",
    );
    assert_status(
        c.search
            .search(proto::SearchRequest {
                collection: "cvs".into(),
                text: "x".into(),
                vector: vec![1.0; 384],
                top_k: 3,
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        "text",
    );
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qwen3_query_instructions_default_override_and_off() {
    let model_dir = tiny_qwen3_dir();
    let model = model_dir.to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), &["--model", model]);
    let mut c = server.clients().await;

    assert_status(
        create_with_task(&mut c, model, "cv_to_everything").await,
        Code::InvalidArgument,
        "config.query_task",
    );
    let info = create(
        &mut c,
        "jobs",
        proto::CollectionConfig {
            model: model.into(),
            query_task: "resume_to_jd".into(),
            dtype: proto::Dtype::F32 as i32,
            ..Default::default()
        },
    )
    .await;
    let cfg = info.config.unwrap();
    assert_eq!(cfg.query_task, "resume_to_jd");
    let dim = cfg.dim;
    let texts: Vec<String> =
        (0..40).map(|i| format!("job description number {i}: role {}", i * 7)).collect();
    c.documents
        .upsert(proto::UpsertRequest {
            collection: "jobs".into(),
            documents: texts
                .iter()
                .enumerate()
                .map(|(i, t)| text_doc(&format!("jd-{i}"), Jd, t))
                .collect(),
        })
        .await
        .unwrap();

    let query = "resume: data engineer, 4 years of Spark";
    let vector_search = |v: Vec<f32>| proto::SearchRequest {
        collection: "jobs".into(),
        vector: v,
        top_k: 10,
        ef: Some(64),
        ..Default::default()
    };
    // The collection's default task is used when the request names none...
    let by_default = c.search.search(text_search("jobs", query, 10)).await.unwrap().into_inner();
    let v = embed(&mut c, "", &[query], true, None, "resume_to_jd", None).await;
    assert_eq!(v[0].values.len(), dim as usize);
    let expected = c.search.search(vector_search(v[0].values.clone())).await.unwrap().into_inner();
    assert_same_hits(&by_default, &expected);

    // ...a request's task or instruction overrides it...
    let mut r = text_search("jobs", query, 10);
    r.task = "jd_to_jd".into();
    let by_task = c.search.search(r).await.unwrap().into_inner();
    let v = embed(&mut c, "", &[query], true, None, "jd_to_jd", None).await;
    assert_same_hits(
        &by_task,
        &c.search.search(vector_search(v[0].values.clone())).await.unwrap().into_inner(),
    );
    let mut r = text_search("jobs", query, 10);
    r.instruction = Some("Given a resume, retrieve matching jobs".into());
    let by_text = c.search.search(r).await.unwrap().into_inner();
    let v =
        embed(&mut c, "", &[query], true, Some("Given a resume, retrieve matching jobs"), "", None)
            .await;
    assert_same_hits(
        &by_text,
        &c.search.search(vector_search(v[0].values.clone())).await.unwrap().into_inner(),
    );

    // ...and "" sends the bare text, which is exactly how a document is embedded.
    let mut r = text_search("jobs", texts[3].as_str(), 1);
    r.instruction = Some(String::new());
    let bare = c.search.search(r).await.unwrap().into_inner();
    assert_eq!(bare.hits[0].id, "jd-3");
    assert!(
        bare.hits[0].score > 0.9999,
        "a document found by its own text: {}",
        bare.hits[0].score
    );

    // The three query forms really differ (the instruction reaches the model).
    let scores = |r: &proto::SearchResponse| r.hits.iter().map(|h| h.score).collect::<Vec<_>>();
    assert_ne!(scores(&by_default), scores(&by_task));
    assert_ne!(scores(&by_task), scores(&by_text));

    // Changing the default instruction changes what a plain text query means.
    let updated = c
        .collections
        .update(proto::UpdateCollectionRequest {
            name: "jobs".into(),
            query_task: Some("jd_to_jd".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.config.unwrap().query_task, "jd_to_jd");
    let now = c.search.search(text_search("jobs", query, 10)).await.unwrap().into_inner();
    assert_same_hits(&now, &by_task);

    let mut both = text_search("jobs", query, 10);
    both.task = "jd_to_jd".into();
    both.instruction = Some("x".into());
    assert_status(c.search.search(both).await, Code::InvalidArgument, "task");
    let mut unknown = text_search("jobs", query, 10);
    unknown.task = "nope".into();
    assert_status(c.search.search(unknown).await, Code::InvalidArgument, "task");
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_or_missing_model_is_refused_for_text_but_vectors_still_work() {
    // A private copy of the tiny model, so its weights can change under the same id.
    let model_dir = tempfile::tempdir().unwrap();
    for f in std::fs::read_dir(tiny_qwen3_dir()).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), model_dir.path().join(f.file_name())).unwrap();
    }
    let model = model_dir.path().to_str().unwrap().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), &["--model", &model]);
    let mut c = server.clients().await;
    let info = create(
        &mut c,
        "cvs",
        proto::CollectionConfig { model: model.clone(), ..Default::default() },
    )
    .await;
    let dim = info.config.unwrap().dim;
    c.documents
        .upsert(proto::UpsertRequest {
            collection: "cvs".into(),
            documents: vec![text_doc("cv-1", Resume, "welder"), text_doc("cv-2", Resume, "baker")],
        })
        .await
        .unwrap();
    server.stop();

    // Same id, other weights: flip one byte near the end of the tensor data.
    let weights = model_dir.path().join("model.safetensors");
    let mut bytes = std::fs::read(&weights).unwrap();
    let at = bytes.len() - 3;
    bytes[at] ^= 0x01;
    std::fs::write(&weights, bytes).unwrap();
    let server = Server::start_with(dir.path(), &["--model", &model]);
    let mut c = server.clients().await;
    assert_status(
        c.search.search(text_search("cvs", "welder", 2)).await,
        Code::FailedPrecondition,
        "hashing",
    );
    assert_status(
        c.documents
            .upsert(proto::UpsertRequest {
                collection: "cvs".into(),
                documents: vec![text_doc("cv-3", Resume, "plumber")],
            })
            .await,
        Code::FailedPrecondition,
        "hashing",
    );
    let hits = c
        .search
        .search(proto::SearchRequest {
            collection: "cvs".into(),
            vector: vec![0.5; dim as usize],
            top_k: 5,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(hits.hits.len(), 2, "vector search is unaffected");
    server.stop();

    // No model at all.
    let server = Server::start_with(dir.path(), &[]);
    let mut c = server.clients().await;
    assert_status(
        c.search.search(text_search("cvs", "welder", 2)).await,
        Code::FailedPrecondition,
        "did not load",
    );
    assert_status(
        c.models.embed(proto::EmbedRequest { texts: vec!["x".into()], ..Default::default() }).await,
        Code::FailedPrecondition,
        "no embedding model",
    );
    assert_status(
        c.models
            .rerank(proto::RerankRequest {
                query: "welder".into(),
                documents: vec!["x".into()],
                ..Default::default()
            })
            .await,
        Code::FailedPrecondition,
        "no reranker is loaded",
    );
    server.stop();
}

fn tiny_reranker_dir() -> std::path::PathBuf {
    root().join("../shared/fixtures/tiny-qwen3/reranker")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_with_rerank_orders_by_the_rerank_score_and_matches_models_rerank() {
    let embedder = tiny_qwen3_dir();
    let reranker = tiny_reranker_dir();
    let (model, rr_model) = (embedder.to_str().unwrap(), reranker.to_str().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(
        dir.path(),
        &["--model", model, "--reranker", rr_model, "--rerank-max-tokens", "128"],
    );
    let mut c = server.clients().await;

    let listed = c.models.list(proto::ListModelsRequest {}).await.unwrap().into_inner();
    let kinds: Vec<(&str, &str, bool)> =
        listed.models.iter().map(|m| (m.id.as_str(), m.kind.as_str(), m.is_default)).collect();
    assert_eq!(kinds, [(model, "embedding", true), (rr_model, "reranker", true)]);
    assert_eq!(listed.models[1].max_tokens, 128);

    create(&mut c, "cvs", proto::CollectionConfig { model: model.into(), ..Default::default() })
        .await;
    let mut docs: Vec<proto::Document> =
        DOCS.iter().map(|(id, text)| text_doc(id, Resume, text)).collect();
    let long = "Rust, tokio and gRPC services at scale. ".repeat(60);
    docs.push(text_doc("cv-long", Resume, &long));
    // A document without text cannot be judged by the reranker and is left out.
    docs.push(proto::Document {
        id: "cv-vector-only".into(),
        kind: Resume as i32,
        vector: embed(&mut c, "", &["vector only"], false, None, "", None).await[0].values.clone(),
        ..Default::default()
    });
    c.documents
        .upsert(proto::UpsertRequest { collection: "cvs".into(), documents: docs })
        .await
        .unwrap();

    let query = "Senior Rust engineer for a payments backend";
    let plain = c.search.search(text_search("cvs", query, 7)).await.unwrap().into_inner();
    assert_eq!(plain.hits.len(), 7);
    assert!(plain.hits.iter().all(|h| h.rerank_score.is_none()));

    let mut r = text_search("cvs", query, 3);
    r.rerank = Some(proto::Rerank { top_n: 7, task: "jd_to_resume".into(), ..Default::default() });
    r.include = Some(proto::Include { text: true, ..Default::default() });
    let reranked = c.search.search(r.clone()).await.unwrap().into_inner();
    assert_eq!(reranked.hits.len(), 3, "top_k of the reranked hits");
    let scores: Vec<f32> = reranked.hits.iter().map(|h| h.rerank_score.unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "ordered by rerank score: {scores:?}");
    assert!(reranked.hits.iter().all(|h| h.id != "cv-vector-only"));

    // The search's rerank scores are exactly what Models.Rerank gives for the same pairs, and
    // the reranked hits are the best of the 6 texts the vector search found.
    let texts: Vec<String> =
        DOCS.iter().map(|(_, t)| t.to_string()).chain([long.clone()]).collect();
    let direct = c
        .models
        .rerank(proto::RerankRequest {
            query: query.into(),
            documents: texts.clone(),
            task: "jd_to_resume".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(direct.model, rr_model);
    assert_eq!(direct.results.iter().map(|r| r.index).collect::<Vec<_>>(), [0, 1, 2, 3, 4, 5]);
    let truncated: Vec<bool> = direct.results.iter().map(|r| r.truncated).collect();
    assert_eq!(truncated, [false, false, false, false, false, true]);
    let mut best: Vec<(f32, &str)> = direct
        .results
        .iter()
        .map(|r| (r.score, if r.index == 5 { "cv-long" } else { DOCS[r.index as usize].0 }))
        .collect();
    best.sort_by(|a, b| b.0.total_cmp(&a.0));
    for (hit, (score, id)) in reranked.hits.iter().zip(&best) {
        assert_eq!(hit.id, *id);
        assert!((hit.rerank_score.unwrap() - score).abs() < 1e-6);
        let vector_hit = plain.hits.iter().find(|h| h.id == hit.id).unwrap();
        assert!((hit.score - vector_hit.score).abs() < 1e-6, "the cosine score is kept");
        assert!(!hit.text.is_empty());
    }
    let long_reranked = reranked.hits.iter().any(|h| h.id == "cv-long");
    assert_eq!(reranked.rerank_truncated_ids.contains(&"cv-long".to_string()), long_reranked);

    // min_score applies to the rerank score: a threshold between the 1st and 2nd drops the rest.
    let mut r2 = r.clone();
    let cut = (best[0].0 + best[1].0) / 2.0;
    r2.rerank.as_mut().unwrap().min_score = Some(cut);
    r2.include = None;
    let top = c.search.search(r2).await.unwrap().into_inner();
    assert_eq!(top.hits.len(), 1);
    assert_eq!(top.hits[0].id, best[0].1);
    assert!(top.hits[0].text.is_empty(), "texts are read for reranking, returned only if asked");

    // Bad requests name the field.
    let mut no_text = r.clone();
    no_text.text = String::new();
    no_text.vector = plain.hits.iter().map(|_| 0.1).collect();
    assert_status(c.search.search(no_text).await, Code::InvalidArgument, "rerank");
    let mut small = r.clone();
    small.rerank.as_mut().unwrap().top_n = 2;
    assert_status(c.search.search(small).await, Code::InvalidArgument, "rerank.top_n");
    let mut unknown = r.clone();
    unknown.rerank.as_mut().unwrap().model = "nope".into();
    assert_status(c.search.search(unknown).await, Code::InvalidArgument, "rerank.model");
    let mut both = r.clone();
    both.rerank.as_mut().unwrap().instruction = Some("x".into());
    assert_status(c.search.search(both).await, Code::InvalidArgument, "rerank.task");
    assert_status(
        c.models
            .rerank(proto::RerankRequest {
                query: String::new(),
                documents: vec!["d".into()],
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        "query",
    );
    assert_status(
        c.models
            .rerank(proto::RerankRequest {
                query: "Rust ".repeat(300),
                documents: vec!["d".into()],
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        "before the document",
    );
    server.stop();
}
