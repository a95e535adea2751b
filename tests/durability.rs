//! Restart and crash safety against the real binary: a clean restart gives identical answers, and
//! after `kill -9` during a bulk load every acknowledged write is there, nothing else is.
mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;
use hirevec::proto;
use hirevec::proto::DocumentKind::{Jd, Resume};
use rand::SeedableRng;

async fn snapshot_searches(
    c: &mut Clients,
    queries: &[(Vec<f32>, Option<proto::Filter>)],
) -> Vec<Vec<(String, f32)>> {
    let mut out = Vec::new();
    for (q, f) in queries {
        let hits = c
            .search
            .search(search_req("pool", q.clone(), 10, f.clone()))
            .await
            .unwrap()
            .into_inner()
            .hits;
        out.push(hits.into_iter().map(|h| (h.id, h.score)).collect());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_gives_identical_results() {
    let seed = seed(33);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let mut c = server.clients().await;
    let dim = 24;
    // A seal threshold well below the data size: the restart opens several sealed files.
    create(
        &mut c,
        "pool",
        proto::CollectionConfig { dim, seal_threshold: Some(3000), ..Default::default() },
    )
    .await;
    for chunk in 0..10 {
        let docs: Vec<_> = (chunk * 1000..(chunk + 1) * 1000)
            .map(|i| {
                doc(
                    &format!("p{i}"),
                    if i % 4 == 0 { Jd } else { Resume },
                    random_vector(&mut rng, dim),
                    &[("bucket", int((i % 10) as i64))],
                )
            })
            .collect();
        upsert(&mut c, "pool", docs).await;
    }
    // Overwrites and deletes, so tombstones must survive the restart too.
    let overwritten: std::collections::HashSet<usize> = (0..200).map(|i| i * 7).collect();
    let over: Vec<_> = (0..200)
        .map(|i| {
            doc(&format!("p{}", i * 7), Jd, random_vector(&mut rng, dim), &[("bucket", int(42))])
        })
        .collect();
    upsert(&mut c, "pool", over).await;
    c.documents
        .delete(proto::DeleteDocumentsRequest {
            collection: "pool".into(),
            selector: Some(proto::delete_documents_request::Selector::Filter(eq("bucket", int(3)))),
        })
        .await
        .unwrap();

    let queries: Vec<_> = (0..30)
        .map(|i| {
            (
                random_vector(&mut rng, dim),
                match i % 3 {
                    0 => None,
                    1 => Some(eq("bucket", int(42))),
                    _ => Some(kind_filter(&[Jd])),
                },
            )
        })
        .collect();
    let before = snapshot_searches(&mut c, &queries).await;
    let count_before = count(&mut c, "pool", None).await;
    let docs_before = scroll_all(&mut c, "pool", None, 1000).await;
    let deleted = (0..10_000).filter(|i| i % 10 == 3 && !overwritten.contains(i)).count() as u64;
    assert_eq!(count_before, 10_000 - deleted);
    server.stop();

    let server = Server::start(dir.path());
    let mut c = server.clients().await;
    let info = c
        .collections
        .get(proto::GetCollectionRequest { name: "pool".into() })
        .await
        .unwrap()
        .into_inner();
    assert!(info.sealed_segments >= 3, "{info:?}");
    assert_eq!(count(&mut c, "pool", None).await, count_before);
    let docs_after = scroll_all(&mut c, "pool", None, 1000).await;
    assert_eq!(docs_before, docs_after);
    let after = snapshot_searches(&mut c, &queries).await;
    assert_eq!(before, after, "identical hits and scores after a restart");
    server.stop();

    // And once more, to cover opening data that was itself produced by a restart.
    let server = Server::start(dir.path());
    let mut c = server.clients().await;
    assert_eq!(snapshot_searches(&mut c, &queries).await, before);
    server.stop();
}

/// What one client id went through: the versions sent, in order (0 = delete), and how many of
/// them were acknowledged (a prefix, since each id belongs to one writer that waits for replies).
#[derive(Default, Debug, Clone)]
struct History {
    sent: Vec<i64>,
    acked: usize,
    vectors: HashMap<i64, Vec<f32>>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_bulk_load_keeps_every_acknowledged_write() {
    let seed = seed(44);
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let mut c = server.clients().await;
    let dim = 16;
    // Small seal threshold: seals run in the background while the load goes on and the kill lands.
    create(
        &mut c,
        "pool",
        proto::CollectionConfig { dim, seal_threshold: Some(1000), ..Default::default() },
    )
    .await;

    let writers = 4;
    let acked_docs = Arc::new(AtomicUsize::new(0));
    let kill_after = 6000;
    let notify = Arc::new(tokio::sync::Notify::new());
    let mut tasks = Vec::new();
    for w in 0..writers {
        let mut c = server.clients().await;
        let acked_docs = acked_docs.clone();
        let notify = notify.clone();
        tasks.push(tokio::spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed + w as u64);
            let mut hist: BTreeMap<String, History> = BTreeMap::new();
            let ids_per_writer = 2000;
            for round in 0.. {
                // Each round: a batch of 100 upserts over the writer's own ids (new ones and
                // overwrites), and every third round a delete of a few.
                let mut docs = Vec::new();
                let mut ids = std::collections::HashSet::new();
                while docs.len() < 100 {
                    let id =
                        format!("w{w}-{}", rand::Rng::random_range(&mut rng, 0..ids_per_writer));
                    if !ids.insert(id.clone()) {
                        continue;
                    }
                    let h = hist.entry(id.clone()).or_default();
                    let version = h.sent.len() as i64 + 1;
                    h.sent.push(version);
                    let v = random_vector(&mut rng, dim);
                    h.vectors.insert(version, v.clone());
                    docs.push(doc(&id, Resume, v, &[("version", int(version)), ("uid", s(&id))]));
                }
                let names: Vec<String> = docs.iter().map(|d| d.id.clone()).collect();
                let req = proto::UpsertRequest { collection: "pool".into(), documents: docs };
                // Writers 0 and 1 use UpsertStream (one batch per stream, so the reply acknowledges
                // exactly that batch), 2 and 3 plain Upsert.
                let ok = if w < 2 {
                    c.documents.upsert_stream(tokio_stream::iter(vec![req])).await.is_ok()
                } else {
                    c.documents.upsert(req).await.is_ok()
                };
                if !ok {
                    break;
                }
                for id in &names {
                    let h = hist.get_mut(id).unwrap();
                    h.acked = h.sent.len();
                }
                if acked_docs.fetch_add(names.len(), Ordering::SeqCst) + names.len() >= kill_after {
                    notify.notify_one();
                }
                if round % 3 == 2 {
                    let victims: Vec<String> = names.iter().take(5).cloned().collect();
                    for id in &victims {
                        hist.get_mut(id).unwrap().sent.push(0);
                    }
                    let del = c
                        .documents
                        .delete(proto::DeleteDocumentsRequest {
                            collection: "pool".into(),
                            selector: Some(proto::delete_documents_request::Selector::Ids(
                                proto::IdList { ids: victims.clone() },
                            )),
                        })
                        .await;
                    if del.is_err() {
                        break;
                    }
                    for id in &victims {
                        let h = hist.get_mut(id).unwrap();
                        h.acked = h.sent.len();
                    }
                }
            }
            hist
        }));
    }
    // The kill lands when enough has been acknowledged, while every writer still has requests in flight.
    notify.notified().await;
    server.kill9();
    let mut hist: HashMap<String, History> = HashMap::new();
    for t in tasks {
        hist.extend(t.await.unwrap());
    }
    println!("acknowledged {} documents before kill -9", acked_docs.load(Ordering::SeqCst));

    let server = Server::start(dir.path());
    let mut c = server.clients().await;
    let docs = scroll_all(&mut c, "pool", None, 997).await;
    let total = count(&mut c, "pool", None).await;
    assert_eq!(total as usize, docs.len(), "Count equals what Scroll returns");
    let mut seen: HashMap<String, i64> = HashMap::new();
    for d in &docs {
        let Some(proto::value::Kind::IntValue(v)) = d.payload["version"].kind else {
            panic!("{d:?}")
        };
        assert!(seen.insert(d.id.clone(), v).is_none(), "{} returned twice by Scroll", d.id);
    }
    for (id, h) in &hist {
        // Allowed outcomes: the last acknowledged operation, or any operation sent after it (it
        // may have been applied before the kill). With nothing acknowledged, "never written" too.
        let mut allowed: Vec<Option<i64>> =
            h.sent[h.acked.saturating_sub(1)..].iter().map(|v| (*v != 0).then_some(*v)).collect();
        if h.acked == 0 {
            allowed.push(None);
        }
        let got = seen.remove(id);
        assert!(allowed.contains(&got), "{id}: found {got:?}, allowed {allowed:?} (history {h:?})");
    }
    assert!(seen.is_empty(), "phantom documents: {seen:?}");

    // Every recovered document is in the vector index with the vector of its version: a search
    // restricted to its uid (an exact scan of one id) finds it with cosine ~1.
    for chunk in docs.chunks(500) {
        let searches = chunk
            .iter()
            .map(|d| {
                let Some(proto::value::Kind::IntValue(v)) = d.payload["version"].kind else {
                    unreachable!()
                };
                search_req("pool", hist[&d.id].vectors[&v].clone(), 1, Some(eq("uid", s(&d.id))))
            })
            .collect();
        let results = c
            .search
            .search_batch(proto::SearchBatchRequest { searches })
            .await
            .unwrap()
            .into_inner()
            .results;
        for (d, r) in chunk.iter().zip(results) {
            assert_eq!(r.hits.len(), 1, "{} is not in the vector index after restart", d.id);
            assert!(r.hits[0].id == d.id && r.hits[0].score > 0.999, "{}: {:?}", d.id, r.hits[0]);
        }
    }

    // The recovered collection is fully usable: searches and new writes work.
    let q = vec![0.5; dim as usize];
    let hits = c.search.search(search_req("pool", q, 10, None)).await.unwrap().into_inner().hits;
    assert_eq!(hits.len(), 10.min(docs.len()));
    upsert(&mut c, "pool", vec![doc("after", Jd, vec![1.0; dim as usize], &[("version", int(1))])])
        .await;
    assert_eq!(count(&mut c, "pool", None).await, total + 1);
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_drops_tombstones_and_keeps_answers() {
    let seed = seed(55);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), &["--compaction-threshold", "0.25"]);
    let mut c = server.clients().await;
    let dim = 8;
    create(
        &mut c,
        "pool",
        proto::CollectionConfig { dim, seal_threshold: Some(1000), ..Default::default() },
    )
    .await;
    let mut vectors = HashMap::new();
    for chunk in 0..3 {
        let docs: Vec<_> = (chunk * 1000..(chunk + 1) * 1000)
            .map(|i| {
                let v = random_vector(&mut rng, dim);
                vectors.insert(format!("c{i}"), v.clone());
                doc(&format!("c{i}"), Resume, v, &[("odd", int(i as i64 % 2))])
            })
            .collect();
        upsert(&mut c, "pool", docs).await;
    }
    // Half of every segment goes: each sealed segment passes the threshold.
    c.documents
        .delete(proto::DeleteDocumentsRequest {
            collection: "pool".into(),
            selector: Some(proto::delete_documents_request::Selector::Filter(eq("odd", int(1)))),
        })
        .await
        .unwrap();
    // Compaction is asynchronous; wait until no sealed segment holds tombstones (bounded only to
    // fail instead of hanging).
    let mut info = None;
    for _ in 0..600 {
        let i = c
            .collections
            .get(proto::GetCollectionRequest { name: "pool".into() })
            .await
            .unwrap()
            .into_inner();
        if i.sealed_segments == 3 && i.tombstones == 0 {
            info = Some(i);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let info = info.expect("compaction did not finish");
    assert_eq!(info.sealed_vectors, 1500);
    assert_eq!(info.documents, 1500);
    for id in ["c0", "c998", "c2000"] {
        let hits = c
            .search
            .search(search_req("pool", vectors[id].clone(), 1, None))
            .await
            .unwrap()
            .into_inner()
            .hits;
        assert_eq!(hits[0].id, id);
    }
    let hits = c
        .search
        .search(search_req("pool", vectors["c1"].clone(), 50, None))
        .await
        .unwrap()
        .into_inner()
        .hits;
    assert!(hits.iter().all(|h| h.id != "c1"), "deleted documents stay deleted after compaction");
    server.stop();
    let server = Server::start(dir.path());
    let mut c = server.clients().await;
    assert_eq!(count(&mut c, "pool", None).await, 1500);
    let hits = c
        .search
        .search(search_req("pool", vectors["c1"].clone(), 50, None))
        .await
        .unwrap()
        .into_inner()
        .hits;
    assert!(hits.iter().all(|h| h.id != "c1"));
    server.stop();
}
