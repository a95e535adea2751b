//! The gRPC API end to end against the real binary: collections, documents, filtered search,
//! bad input, health and reflection.
mod common;

use common::*;
use hirevec::proto;
use hirevec::proto::DocumentKind::{Jd, Other, Resume};
use rand::SeedableRng;
use tonic::Code;

fn assert_status<T: std::fmt::Debug>(r: Result<T, tonic::Status>, code: Code, needle: &str) {
    let e = r.expect_err("expected an error");
    assert_eq!(e.code(), code, "status {e:?}");
    assert!(e.message().contains(needle), "message {:?} should name {needle:?}", e.message());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collections_lifecycle_and_config_validation() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let mut c = server.clients().await;

    let info = create(&mut c, "jobs", config(8)).await;
    let cfg = info.config.unwrap();
    assert_eq!(cfg.dim, 8);
    assert_eq!(cfg.stored_dim, Some(8), "stored_dim defaults to dim");
    assert_eq!(cfg.dtype, proto::Dtype::F16 as i32, "dtype defaults to F16");
    assert_eq!(cfg.metric, proto::Metric::Cosine as i32);
    let h = cfg.hnsw.unwrap();
    assert_eq!((h.m, h.ef_construction, h.ef), (Some(16), Some(200), Some(64)));
    assert_eq!(cfg.seal_threshold, Some(100_000));

    let mrl = proto::CollectionConfig {
        dim: 16,
        stored_dim: Some(4),
        dtype: proto::Dtype::F32 as i32,
        ..Default::default()
    };
    create(&mut c, "cvs", mrl).await;
    let names: Vec<String> = c
        .collections
        .list(proto::ListCollectionsRequest {})
        .await
        .unwrap()
        .into_inner()
        .collections
        .into_iter()
        .map(|i| i.name)
        .collect();
    assert_eq!(names, ["cvs", "jobs"]);

    let dup = c
        .collections
        .create(proto::CreateCollectionRequest { name: "jobs".into(), config: Some(config(8)) })
        .await;
    assert_status(dup, Code::AlreadyExists, "jobs");
    let bad = |name: &str, config: proto::CollectionConfig| proto::CreateCollectionRequest {
        name: name.into(),
        config: Some(config),
    };
    assert_status(
        c.collections.create(bad("x", config(0))).await,
        Code::InvalidArgument,
        "config.dim",
    );
    assert_status(
        c.collections
            .create(bad(
                "x",
                proto::CollectionConfig { dim: 8, stored_dim: Some(9), ..Default::default() },
            ))
            .await,
        Code::InvalidArgument,
        "config.stored_dim",
    );
    assert_status(
        c.collections
            .create(bad(
                "x",
                proto::CollectionConfig { dim: 8, seal_threshold: Some(10), ..Default::default() },
            ))
            .await,
        Code::InvalidArgument,
        "config.seal_threshold",
    );
    let m1 = proto::CollectionConfig {
        dim: 8,
        hnsw: Some(proto::HnswConfig { m: Some(1), ..Default::default() }),
        ..Default::default()
    };
    assert_status(c.collections.create(bad("x", m1)).await, Code::InvalidArgument, "config.hnsw.m");
    assert_status(c.collections.create(bad("a/b", config(8))).await, Code::InvalidArgument, "name");
    assert_status(c.collections.create(bad("", config(8))).await, Code::InvalidArgument, "name");

    // Only what is safe to change can change.
    let upd = c
        .collections
        .update(proto::UpdateCollectionRequest {
            name: "jobs".into(),
            ef: Some(128),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(upd.into_inner().config.unwrap().hnsw.unwrap().ef, Some(128));
    assert_status(
        c.collections
            .update(proto::UpdateCollectionRequest {
                name: "jobs".into(),
                ef: Some(0),
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        "config.hnsw.ef",
    );

    c.collections.delete(proto::DeleteCollectionRequest { name: "cvs".into() }).await.unwrap();
    assert_status(
        c.collections.get(proto::GetCollectionRequest { name: "cvs".into() }).await,
        Code::NotFound,
        "cvs",
    );
    assert_status(
        c.collections.delete(proto::DeleteCollectionRequest { name: "cvs".into() }).await,
        Code::NotFound,
        "cvs",
    );
    // A dropped name can be created again, empty.
    create(&mut c, "cvs", config(4)).await;
    assert_eq!(count(&mut c, "cvs", None).await, 0);
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_crud_count_scroll_and_search() {
    let seed = seed(11);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let mut c = server.clients().await;
    create(&mut c, "pool", config(8)).await;

    let mut docs = Vec::new();
    for i in 0..300 {
        let kind = [Jd, Resume, Other][i % 3];
        let city = ["oslo", "rome", "lima"][i % 3 / 2 + i % 2];
        docs.push(doc(
            &format!("d{i}"),
            kind,
            random_vector(&mut rng, 8),
            &[
                ("city", s(city)),
                ("years", int((i % 20) as i64)),
                (
                    "skills",
                    proto::Value {
                        kind: Some(proto::value::Kind::StringList(proto::StringList {
                            values: vec!["rust".into(), format!("s{}", i % 7)],
                        })),
                    },
                ),
            ],
        ));
    }
    let r = upsert(&mut c, "pool", docs[..150].to_vec()).await;
    assert_eq!(r.upserted, 150);
    let r2 = upsert(&mut c, "pool", docs[150..].to_vec()).await;
    assert!(r2.sequence > r.sequence, "every acknowledged write gets a new sequence number");
    assert_eq!(count(&mut c, "pool", None).await, 300);
    assert_eq!(count(&mut c, "pool", Some(kind_filter(&[Resume]))).await, 100);

    // Get: request order, missing ids listed, vector on request (unit length, stored precision).
    let got = c
        .documents
        .get(proto::GetDocumentsRequest {
            collection: "pool".into(),
            ids: vec!["d7".into(), "nope".into(), "d3".into()],
            include: Some(proto::Include { payload: true, text: true, vector: true }),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.missing, ["nope"]);
    assert_eq!(got.documents.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(), ["d7", "d3"]);
    let d7 = &got.documents[0];
    assert_eq!(d7.text, "text of d7");
    assert_eq!(d7.kind, docs[7].kind);
    assert_eq!(d7.payload, docs[7].payload);
    let want = normalized(&docs[7].vector);
    assert_eq!(d7.vector.len(), 8);
    for (a, b) in d7.vector.iter().zip(&want) {
        assert!((a - b).abs() < 2e-3, "stored vector {a} vs {b}");
    }
    let bare = c
        .documents
        .get(proto::GetDocumentsRequest {
            collection: "pool".into(),
            ids: vec!["d7".into()],
            include: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        bare.documents[0].vector.is_empty()
            && bare.documents[0].payload.is_empty()
            && bare.documents[0].text.is_empty()
    );

    // Upsert of an existing id replaces the document (and its vector).
    let mut v2 = doc("d7", Jd, random_vector(&mut rng, 8), &[("city", s("paris"))]);
    v2.text = "second version".into();
    upsert(&mut c, "pool", vec![v2.clone()]).await;
    assert_eq!(count(&mut c, "pool", None).await, 300);
    assert_eq!(count(&mut c, "pool", Some(eq("city", s("paris")))).await, 1);
    let hits = c
        .search
        .search(search_req("pool", v2.vector.clone(), 3, None))
        .await
        .unwrap()
        .into_inner()
        .hits;
    assert_eq!(hits[0].id, "d7");
    assert!(hits[0].score > 0.999);
    assert_eq!(hits.iter().filter(|h| h.id == "d7").count(), 1, "the old version is tombstoned");

    // Scroll: pages cover every live document once; Count agrees.
    let all = scroll_all(&mut c, "pool", None, 37).await;
    let mut ids: Vec<&str> = all.iter().map(|d| d.id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 300);
    let rome = scroll_all(&mut c, "pool", Some(eq("city", s("rome"))), 10).await;
    assert_eq!(rome.len() as u64, count(&mut c, "pool", Some(eq("city", s("rome")))).await);
    assert!(rome.iter().all(|d| d.payload["city"] == s("rome")));

    // Delete by ids and by filter.
    let del = c
        .documents
        .delete(proto::DeleteDocumentsRequest {
            collection: "pool".into(),
            selector: Some(proto::delete_documents_request::Selector::Ids(proto::IdList {
                ids: vec!["d0".into(), "d1".into(), "nope".into()],
            })),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(del.deleted, 2);
    let lisbon_years = proto::Filter {
        condition: Some(proto::filter::Condition::AllOf(proto::FilterList {
            filters: vec![
                kind_filter(&[Other]),
                proto::Filter {
                    condition: Some(proto::filter::Condition::Field(proto::FieldCondition {
                        key: "years".into(),
                        condition: Some(proto::field_condition::Condition::Range(proto::Range {
                            gte: Some(10.0),
                            ..Default::default()
                        })),
                    })),
                },
            ],
        })),
    };
    let matching = count(&mut c, "pool", Some(lisbon_years.clone())).await;
    assert!(matching > 0);
    let del = c
        .documents
        .delete(proto::DeleteDocumentsRequest {
            collection: "pool".into(),
            selector: Some(proto::delete_documents_request::Selector::Filter(lisbon_years.clone())),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(del.deleted, matching);
    assert_eq!(count(&mut c, "pool", Some(lisbon_years)).await, 0);
    assert_eq!(count(&mut c, "pool", None).await, 298 - matching);
    let gone = c
        .documents
        .get(proto::GetDocumentsRequest {
            collection: "pool".into(),
            ids: vec!["d0".into()],
            include: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(gone.missing, ["d0"]);

    // Filtered search: every hit matches; none_of excludes; min_score cuts.
    let q = random_vector(&mut rng, 8);
    let not_jd = proto::Filter {
        condition: Some(proto::filter::Condition::NoneOf(proto::FilterList {
            filters: vec![kind_filter(&[Jd])],
        })),
    };
    let mut req = search_req("pool", q.clone(), 20, Some(not_jd));
    req.include = Some(proto::Include { payload: true, text: true, vector: false });
    let hits = c.search.search(req).await.unwrap().into_inner().hits;
    assert_eq!(hits.len(), 20);
    assert!(
        hits.iter()
            .all(|h| h.kind != Jd as i32 && !h.text.is_empty() && h.payload.contains_key("city"))
    );
    assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));
    let mut req = search_req("pool", q.clone(), 50, None);
    req.min_score = Some(0.5);
    let hits = c.search.search(req).await.unwrap().into_inner().hits;
    assert!(hits.iter().all(|h| h.score >= 0.5));

    // SearchBatch answers in request order.
    let batch = c
        .search
        .search_batch(proto::SearchBatchRequest {
            searches: vec![
                search_req("pool", docs[5].vector.clone(), 1, None),
                search_req("pool", docs[9].vector.clone(), 1, Some(eq("skills", s("s2")))),
            ],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(batch.results[0].hits[0].id, "d5");
    assert_eq!(batch.results[1].hits[0].id, "d9", "d9 has skill s{}", 9 % 7);
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selective_filter_returns_full_top_k_and_recall_holds() {
    let seed = seed(22);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let mut c = server.clients().await;
    let dim = 16;
    create(
        &mut c,
        "big",
        proto::CollectionConfig { dim, dtype: proto::Dtype::F32 as i32, ..Default::default() },
    )
    .await;
    let n = 5000;
    let mut vectors = Vec::new();
    for chunk in 0..(n / 500) {
        let docs: Vec<_> = (chunk * 500..(chunk + 1) * 500)
            .map(|i| {
                let v = random_vector(&mut rng, dim);
                vectors.push(normalized(&v));
                // Exactly 1% carry tag "rare".
                let tag = if i % 100 == 0 { "rare" } else { "common" };
                doc(&format!("v{i}"), Resume, v, &[("tag", s(tag))])
            })
            .collect();
        upsert(&mut c, "big", docs).await;
    }
    assert_eq!(count(&mut c, "big", Some(eq("tag", s("rare")))).await, 50);
    let exact = |q: &[f32], allowed: &dyn Fn(usize) -> bool, k: usize| {
        let q = normalized(q);
        let mut s: Vec<(f32, usize)> =
            (0..n).filter(|i| allowed(*i)).map(|i| (dot(&q, &vectors[i]), i)).collect();
        s.sort_by(|a, b| b.0.total_cmp(&a.0));
        s.truncate(k);
        s.into_iter().map(|(_, i)| format!("v{i}")).collect::<Vec<_>>()
    };
    let (mut found, mut total) = (0, 0);
    for _ in 0..20 {
        let q = random_vector(&mut rng, dim);
        let hits = c
            .search
            .search(search_req("big", q.clone(), 10, Some(eq("tag", s("rare")))))
            .await
            .unwrap()
            .into_inner()
            .hits;
        assert_eq!(hits.len(), 10, "a 1% filter must still fill top_k");
        let got: Vec<String> = hits.iter().map(|h| h.id.clone()).collect();
        assert_eq!(
            got,
            exact(&q, &|i| i % 100 == 0, 10),
            "50 allowed ids are below the exact-scan threshold"
        );

        let hits = c
            .search
            .search(search_req("big", q.clone(), 10, None))
            .await
            .unwrap()
            .into_inner()
            .hits;
        let want = exact(&q, &|_| true, 10);
        found += hits.iter().filter(|h| want.contains(&h.id)).count();
        total += 10;
    }
    let recall = found as f64 / total as f64;
    println!("recall@10 = {recall:.3} (bar 0.9)");
    assert!(recall >= 0.9, "recall@10 {recall} below 0.9");
    server.stop();

    // The same 1% filter through the filtered graph walk (no exact-scan fallback): still full.
    let server = Server::start_with(dir.path(), &["--exact-scan-threshold", "0"]);
    let mut c = server.clients().await;
    let (mut found, mut total) = (0, 0);
    for _ in 0..20 {
        let q = random_vector(&mut rng, dim);
        let hits = c
            .search
            .search(search_req("big", q.clone(), 10, Some(eq("tag", s("rare")))))
            .await
            .unwrap()
            .into_inner()
            .hits;
        assert_eq!(hits.len(), 10, "a 1% filter must fill top_k in the graph walk too");
        let want = exact(&q, &|i| i % 100 == 0, 10);
        assert!(
            hits.iter().all(|h| h.id[1..].parse::<usize>().unwrap() % 100 == 0),
            "only allowed ids"
        );
        found += hits.iter().filter(|h| want.contains(&h.id)).count();
        total += 10;
    }
    let recall = found as f64 / total as f64;
    println!("filtered-walk recall@10 = {recall:.3} (bar 0.9)");
    assert!(recall >= 0.9, "filtered-walk recall@10 {recall} below 0.9");
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_rejected_whole_with_the_field_named() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), &["--max-batch", "10"]);
    let mut c = server.clients().await;
    create(&mut c, "p", config(4)).await;
    upsert(&mut c, "p", vec![doc("keep", Jd, vec![1.0, 0.0, 0.0, 0.0], &[])]).await;

    let good = || doc("new", Resume, vec![0.0, 1.0, 0.0, 0.0], &[]);
    let try_batch = |docs: Vec<proto::Document>| {
        let mut c = c.clone();
        async move {
            c.documents
                .upsert(proto::UpsertRequest { collection: "p".into(), documents: docs })
                .await
        }
    };
    assert_status(
        try_batch(vec![good(), doc("x", Jd, vec![1.0; 3], &[])]).await,
        Code::InvalidArgument,
        "documents[1].vector",
    );
    assert_status(
        try_batch(vec![good(), doc("x", Jd, vec![1.0, f32::NAN, 0.0, 0.0], &[])]).await,
        Code::InvalidArgument,
        "documents[1].vector[1]",
    );
    assert_status(
        try_batch(vec![good(), doc("x", Jd, vec![f32::INFINITY, 0.0, 0.0, 0.0], &[])]).await,
        Code::InvalidArgument,
        "documents[1].vector[0]",
    );
    assert_status(
        try_batch(vec![good(), doc("x", Jd, vec![0.0; 4], &[])]).await,
        Code::InvalidArgument,
        "documents[1].vector",
    );
    assert_status(
        try_batch(vec![good(), doc("x", Jd, vec![], &[])]).await,
        Code::InvalidArgument,
        "documents[1].vector",
    );
    assert_status(
        try_batch(vec![good(), doc("", Jd, vec![1.0; 4], &[])]).await,
        Code::InvalidArgument,
        "documents[1].id",
    );
    assert_status(
        try_batch(vec![good(), doc(&"x".repeat(257), Jd, vec![1.0; 4], &[])]).await,
        Code::InvalidArgument,
        "documents[1].id",
    );
    assert_status(
        try_batch(vec![good(), doc("new", Jd, vec![1.0; 4], &[])]).await,
        Code::InvalidArgument,
        "documents[1].id",
    );
    let nan = proto::Value { kind: Some(proto::value::Kind::FloatValue(f64::NAN)) };
    assert_status(
        try_batch(vec![good(), doc("x", Jd, vec![1.0; 4], &[("score", nan)])]).await,
        Code::InvalidArgument,
        "documents[1].payload[\"score\"]",
    );
    assert_status(
        try_batch(vec![good(), doc("x", Jd, vec![1.0; 4], &[("", s("v"))])]).await,
        Code::InvalidArgument,
        "documents[1].payload",
    );
    let many: Vec<_> = (0..11).map(|i| doc(&format!("m{i}"), Jd, vec![1.0; 4], &[])).collect();
    assert_status(try_batch(many).await, Code::InvalidArgument, "documents");
    // None of the rejected batches left anything behind.
    assert_eq!(count(&mut c, "p", None).await, 1);
    let got = c
        .documents
        .get(proto::GetDocumentsRequest {
            collection: "p".into(),
            ids: vec!["new".into(), "x".into()],
            include: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.missing, ["new", "x"]);

    let missing = c
        .documents
        .upsert(proto::UpsertRequest { collection: "nope".into(), documents: vec![good()] })
        .await;
    assert_status(missing, Code::NotFound, "nope");
    assert_status(
        c.search.search(search_req("nope", vec![1.0; 4], 1, None)).await,
        Code::NotFound,
        "nope",
    );
    assert_status(
        c.documents.count(proto::CountRequest { collection: "nope".into(), filter: None }).await,
        Code::NotFound,
        "nope",
    );

    // Search input.
    assert_status(
        c.search.search(search_req("p", vec![1.0; 5], 1, None)).await,
        Code::InvalidArgument,
        "vector",
    );
    assert_status(
        c.search.search(search_req("p", vec![1.0; 4], 0, None)).await,
        Code::InvalidArgument,
        "top_k",
    );
    assert_status(
        c.search.search(search_req("p", vec![f32::NAN; 4], 1, None)).await,
        Code::InvalidArgument,
        "vector[0]",
    );
    let batch = proto::SearchBatchRequest {
        searches: vec![
            search_req("p", vec![1.0; 4], 1, None),
            search_req("p", vec![1.0; 2], 1, None),
        ],
    };
    assert_status(c.search.search_batch(batch).await, Code::InvalidArgument, "searches[1].vector");

    // Malformed filters.
    let bad_filters = [
        (proto::Filter { condition: None }, "filter"),
        (
            proto::Filter {
                condition: Some(proto::filter::Condition::AllOf(proto::FilterList {
                    filters: vec![],
                })),
            },
            "filter.all_of.filters",
        ),
        (kind_filter(&[]), "filter.kind.kinds"),
        (kind_filter(&[proto::DocumentKind::Unspecified]), "filter.kind.kinds[0]"),
        (
            proto::Filter {
                condition: Some(proto::filter::Condition::Field(proto::FieldCondition {
                    key: "a".into(),
                    condition: None,
                })),
            },
            "filter.field",
        ),
        (
            proto::Filter {
                condition: Some(proto::filter::Condition::Field(proto::FieldCondition {
                    key: "a".into(),
                    condition: Some(proto::field_condition::Condition::Range(
                        proto::Range::default(),
                    )),
                })),
            },
            "filter.field.range",
        ),
        (
            proto::Filter {
                condition: Some(proto::filter::Condition::AnyOf(proto::FilterList {
                    filters: vec![
                        kind_filter(&[Jd]),
                        proto::Filter {
                            condition: Some(proto::filter::Condition::Field(
                                proto::FieldCondition {
                                    key: "a".into(),
                                    condition: Some(proto::field_condition::Condition::Range(
                                        proto::Range { lt: Some(f64::NAN), ..Default::default() },
                                    )),
                                },
                            )),
                        },
                    ],
                })),
            },
            "filter.any_of.filters[1].field.range.lt",
        ),
    ];
    for (f, field) in bad_filters {
        let r = c
            .documents
            .count(proto::CountRequest { collection: "p".into(), filter: Some(f.clone()) })
            .await;
        assert_status(r, Code::InvalidArgument, field);
        assert_status(
            c.search.search(search_req("p", vec![1.0; 4], 1, Some(f))).await,
            Code::InvalidArgument,
            field,
        );
    }
    assert_status(
        c.documents
            .scroll(proto::ScrollRequest {
                collection: "p".into(),
                cursor: "zz".into(),
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        "cursor",
    );
    assert_status(
        c.documents
            .delete(proto::DeleteDocumentsRequest { collection: "p".into(), selector: None })
            .await,
        Code::InvalidArgument,
        "selector",
    );
    assert_eq!(count(&mut c, "p", None).await, 1);
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_reflection_are_served() {
    use tonic_health::pb::health_client::HealthClient;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_request::MessageRequest,
        server_reflection_response::MessageResponse,
    };

    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let ch = server.channel().await;
    let mut health = HealthClient::new(ch.clone());
    for service in ["", "hirevec.v1.Collections", "hirevec.v1.Documents", "hirevec.v1.Search"] {
        let r = health
            .check(tonic_health::pb::HealthCheckRequest { service: service.into() })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            r.status,
            tonic_health::pb::health_check_response::ServingStatus::Serving as i32,
            "{service:?}"
        );
    }
    let mut refl = ServerReflectionClient::new(ch);
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream =
        refl.server_reflection_info(tokio_stream::iter(vec![req])).await.unwrap().into_inner();
    let resp = stream.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = resp.message_response else {
        panic!("{resp:?}")
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for want in [
        "hirevec.v1.Collections",
        "hirevec.v1.Documents",
        "hirevec.v1.Search",
        "grpc.health.v1.Health",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} missing from {names:?}");
    }
    server.stop();
}
