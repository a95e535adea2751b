//! Okapi BM25 over a corpus held in memory: the lexical reference row of every `hirevec eval`
//! table. Tokens are lower-cased ASCII alphanumeric runs; idf is Lucene's
//! `ln(1 + (N - df + 0.5) / (df + 0.5))`, which never goes negative.
use std::collections::HashMap;

/// BM25 parameters; the defaults are the usual k1 1.2, b 0.75.
#[derive(Debug, Clone, Copy)]
pub struct Bm25Params {
    pub k1: f64,
    pub b: f64,
}

impl Default for Bm25Params {
    fn default() -> Self {
        Bm25Params { k1: 1.2, b: 0.75 }
    }
}

/// Lower-cased `[a-z0-9]+` runs.
pub fn tokenize(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(str::to_ascii_lowercase)
        .collect()
}

/// An inverted index: term -> (document, term frequency).
#[derive(Debug)]
pub struct Bm25 {
    params: Bm25Params,
    ids: Vec<String>,
    lengths: Vec<f64>,
    average_length: f64,
    postings: HashMap<String, Vec<(u32, u32)>>,
}

impl Bm25 {
    pub fn new<'a>(docs: impl IntoIterator<Item = (&'a str, &'a str)>, params: Bm25Params) -> Bm25 {
        let mut ids = Vec::new();
        let mut lengths = Vec::new();
        let mut postings: HashMap<String, Vec<(u32, u32)>> = HashMap::new();
        for (i, (id, text)) in docs.into_iter().enumerate() {
            let tokens = tokenize(text);
            lengths.push(tokens.len() as f64);
            ids.push(id.to_string());
            let mut tf: HashMap<String, u32> = HashMap::new();
            for t in tokens {
                *tf.entry(t).or_default() += 1;
            }
            for (t, f) in tf {
                postings.entry(t).or_default().push((i as u32, f));
            }
        }
        let average_length = lengths.iter().sum::<f64>() / lengths.len().max(1) as f64;
        Bm25 { params, ids, lengths, average_length, postings }
    }

    /// The best `k` documents for `query`, best first; documents sharing no term are left out.
    pub fn search(&self, query: &str, k: usize) -> Vec<(String, f32)> {
        let n = self.ids.len() as f64;
        let mut scores: HashMap<u32, f64> = HashMap::new();
        // A term repeated in the query counts once per occurrence, as in Lucene's BooleanQuery.
        for term in tokenize(query) {
            let Some(list) = self.postings.get(&term) else { continue };
            let df = list.len() as f64;
            let idf = (1.0 + (n - df + 0.5) / (df + 0.5)).ln();
            let Bm25Params { k1, b } = self.params;
            for &(doc, tf) in list {
                let tf = tf as f64;
                let norm = k1 * (1.0 - b + b * self.lengths[doc as usize] / self.average_length);
                *scores.entry(doc).or_default() += idf * tf * (k1 + 1.0) / (tf + norm);
            }
        }
        let mut hits: Vec<(String, f32)> =
            scores.into_iter().map(|(d, s)| (self.ids[d as usize].clone(), s as f32)).collect();
        super::metrics::trec_order(&mut hits);
        hits.truncate(k);
        hits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_lowercase_alphanumeric_runs() {
        assert_eq!(
            tokenize("Chief Executive (CEO), 24/7!"),
            ["chief", "executive", "ceo", "24", "7"]
        );
    }

    #[test]
    fn scores_match_the_formula() {
        let docs = [("a", "nurse nurse care"), ("b", "software engineer"), ("c", "care worker")];
        let bm = Bm25::new(docs, Bm25Params::default());
        let hits = bm.search("nurse", 10);
        assert_eq!(hits.len(), 1);
        // N 3, df 1: idf = ln(1 + 2.5/1.5); tf 2, |a| 3, avg 7/3.
        let idf = (1.0f64 + 2.5 / 1.5).ln();
        let norm = 1.2 * (1.0 - 0.75 + 0.75 * 3.0 / (7.0 / 3.0));
        let want = idf * 2.0 * 2.2 / (2.0 + norm);
        assert_eq!(hits[0].0, "a");
        assert!((hits[0].1 as f64 - want).abs() < 1e-5, "{} vs {want}", hits[0].1);
        // "care" is in a and c; c is shorter, so it ranks first.
        let hits = bm.search("care", 10);
        assert_eq!(hits.iter().map(|h| h.0.as_str()).collect::<Vec<_>>(), ["c", "a"]);
        assert!(bm.search("unknown words", 10).is_empty());
    }
}
