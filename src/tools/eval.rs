//! `hirevec eval`: retrieval quality on a BEIR-layout set, through the server like any client.
//!
//! The corpus is imported into a fresh collection (of the server at `--addr`, or of a temporary
//! one started with `--model`), every query runs as a text search, and the hits are scored with
//! [`super::metrics`] (trec_eval definitions). A grid runs the same queries under several settings
//! (instruction on/off, rerank on/off, stored_dim list, ef list); a BM25 row over the same corpus
//! is the lexical reference. A pairs file gives Spearman's rho between cosine and a graded label.
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Args;
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use super::beir::{BeirSet, read_jsonl};
use super::bm25::{Bm25, Bm25Params};
use super::client::{ChildServer, Clients, connect, ensure_collection, own_binary, parse_kind};
use super::import::{Importer, Pending, beir_document, progress_bar};
use super::metrics::{self, Summary};
use crate::proto;

/// Arguments of `hirevec eval`.
#[derive(Debug, Clone, Args)]
pub struct EvalArgs {
    /// A BEIR folder: corpus.jsonl, queries.jsonl, qrels/<split>.tsv.
    #[arg(long, required_unless_present = "pairs")]
    pub data: Option<PathBuf>,
    /// The qrels split.
    #[arg(long, default_value = "test")]
    pub split: String,
    /// The embedding model: for a temporary server, a folder or hub id (default: the server's
    /// default); with --addr, a model id from Models.List (default: the server's default).
    #[arg(long)]
    pub model: Option<String>,
    /// A reranker (folder or hub id) for the temporary server, needed for --grid-rerank on.
    #[arg(long)]
    pub reranker: Option<String>,
    /// Use this running server instead of starting one.
    #[arg(long)]
    pub addr: Option<String>,
    /// API key for --addr (prefer the environment variable).
    #[arg(long, env = "HIREVEC_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// The `hirevec` binary for the temporary server (default: this one).
    #[arg(long)]
    pub bin: Option<PathBuf>,
    /// Cutoff of every metric.
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    /// Drop the query's own id from its results (sets whose queries are corpus documents).
    #[arg(long)]
    pub exclude_self: bool,
    /// Run only the first N queries that have qrels.
    #[arg(long)]
    pub max_queries: Option<usize>,
    /// Kind stored for the corpus documents (jd, resume, other).
    #[arg(long, default_value = "other")]
    pub kind: String,
    /// The query instruction used when the grid has instruction "on". For a model that takes
    /// no instruction it is sent as a text prefix ("Instruct: ...\nQuery: ...").
    #[arg(long, conflicts_with = "task")]
    pub instruction: Option<String>,
    /// A built-in instruction by name (jd_to_resume, resume_to_jd, jd_to_jd, resume_to_resume).
    #[arg(long)]
    pub task: Option<String>,
    /// Instruction settings to run: off, on (default: on when an instruction is given, else off).
    #[arg(long, value_delimiter = ',')]
    pub grid_instruction: Vec<OnOff>,
    /// Rerank settings to run: off, on.
    #[arg(long, value_delimiter = ',', default_value = "off")]
    pub grid_rerank: Vec<OnOff>,
    /// Matryoshka dimensions to run (a collection each); default the model's dimension.
    #[arg(long, value_delimiter = ',')]
    pub grid_stored_dim: Vec<u32>,
    /// Search ef values to run; default the collection's.
    #[arg(long, value_delimiter = ',')]
    pub grid_ef: Vec<u32>,
    /// Vector hits the reranker judges (rerank "on").
    #[arg(long, default_value_t = 50)]
    pub rerank_top_n: u32,
    /// Leave out the BM25 row.
    #[arg(long)]
    pub no_bm25: bool,
    /// A JSONL file of graded pairs: `{"text1"|"id1", "text2"|"id2", "label"}` (ids from the
    /// corpus); reports Spearman's rho between cosine similarity and the label.
    #[arg(long)]
    pub pairs: Option<PathBuf>,
    /// Queries per SearchBatch call.
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    /// SearchBatch calls in flight.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Keep the collections made for the run (default: dropped at the end).
    #[arg(long)]
    pub keep_collections: bool,
    /// Write the report as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write a TREC run file (`qid Q0 docid rank score tag`) of the first setting here; the
    /// other settings go next to it with their tag before the extension.
    #[arg(long)]
    pub run: Option<PathBuf>,
    /// Write a chart of NDCG@k per setting (SVG, or PNG by extension).
    #[arg(long)]
    pub plot: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnOff {
    Off,
    On,
}

/// One cell of the grid.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Setting {
    pub instruction: bool,
    pub rerank: bool,
    pub stored_dim: Option<u32>,
    pub ef: Option<u32>,
}

impl Setting {
    fn tag(&self) -> String {
        let mut t = String::from("hirevec");
        if self.instruction {
            t.push_str("-instr");
        }
        if self.rerank {
            t.push_str("-rerank");
        }
        if let Some(d) = self.stored_dim {
            t.push_str(&format!("-d{d}"));
        }
        if let Some(ef) = self.ef {
            t.push_str(&format!("-ef{ef}"));
        }
        t
    }
}

/// One row of the table.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub tag: String,
    pub label: String,
    pub setting: Option<Setting>,
    #[serde(flatten)]
    pub summary: Summary,
    /// Queries per second, end to end through gRPC (embedding included); BM25 in process.
    pub qps: f64,
}

/// Spearman's rho over a pairs file.
#[derive(Debug, Clone, Serialize)]
pub struct PairsReport {
    pub pairs: usize,
    pub spearman_cosine: Option<f64>,
    /// The lexical reference: token-set Jaccard similarity against the label.
    pub spearman_jaccard: Option<f64>,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    pub set: Option<String>,
    pub corpus: usize,
    pub queries: usize,
    pub queries_without_qrels: usize,
    pub k: usize,
    pub exclude_self: bool,
    pub model: String,
    pub takes_instruction: bool,
    pub instruction: Option<String>,
    pub rows: Vec<Row>,
    pub pairs: Option<PairsReport>,
}

#[derive(Deserialize)]
struct PairLine {
    #[serde(default)]
    text1: Option<String>,
    #[serde(default)]
    id1: Option<String>,
    #[serde(default)]
    text2: Option<String>,
    #[serde(default)]
    id2: Option<String>,
    label: f64,
}

/// Runs `hirevec eval`.
pub fn run(args: EvalArgs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let report = rt.block_on(evaluate(args.clone()))?;
    print_table(&report, &mut std::io::stdout())?;
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("write {}", path.display()))?;
    }
    if let Some(path) = &args.plot {
        super::plot::bars(
            path,
            &format!(
                "{} (k={}, {} queries)",
                report.set.as_deref().unwrap_or(""),
                report.k,
                report.queries
            ),
            &format!("NDCG@{} (gain 2^rel-1)", report.k),
            &report
                .rows
                .iter()
                .map(|r| (r.label.clone(), r.summary.mean.ndcg_exp))
                .collect::<Vec<_>>(),
        )?;
    }
    Ok(())
}

/// Prints the rows as a Markdown table.
pub fn print_table(r: &EvalReport, out: &mut impl Write) -> anyhow::Result<()> {
    if let Some(set) = &r.set {
        writeln!(
            out,
            "{set}: {} documents, {} queries{}, k={}, model {}",
            r.corpus,
            r.queries,
            if r.exclude_self { " (self excluded)" } else { "" },
            r.k,
            r.model
        )?;
        let k = r.k;
        writeln!(
            out,
            "| setting | NDCG@{k} (2^rel-1) | NDCG@{k} (trec linear) | MRR@{k} | MAP@{k} | P@{k} | Recall@{k} | queries/s |"
        )?;
        writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|")?;
        for row in &r.rows {
            let m = &row.summary.mean;
            writeln!(
                out,
                "| {} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} | {:.0} |",
                row.label, m.ndcg_exp, m.ndcg_linear, m.mrr, m.map, m.precision, m.recall, row.qps
            )?;
        }
    }
    if let Some(p) = &r.pairs {
        let f = |x: Option<f64>| x.map(|x| format!("{x:.4}")).unwrap_or_else(|| "n/a".into());
        writeln!(
            out,
            "pairs: {} | Spearman (cosine, {}) {} | Spearman (token Jaccard) {}",
            p.pairs,
            r.model,
            f(p.spearman_cosine),
            f(p.spearman_jaccard)
        )?;
    }
    Ok(())
}

fn collection_name(set: &str, dim: Option<u32>) -> String {
    let clean: String = set
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
        .take(32)
        .collect();
    let dim = dim.map(|d| format!("-d{d}")).unwrap_or_default();
    format!("eval-{clean}{dim}-{}", std::process::id())
}

/// Everything the grid needs from the server's model list.
struct ModelChoice {
    id: String,
    takes_instruction: bool,
}

async fn choose_model(c: &mut Clients, wanted: Option<&str>) -> anyhow::Result<ModelChoice> {
    let list = c.models.list(proto::ListModelsRequest {}).await.context("Models.List")?;
    let embedders: Vec<proto::ModelInfo> =
        list.into_inner().models.into_iter().filter(|m| m.kind == "embedding").collect();
    let pick = match wanted {
        Some(w) => embedders.iter().find(|m| m.id == w),
        None => embedders.iter().find(|m| m.is_default).or(embedders.first()),
    };
    let Some(m) = pick else {
        bail!(
            "the server has no embedding model{}; it has: {:?}",
            wanted.map(|w| format!(" {w:?}")).unwrap_or_default(),
            embedders.iter().map(|m| &m.id).collect::<Vec<_>>()
        );
    };
    Ok(ModelChoice { id: m.id.clone(), takes_instruction: m.takes_instruction })
}

/// Builds the grid in a fixed order: stored_dim, then instruction, rerank, ef.
fn grid(args: &EvalArgs, has_instruction: bool) -> anyhow::Result<Vec<Setting>> {
    let instr = if args.grid_instruction.is_empty() {
        vec![if has_instruction { OnOff::On } else { OnOff::Off }]
    } else {
        args.grid_instruction.clone()
    };
    if instr.contains(&OnOff::On) && !has_instruction {
        bail!("--grid-instruction on needs --instruction or --task");
    }
    let dims: Vec<Option<u32>> = if args.grid_stored_dim.is_empty() {
        vec![None]
    } else {
        args.grid_stored_dim.iter().map(|&d| Some(d)).collect()
    };
    let efs: Vec<Option<u32>> = if args.grid_ef.is_empty() {
        vec![None]
    } else {
        args.grid_ef.iter().map(|&e| Some(e)).collect()
    };
    let mut out = Vec::new();
    for &stored_dim in &dims {
        for &i in &instr {
            for &r in &args.grid_rerank {
                for &ef in &efs {
                    out.push(Setting {
                        instruction: i == OnOff::On,
                        rerank: r == OnOff::On,
                        stored_dim,
                        ef,
                    });
                }
            }
        }
    }
    Ok(out)
}

/// The text and request fields of one query under one setting.
struct QueryPlan<'a> {
    instruction: Option<&'a str>,
    task: Option<&'a str>,
    takes_instruction: bool,
}

impl QueryPlan<'_> {
    fn request(
        &self,
        collection: &str,
        text: &str,
        s: &Setting,
        top_k: u32,
        top_n: u32,
    ) -> proto::SearchRequest {
        let mut req = proto::SearchRequest {
            collection: collection.into(),
            top_k,
            ef: s.ef,
            ..Default::default()
        };
        match (self.takes_instruction, s.instruction) {
            (true, true) => {
                req.instruction = self.instruction.map(str::to_string);
                req.task = self.task.unwrap_or_default().to_string();
                req.text = text.to_string();
            }
            // Explicitly none: neither the collection's nor the model's default.
            (true, false) => {
                req.instruction = Some(String::new());
                req.text = text.to_string();
            }
            (false, true) => {
                let i = self.instruction.unwrap_or_default();
                req.text = format!("Instruct: {i}\nQuery: {text}");
            }
            (false, false) => req.text = text.to_string(),
        }
        if s.rerank {
            req.rerank = Some(proto::Rerank { top_n: top_n.max(top_k), ..Default::default() });
        }
        req
    }
}

/// Runs every query under one setting; returns the run (self-hits dropped when asked).
async fn run_queries(
    c: &Clients,
    set: &BeirSet,
    collection: &str,
    plan: &QueryPlan<'_>,
    s: &Setting,
    args: &EvalArgs,
) -> anyhow::Result<HashMap<String, Vec<(String, f32)>>> {
    let top_k = (args.k + usize::from(args.exclude_self)) as u32;
    let chunks: Vec<Vec<&super::beir::Query>> =
        set.queries.chunks(args.batch.max(1)).map(|c| c.iter().collect()).collect();
    let pb = progress_bar(set.queries.len() as u64, &s.tag());
    let results = futures::stream::iter(chunks.into_iter().map(|chunk| {
        let mut search = c.search.clone();
        let searches = chunk
            .iter()
            .map(|q| plan.request(collection, &q.text, s, top_k, args.rerank_top_n))
            .collect();
        let pb = pb.clone();
        async move {
            let r = search
                .search_batch(proto::SearchBatchRequest { searches })
                .await
                .map_err(|e| anyhow::anyhow!("SearchBatch: {} ({:?})", e.message(), e.code()))?;
            pb.inc(chunk.len() as u64);
            anyhow::Ok(chunk.into_iter().zip(r.into_inner().results).collect::<Vec<_>>())
        }
    }))
    .buffer_unordered(args.concurrency.max(1))
    .collect::<Vec<_>>()
    .await;
    pb.finish_and_clear();
    let mut run = HashMap::new();
    for chunk in results {
        for (q, res) in chunk? {
            let hits = res
                .hits
                .into_iter()
                .filter(|h| !(args.exclude_self && h.id == q.id))
                .take(args.k)
                // The order of a reranked search is by rerank score: that is the score to rank by.
                .map(|h| (h.id, h.rerank_score.unwrap_or(h.score)))
                .collect();
            run.insert(q.id.clone(), hits);
        }
    }
    Ok(run)
}

/// Writes a TREC run: `qid Q0 docid rank score tag`, in trec order per query.
pub fn write_run(
    path: &Path,
    run: &HashMap<String, Vec<(String, f32)>>,
    tag: &str,
) -> anyhow::Result<()> {
    let mut out = std::io::BufWriter::new(
        std::fs::File::create(path).with_context(|| format!("create {}", path.display()))?,
    );
    let mut qids: Vec<&String> = run.keys().collect();
    qids.sort();
    for q in qids {
        let mut hits = run[q].clone();
        metrics::trec_order(&mut hits);
        for (rank, (d, score)) in hits.iter().enumerate() {
            writeln!(out, "{q} Q0 {d} {} {score} {tag}", rank + 1)?;
        }
    }
    out.flush()?;
    Ok(())
}

/// `run.trec` + `bm25` -> `run.bm25.trec`.
fn run_path(first: &Path, tag: &str) -> PathBuf {
    let stem = first.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let name = match first.extension() {
        Some(ext) => format!("{stem}.{tag}.{}", ext.to_string_lossy()),
        None => format!("{stem}.{tag}"),
    };
    first.with_file_name(name)
}

fn jaccard(a: &str, b: &str) -> f64 {
    use std::collections::HashSet;
    let a: HashSet<String> = super::bm25::tokenize(a).into_iter().collect();
    let b: HashSet<String> = super::bm25::tokenize(b).into_iter().collect();
    let union = a.union(&b).count();
    if union == 0 { 0.0 } else { a.intersection(&b).count() as f64 / union as f64 }
}

async fn eval_pairs(
    c: &mut Clients,
    path: &Path,
    corpus: &HashMap<String, String>,
    model: &str,
) -> anyhow::Result<PairsReport> {
    let lines: Vec<PairLine> = read_jsonl(path)?;
    let text =
        |t: &Option<String>, id: &Option<String>, n: usize, side: u8| -> anyhow::Result<String> {
            match (t, id) {
                (Some(t), _) => Ok(t.clone()),
                (None, Some(id)) => corpus.get(id).cloned().with_context(|| {
                    format!(
                        "{} line {n}: id{side} {id:?} is not in the corpus (give --data)",
                        path.display()
                    )
                }),
                (None, None) => bail!("{} line {n}: needs text{side} or id{side}", path.display()),
            }
        };
    let mut a = Vec::new();
    let mut b = Vec::new();
    let mut labels = Vec::new();
    for (n, l) in lines.iter().enumerate() {
        a.push(text(&l.text1, &l.id1, n + 1, 1)?);
        b.push(text(&l.text2, &l.id2, n + 1, 2)?);
        labels.push(l.label);
    }
    let embed = |texts: Vec<String>| {
        let mut models = c.models.clone();
        let model = model.to_string();
        async move {
            let mut out = Vec::with_capacity(texts.len());
            for chunk in texts.chunks(256) {
                let r = models
                    .embed(proto::EmbedRequest {
                        model: model.clone(),
                        texts: chunk.to_vec(),
                        ..Default::default()
                    })
                    .await
                    .map_err(|e| anyhow::anyhow!("Embed: {}", e.message()))?;
                out.extend(r.into_inner().embeddings.into_iter().map(|e| e.values));
            }
            anyhow::Ok(out)
        }
    };
    let ea = embed(a.clone()).await?;
    let eb = embed(b.clone()).await?;
    let cos: Vec<f64> = ea
        .iter()
        .zip(&eb)
        .map(|(x, y)| x.iter().zip(y).map(|(p, q)| (*p as f64) * (*q as f64)).sum())
        .collect();
    let jac: Vec<f64> = a.iter().zip(&b).map(|(x, y)| jaccard(x, y)).collect();
    Ok(PairsReport {
        pairs: labels.len(),
        spearman_cosine: metrics::spearman(&cos, &labels),
        spearman_jaccard: metrics::spearman(&jac, &labels),
    })
}

/// Runs the whole evaluation and returns the report (printing is the caller's).
pub async fn evaluate(args: EvalArgs) -> anyhow::Result<EvalReport> {
    let set = match &args.data {
        Some(d) => Some(BeirSet::load(d, &args.split, args.max_queries)?),
        None => None,
    };
    let kind = parse_kind(&args.kind).with_context(|| format!("--kind {:?}", args.kind))?;
    // The temporary server lives until the end of this function.
    let (mut c, _child) = match &args.addr {
        Some(addr) => (connect(addr, args.api_key.as_deref()).await?, None),
        None => {
            let bin = match &args.bin {
                Some(b) => b.clone(),
                None => own_binary()?,
            };
            let mut serve =
                vec!["--model".to_string(), args.model.clone().unwrap_or("auto".into())];
            if let Some(r) = &args.reranker {
                serve.extend(["--reranker".to_string(), r.clone()]);
            }
            eprintln!("starting a temporary server ({})", bin.display());
            let child = ChildServer::start(&bin, &serve)?;
            (connect(&child.addr, None).await?, Some(child))
        }
    };
    let wanted = if args.addr.is_some() { args.model.as_deref() } else { None };
    let model = choose_model(&mut c, wanted).await?;
    let instruction_text = match (&args.instruction, &args.task) {
        (Some(i), _) => Some(i.clone()),
        (None, Some(t)) => {
            let list = c.models.list(proto::ListModelsRequest {}).await?.into_inner();
            let found = list.tasks.into_iter().find(|x| &x.name == t);
            Some(found.with_context(|| format!("--task {t:?} is not a built-in task"))?.instruction)
        }
        (None, None) => None,
    };
    let plan = QueryPlan {
        instruction: instruction_text.as_deref(),
        // The server resolves a task itself; a prefix needs the text, which is resolved above.
        task: if model.takes_instruction && args.instruction.is_none() {
            args.task.as_deref()
        } else {
            None
        },
        takes_instruction: model.takes_instruction,
    };
    let settings = grid(&args, instruction_text.is_some())?;

    let mut rows = Vec::new();
    let mut corpus_texts = HashMap::new();
    if let Some(set) = &set {
        corpus_texts = set.corpus.iter().map(|d| (d.id.clone(), d.full_text())).collect();
        let mut dims: Vec<Option<u32>> = settings.iter().map(|s| s.stored_dim).collect();
        dims.dedup();
        for dim in dims {
            let name = collection_name(&set.name, dim);
            let config = proto::CollectionConfig {
                model: model.id.clone(),
                stored_dim: dim,
                ..Default::default()
            };
            ensure_collection(&mut c, &name, config, false).await?;
            let docs: Vec<Pending> = set
                .corpus
                .iter()
                .enumerate()
                .map(|(i, d)| Pending { line: i as u64 + 1, doc: beir_document(d, kind) })
                .collect();
            let mut importer = Importer {
                clients: c.clone(),
                collection: name.clone(),
                progress: progress_bar(docs.len() as u64, "index"),
                report: Default::default(),
                rejected: Vec::new(),
                resume: false,
                on_reject: Box::new(|r| eprintln!("corpus line {}: {}", r.line, r.reason)),
            };
            let started = Instant::now();
            importer.send_all(docs, 64).await?;
            importer.progress.finish_and_clear();
            eprintln!(
                "indexed {} documents into {name} in {:.1} s ({} rejected, {} truncated)",
                importer.report.upserted,
                started.elapsed().as_secs_f64(),
                importer.report.rejected,
                importer.report.truncated
            );
            for s in settings.iter().filter(|s| s.stored_dim == dim) {
                let started = Instant::now();
                let run = run_queries(&c, set, &name, &plan, s, &args).await?;
                let secs = started.elapsed().as_secs_f64();
                let summary = metrics::evaluate(&run, &set.qrels, args.k);
                let label = label(&model, s);
                eprintln!("{label}: NDCG@{} {:.4} ({secs:.1} s)", args.k, summary.mean.ndcg_exp);
                if let Some(first) = &args.run {
                    let path =
                        if rows.is_empty() { first.clone() } else { run_path(first, &s.tag()) };
                    write_run(&path, &run, &s.tag())?;
                }
                rows.push(Row {
                    tag: s.tag(),
                    label,
                    setting: Some(*s),
                    summary,
                    qps: set.queries.len() as f64 / secs,
                });
            }
            if !args.keep_collections {
                c.collections
                    .delete(proto::DeleteCollectionRequest { name: name.clone() })
                    .await
                    .with_context(|| format!("drop {name}"))?;
            }
        }
        if !args.no_bm25 {
            let started = Instant::now();
            let texts = corpus_texts_in_order(set);
            let bm = Bm25::new(
                set.corpus.iter().map(|d| d.id.as_str()).zip(texts.iter().map(String::as_str)),
                Bm25Params::default(),
            );
            let fetch = args.k + usize::from(args.exclude_self);
            let run: HashMap<String, Vec<(String, f32)>> = set
                .queries
                .iter()
                .map(|q| {
                    let hits = bm
                        .search(&q.text, fetch)
                        .into_iter()
                        .filter(|h| !(args.exclude_self && h.0 == q.id))
                        .take(args.k)
                        .collect();
                    (q.id.clone(), hits)
                })
                .collect();
            let secs = started.elapsed().as_secs_f64();
            if let Some(first) = &args.run {
                write_run(&run_path(first, "bm25"), &run, "bm25")?;
            }
            rows.push(Row {
                tag: "bm25".into(),
                label: "BM25 (k1 1.2, b 0.75)".into(),
                setting: None,
                summary: metrics::evaluate(&run, &set.qrels, args.k),
                qps: set.queries.len() as f64 / secs,
            });
        }
    }
    let pairs = match &args.pairs {
        Some(p) => Some(eval_pairs(&mut c, p, &corpus_texts, &model.id).await?),
        None => None,
    };
    Ok(EvalReport {
        set: set.as_ref().map(|s| s.name.clone()),
        corpus: set.as_ref().map_or(0, |s| s.corpus.len()),
        queries: set.as_ref().map_or(0, |s| s.queries.len()),
        queries_without_qrels: set.as_ref().map_or(0, |s| s.queries_without_qrels),
        k: args.k,
        exclude_self: args.exclude_self,
        model: model.id,
        takes_instruction: model.takes_instruction,
        instruction: instruction_text,
        rows,
        pairs,
    })
}

fn corpus_texts_in_order(set: &BeirSet) -> Vec<String> {
    set.corpus.iter().map(|d| d.full_text()).collect()
}

fn label(model: &ModelChoice, s: &Setting) -> String {
    let mut l = model.id.rsplit('/').next().unwrap_or(&model.id).to_string();
    l.push_str(match (s.instruction, model.takes_instruction) {
        (false, _) => ", no instruction",
        (true, true) => ", instruction",
        (true, false) => ", instruction as text prefix",
    });
    if s.rerank {
        l.push_str(", reranked");
    }
    if let Some(d) = s.stored_dim {
        l.push_str(&format!(", stored_dim {d}"));
    }
    if let Some(ef) = s.ef {
        l.push_str(&format!(", ef {ef}"));
    }
    l
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_files_get_the_tag_before_the_extension() {
        assert_eq!(run_path(Path::new("/x/run.trec"), "bm25"), Path::new("/x/run.bm25.trec"));
        assert_eq!(run_path(Path::new("run"), "bm25"), Path::new("run.bm25"));
    }

    #[test]
    fn jaccard_by_hand() {
        assert_eq!(jaccard("a b c", "b c d"), 0.5);
        assert_eq!(jaccard("", ""), 0.0);
    }
}
