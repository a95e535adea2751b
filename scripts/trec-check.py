#!/usr/bin/env python3
"""Scores a TREC run file written by `hirevec eval --run` with pytrec_eval (trec_eval's own C
code), so the figures hirevec reports can be checked independently.

    pip install pytrec-eval-terrier
    scripts/trec-check.py QRELS.tsv RUN.trec [K]

Queries are those of the run (hirevec writes every query it asked, with qrels); measures are
trec_eval's ndcg_cut (linear gain), map_cut, P and recall at K.
"""
import collections
import sys

import pytrec_eval

qrels_path, run_path = sys.argv[1], sys.argv[2]
k = int(sys.argv[3]) if len(sys.argv) > 3 else 10
qrels = collections.defaultdict(dict)
for i, line in enumerate(open(qrels_path)):
    q, d, s = line.rstrip("\n").split("\t")
    if i == 0 and q == "query-id":
        continue
    qrels[q][d] = int(s)
run = collections.defaultdict(dict)
for line in open(run_path):
    q, _, d, _rank, score, _tag = line.split()
    run[q][d] = float(score)
measures = {f"ndcg_cut.{k}", f"map_cut.{k}", f"P.{k}", f"recall.{k}"}
res = pytrec_eval.RelevanceEvaluator({q: qrels[q] for q in run}, measures).evaluate(run)
for m in [f"ndcg_cut_{k}", f"map_cut_{k}", f"P_{k}", f"recall_{k}"]:
    print(m, f"{sum(r[m] for r in res.values()) / len(res):.4f}")
