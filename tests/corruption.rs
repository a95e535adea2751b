//! Damaged segment files: a truncated one is caught when the server opens it, flipped bytes by
//! the background verify; both are rebuilt from RocksDB while the server answers, and no
//! acknowledged document is lost.
mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use hirevec::proto;
use rand::SeedableRng;

fn segment_files(data: &Path) -> Vec<PathBuf> {
    let dir = data.join("collections/pool/segments");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

async fn top1(c: &mut Clients, v: &[f32]) -> String {
    c.search.search(search_req("pool", v.to_vec(), 1, None)).await.unwrap().into_inner().hits[0]
        .id
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_segments_are_rebuilt_from_rocksdb_while_serving() {
    let seed = seed(55);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let dim = 16;
    let n = 4000;
    let vectors: Vec<Vec<f32>> = (0..n).map(|_| random_vector(&mut rng, dim)).collect();
    {
        let server = Server::start(&data);
        let mut c = server.clients().await;
        create(
            &mut c,
            "pool",
            proto::CollectionConfig { dim, seal_threshold: Some(1000), ..Default::default() },
        )
        .await;
        for chunk in 0..n / 500 {
            let docs = (chunk * 500..(chunk + 1) * 500)
                .map(|i| {
                    doc(&format!("d{i}"), proto::DocumentKind::Resume, vectors[i].clone(), &[])
                })
                .collect();
            upsert(&mut c, "pool", docs).await;
        }
        // A clean stop seals what is left: every document is in a segment file.
        server.stop();
    }
    let files = segment_files(&data);
    assert!(files.len() >= 3, "{files:?}");
    // File 0 loses its tail (caught by the O(1) checks at open); file 1 gets flipped bytes in
    // its body, which only the full checksum of the background verify sees.
    let truncated = files[0].clone();
    let len = std::fs::metadata(&truncated).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&truncated).unwrap().set_len(len - 100).unwrap();
    let flipped = files[1].clone();
    let mut bytes = std::fs::read(&flipped).unwrap();
    for i in [300, 1000, 5000] {
        bytes[i] ^= 0x5a;
    }
    std::fs::write(&flipped, &bytes).unwrap();

    let server = Server::start_with(&data, &["--verify-interval", "1"]);
    let mut c = server.clients().await;
    // Rebuilt in place at open, before the server listens: whole again.
    let rebuilt = hirevec_index::SealedSegment::open(&truncated).expect("rebuilt at open");
    rebuilt.verify().expect("the rebuilt file passes the full check");
    // The server answers while the verify finds the flipped file and rebuilds it.
    let start = Instant::now();
    let mut searches = 0;
    while segment_files(&data).contains(&flipped) {
        assert!(start.elapsed() < Duration::from_secs(120), "the flipped file was never replaced");
        let i = searches % n;
        c.search.search(search_req("pool", vectors[i].clone(), 5, None)).await.expect("serving");
        searches += 1;
    }
    println!("{searches} searches answered while the damaged segment was rebuilt");

    // Nothing lost: every document is there with its vector, and finds itself.
    assert_eq!(count(&mut c, "pool", None).await, n as u64);
    for i in (0..n).step_by(97) {
        assert_eq!(top1(&mut c, &vectors[i]).await, format!("d{i}"));
    }
    // Get takes at most 1000 ids a request.
    for chunk in 0..n / 1000 {
        let ids: Vec<String> =
            (chunk * 1000..(chunk + 1) * 1000).map(|i| format!("d{i}")).collect();
        let got = c
            .documents
            .get(proto::GetDocumentsRequest {
                collection: "pool".into(),
                ids,
                include: Some(proto::Include { payload: false, text: false, vector: true }),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(got.missing.is_empty());
        for (j, d) in got.documents.iter().enumerate() {
            let i = chunk * 1000 + j;
            let want = normalized(&vectors[i]);
            assert!(dot(&want, &d.vector) > 0.999, "d{i}");
        }
    }
    // And the rebuilt files hold after another restart.
    server.stop();
    let server = Server::start(&data);
    let mut c = server.clients().await;
    assert_eq!(count(&mut c, "pool", None).await, n as u64);
    for i in (0..n).step_by(101) {
        assert_eq!(top1(&mut c, &vectors[i]).await, format!("d{i}"));
    }
    server.stop();
}
