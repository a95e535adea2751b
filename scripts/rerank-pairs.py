#!/usr/bin/env python3
"""Writes (query, document) pairs for `hirevec bench rerank` / `hirevec rerank` from a BEIR set:
every judged pair of qrels/test.tsv, the query text against the judged document's text (title
and body), in file order. O*NET data: CC BY 4.0 (see ../shared/data/onet/README.md).

    scripts/rerank-pairs.py ../shared/data/onet/onet_title2jd_en > data/rerank-pairs.jsonl
"""
import json
import sys


def main():
    d = sys.argv[1]
    queries = {}
    with open(f"{d}/queries.jsonl") as f:
        for line in f:
            q = json.loads(line)
            queries[q["_id"]] = q["text"]
    corpus = {}
    with open(f"{d}/corpus.jsonl") as f:
        for line in f:
            c = json.loads(line)
            corpus[c["_id"]] = (c.get("title", "") + "\n" + c["text"]).strip()
    with open(f"{d}/qrels/test.tsv") as f:
        next(f)
        for line in f:
            qid, did, _ = line.rstrip("\n").split("\t")
            if qid in queries and did in corpus:
                print(json.dumps({"query": queries[qid], "document": corpus[did]}))


if __name__ == "__main__":
    main()
