#!/usr/bin/env python3
"""Markdown table from the JSON files of `hirevec bench ann` and scripts/hnswlib_bench.py.

    python3 scripts/ann_table.py [--target-recall 0.95] A.json B.json ...

All files should describe the same dataset, k and thread count (the script refuses to compare
anything else). Prints one row per engine/dtype/ef, then for each engine the single-thread QPS at
the smallest ef reaching the target recall, the hirevec/hnswlib ratios of that QPS and of the
build time, and the f16-vs-f32 recall gap per ef.
"""
import argparse
import json
import sys


def label(r):
    return f"{r['engine']} {r['dtype']}" + (
        f" d{r['stored_dim']}" if r.get("stored_dim", r["dim"]) != r["dim"] else "")


def at_target(r, target):
    """(ef, run) of the smallest ef whose recall reaches target, or None."""
    ok = [x for x in r["runs"] if x["recall_at_k"] >= target]
    return min(ok, key=lambda x: x["ef"]) if ok else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target-recall", type=float, default=0.95)
    ap.add_argument("files", nargs="+")
    a = ap.parse_args()
    reports = []
    for path in a.files:
        with open(path) as f:
            reports.append(json.load(f))
    for key in ("dataset", "n_base", "n_queries", "k", "threads", "m", "ef_construction"):
        values = {r[key] for r in reports}
        if len(values) > 1:
            sys.exit(f"the files disagree on {key}: {sorted(values)}; not comparable")
    r0 = reports[0]
    k, threads = r0["k"], r0["threads"]
    print(f"### {r0['dataset']}: {r0['n_base']} base x {r0['n_queries']} queries, dim {r0['dim']}, "
          f"m {r0['m']}, ef_construction {r0['ef_construction']}, {threads} threads, "
          f"k {k}, ground truth: {r0['gt'] or 'exact (computed)'}\n")
    print(f"| engine | dtype | ef | recall@{k} | QPS 1 thread | QPS {threads} threads "
          f"| p50 µs | p99 µs | build s | index MB |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in reports:
        for x in r["runs"]:
            print(f"| {r['engine']} | {r['dtype']}"
                  f"{'' if r['stored_dim'] == r['dim'] else ' d' + str(r['stored_dim'])} "
                  f"| {x['ef']} | {x['recall_at_k']:.4f} | {x['qps_single_thread']:,.0f} "
                  f"| {x['qps_all_threads']:,.0f} | {x['p50_us']:.1f} | {x['p99_us']:.1f} "
                  f"| {r['build_seconds']:.1f} | {r['index_bytes'] / 1e6:.1f} |")

    t = a.target_recall
    print(f"\nSingle-thread QPS at the smallest ef with recall@{k} >= {t}:\n")
    best = {}
    for r in reports:
        hit = at_target(r, t)
        best[label(r)] = (r, hit)
        if hit:
            print(f"- {label(r)}: ef {hit['ef']}, recall {hit['recall_at_k']:.4f}, "
                  f"{hit['qps_single_thread']:,.0f} QPS (build {r['build_seconds']:.1f} s)")
        else:
            top = max(x["recall_at_k"] for x in r["runs"])
            print(f"- {label(r)}: never reaches {t} (best {top:.4f}); extend --ef")
    base = [v for name, v in best.items() if name.startswith("hnswlib")]
    if base:
        hr, hhit = base[0]
        print()
        for name, (r, hit) in best.items():
            if r["engine"] == "hnswlib":
                continue
            qps = (f"{hit['qps_single_thread'] / hhit['qps_single_thread']:.2f}x"
                   if hit and hhit else "n/a")
            build = r["build_seconds"] / hr["build_seconds"]
            print(f"- {name} / hnswlib: QPS at recall {t}: **{qps}**; build time "
                  f"{build:.2f}x ({'slower' if build > 1 else 'faster or equal'}); "
                  f"index size {r['index_bytes'] / hr['index_bytes']:.2f}x")
    f32 = next((r for r in reports if r["engine"] == "hirevec" and r["dtype"] == "f32"), None)
    f16 = next((r for r in reports if r["engine"] == "hirevec" and r["dtype"] == "f16"), None)
    if f32 and f16:
        by_ef = {x["ef"]: x["recall_at_k"] for x in f32["runs"]}
        gaps = [(x["ef"], by_ef[x["ef"]] - x["recall_at_k"]) for x in f16["runs"]
                if x["ef"] in by_ef]
        worst = max(gaps, key=lambda g: g[1])
        print(f"- hirevec recall f32 - f16 per ef: "
              + ", ".join(f"{ef}: {g:+.4f}" for ef, g in gaps)
              + f" (largest {worst[1]:+.4f} at ef {worst[0]}; target <= 0.005)")


if __name__ == "__main__":
    main()
