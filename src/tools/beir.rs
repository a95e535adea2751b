//! BEIR-layout evaluation sets: `corpus.jsonl` (`_id`, `title`, `text`), `queries.jsonl` (`_id`,
//! `text`) and `qrels/<split>.tsv` (`query-id`, `corpus-id`, `score`, with a header line).
use std::collections::HashMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize;

use super::metrics::Judgements;

/// One corpus document.
#[derive(Debug, Clone, Deserialize)]
pub struct CorpusDoc {
    #[serde(rename = "_id")]
    pub id: String,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub text: String,
}

impl CorpusDoc {
    /// What gets indexed: the title on its own line above the text (the layout the O*NET sets
    /// use for their JD2JD queries, so a document and its query read the same).
    pub fn full_text(&self) -> String {
        match (self.title.is_empty(), self.text.is_empty()) {
            (true, _) => self.text.clone(),
            (false, true) => self.title.clone(),
            (false, false) => format!("{}\n{}", self.title, self.text),
        }
    }
}

/// One query.
#[derive(Debug, Clone, Deserialize)]
pub struct Query {
    #[serde(rename = "_id")]
    pub id: String,
    pub text: String,
}

/// A loaded set.
#[derive(Debug, Clone)]
pub struct BeirSet {
    pub name: String,
    pub corpus: Vec<CorpusDoc>,
    /// Only the queries that have qrels in the split, in file order.
    pub queries: Vec<Query>,
    pub qrels: HashMap<String, Judgements>,
    /// Queries in queries.jsonl without any qrels line in the split (not run).
    pub queries_without_qrels: usize,
}

/// Reads a JSONL file of `T`, naming the file and line of the first bad line.
pub fn read_jsonl<T: for<'de> Deserialize<'de>>(path: &Path) -> anyhow::Result<Vec<T>> {
    let file = std::fs::File::open(path).with_context(|| format!("open {}", path.display()))?;
    let mut out = Vec::new();
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("read {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        out.push(
            serde_json::from_str(&line)
                .with_context(|| format!("{} line {}", path.display(), n + 1))?,
        );
    }
    Ok(out)
}

/// Reads `qrels/<split>.tsv`: query id -> document id -> grade.
pub fn read_qrels(path: &Path) -> anyhow::Result<HashMap<String, Judgements>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    let mut qrels: HashMap<String, Judgements> = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let fields: Vec<&str> = line.split('\t').map(str::trim).collect();
        if line.trim().is_empty() || (n == 0 && fields.first() == Some(&"query-id")) {
            continue;
        }
        let [q, d, g] = fields[..] else {
            bail!("{} line {}: expected query-id, corpus-id, score", path.display(), n + 1);
        };
        let grade: i32 = g
            .parse()
            .or_else(|_| g.parse::<f64>().map(|f| f as i32))
            .with_context(|| format!("{} line {}: score {g:?}", path.display(), n + 1))?;
        qrels.entry(q.to_string()).or_default().insert(d.to_string(), grade);
    }
    Ok(qrels)
}

impl BeirSet {
    /// Loads `dir`, keeping the first `max_queries` queries that have qrels (all when `None`).
    pub fn load(dir: &Path, split: &str, max_queries: Option<usize>) -> anyhow::Result<Self> {
        let corpus: Vec<CorpusDoc> = read_jsonl(&dir.join("corpus.jsonl"))?;
        let all: Vec<Query> = read_jsonl(&dir.join("queries.jsonl"))?;
        let qrels_path: PathBuf = dir.join("qrels").join(format!("{split}.tsv"));
        let qrels = read_qrels(&qrels_path)?;
        let total = all.len();
        let mut queries: Vec<Query> =
            all.into_iter().filter(|q| qrels.contains_key(&q.id)).collect();
        let without = total - queries.len();
        if let Some(max) = max_queries {
            queries.truncate(max);
        }
        let qrels = queries.iter().map(|q| (q.id.clone(), qrels[&q.id].clone())).collect();
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| dir.display().to_string());
        if corpus.is_empty() || queries.is_empty() {
            bail!("{}: empty corpus or no query with qrels in {split}", dir.display());
        }
        Ok(BeirSet { name, corpus, queries, qrels, queries_without_qrels: without })
    }
}
