//! `hirevec bench restart`: loads N random vectors through the engine's write path, shuts down
//! cleanly (sealing every segment), then times how long opening the data takes. The claim under
//! test is that opening does not grow with sealed data: run it at several N and compare.
//! A timing never decides pass/fail; this prints figures.
use std::path::PathBuf;
use std::time::Instant;

use rand::{Rng, SeedableRng};

use super::engine::{Engine, EngineOptions};
use super::model::{CollectionConfig, HnswConfig, Kind, NewDocument, Payload, Value};
use crate::error::Result;

/// Arguments of `hirevec bench restart`.
#[derive(Debug, Clone, clap::Args)]
pub struct RestartArgs {
    /// Vectors to load.
    #[arg(long, default_value_t = 100_000)]
    pub vectors: usize,
    /// Dimension.
    #[arg(long, default_value_t = 128)]
    pub dim: u32,
    /// Seal threshold of the collection.
    #[arg(long, default_value_t = 100_000)]
    pub seal_threshold: u32,
    /// ef_construction (lower loads faster; restart cost does not depend on it).
    #[arg(long, default_value_t = 64)]
    pub ef_construction: u32,
    /// Vectors written after the last seal and left unsealed (replayed at open), as after a crash.
    #[arg(long, default_value_t = 0)]
    pub tail: usize,
    /// Data directory (kept); default: a temporary directory, removed afterwards.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Reuse an existing data directory instead of loading (only time the opens).
    #[arg(long)]
    pub reuse: bool,
    /// Opens to time.
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
    /// Seed of the random vectors.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

fn load(
    engine: &Engine,
    args: &RestartArgs,
    rng: &mut rand::rngs::StdRng,
    from: usize,
    n: usize,
) -> Result<()> {
    let c = engine.get("bench")?;
    let bar = indicatif::ProgressBar::new(n as u64);
    for start in (from..from + n).step_by(1000) {
        let end = (start + 1000).min(from + n);
        let docs = (start..end)
            .map(|i| {
                let mut payload = Payload::new();
                payload.insert("bucket".into(), Value::Int((i % 100) as i64));
                NewDocument {
                    id: format!("doc-{i}"),
                    kind: if i % 2 == 0 { Kind::Resume } else { Kind::Jd },
                    text: String::new(),
                    payload,
                    vector: (0..args.dim).map(|_| rng.random_range(-1.0f32..1.0)).collect(),
                }
            })
            .collect();
        c.upsert(docs)?;
        bar.inc((end - start) as u64);
    }
    bar.finish_and_clear();
    Ok(())
}

/// Runs the benchmark and prints one line per timed open.
pub fn run(args: RestartArgs) -> anyhow::Result<()> {
    let (data_dir, remove_after) = match &args.data_dir {
        Some(d) => (d.clone(), false),
        None => {
            let d =
                std::env::temp_dir().join(format!("hirevec-bench-restart-{}", std::process::id()));
            (d, true)
        }
    };
    let options = EngineOptions {
        data_dir: data_dir.clone(),
        max_batch: 1000,
        compaction_threshold: 0.3,
        exact_scan_threshold: hirevec_index::DEFAULT_EXACT_SCAN_THRESHOLD,
    };
    println!("seed {}", args.seed);
    if !args.reuse {
        let mut rng = rand::rngs::StdRng::seed_from_u64(args.seed);
        let engine = Engine::open(options.clone())?;
        let config = CollectionConfig {
            dim: args.dim,
            stored_dim: args.dim,
            dtype: hirevec_index::Dtype::F16,
            hnsw: HnswConfig { m: 16, ef_construction: args.ef_construction, ef: 64 },
            seal_threshold: args.seal_threshold,
            seed: args.seed,
            model: None,
            query_instruction: None,
        };
        engine.create("bench", config)?;
        let t = Instant::now();
        load(&engine, &args, &mut rng, 0, args.vectors)?;
        println!(
            "loaded {} vectors (dim {}) in {:.1} s",
            args.vectors,
            args.dim,
            t.elapsed().as_secs_f64()
        );
        let t = Instant::now();
        engine.shutdown()?;
        println!("clean shutdown (seal + flush) in {:.1} s", t.elapsed().as_secs_f64());
        drop(engine);
        if args.tail > 0 {
            let engine = Engine::open(options.clone())?;
            load(&engine, &args, &mut rng, args.vectors, args.tail)?;
            // No shutdown: the tail stays unsealed and is replayed by every open below.
            drop(engine);
        }
    }
    for i in 0..args.repeat {
        let t = Instant::now();
        let engine = Engine::open(options.clone())?;
        let open = t.elapsed();
        let c = engine.get("bench")?;
        let s = c.stats();
        println!(
            "open {}: {:.1} ms; documents {}, sealed segments {}, sealed vectors {}, replayed vectors {}",
            i + 1,
            open.as_secs_f64() * 1e3,
            s.documents,
            s.sealed_segments,
            s.sealed_vectors,
            s.growing_vectors
        );
        // Dropped without shutdown so the next open sees the same files and tail.
        drop(c);
        drop(engine);
    }
    if remove_after {
        std::fs::remove_dir_all(&data_dir)?;
    }
    Ok(())
}
