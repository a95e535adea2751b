//! `hirevec import`: a JSONL file (`id`, `kind`, `text`, `payload`, optional `vector` per line)
//! or a BEIR corpus into a collection over `Documents.UpsertStream`.
//!
//! Batches go out in streams of [`BATCHES_PER_STREAM`]; the stream's reply acknowledges all of
//! them. The server applies a stream's batches in order and stops at the first it rejects, so a
//! stream that fails is replayed batch by batch with `Upsert` (re-applying the batches that had
//! landed is harmless: an upsert of the same document is idempotent), and a batch rejected as
//! invalid is split until the offending lines are found. Each rejected line is reported with its
//! number and the reason, and every other line is stored. Errors that are not about the input
//! (server down, out of resources) stop the run; `--resume` then skips what is already stored.
use std::collections::HashSet;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use super::beir::CorpusDoc;
use super::client::{Clients, ServerArgs, ensure_collection, parse_kind};
use crate::proto;

/// Batches per `UpsertStream` call: the unit that one reply acknowledges.
const BATCHES_PER_STREAM: usize = 16;

/// Arguments of `hirevec import`.
#[derive(Debug, Clone, Args)]
pub struct ImportArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// The collection to write to.
    #[arg(long)]
    pub collection: String,
    /// A JSONL file: one document a line, `{"id", "kind", "text", "payload", "vector"}`
    /// (`kind`: jd, resume or other; `vector` optional when the collection has a model).
    #[arg(long, conflicts_with = "beir", required_unless_present = "beir")]
    pub input: Option<PathBuf>,
    /// A BEIR folder: its corpus.jsonl is imported, `title` and `text` joined as the text and
    /// the title kept in the payload.
    #[arg(long)]
    pub beir: Option<PathBuf>,
    /// Kind of the BEIR documents (jd, resume, other).
    #[arg(long, default_value = "other")]
    pub kind: String,
    /// Create the collection when it does not exist, bound to this model id (see Models.List).
    #[arg(long)]
    pub create_with_model: Option<String>,
    /// Create the collection when it does not exist, for client vectors of this dimension.
    #[arg(long, conflicts_with = "create_with_model")]
    pub create_with_dim: Option<u32>,
    /// Skip ids the collection already holds (to continue an interrupted import).
    #[arg(long)]
    pub resume: bool,
    /// Documents per batch.
    #[arg(long, default_value_t = 256)]
    pub batch: usize,
    /// Where to write the rejected lines (`line N: reason`); default stderr.
    #[arg(long)]
    pub rejects: Option<PathBuf>,
    /// Also print the report as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// What an import did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportReport {
    /// Lines read (blank lines excluded).
    pub lines: u64,
    pub upserted: u64,
    /// Lines skipped by --resume because their id was already stored.
    pub skipped_existing: u64,
    pub rejected: u64,
    /// Documents the server embedded from their text.
    pub embedded: u64,
    /// Ids whose text was cut to the model's token limit.
    pub truncated: u64,
    pub seconds: f64,
}

/// One document waiting to be sent, with the line it came from.
#[derive(Debug, Clone)]
pub struct Pending {
    pub line: u64,
    pub doc: proto::Document,
}

/// A line's problem, reported instead of the line being stored.
#[derive(Debug, Clone)]
pub struct Rejected {
    pub line: u64,
    pub id: Option<String>,
    pub reason: String,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonDoc {
    id: serde_json::Value,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    payload: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    vector: Option<Vec<f64>>,
}

fn json_value(key: &str, v: &serde_json::Value) -> Result<proto::Value, String> {
    use proto::value::Kind;
    use serde_json::Value as J;
    let kind = match v {
        J::String(s) => Kind::StringValue(s.clone()),
        J::Bool(b) => Kind::BoolValue(*b),
        J::Number(n) => match n.as_i64() {
            Some(i) => Kind::IntValue(i),
            None => Kind::FloatValue(n.as_f64().ok_or_else(|| format!("payload.{key}: {n}"))?),
        },
        J::Array(items) => {
            let mut values = Vec::with_capacity(items.len());
            for item in items {
                match item {
                    J::String(s) => values.push(s.clone()),
                    _ => {
                        return Err(format!(
                            "payload.{key}: lists may hold only strings, found {item}"
                        ));
                    }
                }
            }
            Kind::StringList(proto::StringList { values })
        }
        J::Null | J::Object(_) => {
            return Err(format!(
                "payload.{key}: unsupported value {v} (string, number, bool or list of strings)"
            ));
        }
    };
    Ok(proto::Value { kind: Some(kind) })
}

/// Parses one JSONL line into a document, or says what is wrong with it.
pub fn parse_line(line: &str) -> Result<proto::Document, (Option<String>, String)> {
    let j: JsonDoc = serde_json::from_str(line).map_err(|e| (None, format!("bad JSON: {e}")))?;
    let id = match j.id {
        serde_json::Value::String(s) => s,
        serde_json::Value::Number(n) => n.to_string(),
        other => return Err((None, format!("id: must be a string or number, found {other}"))),
    };
    let fail = |reason: String| (Some(id.clone()), reason);
    let kind = match j.kind.as_deref() {
        None => proto::DocumentKind::Other,
        Some(k) => parse_kind(k)
            .ok_or_else(|| fail(format!("kind: {k:?} is not one of jd, resume, other")))?,
    };
    let mut payload = std::collections::HashMap::new();
    for (k, v) in j.payload.unwrap_or_default() {
        payload.insert(k.clone(), json_value(&k, &v).map_err(fail)?);
    }
    let vector: Vec<f32> = j.vector.unwrap_or_default().into_iter().map(|x| x as f32).collect();
    if let Some(i) = vector.iter().position(|x| !x.is_finite()) {
        return Err(fail(format!("vector[{i}]: not finite in f32")));
    }
    let text = j.text.unwrap_or_default();
    if vector.is_empty() && text.is_empty() {
        return Err(fail("neither text nor vector: nothing to index".into()));
    }
    Ok(proto::Document { id, kind: kind as i32, text, payload, vector, sequence: 0 })
}

/// A BEIR corpus document as a hirevec document: title + text indexed, the title kept.
pub fn beir_document(d: &CorpusDoc, kind: proto::DocumentKind) -> proto::Document {
    let mut payload = std::collections::HashMap::new();
    if !d.title.is_empty() {
        payload.insert(
            "title".to_string(),
            proto::Value { kind: Some(proto::value::Kind::StringValue(d.title.clone())) },
        );
    }
    proto::Document {
        id: d.id.clone(),
        kind: kind as i32,
        text: d.full_text(),
        payload,
        vector: Vec::new(),
        sequence: 0,
    }
}

/// Cuts documents into batches of at most `size`, starting a new batch when an id repeats (a
/// batch's ids must be distinct, and the later line must win, so it goes in a later batch).
pub fn batches(docs: Vec<Pending>, size: usize) -> Vec<Vec<Pending>> {
    let mut out = Vec::new();
    let mut cur: Vec<Pending> = Vec::new();
    let mut ids = HashSet::new();
    for p in docs {
        if cur.len() >= size || ids.contains(&p.doc.id) {
            out.push(std::mem::take(&mut cur));
            ids.clear();
        }
        ids.insert(p.doc.id.clone());
        cur.push(p);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn is_input_error(s: &tonic::Status) -> bool {
    // INVALID_ARGUMENT is about the documents; FAILED_PRECONDITION too when a text needs a model
    // the collection lacks. Anything else is about the server and stops the import.
    matches!(s.code(), tonic::Code::InvalidArgument | tonic::Code::FailedPrecondition)
}

fn request(collection: &str, batch: &[Pending]) -> proto::UpsertRequest {
    proto::UpsertRequest {
        collection: collection.into(),
        documents: batch.iter().map(|p| p.doc.clone()).collect(),
    }
}

/// Sends batches, reporting progress and rejections; see the module docs for the protocol.
pub struct Importer<'a> {
    pub clients: Clients,
    pub collection: String,
    pub progress: ProgressBar,
    pub report: ImportReport,
    pub rejected: Vec<Rejected>,
    pub resume: bool,
    pub on_reject: Box<dyn FnMut(&Rejected) + Send + 'a>,
}

impl std::fmt::Debug for Importer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Importer").field("collection", &self.collection).finish()
    }
}

impl Importer<'_> {
    fn reject(&mut self, line: u64, id: Option<String>, reason: String) {
        let r = Rejected { line, id, reason };
        (self.on_reject)(&r);
        self.report.rejected += 1;
        self.rejected.push(r);
    }

    fn count(&mut self, r: &proto::UpsertResponse) {
        self.report.upserted += r.upserted;
        self.report.embedded += r.embedded;
        self.report.truncated += r.truncated_ids.len() as u64;
    }

    /// Drops documents the collection already holds.
    async fn skip_existing(&mut self, batch: Vec<Pending>) -> anyhow::Result<Vec<Pending>> {
        let ids = batch.iter().map(|p| p.doc.id.clone()).collect();
        let got = self
            .clients
            .documents
            .get(proto::GetDocumentsRequest {
                collection: self.collection.clone(),
                ids,
                include: None,
            })
            .await
            .context("look up stored ids for --resume")?
            .into_inner();
        let missing: HashSet<String> = got.missing.into_iter().collect();
        let before = batch.len();
        let keep: Vec<Pending> =
            batch.into_iter().filter(|p| missing.contains(&p.doc.id)).collect();
        self.report.skipped_existing += (before - keep.len()) as u64;
        self.progress.inc((before - keep.len()) as u64);
        Ok(keep)
    }

    /// Sends one group of batches in one stream; on an input error replays it batch by batch.
    pub async fn send_group(&mut self, group: Vec<Vec<Pending>>) -> anyhow::Result<()> {
        let mut group = group;
        if self.resume {
            let mut kept = Vec::new();
            for b in group {
                let b = self.skip_existing(b).await?;
                if !b.is_empty() {
                    kept.push(b);
                }
            }
            group = kept;
        }
        if group.is_empty() {
            return Ok(());
        }
        let reqs: Vec<proto::UpsertRequest> =
            group.iter().map(|b| request(&self.collection, b)).collect();
        let sizes: Vec<u64> = group.iter().map(|b| b.len() as u64).collect();
        let progress = self.progress.clone();
        // Progress moves as the transport pulls batches: HTTP/2 flow control keeps that close to
        // what the server has applied, and the reply settles the count.
        let stream = futures::stream::iter(reqs.into_iter().zip(sizes).map(move |(r, n)| {
            progress.inc(n);
            r
        }));
        let sent: u64 = group.iter().map(|b| b.len() as u64).sum();
        match self.clients.documents.upsert_stream(stream).await {
            Ok(r) => {
                self.count(&r.into_inner());
                Ok(())
            }
            Err(s) if is_input_error(&s) => {
                self.progress.set_position(self.progress.position().saturating_sub(sent));
                for b in group {
                    self.send_batch(b).await?;
                }
                Ok(())
            }
            Err(s) => bail!("upsert into {}: {} ({:?})", self.collection, s.message(), s.code()),
        }
    }

    /// Upserts one batch; when it is rejected as invalid, halves it until each bad line is alone.
    async fn send_batch(&mut self, batch: Vec<Pending>) -> anyhow::Result<()> {
        let mut work = vec![batch];
        while let Some(b) = work.pop() {
            match self.clients.documents.upsert(request(&self.collection, &b)).await {
                Ok(r) => {
                    self.count(&r.into_inner());
                    self.progress.inc(b.len() as u64);
                }
                Err(s) if is_input_error(&s) && b.len() == 1 => {
                    let p = &b[0];
                    // The server names the field as documents[0].x: the line holds one document.
                    let reason = s.message().replacen("documents[0].", "", 1);
                    self.reject(p.line, Some(p.doc.id.clone()), reason);
                    self.progress.inc(1);
                }
                Err(s) if is_input_error(&s) => {
                    let mut b = b;
                    let tail = b.split_off(b.len() / 2);
                    // Pop order: first half first, so lines keep their order on the server.
                    work.push(tail);
                    work.push(b);
                }
                Err(s) => {
                    bail!("upsert into {}: {} ({:?})", self.collection, s.message(), s.code())
                }
            }
        }
        Ok(())
    }

    /// Sends all `docs` in streams of [`BATCHES_PER_STREAM`] batches of `batch` documents.
    pub async fn send_all(&mut self, docs: Vec<Pending>, batch: usize) -> anyhow::Result<()> {
        let mut all = batches(docs, batch.max(1));
        while !all.is_empty() {
            let rest = all.split_off(all.len().min(BATCHES_PER_STREAM));
            let group = std::mem::replace(&mut all, rest);
            self.send_group(group).await?;
        }
        Ok(())
    }
}

/// A progress bar on stderr (hidden when stderr is not a terminal).
pub fn progress_bar(total: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(total);
    pb.set_style(
        ProgressStyle::with_template(&format!(
            "{what} {{bar:40}} {{pos}}/{{len}} [{{elapsed_precise}} < {{eta_precise}}] {{per_sec}}"
        ))
        .expect("valid template"),
    );
    pb
}

fn read_lines(path: &Path) -> anyhow::Result<(Vec<Pending>, Vec<Rejected>, u64)> {
    let file = std::fs::File::open(path).with_context(|| format!("open {}", path.display()))?;
    let mut docs = Vec::new();
    let mut bad = Vec::new();
    let mut lines = 0;
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("read {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        lines += 1;
        let number = n as u64 + 1;
        match parse_line(&line) {
            Ok(doc) => docs.push(Pending { line: number, doc }),
            Err((id, reason)) => bad.push(Rejected { line: number, id, reason }),
        }
    }
    Ok((docs, bad, lines))
}

/// Runs `hirevec import`.
pub fn run(args: ImportArgs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(run_async(args))
}

async fn run_async(args: ImportArgs) -> anyhow::Result<()> {
    let start = std::time::Instant::now();
    let mut clients = args.server.connect().await?;
    if args.create_with_model.is_some() || args.create_with_dim.is_some() {
        let config = proto::CollectionConfig {
            dim: args.create_with_dim.unwrap_or(0),
            model: args.create_with_model.clone().unwrap_or_default(),
            ..Default::default()
        };
        ensure_collection(&mut clients, &args.collection, config, true).await?;
    }
    let (docs, bad, lines) = match (&args.input, &args.beir) {
        (Some(path), _) => read_lines(path)?,
        (None, Some(dir)) => {
            let kind = parse_kind(&args.kind)
                .with_context(|| format!("--kind {:?}: jd, resume or other", args.kind))?;
            let corpus: Vec<CorpusDoc> = super::beir::read_jsonl(&dir.join("corpus.jsonl"))?;
            let n = corpus.len() as u64;
            let docs = corpus
                .iter()
                .enumerate()
                .map(|(i, d)| Pending { line: i as u64 + 1, doc: beir_document(d, kind) })
                .collect();
            (docs, Vec::new(), n)
        }
        (None, None) => bail!("give --input FILE or --beir DIR"),
    };
    let mut sink: Box<dyn Write + Send> = match &args.rejects {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("create {}", p.display()))?,
        )),
        None => Box::new(std::io::stderr()),
    };
    let progress = progress_bar(lines, "import");
    let pb = progress.clone();
    let mut importer = Importer {
        clients,
        collection: args.collection.clone(),
        progress,
        report: ImportReport { lines, ..Default::default() },
        rejected: Vec::new(),
        resume: args.resume,
        on_reject: Box::new(move |r: &Rejected| {
            let id = r.id.as_deref().map(|i| format!(" (id {i:?})")).unwrap_or_default();
            pb.suspend(|| {
                let _ = writeln!(sink, "line {}{id}: {}", r.line, r.reason);
            });
        }),
    };
    for r in bad {
        importer.reject(r.line, r.id, r.reason);
        importer.progress.inc(1);
    }
    let result = importer.send_all(docs, args.batch).await;
    importer.progress.finish_and_clear();
    let mut report = std::mem::take(&mut importer.report);
    drop(importer);
    report.seconds = start.elapsed().as_secs_f64();
    result?;
    super::print_report(&report, args.json.as_deref())?;
    if report.rejected > 0 {
        eprintln!("{} line(s) rejected; see the report above", report.rejected);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_parse_or_say_why() {
        let d = parse_line(
            r#"{"id": "c1", "kind": "resume", "text": "Nurse", "payload": {"years": 5, "city": "Oslo", "skills": ["a", "b"], "remote": true, "score": 0.5}}"#,
        )
        .unwrap();
        assert_eq!(d.id, "c1");
        assert_eq!(d.kind, proto::DocumentKind::Resume as i32);
        assert_eq!(d.payload.len(), 5);
        assert_eq!(parse_line(r#"{"id": 7, "vector": [1, 0]}"#).unwrap().id, "7");
        let why = |l: &str| parse_line(l).unwrap_err().1;
        assert!(why("{").starts_with("bad JSON"));
        assert!(why(r#"{"id": "x", "kind": "boss", "text": "t"}"#).starts_with("kind:"));
        assert!(why(r#"{"id": "x"}"#).contains("neither text nor vector"));
        assert!(
            why(r#"{"id": "x", "text": "t", "payload": {"a": {"b": 1}}}"#).contains("payload.a")
        );
        assert!(why(r#"{"id": "x", "text": "t", "payload": {"a": [1]}}"#).contains("payload.a"));
        assert!(why(r#"{"id": "x", "vector": [1e39]}"#).contains("vector[0]"));
        assert!(why(r#"{"id": "x", "text": "t", "extra": 1}"#).contains("unknown field"));
    }

    #[test]
    fn repeated_ids_start_a_new_batch() {
        let p = |line: u64, id: &str| Pending {
            line,
            doc: proto::Document { id: id.into(), ..Default::default() },
        };
        let b = batches(vec![p(1, "a"), p(2, "b"), p(3, "a"), p(4, "c"), p(5, "d")], 3);
        let ids: Vec<Vec<&str>> =
            b.iter().map(|b| b.iter().map(|p| p.doc.id.as_str()).collect()).collect();
        assert_eq!(ids, vec![vec!["a", "b"], vec!["a", "c", "d"]]);
    }
}
