//! API keys, TLS and limits through the real server: who may call what, what is too big, and
//! that a refused call changes nothing.
mod common;

use common::*;
use hirevec::proto;
use hirevec::proto::DocumentKind::Resume;
use tonic::{Code, Request};

const FULL: &str = "full-key-0123456789abcdef";
const READ: &str = "read-key-0123456789abcdef";

/// `msg` with `header: value` metadata (None: no key at all).
fn keyed<T>(msg: T, header: Option<(&'static str, &str)>) -> Request<T> {
    let mut r = Request::new(msg);
    if let Some((h, v)) = header {
        r.metadata_mut().insert(h, v.parse().unwrap());
    }
    r
}

fn code<T>(r: Result<T, tonic::Status>) -> Code {
    match r {
        Ok(_) => Code::Ok,
        Err(s) => s.code(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_gate_reads_and_writes_and_health_stays_open() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), &["--api-key", FULL, "--read-only-api-key", READ]);
    let mut c = server.clients().await;
    let bearer_full = format!("Bearer {FULL}");
    let full = Some(("authorization", bearer_full.as_str()));
    let read = Some(("api-key", READ));
    let wrong = Some(("api-key", "not-the-key-0123456789"));

    let create = || proto::CreateCollectionRequest { name: "cvs".into(), config: Some(config(4)) };
    assert_eq!(code(c.collections.create(keyed(create(), None)).await), Code::Unauthenticated);
    assert_eq!(code(c.collections.create(keyed(create(), wrong)).await), Code::Unauthenticated);
    assert_eq!(code(c.collections.create(keyed(create(), read)).await), Code::PermissionDenied);
    // A refused create made nothing: the full key can still create the name.
    assert_eq!(code(c.collections.create(keyed(create(), full)).await), Code::Ok);

    let upsert = || proto::UpsertRequest {
        collection: "cvs".into(),
        documents: vec![doc("cv-1", Resume, vec![0.1, 0.2, 0.3, 0.4], &[])],
    };
    assert_eq!(code(c.documents.upsert(keyed(upsert(), read)).await), Code::PermissionDenied);
    let count = || proto::CountRequest { collection: "cvs".into(), filter: None };
    let n = c.documents.count(keyed(count(), read)).await.unwrap().into_inner().count;
    assert_eq!(n, 0, "the refused upsert wrote nothing");
    assert_eq!(code(c.documents.upsert(keyed(upsert(), full)).await), Code::Ok);
    // `api-key:` works for the full key too.
    assert_eq!(code(c.documents.upsert(keyed(upsert(), Some(("api-key", FULL)))).await), Code::Ok);

    // Reads: both keys; no key or a wrong one is refused.
    let search = || proto::SearchRequest {
        collection: "cvs".into(),
        vector: vec![0.1, 0.2, 0.3, 0.4],
        top_k: 1,
        ..Default::default()
    };
    let hits = c.search.search(keyed(search(), read)).await.unwrap().into_inner().hits;
    assert_eq!(hits[0].id, "cv-1");
    assert_eq!(code(c.search.search(keyed(search(), full)).await), Code::Ok);
    assert_eq!(code(c.search.search(keyed(search(), None)).await), Code::Unauthenticated);
    assert_eq!(code(c.search.search(keyed(search(), wrong)).await), Code::Unauthenticated);
    let list = proto::ListCollectionsRequest {};
    assert_eq!(code(c.collections.list(keyed(list, read)).await), Code::Ok);
    let del = proto::DeleteCollectionRequest { name: "cvs".into() };
    assert_eq!(code(c.collections.delete(keyed(del, read)).await), Code::PermissionDenied);
    assert_eq!(c.documents.count(keyed(count(), full)).await.unwrap().into_inner().count, 1);

    // Health needs no key.
    let mut health = tonic_health::pb::health_client::HealthClient::new(server.channel().await);
    let status = health
        .check(tonic_health::pb::HealthCheckRequest { service: String::new() })
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(status, tonic_health::pb::health_check_response::ServingStatus::Serving as i32);
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_serves_with_a_generated_certificate_and_refuses_plaintext() {
    use tonic::transport::{Certificate, Channel, ClientTlsConfig};
    let dir = tempfile::tempdir().unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert_pem = certified.cert.pem();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, &cert_pem).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let data = dir.path().join("data");
    let server = Server::start_with(
        &data,
        &["--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap()],
    );
    let port = server.addr.rsplit(':').next().unwrap().to_owned();

    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&cert_pem))
        .domain_name("localhost");
    let ch = Channel::from_shared(format!("https://localhost:{port}"))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .expect("TLS connect");
    let mut collections = proto::collections_client::CollectionsClient::new(ch);
    collections
        .create(proto::CreateCollectionRequest { name: "cvs".into(), config: Some(config(4)) })
        .await
        .expect("create over TLS");
    let listed = collections.list(proto::ListCollectionsRequest {}).await.unwrap().into_inner();
    assert_eq!(listed.collections.len(), 1);

    // Plaintext HTTP/2 to the TLS port gets no gRPC answer.
    let plain = async {
        let ch = Channel::from_shared(format!("http://{}", server.addr)).unwrap().connect().await?;
        proto::collections_client::CollectionsClient::new(ch)
            .list(proto::ListCollectionsRequest {})
            .await
            .map_err(|s| -> Box<dyn std::error::Error> { s.into() })?;
        Ok::<_, Box<dyn std::error::Error>>(())
    };
    let outcome = tokio::time::timeout(std::time::Duration::from_secs(20), plain).await;
    assert!(!matches!(outcome, Ok(Ok(()))), "a plaintext call must not succeed");

    // A client that does not trust the certificate is refused at the handshake.
    let untrusted = Channel::from_shared(format!("https://localhost:{port}"))
        .unwrap()
        .tls_config(ClientTlsConfig::new().domain_name("localhost"))
        .unwrap()
        .connect()
        .await;
    assert!(untrusted.is_err(), "an untrusted certificate must fail the handshake");
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_texts_are_refused_with_the_field_and_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), &["--max-text-bytes", "2048"]);
    let mut c = server.clients().await;
    create(&mut c, "cvs", config(4)).await;
    let big = "x".repeat(2049);
    let mut ok = doc("cv-1", Resume, vec![0.1, 0.2, 0.3, 0.4], &[]);
    ok.text = "y".repeat(2048);
    let mut too_big = doc("cv-2", Resume, vec![0.1, 0.2, 0.3, 0.4], &[]);
    too_big.text = big.clone();
    let e = c
        .documents
        .upsert(proto::UpsertRequest {
            collection: "cvs".into(),
            documents: vec![ok.clone(), too_big],
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("documents[1].text") && e.message().contains("2048"), "{e:?}");
    let count = c
        .documents
        .count(proto::CountRequest { collection: "cvs".into(), filter: None })
        .await
        .unwrap()
        .into_inner()
        .count;
    assert_eq!(count, 0, "the refused batch wrote nothing");
    c.documents
        .upsert(proto::UpsertRequest { collection: "cvs".into(), documents: vec![ok] })
        .await
        .expect("a text of exactly the limit is taken");

    let search = proto::SearchRequest {
        collection: "cvs".into(),
        text: big.clone(),
        top_k: 1,
        ..Default::default()
    };
    let e = c.search.search(search).await.unwrap_err();
    assert_eq!((e.code(), e.message().starts_with("text")), (Code::InvalidArgument, true), "{e:?}");
    // Size is checked before anything else, even with no model loaded.
    let e = c
        .models
        .embed(proto::EmbedRequest { texts: vec!["a".into(), big.clone()], ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("texts[1]"), "{e:?}");
    let e = c
        .models
        .rerank(proto::RerankRequest {
            query: "q".into(),
            documents: vec![big],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("documents[0]"), "{e:?}");
    server.stop();
}

/// One flood: `requests` upserts of `docs` documents of `dim` floats each, sent at once over
/// `connections` connections. Returns (accepted, refused, peak RSS growth of the server in MiB).
async fn flood(
    server: &Server,
    collection: &str,
    requests: usize,
    connections: usize,
    docs: usize,
    dim: u32,
) -> (usize, usize, f64) {
    let before = server.peak_rss_kib();
    let mut channels = Vec::new();
    for _ in 0..connections {
        channels.push(server.channel().await);
    }
    let mut tasks = tokio::task::JoinSet::new();
    for r in 0..requests {
        let mut client =
            proto::documents_client::DocumentsClient::new(channels[r % connections].clone());
        let documents = (0..docs)
            .map(|i| {
                let v = (0..dim).map(|j| ((r * docs + i) as f32 * 0.37 + j as f32).sin()).collect();
                doc(&format!("{collection}-{r}-{i}"), Resume, v, &[])
            })
            .collect();
        let req = proto::UpsertRequest { collection: collection.into(), documents };
        tasks.spawn(async move { client.upsert(req).await });
    }
    let (mut accepted, mut refused) = (0, 0);
    while let Some(res) = tasks.join_next().await {
        match res.unwrap() {
            Ok(r) => {
                assert_eq!(r.into_inner().upserted as usize, docs);
                accepted += 1;
            }
            Err(e) => {
                assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
                assert!(e.message().contains("--max-request-memory"), "{e:?}");
                refused += 1;
            }
        }
    }
    let grown = server.peak_rss_kib().saturating_sub(before) as f64 / 1024.0;
    (accepted, refused, grown)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_large_requests_is_refused_past_the_memory_budget() {
    // 64 upserts of ~2.9 MiB (700 vectors of 1024 floats), ~183 MiB in all, sent at once over
    // 8 connections: once to a server with an 8 MiB request budget, once to one whose budget
    // holds the whole flood.
    const REQUESTS: usize = 64;
    const DOCS: usize = 700;
    const DIM: u32 = 1024;
    let flood_mib = (REQUESTS * DOCS * DIM as usize * 4) as f64 / (1 << 20) as f64;
    let mut grown = Vec::new();
    for budget in ["8388608", "1073741824"] {
        let dir = tempfile::tempdir().unwrap();
        let server = Server::start_with(
            dir.path(),
            &["--max-message-bytes", "4194304", "--max-request-memory", budget],
        );
        let mut c = server.clients().await;
        create(&mut c, "flood", config(DIM)).await;
        let (accepted, refused, mib) = flood(&server, "flood", REQUESTS, 8, DOCS, DIM).await;
        eprintln!(
            "budget {budget} B: {accepted} accepted, {refused} refused, server peak RSS grew \
             {mib:.1} MiB during a {flood_mib:.0} MiB flood"
        );
        assert!(accepted >= 1, "the first request always fits");
        assert_eq!(
            count(&mut c, "flood", None).await as usize,
            accepted * DOCS,
            "refused requests wrote nothing"
        );
        if budget == "8388608" {
            assert!(refused >= 1, "an 8 MiB budget cannot hold {flood_mib:.0} MiB at once");
        } else {
            assert_eq!(refused, 0, "a budget over the flood refuses nothing");
        }
        grown.push(mib);
        server.stop();
    }
    assert!(
        grown[0] * 2.0 < grown[1],
        "with the budget the server grew {:.1} MiB, without it {:.1} MiB",
        grown[0],
        grown[1]
    );
}
