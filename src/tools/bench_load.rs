//! `hirevec bench load`: N concurrent gRPC clients, each on its own connection, run a mix of
//! searches and upserts against a server for a duration or a request count, and the tool reports
//! throughput, latency percentiles and errors per operation.
//!
//! Latencies are kept whole (one u32 of microseconds per request) and sorted at the end, so the
//! percentiles are exact rather than bucketed.
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use super::client::{ServerArgs, ensure_collection};
use crate::proto;

/// Arguments of `hirevec bench load`.
#[derive(Debug, Clone, Args)]
pub struct BenchLoadArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// The collection; created (for client vectors) when missing.
    #[arg(long, default_value = "bench-load")]
    pub collection: String,
    /// Query and document vectors from a file (.npy or .fvecs); default random unit vectors.
    #[arg(long)]
    pub vectors: Option<PathBuf>,
    /// Dimension of the random vectors (ignored with --vectors).
    #[arg(long, default_value_t = 128)]
    pub dim: u32,
    /// Documents upserted before the timed run (from the file's rows, or random).
    #[arg(long, default_value_t = 10_000)]
    pub preload: usize,
    /// Concurrent clients, each with its own connection.
    #[arg(long, default_value_t = 8)]
    pub clients: usize,
    /// Run this many seconds...
    #[arg(long, default_value_t = 10.0, conflicts_with = "requests")]
    pub duration: f64,
    /// ...or this many requests in total.
    #[arg(long)]
    pub requests: Option<u64>,
    /// Share of requests that are upserts (the rest are searches), 0..=1.
    #[arg(long, default_value_t = 0.1)]
    pub upsert_ratio: f64,
    /// Documents per upsert request.
    #[arg(long, default_value_t = 10)]
    pub upsert_batch: usize,
    /// Hits per search.
    #[arg(long, default_value_t = 10)]
    pub top_k: u32,
    /// Search ef (default: the collection's).
    #[arg(long)]
    pub ef: Option<u32>,
    /// Seed of the operation mix and the random vectors.
    #[arg(long, default_value_t = 20261201)]
    pub seed: u64,
    /// Drop the collection at the end.
    #[arg(long)]
    pub drop: bool,
    /// Also write the JSON report here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write a latency histogram (SVG) here.
    #[arg(long)]
    pub plot: Option<PathBuf>,
}

/// Latency and errors of one operation type.
#[derive(Debug, Clone, Default, Serialize)]
pub struct OpReport {
    pub requests: u64,
    pub ok: u64,
    /// Failed requests by gRPC code.
    pub errors: BTreeMap<String, u64>,
    pub qps: f64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    pub addr: String,
    pub collection: String,
    pub dim: u32,
    pub clients: usize,
    pub seed: u64,
    pub preloaded: usize,
    pub seconds: f64,
    pub requests: u64,
    pub errors: u64,
    pub qps: f64,
    pub search: OpReport,
    pub upsert: OpReport,
}

#[derive(Default)]
struct Samples {
    search: Vec<u32>,
    upsert: Vec<u32>,
    search_errors: BTreeMap<String, u64>,
    upsert_errors: BTreeMap<String, u64>,
}

/// The exact `q` quantile (nearest rank) of sorted microseconds, in milliseconds.
fn quantile_ms(sorted: &[u32], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1] as f64 / 1000.0
}

fn op_report(mut lat: Vec<u32>, errors: BTreeMap<String, u64>, secs: f64) -> OpReport {
    lat.sort_unstable();
    let failed: u64 = errors.values().sum();
    let ok = lat.len() as u64;
    OpReport {
        requests: ok + failed,
        ok,
        errors,
        qps: ok as f64 / secs,
        mean_ms: if lat.is_empty() {
            0.0
        } else {
            lat.iter().map(|&x| x as f64).sum::<f64>() / lat.len() as f64 / 1000.0
        },
        p50_ms: quantile_ms(&lat, 0.50),
        p95_ms: quantile_ms(&lat, 0.95),
        p99_ms: quantile_ms(&lat, 0.99),
        max_ms: lat.last().map_or(0.0, |&x| x as f64 / 1000.0),
    }
}

/// Vectors to send: rows of a file, or random unit vectors drawn on demand.
#[derive(Debug)]
enum Source {
    File(super::vecio::Vectors),
    Random(u32),
}

impl Source {
    fn dim(&self) -> u32 {
        match self {
            Source::File(v) => v.dim as u32,
            Source::Random(d) => *d,
        }
    }

    fn pick(&self, rng: &mut impl Rng) -> Vec<f32> {
        match self {
            Source::File(v) => v.row(rng.random_range(0..v.rows)).to_vec(),
            Source::Random(d) => {
                // Gaussian-ish from a sum of uniforms: direction uniform enough for a load test,
                // and never all zero in practice; nudged anyway so the server never rejects one.
                let mut x: Vec<f32> =
                    (0..*d).map(|_| (0..4).map(|_| rng.random::<f32>() - 0.5).sum()).collect();
                x[0] += 1e-3;
                x
            }
        }
    }
}

fn doc(id: String, vector: Vec<f32>, i: u64) -> proto::Document {
    let mut payload = std::collections::HashMap::new();
    payload.insert(
        "bucket".to_string(),
        proto::Value { kind: Some(proto::value::Kind::IntValue((i % 100) as i64)) },
    );
    proto::Document {
        id,
        kind: proto::DocumentKind::Resume as i32,
        payload,
        vector,
        ..Default::default()
    }
}

/// Runs `hirevec bench load`.
pub fn run(args: BenchLoadArgs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let report = rt.block_on(load(args.clone()))?;
    super::print_report(&report, args.json.as_deref())
}

/// Runs the load and returns its report (and draws the histogram when asked).
pub async fn load(args: BenchLoadArgs) -> anyhow::Result<LoadReport> {
    let (report, samples) = load_with_samples(args.clone()).await?;
    if let Some(path) = &args.plot {
        let mut ms: Vec<f64> = samples.search.iter().map(|&u| u as f64 / 1000.0).collect();
        let what = if ms.is_empty() {
            ms = samples.upsert.iter().map(|&u| u as f64 / 1000.0).collect();
            "upsert"
        } else {
            "search"
        };
        // Cut the long tail at p99.9 so the body of the distribution stays readable.
        ms.sort_by(f64::total_cmp);
        let keep = ((ms.len() as f64) * 0.999).ceil() as usize;
        ms.truncate(keep.max(1));
        super::plot::histogram(
            path,
            &format!(
                "{what} latency, {} clients, {:.0} QPS (p50 {:.2} ms, p99 {:.2} ms; tail above p99.9 cut)",
                report.clients,
                report.qps,
                if what == "search" { report.search.p50_ms } else { report.upsert.p50_ms },
                if what == "search" { report.search.p99_ms } else { report.upsert.p99_ms },
            ),
            "milliseconds",
            &ms,
            60,
        )?;
    }
    Ok(report)
}

async fn load_with_samples(args: BenchLoadArgs) -> anyhow::Result<(LoadReport, Samples)> {
    if !(0.0..=1.0).contains(&args.upsert_ratio) {
        bail!("--upsert-ratio {} is outside 0..=1", args.upsert_ratio);
    }
    if args.clients == 0 {
        bail!("--clients must be at least 1");
    }
    let source = Arc::new(match &args.vectors {
        Some(p) => Source::File(
            super::vecio::read_vectors(p).with_context(|| format!("read {}", p.display()))?,
        ),
        None => Source::Random(args.dim),
    });
    let dim = source.dim();
    let mut c = args.server.connect().await?;
    let info = ensure_collection(
        &mut c,
        &args.collection,
        proto::CollectionConfig { dim, ..Default::default() },
        true,
    )
    .await?;
    let have = info.config.as_ref().map_or(0, |c| c.dim);
    if have != dim {
        bail!("collection {} has dim {have}, the vectors {dim}", args.collection);
    }

    let mut rng = rand::rngs::StdRng::seed_from_u64(args.seed);
    let mut i = 0u64;
    while (i as usize) < args.preload {
        let n = (args.preload - i as usize).min(1000);
        let docs = (0..n as u64)
            .map(|j| doc(format!("pre-{}", i + j), source.pick(&mut rng), i + j))
            .collect();
        c.documents
            .upsert(proto::UpsertRequest { collection: args.collection.clone(), documents: docs })
            .await
            .map_err(|s| anyhow::anyhow!("preload: {} ({:?})", s.message(), s.code()))?;
        i += n as u64;
    }

    let issued = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(args.duration.max(0.0));
    let mut tasks = Vec::new();
    for w in 0..args.clients {
        let mut c = args.server.connect().await?;
        let args = args.clone();
        let source = source.clone();
        let issued = issued.clone();
        tasks.push(tokio::spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(args.seed ^ (w as u64 + 1) << 32);
            let mut s = Samples::default();
            let mut n = 0u64;
            loop {
                let done = match args.requests {
                    Some(total) => issued.fetch_add(1, Ordering::Relaxed) >= total,
                    None => Instant::now() >= deadline,
                };
                if done {
                    break;
                }
                let t = Instant::now();
                if rng.random::<f64>() < args.upsert_ratio {
                    let docs = (0..args.upsert_batch)
                        .map(|_| {
                            n += 1;
                            doc(format!("load-{w}-{n}"), source.pick(&mut rng), n)
                        })
                        .collect();
                    let r = c
                        .documents
                        .upsert(proto::UpsertRequest {
                            collection: args.collection.clone(),
                            documents: docs,
                        })
                        .await;
                    match r {
                        Ok(_) => s.upsert.push(t.elapsed().as_micros() as u32),
                        Err(e) => {
                            *s.upsert_errors.entry(format!("{:?}", e.code())).or_default() += 1
                        }
                    }
                } else {
                    let r = c
                        .search
                        .search(proto::SearchRequest {
                            collection: args.collection.clone(),
                            vector: source.pick(&mut rng),
                            top_k: args.top_k,
                            ef: args.ef,
                            ..Default::default()
                        })
                        .await;
                    match r {
                        Ok(_) => s.search.push(t.elapsed().as_micros() as u32),
                        Err(e) => {
                            *s.search_errors.entry(format!("{:?}", e.code())).or_default() += 1
                        }
                    }
                }
            }
            s
        }));
    }
    let mut all = Samples::default();
    for t in tasks {
        let s = t.await.context("a client task panicked")?;
        all.search.extend(s.search);
        all.upsert.extend(s.upsert);
        for (k, v) in s.search_errors {
            *all.search_errors.entry(k).or_default() += v;
        }
        for (k, v) in s.upsert_errors {
            *all.upsert_errors.entry(k).or_default() += v;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let search = op_report(all.search.clone(), all.search_errors.clone(), secs);
    let upsert = op_report(all.upsert.clone(), all.upsert_errors.clone(), secs);
    if args.drop {
        c.collections
            .delete(proto::DeleteCollectionRequest { name: args.collection.clone() })
            .await
            .map_err(|s| anyhow::anyhow!("drop {}: {}", args.collection, s.message()))?;
    }
    let errors = search.requests - search.ok + upsert.requests - upsert.ok;
    let requests = search.requests + upsert.requests;
    Ok((
        LoadReport {
            addr: args.server.addr.clone(),
            collection: args.collection.clone(),
            dim,
            clients: args.clients,
            seed: args.seed,
            preloaded: args.preload,
            seconds: secs,
            requests,
            errors,
            qps: (search.ok + upsert.ok) as f64 / secs,
            search,
            upsert,
        },
        all,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_quantiles() {
        let lat: Vec<u32> = (1..=100).map(|x| x * 1000).collect();
        assert_eq!(quantile_ms(&lat, 0.50), 50.0);
        assert_eq!(quantile_ms(&lat, 0.95), 95.0);
        assert_eq!(quantile_ms(&lat, 0.99), 99.0);
        assert_eq!(quantile_ms(&lat, 1.0), 100.0);
        assert_eq!(quantile_ms(&[7000], 0.99), 7.0);
        assert_eq!(quantile_ms(&[], 0.5), 0.0);
        let r = op_report(vec![3000, 1000, 2000], BTreeMap::from([("Unavailable".into(), 1)]), 1.0);
        assert_eq!((r.requests, r.ok, r.p50_ms, r.max_ms, r.mean_ms), (4, 3, 2.0, 3.0, 2.0));
    }
}
