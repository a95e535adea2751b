//! `hirevec bench ann`: builds an HNSW segment from a vector file, seals it to disk, reopens it
//! and sweeps `ef` over the sealed (mmapped) segment, measuring recall@k against exact ground
//! truth, single- and multi-thread throughput and single-thread latency percentiles.
//!
//! The measurement procedure is mirrored line by line by `scripts/hnswlib_bench.py` (same files,
//! same ground truth, same warm-up, same JSON), so the two engines can be compared in one run.
//! Searches run on the sealed segment, not the in-memory one, because that is what the server
//! serves from.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail, ensure};
use clap::{Args, ValueEnum};
use hirevec_index::{Dtype, GrowingSegment, SealedSegment, SearchParams, Segment, SegmentConfig};
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use serde::Serialize;

use super::vecio::{self, Vectors};

/// Element type of the stored vectors, as a command-line value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DtypeArg {
    /// Half precision (the server's default: half the memory, recall within a few thousandths).
    F16,
    /// Single precision.
    F32,
}

impl From<DtypeArg> for Dtype {
    fn from(d: DtypeArg) -> Self {
        match d {
            DtypeArg::F16 => Dtype::F16,
            DtypeArg::F32 => Dtype::F32,
        }
    }
}

/// Arguments of `hirevec bench ann`.
#[derive(Debug, Clone, Args)]
pub struct BenchAnnArgs {
    /// Base vectors (.npy f32/f16, or .fvecs); row i is inserted with id i.
    #[arg(long)]
    pub base: PathBuf,
    /// Query vectors (.npy f32/f16, or .fvecs), same dimension as the base.
    #[arg(long)]
    pub queries: PathBuf,
    /// Ground-truth neighbour ids (.ivecs, one row of >= k base row numbers per query). Without
    /// it the exact cosine top-k is computed on all cores.
    #[arg(long)]
    pub gt: Option<PathBuf>,
    /// Neighbours per query (recall@k).
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    /// HNSW `m`: links per node above layer 0 (layer 0 gets `m0 = 2m`).
    #[arg(long, default_value_t = 16)]
    pub m: usize,
    /// HNSW `ef_construction`: candidate list size while inserting.
    #[arg(long, default_value_t = 200)]
    pub ef_construction: usize,
    /// Element type the index stores.
    #[arg(long, value_enum, default_value_t = DtypeArg::F16)]
    pub dtype: DtypeArg,
    /// Matryoshka truncation: keep the first D components (re-normalised). Ground truth stays
    /// the exact full-dimension result.
    #[arg(long)]
    pub stored_dim: Option<usize>,
    /// Threads for building and for the all-threads QPS run [default: all cores].
    #[arg(long)]
    pub threads: Option<usize>,
    /// Comma-separated `ef` values to sweep (each >= k).
    #[arg(long, value_delimiter = ',', default_value = "16,32,64,128,256,512")]
    pub ef: Vec<usize>,
    /// Write the results as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Keep the sealed segment file in this directory [default: a temporary directory, removed
    /// at exit].
    #[arg(long)]
    pub out_dir: Option<PathBuf>,
    /// Seed of the HNSW level assignment.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Untimed queries run before the sweep (at the largest ef) so the first measured ef does
    /// not pay for page faults on the freshly mapped file.
    #[arg(long, default_value_t = 2000)]
    pub warmup: usize,
    /// Passes over the queries per `ef` and mode; the fastest is reported.
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
    /// Draw recall@k against QPS (all threads) as SVG here.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Other reports of the same shape (another dtype's --json, scripts/hnswlib_bench.py's) to
    /// draw as more curves on the --plot chart.
    #[arg(long, value_delimiter = ',', requires = "plot")]
    pub plot_with: Vec<PathBuf>,
}

/// Measurements for one `ef` (one row of the table, one element of `runs` in the JSON).
#[derive(Debug, Clone, Serialize)]
pub struct EfRun {
    /// Search candidate list size.
    pub ef: usize,
    /// |hnsw top-k ∩ exact top-k| / k, averaged over queries.
    pub recall_at_k: f64,
    /// All queries one after another on one thread.
    pub qps_single_thread: f64,
    /// Queries split evenly over `threads` threads, wall-clock.
    pub qps_all_threads: f64,
    /// Median single-thread latency.
    pub p50_us: f64,
    /// 99th percentile single-thread latency.
    pub p99_us: f64,
}

/// The whole report, as written to `--json`; `scripts/hnswlib_bench.py` writes the same shape.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Which library was measured.
    pub engine: &'static str,
    /// Dataset name: the directory holding the base file (e.g. `glove-50`).
    pub dataset: String,
    /// The base file as given.
    pub base: String,
    /// The query file as given.
    pub queries: String,
    /// The ground-truth file, or null when it was computed.
    pub gt: Option<String>,
    /// `"file"` or `"exact"` (computed here, full dimension, f64).
    pub gt_source: &'static str,
    /// Base vectors.
    pub n_base: usize,
    /// Query vectors.
    pub n_queries: usize,
    /// Input dimension (and the dimension of the ground truth).
    pub dim: usize,
    /// Dimension the index stores and searches.
    pub stored_dim: usize,
    /// Element type the index stores.
    pub dtype: &'static str,
    /// Element type of the base file.
    pub input_dtype: String,
    /// Neighbours per query.
    pub k: usize,
    /// HNSW `m`.
    pub m: usize,
    /// HNSW `ef_construction`.
    pub ef_construction: usize,
    /// Build threads and all-threads search threads.
    pub threads: usize,
    /// HNSW level seed.
    pub seed: u64,
    /// Passes per `ef` and mode; QPS and latencies come from the fastest.
    pub repeat: usize,
    /// Wall-clock time of all inserts.
    pub build_seconds: f64,
    /// Time to write the sealed file (not part of `build_seconds`).
    pub seal_seconds: f64,
    /// Size of the sealed segment file.
    pub index_bytes: u64,
    /// One entry per `ef`, in the order given.
    pub runs: Vec<EfRun>,
}

/// Runs the benchmark described by `args`.
pub fn run(args: BenchAnnArgs) -> Result<()> {
    validate(&args)?;
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));

    let base = load(&args.base, "base")?;
    let queries = load(&args.queries, "queries")?;
    ensure!(
        base.dim == queries.dim,
        "{}: queries have dimension {}, base {} has {}",
        args.queries.display(),
        queries.dim,
        args.base.display(),
        base.dim
    );
    ensure!(base.rows > 0, "{}: no base vectors", args.base.display());
    ensure!(queries.rows > 0, "{}: no query vectors", args.queries.display());
    ensure!(
        base.rows <= u32::MAX as usize,
        "{}: {} rows do not fit u32 ids",
        args.base.display(),
        base.rows
    );
    ensure!(args.k <= base.rows, "--k {} is larger than the {} base vectors", args.k, base.rows);
    let dim = base.dim;
    let stored_dim = args.stored_dim.unwrap_or(dim);
    ensure!(
        (1..=dim).contains(&stored_dim),
        "--stored-dim {stored_dim} must be between 1 and the input dimension {dim}"
    );

    let (gt, gt_source) = match &args.gt {
        Some(path) => (load_gt(path, args.k, queries.rows, base.rows)?, "file"),
        None => {
            eprintln!(
                "computing exact cosine top-{} for {} queries over {} base vectors ({} dims, f64, {} rayon threads)...",
                args.k,
                queries.rows,
                base.rows,
                dim,
                rayon::current_num_threads()
            );
            let t = Instant::now();
            let gt = exact_top_k(&base, &queries, args.k);
            eprintln!("  done in {:.1}s", t.elapsed().as_secs_f64());
            (gt, "exact")
        }
    };

    let mut config = SegmentConfig::new(dim);
    config.stored_dim = stored_dim;
    config.dtype = args.dtype.into();
    config.hnsw.m = args.m;
    config.hnsw.ef_construction = args.ef_construction;
    config.hnsw.seed = args.seed;
    config.validate().context("invalid index parameters")?;

    let dtype_name: &'static str = match args.dtype {
        DtypeArg::F16 => "f16",
        DtypeArg::F32 => "f32",
    };
    let dataset = dataset_name(&args.base);
    eprintln!(
        "{dataset}: {} base, {} queries, dim {dim}, stored_dim {stored_dim}, dtype {dtype_name}, \
         m {}, ef_construction {}, {threads} threads",
        base.rows, queries.rows, args.m, args.ef_construction
    );

    // Build.
    let growing = GrowingSegment::new(config, base.rows).context("creating the segment")?;
    let build_seconds = build(&growing, &base, &args.base, threads)?;
    eprintln!("built in {build_seconds:.2}s ({:.0} inserts/s)", base.rows as f64 / build_seconds);

    // Seal, drop the in-memory graph, reopen from disk.
    let out = OutDir::new(args.out_dir.as_deref())?;
    let file_name =
        format!("{dataset}-{dtype_name}-d{stored_dim}-m{}-efc{}.seg", args.m, args.ef_construction);
    let seg_path = out.path().join(file_name);
    growing.freeze();
    let t = Instant::now();
    growing.write_sealed(&seg_path).with_context(|| format!("writing {}", seg_path.display()))?;
    let seal_seconds = t.elapsed().as_secs_f64();
    drop(growing);
    let sealed = SealedSegment::open(&seg_path)
        .with_context(|| format!("opening {}", seg_path.display()))?;
    let index_bytes = sealed.file_len();
    ensure!(
        sealed.len() == base.rows,
        "{}: sealed segment has {} vectors, {} were inserted",
        seg_path.display(),
        sealed.len(),
        base.rows
    );
    eprintln!(
        "sealed {} ({:.1} MB) in {seal_seconds:.2}s",
        seg_path.display(),
        index_bytes as f64 / 1e6
    );

    // Sweep.
    let warm_ef = *args.ef.iter().max().expect("validated non-empty");
    let warm_n = args.warmup.min(queries.rows);
    let warm = SearchParams::new(args.k, warm_ef);
    for i in 0..warm_n {
        sealed.search(queries.row(i), &warm).context("warm-up search")?;
    }
    let sweep = Sweep { k: args.k, threads, repeat: args.repeat };
    let mut runs = Vec::with_capacity(args.ef.len());
    for &ef in &args.ef {
        runs.push(measure(&sealed, &queries, &gt, &sweep, ef)?);
    }

    let report = Report {
        engine: "hirevec",
        dataset,
        base: args.base.display().to_string(),
        queries: args.queries.display().to_string(),
        gt: args.gt.as_ref().map(|p| p.display().to_string()),
        gt_source,
        n_base: base.rows,
        n_queries: queries.rows,
        dim,
        stored_dim,
        dtype: dtype_name,
        input_dtype: base.source_type.to_string(),
        k: args.k,
        m: args.m,
        ef_construction: args.ef_construction,
        threads,
        seed: args.seed,
        repeat: args.repeat,
        build_seconds,
        seal_seconds,
        index_bytes,
        runs,
    };
    print_table(&report);
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    if args.out_dir.is_some() {
        eprintln!("kept {}", seg_path.display());
    }
    if let Some(path) = &args.plot {
        plot(path, &report, &args.plot_with)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// Recall against QPS, one curve per engine/dtype: this run's and those of `others`.
fn plot(path: &Path, report: &Report, others: &[PathBuf]) -> Result<()> {
    let curve = |runs: &[serde_json::Value]| -> Vec<(f64, f64)> {
        runs.iter()
            .filter_map(|r| Some((r["recall_at_k"].as_f64()?, r["qps_all_threads"].as_f64()?)))
            .collect()
    };
    let mut series = vec![(
        format!("hirevec {}", report.dtype),
        report.runs.iter().map(|r| (r.recall_at_k, r.qps_all_threads)).collect(),
    )];
    for p in others {
        let text =
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
        let v: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", p.display()))?;
        let name = match (v["engine"].as_str(), v["dtype"].as_str()) {
            (Some(e), Some(d)) => format!("{e} {d}"),
            (Some(e), None) => e.to_string(),
            _ => p.display().to_string(),
        };
        series.push((name, curve(v["runs"].as_array().map(Vec::as_slice).unwrap_or(&[]))));
    }
    super::plot::lines(
        path,
        &format!(
            "{}: recall@{} vs QPS ({} threads, m {}, ef_construction {})",
            report.dataset, report.k, report.threads, report.m, report.ef_construction
        ),
        &format!("recall@{}", report.k),
        "queries per second",
        &series,
    )
}

fn validate(args: &BenchAnnArgs) -> Result<()> {
    ensure!(args.k >= 1, "--k must be at least 1");
    ensure!(!args.ef.is_empty(), "--ef needs at least one value");
    if let Some(&ef) = args.ef.iter().find(|&&ef| ef < args.k) {
        // HNSW cannot return k results from fewer than k candidates; hnswlib silently raises
        // such an ef to k, which would make two rows of the table the same run.
        bail!("--ef {ef} is smaller than --k {}; every ef must be >= k", args.k);
    }
    ensure!(args.repeat >= 1, "--repeat must be at least 1");
    if let Some(t) = args.threads {
        ensure!(t >= 1, "--threads must be at least 1");
    }
    Ok(())
}

fn load(path: &Path, what: &str) -> Result<Vectors> {
    let t = Instant::now();
    let v = vecio::read_vectors(path).with_context(|| format!("reading the {what} vectors"))?;
    eprintln!(
        "read {}: {} x {} {} in {:.2}s",
        path.display(),
        v.rows,
        v.dim,
        v.source_type,
        t.elapsed().as_secs_f64()
    );
    Ok(v)
}

/// Reads `.ivecs` ground truth and checks it against the data it claims to describe, keeping
/// the first `k` ids of each row.
fn load_gt(path: &Path, k: usize, n_queries: usize, n_base: usize) -> Result<Vec<Vec<u32>>> {
    let rows = vecio::read_ivecs(path).context("reading the ground truth")?;
    ensure!(
        rows.len() == n_queries,
        "{}: {} ground-truth rows for {n_queries} queries",
        path.display(),
        rows.len()
    );
    rows.into_iter()
        .enumerate()
        .map(|(q, row)| {
            ensure!(
                row.len() >= k,
                "{}: rows have {} ids, fewer than --k {k}",
                path.display(),
                row.len()
            );
            row[..k]
                .iter()
                .map(|&id| {
                    u32::try_from(id).ok().filter(|&id| (id as usize) < n_base).ok_or_else(|| {
                        anyhow!(
                            "{}: row {q} has id {id}, outside the {n_base} base rows",
                            path.display()
                        )
                    })
                })
                .collect()
        })
        .collect()
}

/// The name the tables and JSON use: the directory of the base file (`data/glove-50/base.npy`
/// -> `glove-50`), or the file stem when it has no directory.
fn dataset_name(base: &Path) -> String {
    base.parent()
        .and_then(|p| p.file_name())
        .or_else(|| base.file_stem())
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "dataset".into())
}

/// Exact cosine top-`k` of every query over all base rows, in f64, ties by id ascending (the
/// index's order). Zero base vectors have no cosine and are skipped; the index rejects them too.
pub fn exact_top_k(base: &Vectors, queries: &Vectors, k: usize) -> Vec<Vec<u32>> {
    let inv_norms: Vec<f64> = (0..base.rows)
        .into_par_iter()
        .map(|i| {
            let n = dot_f64(base.row(i), base.row(i)).sqrt();
            if n > 0.0 { 1.0 / n } else { 0.0 }
        })
        .collect();
    (0..queries.rows)
        .into_par_iter()
        .map(|q| {
            let query = queries.row(q);
            // Scaling by the query norm does not change the order, but keeps the scores true
            // cosines for debugging.
            let qn = dot_f64(query, query).sqrt();
            let qinv = if qn > 0.0 { 1.0 / qn } else { 0.0 };
            // Sorted best first; `top.len() <= k`.
            let mut top: Vec<(f64, u32)> = Vec::with_capacity(k + 1);
            for (i, &inv) in inv_norms.iter().enumerate() {
                if inv == 0.0 {
                    continue;
                }
                let s = dot_f64(query, base.row(i)) * inv * qinv;
                // Ids arrive in ascending order, so an equal score never displaces an entry.
                if top.len() == k && s <= top[k - 1].0 {
                    continue;
                }
                let pos = top.partition_point(|&(t, _)| t >= s);
                top.insert(pos, (s, i as u32));
                top.truncate(k);
            }
            top.into_iter().map(|(_, id)| id).collect()
        })
        .collect()
}

/// Dot product accumulated in f64 over eight independent sums, so the compiler can vectorise
/// it (a single accumulator serialises on the add latency; the result differs from a
/// sequential sum only in the last bits).
fn dot_f64(a: &[f32], b: &[f32]) -> f64 {
    let mut acc = [0f64; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for j in 0..8 {
            acc[j] += f64::from(x[j]) * f64::from(y[j]);
        }
    }
    let mut s: f64 = acc.iter().sum();
    for (x, y) in ra.iter().zip(rb) {
        s += f64::from(*x) * f64::from(*y);
    }
    s
}

/// Inserts every base row (id = row number) from `threads` threads pulling chunks of rows off
/// a shared counter, so a slow thread does not hold up the end of the build. Returns seconds.
fn build(seg: &GrowingSegment, base: &Vectors, base_path: &Path, threads: usize) -> Result<f64> {
    // Small enough that threads finish together, big enough that the counter and the progress
    // bar are not contended.
    const CHUNK: usize = 256;
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let bar = ProgressBar::new(base.rows as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "building {bar:40} {pos}/{len} [{elapsed_precise}<{eta_precise}] {per_sec}",
        )
        .expect("static template"),
    );
    let start = Instant::now();
    std::thread::scope(|s| -> Result<()> {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| -> Result<()> {
                    while !failed.load(Ordering::Relaxed) {
                        let from = next.fetch_add(CHUNK, Ordering::Relaxed);
                        if from >= base.rows {
                            break;
                        }
                        let to = (from + CHUNK).min(base.rows);
                        for i in from..to {
                            if let Err(e) = seg.insert(i as u32, base.row(i)) {
                                failed.store(true, Ordering::Relaxed);
                                return Err(anyhow::Error::new(e).context(format!(
                                    "{}: inserting row {i}",
                                    base_path.display()
                                )));
                            }
                        }
                        bar.inc((to - from) as u64);
                    }
                    Ok(())
                })
            })
            .collect();
        for w in workers {
            w.join().map_err(|_| anyhow!("a build thread panicked"))??;
        }
        Ok(())
    })?;
    let secs = start.elapsed().as_secs_f64();
    bar.finish_and_clear();
    Ok(secs)
}

/// Measures one `ef`: `repeat` single-thread passes over all queries (recall, QPS, per-query
/// latencies) and `repeat` passes with the queries split over `threads` threads (QPS only).
/// Each figure comes from the fastest pass, as in ann-benchmarks: on a shared machine the
/// slower passes measure the neighbours' load, not the index.
fn measure(
    seg: &SealedSegment,
    queries: &Vectors,
    gt: &[Vec<u32>],
    sweep: &Sweep,
    ef: usize,
) -> Result<EfRun> {
    let (k, threads) = (sweep.k, sweep.threads);
    let params = SearchParams::new(k, ef);
    let n = queries.rows;

    let mut best: Option<(f64, Vec<u64>)> = None;
    let mut found = 0usize;
    for pass in 0..sweep.repeat {
        let mut lat_ns = Vec::with_capacity(n);
        let start = Instant::now();
        for (q, truth) in gt.iter().enumerate().take(n) {
            let t = Instant::now();
            let hits = seg.search(queries.row(q), &params)?;
            lat_ns.push(t.elapsed().as_nanos() as u64);
            if pass == 0 {
                // Both lists hold at most k distinct ids; a quadratic check beats hashing at
                // k = 10. Searches are deterministic, so one pass gives the recall.
                found += hits.iter().take(k).filter(|h| truth.contains(&h.id)).count();
            }
        }
        let secs = start.elapsed().as_secs_f64();
        if best.as_ref().is_none_or(|(b, _)| secs < *b) {
            best = Some((secs, lat_ns));
        }
    }
    let (single_secs, mut lat_ns) = best.expect("repeat >= 1");

    let per_thread = n.div_ceil(threads);
    let mut multi_secs = f64::INFINITY;
    for _ in 0..sweep.repeat {
        let start = Instant::now();
        std::thread::scope(|s| -> Result<()> {
            let workers: Vec<_> = (0..n)
                .step_by(per_thread)
                .map(|from| {
                    let params = &params;
                    s.spawn(move || -> Result<usize> {
                        let mut returned = 0;
                        for q in from..(from + per_thread).min(n) {
                            returned += seg.search(queries.row(q), params)?.len();
                        }
                        Ok(returned)
                    })
                })
                .collect();
            for w in workers {
                // The count is only consumed so the searches cannot be optimised away.
                std::hint::black_box(w.join().map_err(|_| anyhow!("a search thread panicked"))??);
            }
            Ok(())
        })?;
        multi_secs = multi_secs.min(start.elapsed().as_secs_f64());
    }

    lat_ns.sort_unstable();
    Ok(EfRun {
        ef,
        recall_at_k: found as f64 / (n * k) as f64,
        qps_single_thread: n as f64 / single_secs,
        qps_all_threads: n as f64 / multi_secs,
        p50_us: percentile(&lat_ns, 50.0) / 1e3,
        p99_us: percentile(&lat_ns, 99.0) / 1e3,
    })
}

/// What every `ef` of a sweep shares.
#[derive(Debug, Clone, Copy)]
struct Sweep {
    k: usize,
    threads: usize,
    repeat: usize,
}

/// Nearest-rank percentile of sorted values (the same definition the hnswlib script uses).
fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64
}

fn print_table(r: &Report) {
    println!(
        "\n{} | {} base x {} queries | dim {} -> stored_dim {} {} | m {} ef_construction {} | {} threads",
        r.dataset,
        r.n_base,
        r.n_queries,
        r.dim,
        r.stored_dim,
        r.dtype,
        r.m,
        r.ef_construction,
        r.threads
    );
    println!(
        "build {:.2}s ({} threads), seal {:.2}s, index {:.1} MB",
        r.build_seconds,
        r.threads,
        r.seal_seconds,
        r.index_bytes as f64 / 1e6
    );
    let gt_note = match &r.gt {
        Some(p) => format!("ground truth: {p}"),
        None => format!("ground truth: exact cosine top-{} computed here (f64)", r.k),
    };
    if r.stored_dim < r.dim {
        println!(
            "{gt_note}; it is the full {}-dim result, so recall includes the loss of the \
             Matryoshka cut to {}",
            r.dim, r.stored_dim
        );
    } else {
        println!("{gt_note}");
    }
    println!(
        "\n{:>6} {:>10} {:>12} {:>12} {:>9} {:>9}",
        "ef",
        format!("recall@{}", r.k),
        "QPS 1 thr",
        format!("QPS {} thr", r.threads),
        "p50 us",
        "p99 us"
    );
    for run in &r.runs {
        println!(
            "{:>6} {:>10.4} {:>12.0} {:>12.0} {:>9.1} {:>9.1}",
            run.ef,
            run.recall_at_k,
            run.qps_single_thread,
            run.qps_all_threads,
            run.p50_us,
            run.p99_us
        );
    }
}

/// Where the sealed file goes: the user's directory (kept), or a fresh temporary one that is
/// removed on drop. Hand-rolled because `tempfile` is only a dev-dependency of this crate.
struct OutDir {
    path: PathBuf,
    remove: bool,
}

impl OutDir {
    fn new(user: Option<&Path>) -> Result<Self> {
        if let Some(dir) = user {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating --out-dir {}", dir.display()))?;
            return Ok(Self { path: dir.to_path_buf(), remove: false });
        }
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path =
            std::env::temp_dir().join(format!("hirevec-bench-ann-{}-{nanos}", std::process::id()));
        // create_dir (not _all) fails if the name exists, so we never adopt someone else's dir.
        std::fs::create_dir(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(Self { path, remove: true })
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for OutDir {
    fn drop(&mut self) {
        if self.remove {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng, rngs::StdRng};

    fn random(rows: usize, dim: usize, seed: u64) -> Vectors {
        let mut rng = StdRng::seed_from_u64(seed);
        Vectors {
            rows,
            dim,
            data: (0..rows * dim).map(|_| rng.random_range(-1.0f32..1.0)).collect(),
            source_type: vecio::ElemType::F32,
        }
    }

    #[test]
    fn exact_top_k_matches_a_full_sort() {
        let seed = 7;
        println!("seed {seed}");
        let base = random(500, 13, seed);
        let queries = random(20, 13, seed + 1);
        let gt = exact_top_k(&base, &queries, 10);
        assert_eq!(gt.len(), queries.rows);
        for (q, got) in gt.iter().enumerate() {
            let cos = |i: usize| {
                let (a, b) = (queries.row(q), base.row(i));
                dot_f64(a, b) / (dot_f64(a, a).sqrt() * dot_f64(b, b).sqrt())
            };
            let mut all: Vec<(f64, u32)> = (0..base.rows).map(|i| (cos(i), i as u32)).collect();
            all.sort_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1)));
            let want: Vec<u32> = all[..10].iter().map(|x| x.1).collect();
            assert_eq!(got, &want, "query {q}");
        }
    }

    #[test]
    fn exact_top_k_breaks_ties_by_id_and_skips_zero_vectors() {
        // Rows 0 and 3 are zero; rows 1, 2 and 4 point the same way (cosine 1).
        let base = Vectors {
            rows: 5,
            dim: 2,
            data: vec![0.0, 0.0, 1.0, 0.0, 2.0, 0.0, 0.0, 0.0, 3.0, 0.0],
            source_type: vecio::ElemType::F32,
        };
        let queries =
            Vectors { rows: 1, dim: 2, data: vec![5.0, 0.0], source_type: vecio::ElemType::F32 };
        assert_eq!(exact_top_k(&base, &queries, 2), vec![vec![1, 2]]);
        assert_eq!(exact_top_k(&base, &queries, 4), vec![vec![1, 2, 4]]);
    }

    #[test]
    fn dot_f64_matches_sequential_sum() {
        let v = random(1, 37, 3);
        let w = random(1, 37, 4);
        let seq: f64 = v.data.iter().zip(&w.data).map(|(a, b)| f64::from(*a) * f64::from(*b)).sum();
        assert!((dot_f64(&v.data, &w.data) - seq).abs() < 1e-12);
    }

    #[test]
    fn percentile_is_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&[5], 99.0), 5.0);
    }

    #[test]
    fn ground_truth_is_checked_against_the_data() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("gt.ivecs");
        vecio::write_ivecs(&p, &[vec![0, 1, 2], vec![2, 1, 0]]).unwrap();
        assert_eq!(load_gt(&p, 2, 2, 3).unwrap(), vec![vec![0, 1], vec![2, 1]]);
        let msg = |r: Result<Vec<Vec<u32>>>| format!("{:#}", r.unwrap_err());
        assert!(msg(load_gt(&p, 2, 3, 3)).contains("2 ground-truth rows for 3 queries"));
        assert!(msg(load_gt(&p, 4, 2, 3)).contains("fewer than --k 4"));
        assert!(msg(load_gt(&p, 3, 2, 2)).contains("outside the 2 base rows"));
    }

    #[test]
    fn dataset_name_is_the_directory() {
        assert_eq!(dataset_name(Path::new("data/glove-50/base.npy")), "glove-50");
        assert_eq!(dataset_name(Path::new("base.npy")), "base");
    }
}
