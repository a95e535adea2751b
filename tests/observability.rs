//! Observability and deadlines: the Prometheus endpoint counts every RPC by method and code,
//! times it, and reports collection gauges; a request whose deadline passes fails and the
//! server keeps serving.
mod common;

use std::io::{Read, Write};
use std::time::Duration;

use common::*;
use hirevec::proto;
use rand::SeedableRng;

/// GET /metrics over a plain socket: the body of the answer.
fn scrape(addr: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).expect("connect to the metrics endpoint");
    write!(s, "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    out.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default()
}

fn value(body: &str, series: &str) -> Option<f64> {
    body.lines().find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_and_late_requests_fail() {
    let seed = seed(66);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), &["--metrics-listen", "127.0.0.1:0"]);
    let metrics = server.metrics_addr.clone().expect("metrics address printed");
    let mut c = server.clients().await;
    let dim = 64;
    create(
        &mut c,
        "pool",
        proto::CollectionConfig { dim, seal_threshold: Some(1000), ..Default::default() },
    )
    .await;
    let n = 3000;
    for chunk in 0..n / 1000 {
        let docs = (chunk * 1000..(chunk + 1) * 1000)
            .map(|i| {
                doc(
                    &format!("d{i}"),
                    proto::DocumentKind::Resume,
                    random_vector(&mut rng, dim),
                    &[],
                )
            })
            .collect();
        upsert(&mut c, "pool", docs).await;
    }
    c.search.search(search_req("pool", random_vector(&mut rng, dim), 5, None)).await.unwrap();
    let bad = c.search.search(search_req("pool", vec![1.0; 3], 5, None)).await.unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);

    // A deadline far shorter than the work: 500 exact searches (ef 4096 over 3000 vectors).
    let searches = (0..500)
        .map(|_| proto::SearchRequest {
            ef: Some(4096),
            ..search_req("pool", random_vector(&mut rng, dim), 100, None)
        })
        .collect();
    let mut req = tonic::Request::new(proto::SearchBatchRequest { searches });
    req.set_timeout(Duration::from_millis(1));
    let late = c.search.search_batch(req).await.unwrap_err();
    // tonic's client enforces the deadline too and, being first to see it pass, says CANCELLED
    // ("Timeout expired"); what the server answered is what its metrics counted, checked below.
    assert!(
        matches!(late.code(), tonic::Code::DeadlineExceeded | tonic::Code::Cancelled),
        "{late:?}"
    );
    // The server goes on serving, and a generous deadline is met.
    let mut req = tonic::Request::new(search_req("pool", random_vector(&mut rng, dim), 5, None));
    req.set_timeout(Duration::from_secs(30));
    assert_eq!(c.search.search(req).await.unwrap().into_inner().hits.len(), 5);

    // Which timer fires first decides what the server records: its own (it answers
    // DEADLINE_EXCEEDED) or the client's (the stream is reset, the server drops the request and
    // counts it CANCELLED, a moment later). Either way the late request is counted at most once
    // and never as a success; the server's own answer is unit-tested in src/server/edge.rs.
    let late_count = |body: &str| {
        ["DEADLINE_EXCEEDED", "CANCELLED"]
            .iter()
            .filter_map(|c| {
                value(
                    body,
                    &format!(
                        "hirevec_requests_total{{method=\"/hirevec.v1.Search/SearchBatch\",code=\"{c}\"}}"
                    ),
                )
            })
            .sum::<f64>()
    };
    let mut body = scrape(&metrics);
    for _ in 0..50 {
        if late_count(&body) > 0.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        body = scrape(&metrics);
    }
    assert!(late_count(&body) <= 1.0, "{body}");
    // No request is in progress now, so none holds request memory.
    assert_eq!(value(&body, "hirevec_request_memory_bytes"), Some(0.0), "{body}");
    let ok = |m: &str| {
        value(&body, &format!("hirevec_requests_total{{method=\"/hirevec.v1.{m}\",code=\"OK\"}}"))
    };
    assert_eq!(ok("Collections/Create"), Some(1.0), "{body}");
    assert_eq!(ok("Documents/Upsert"), Some(3.0), "{body}");
    assert_eq!(ok("Search/Search"), Some(2.0), "{body}");
    let code = |m: &str, code: &str| {
        value(
            &body,
            &format!("hirevec_requests_total{{method=\"/hirevec.v1.{m}\",code=\"{code}\"}}"),
        )
    };
    assert_eq!(code("Search/Search", "INVALID_ARGUMENT"), Some(1.0), "{body}");
    assert_eq!(code("Search/SearchBatch", "OK"), None, "{body}");
    // Histogram: three searches timed, cumulative buckets end at the count.
    assert_eq!(
        value(
            &body,
            "hirevec_request_duration_seconds_count{method=\"/hirevec.v1.Search/Search\"}"
        ),
        Some(3.0)
    );
    assert_eq!(
        value(
            &body,
            "hirevec_request_duration_seconds_bucket{method=\"/hirevec.v1.Search/Search\",le=\"+Inf\"}"
        ),
        Some(3.0)
    );
    assert_eq!(value(&body, "hirevec_collection_documents{collection=\"pool\"}"), Some(n as f64));
    assert!(
        value(&body, "hirevec_collection_sealed_segments{collection=\"pool\"}").is_some(),
        "{body}"
    );
    assert!(value(&body, "hirevec_collection_tombstones{collection=\"pool\"}").is_some(), "{body}");
    assert!(body.contains("# TYPE hirevec_model_queue_depth gauge"));
    server.stop();
}
