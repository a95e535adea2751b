//! Retrieval metrics as trec_eval defines them, so `hirevec eval` figures can be checked with any
//! standard evaluator against the TREC run file it writes.
//!
//! Conventions taken from trec_eval (and pytrec_eval, which BEIR uses):
//! - A run is re-sorted by score descending, ties broken by document id *descending*
//!   (trec_eval's `comp_sim_docno`); the rank column of a run file is ignored.
//! - A document is relevant when its qrels grade is at least 1; unjudged documents count as
//!   non-relevant (grade 0).
//! - `P@k` divides by k even when fewer than k documents were retrieved; `Recall@k` and `MAP@k`
//!   divide by the number of relevant documents in the qrels.
//! - `MRR@k` is the reciprocal rank of the first relevant document within the first k (BEIR's
//!   MRR@k; trec_eval's `recip_rank` has no cut).
//! - NDCG@k is given twice: with gain `2^grade - 1` (the figures in ../shared/data and BEIR's
//!   papers use this) and with linear gain `grade` (trec_eval's `ndcg_cut_k`). Both use the
//!   discount `1 / log2(rank + 1)` and an ideal ranking of all judged documents.
//!
//! Averages are over the queries that have at least one relevant document in the qrels; a query
//! with no results scores 0 on everything (trec_eval `-c`). Queries without qrels are not scored
//! and are counted separately.
use std::collections::HashMap;

use serde::Serialize;

/// Graded judgements of one query: document id -> grade.
pub type Judgements = HashMap<String, i32>;

/// Scores of one query at one cutoff.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct QueryScores {
    /// NDCG@k with gain 2^grade - 1.
    pub ndcg_exp: f64,
    /// NDCG@k with linear gain (trec_eval `ndcg_cut_k`).
    pub ndcg_linear: f64,
    /// Reciprocal rank of the first relevant document within k.
    pub mrr: f64,
    /// trec_eval `map_cut_k`.
    pub map: f64,
    /// trec_eval `P_k`.
    pub precision: f64,
    /// trec_eval `recall_k`.
    pub recall: f64,
}

impl QueryScores {
    fn add(&mut self, o: &QueryScores) {
        self.ndcg_exp += o.ndcg_exp;
        self.ndcg_linear += o.ndcg_linear;
        self.mrr += o.mrr;
        self.map += o.map;
        self.precision += o.precision;
        self.recall += o.recall;
    }

    fn scale(&mut self, f: f64) {
        self.ndcg_exp *= f;
        self.ndcg_linear *= f;
        self.mrr *= f;
        self.map *= f;
        self.precision *= f;
        self.recall *= f;
    }
}

/// Sorts a run the way trec_eval reads it: score descending, then document id descending.
pub fn trec_order(run: &mut [(String, f32)]) {
    run.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| b.0.cmp(&a.0)));
}

fn discount(rank0: usize) -> f64 {
    1.0 / ((rank0 + 2) as f64).log2()
}

fn dcg(grades: impl Iterator<Item = i32>, k: usize, gain: fn(i32) -> f64) -> f64 {
    grades.take(k).enumerate().map(|(i, g)| gain(g) * discount(i)).sum()
}

fn exp_gain(g: i32) -> f64 {
    if g > 0 { (2f64).powi(g) - 1.0 } else { 0.0 }
}

fn linear_gain(g: i32) -> f64 {
    g.max(0) as f64
}

/// Scores one query's run (any order; it is put in trec order here) at cutoff `k`.
/// Returns `None` when the qrels hold no relevant document for it.
pub fn score_query(run: &[(String, f32)], qrels: &Judgements, k: usize) -> Option<QueryScores> {
    assert!(k > 0, "cutoff must be at least 1");
    let num_rel = qrels.values().filter(|&&g| g >= 1).count();
    if num_rel == 0 {
        return None;
    }
    let mut run = run.to_vec();
    trec_order(&mut run);
    let grades: Vec<i32> =
        run.iter().take(k).map(|(id, _)| qrels.get(id).copied().unwrap_or(0)).collect();

    let mut ideal: Vec<i32> = qrels.values().copied().filter(|&g| g > 0).collect();
    ideal.sort_unstable_by(|a, b| b.cmp(a));
    let ndcg = |gain: fn(i32) -> f64| {
        let ideal = dcg(ideal.iter().copied(), k, gain);
        if ideal > 0.0 { dcg(grades.iter().copied(), k, gain) / ideal } else { 0.0 }
    };

    let mut found = 0usize;
    let mut sum_precision = 0.0;
    let mut mrr = 0.0;
    for (i, &g) in grades.iter().enumerate() {
        if g >= 1 {
            found += 1;
            sum_precision += found as f64 / (i + 1) as f64;
            if mrr == 0.0 {
                mrr = 1.0 / (i + 1) as f64;
            }
        }
    }
    Some(QueryScores {
        ndcg_exp: ndcg(exp_gain),
        ndcg_linear: ndcg(linear_gain),
        mrr,
        map: sum_precision / num_rel as f64,
        precision: found as f64 / k as f64,
        recall: found as f64 / num_rel as f64,
    })
}

/// Means over a query set.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub k: usize,
    #[serde(flatten)]
    pub mean: QueryScores,
    /// Queries scored (at least one relevant document in the qrels).
    pub queries: usize,
    /// Queries that were run but have no relevant document in the qrels: not scored.
    pub queries_without_qrels: usize,
}

/// Scores every query of `runs` against `qrels` and averages. Queries in the qrels that are missing
/// from `runs` score 0 (they were asked and nothing came back).
pub fn evaluate(
    runs: &HashMap<String, Vec<(String, f32)>>,
    qrels: &HashMap<String, Judgements>,
    k: usize,
) -> Summary {
    let mut total = QueryScores::default();
    let mut scored = 0;
    let mut without = 0;
    let empty = Vec::new();
    for qid in runs.keys() {
        if !qrels.get(qid).is_some_and(|j| j.values().any(|&g| g >= 1)) {
            without += 1;
        }
    }
    for (qid, judged) in qrels {
        if let Some(s) = score_query(runs.get(qid).unwrap_or(&empty), judged, k) {
            total.add(&s);
            scored += 1;
        }
    }
    if scored > 0 {
        total.scale(1.0 / scored as f64);
    }
    Summary { k, mean: total, queries: scored, queries_without_qrels: without }
}

/// Ranks with ties given their average rank (1-based), as Spearman's rho needs.
fn average_ranks(xs: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..xs.len()).collect();
    order.sort_by(|&a, &b| xs[a].total_cmp(&xs[b]));
    let mut ranks = vec![0.0; xs.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i + 1;
        while j < order.len() && xs[order[j]] == xs[order[i]] {
            j += 1;
        }
        // Positions i..j (0-based) share the mean of ranks i+1..=j.
        let rank = (i + j + 1) as f64 / 2.0;
        for &o in &order[i..j] {
            ranks[o] = rank;
        }
        i = j;
    }
    ranks
}

fn pearson(a: &[f64], b: &[f64]) -> Option<f64> {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let (mut cov, mut va, mut vb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        cov += (x - ma) * (y - mb);
        va += (x - ma) * (x - ma);
        vb += (y - mb) * (y - mb);
    }
    if va == 0.0 || vb == 0.0 { None } else { Some(cov / (va * vb).sqrt()) }
}

/// Spearman's rank correlation (Pearson's r of the average ranks, so ties are handled). `None`
/// when either side is constant or there are fewer than two pairs.
pub fn spearman(a: &[f64], b: &[f64]) -> Option<f64> {
    assert_eq!(a.len(), b.len());
    if a.len() < 2 {
        return None;
    }
    pearson(&average_ranks(a), &average_ranks(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(items: &[(&str, f32)]) -> Vec<(String, f32)> {
        items.iter().map(|(d, s)| (d.to_string(), *s)).collect()
    }

    fn judged(items: &[(&str, i32)]) -> Judgements {
        items.iter().map(|(d, g)| (d.to_string(), *g)).collect()
    }

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-9, "{a} != {b}");
    }

    #[test]
    fn binary_relevance_by_hand() {
        // Ranks: d1 (rel), d2, d3 (rel), d4; three relevant in qrels (d9 never retrieved).
        let r = run(&[("d1", 0.9), ("d2", 0.8), ("d3", 0.7), ("d4", 0.6)]);
        let q = judged(&[("d1", 1), ("d3", 1), ("d9", 1), ("d2", 0)]);
        let s = score_query(&r, &q, 4).unwrap();
        close(s.precision, 2.0 / 4.0);
        close(s.recall, 2.0 / 3.0);
        close(s.mrr, 1.0);
        // AP: (1/1 + 2/3) / 3.
        close(s.map, (1.0 + 2.0 / 3.0) / 3.0);
        // DCG = 1 + 1/log2(4) = 1.5; IDCG = 1 + 1/log2(3) + 1/log2(4).
        let idcg = 1.0 + 1.0 / 3f64.log2() + 0.5;
        close(s.ndcg_linear, 1.5 / idcg);
        close(s.ndcg_exp, 1.5 / idcg); // grade 1: 2^1 - 1 = 1, the same gains
        // Cut at 1: only d1.
        let s1 = score_query(&r, &q, 1).unwrap();
        close(s1.precision, 1.0);
        close(s1.recall, 1.0 / 3.0);
        close(s1.map, 1.0 / 3.0);
        close(s1.ndcg_linear, 1.0);
    }

    #[test]
    fn graded_gains_differ_between_exp_and_linear() {
        // The grade-1 document ranks above the grade-3 one.
        let r = run(&[("a", 0.9), ("b", 0.5)]);
        let q = judged(&[("a", 1), ("b", 3)]);
        let s = score_query(&r, &q, 2).unwrap();
        let d = 1.0 / 3f64.log2();
        // Linear: DCG = 1 + 3d, IDCG = 3 + 1d.
        close(s.ndcg_linear, (1.0 + 3.0 * d) / (3.0 + d));
        // Exponential: gains 1 and 7: DCG = 1 + 7d, IDCG = 7 + 1d.
        close(s.ndcg_exp, (1.0 + 7.0 * d) / (7.0 + d));
        close(s.map, 1.0);
        close(s.mrr, 1.0);
    }

    #[test]
    fn ties_are_broken_by_descending_doc_id() {
        // Equal scores: trec_eval puts "b" before "a" whatever the order in the run.
        let q = judged(&[("a", 1)]);
        for r in [run(&[("a", 0.5), ("b", 0.5)]), run(&[("b", 0.5), ("a", 0.5)])] {
            let s = score_query(&r, &q, 10).unwrap();
            close(s.mrr, 0.5);
            close(s.precision, 0.1);
            close(s.ndcg_linear, 1.0 / 3f64.log2());
        }
    }

    #[test]
    fn empty_results_and_missing_qrels() {
        let q = judged(&[("a", 2)]);
        assert_eq!(score_query(&[], &q, 10), Some(QueryScores::default()));
        // No relevant document: not scored at all.
        assert_eq!(score_query(&run(&[("a", 1.0)]), &judged(&[("a", 0)]), 10), None);
        assert_eq!(score_query(&run(&[("a", 1.0)]), &Judgements::new(), 10), None);

        let mut runs = HashMap::new();
        runs.insert("q1".to_string(), run(&[("a", 1.0)]));
        runs.insert("q-unjudged".to_string(), run(&[("a", 1.0)]));
        let mut qrels = HashMap::new();
        qrels.insert("q1".to_string(), judged(&[("a", 1)]));
        // q2 is in the qrels but returned nothing: it scores 0 and halves every mean.
        qrels.insert("q2".to_string(), judged(&[("a", 1)]));
        let s = evaluate(&runs, &qrels, 10);
        assert_eq!((s.queries, s.queries_without_qrels), (2, 1));
        close(s.mean.mrr, 0.5);
        close(s.mean.recall, 0.5);
        close(s.mean.ndcg_exp, 0.5);
    }

    #[test]
    fn spearman_with_ties_by_hand() {
        close(spearman(&[1.0, 2.0, 3.0], &[10.0, 20.0, 30.0]).unwrap(), 1.0);
        close(spearman(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]).unwrap(), -1.0);
        // a ranks 1,2,3,4; b ranks 1.5,1.5,3,4: r = 4.5 / sqrt(5 * 4.5).
        let r = spearman(&[0.1, 0.2, 0.3, 0.4], &[0.0, 0.0, 1.0, 2.0]).unwrap();
        close(r, 4.5 / (5.0f64 * 4.5).sqrt());
        assert_eq!(spearman(&[1.0, 1.0], &[1.0, 2.0]), None);
        assert_eq!(spearman(&[1.0], &[1.0]), None);
    }
}
