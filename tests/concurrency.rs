//! Many clients at once against the real binary: concurrent upserts, searches and reads over
//! several collections; nothing lost, nothing refused.
mod common;

use common::*;
use hirevec::proto;
use hirevec::proto::DocumentKind::Resume;
use rand::SeedableRng;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_clients() {
    let seed = seed(66);
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let mut c = server.clients().await;
    let dim = 16;
    for name in ["a", "b"] {
        create(
            &mut c,
            name,
            proto::CollectionConfig { dim, seal_threshold: Some(1000), ..Default::default() },
        )
        .await;
    }
    let clients = 24;
    let batches = 10;
    let mut tasks = Vec::new();
    for t in 0..clients {
        // One connection per client, as separate processes would have.
        let mut c = server.clients().await;
        tasks.push(tokio::spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed + t as u64);
            let coll = if t % 2 == 0 { "a" } else { "b" };
            let mut mine = Vec::new();
            for b in 0..batches {
                let docs: Vec<_> = (0..50)
                    .map(|i| {
                        doc(
                            &format!("t{t}-{b}-{i}"),
                            Resume,
                            random_vector(&mut rng, dim),
                            &[("client", int(t as i64))],
                        )
                    })
                    .collect();
                mine.extend(docs.iter().map(|d| (d.id.clone(), d.vector.clone())));
                upsert(&mut c, coll, docs).await;
                // Interleave reads with the writes of the other clients.
                let (id, v) = mine[rng_index(&mut rng, mine.len())].clone();
                let hits = c
                    .search
                    .search(search_req(coll, v, 5, Some(eq("client", int(t as i64)))))
                    .await
                    .unwrap()
                    .into_inner()
                    .hits;
                assert_eq!(hits[0].id, id, "a client finds its own acknowledged document");
                assert!(hits.iter().all(|h| h.id.starts_with(&format!("t{t}-"))));
                let n = count(&mut c, coll, Some(eq("client", int(t as i64)))).await;
                assert_eq!(n as usize, mine.len());
            }
            (coll, mine.len())
        }));
    }
    let mut per_coll = std::collections::HashMap::new();
    for t in tasks {
        let (coll, n) = t.await.unwrap();
        *per_coll.entry(coll).or_insert(0) += n;
    }
    for (coll, n) in per_coll {
        assert_eq!(count(&mut c, coll, None).await as usize, n);
        assert_eq!(scroll_all(&mut c, coll, None, 500).await.len(), n);
    }
    server.stop();
}

fn rng_index(rng: &mut impl rand::Rng, len: usize) -> usize {
    rng.random_range(0..len)
}
