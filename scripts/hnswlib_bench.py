#!/usr/bin/env python3
"""The `hirevec bench ann` measurement, done with hnswlib (pip package `hnswlib`).

Same files, same ground truth, same parameters, same warm-up and the same JSON shape as
src/tools/bench_ann.rs, so scripts/ann_table.py can put the two engines side by side.

    python3 scripts/hnswlib_bench.py --base data/glove-50/base.npy \
        --queries data/glove-50/queries.npy --gt data/glove-50/gt-10.ivecs \
        --threads 2 --ef 16,32,64,128,256 --json target/bench-ann/glove-50-hnswlib.json

How each figure is taken (and how it differs from the Rust tool, where it has to):
  build_seconds      index.add_items(base, ids = row numbers, num_threads=threads), wall clock.
  index_bytes        size of the file index.save_index() writes.
  recall_at_k        from the single-thread batch below; |result ∩ gt[:k]| / k, averaged.
  qps_single_thread  one knn_query(all queries, k, num_threads=1) call: the C++ loop runs the
                     queries one after another, so no per-query Python overhead is charged.
  qps_all_threads    one knn_query(all queries, k, num_threads=threads) call.
  p50_us / p99_us    one knn_query call per query, timed with perf_counter_ns; these include
                     the Python binding's per-call overhead (a few microseconds), so they
                     overstate hnswlib's latency slightly; the QPS columns carry no such cost.
Each timed figure is the fastest of --repeat passes (default 3), as in bench_ann.rs.
hnswlib normalises vectors itself for space='cosine' (on insert and on query), as hirevec does.
"""
import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

try:
    import hnswlib
except ImportError:  # pragma: no cover - message for a fresh machine
    sys.exit("hnswlib is not installed: python3 -m pip install hnswlib")


def fail(path, reason):
    sys.exit(f"{path}: {reason}")


def read_vectors(path):
    """Reads a 2-D C-order little-endian f32/f16 .npy file or an .fvecs file as float32."""
    if path.endswith(".npy"):
        try:
            arr = np.load(path, mmap_mode="r", allow_pickle=False)
        except ValueError as e:
            fail(path, f"not a readable .npy file ({e})")
        if arr.ndim != 2:
            fail(path, f"expected a 2-D array (rows, dim), got shape {arr.shape}")
        if arr.dtype.str not in ("<f4", "<f2"):
            fail(path, f"dtype {arr.dtype.str!r} is not supported (expected '<f4' or '<f2')")
        if arr.flags.f_contiguous and not arr.flags.c_contiguous:
            fail(path, "array is in Fortran order; save it with np.ascontiguousarray(arr)")
        return np.ascontiguousarray(arr, dtype=np.float32), arr.dtype.str[1:].replace("f4", "f32").replace("f2", "f16")
    if path.endswith(".fvecs"):
        raw = np.fromfile(path, dtype="<i4")
        if raw.size == 0:
            fail(path, "empty .fvecs file: no vectors")
        dim = int(raw[0])
        if dim <= 0:
            fail(path, f"row 0 declares dimension {dim}; not a valid .fvecs file")
        if raw.size % (dim + 1):
            fail(path, f"{raw.size * 4} bytes is not a whole number of rows of dimension {dim}")
        rows = raw.reshape(-1, dim + 1)
        bad = np.nonzero(rows[:, 0] != dim)[0]
        if bad.size:
            fail(path, f"row {bad[0]} declares dimension {rows[bad[0], 0]}, row 0 declared {dim}")
        return np.ascontiguousarray(rows[:, 1:]).view("<f4").astype(np.float32), "f32"
    fail(path, "unknown vector file type (expected .npy or .fvecs)")


def read_ivecs(path, k, n_queries, n_base):
    raw = np.fromfile(path, dtype="<i4")
    if raw.size == 0:
        fail(path, "empty .ivecs file")
    width = int(raw[0])
    if width <= 0 or raw.size % (width + 1):
        fail(path, f"not a whole number of rows of width {width}")
    rows = raw.reshape(-1, width + 1)
    if np.any(rows[:, 0] != width):
        fail(path, "rows disagree on their length")
    if len(rows) != n_queries:
        fail(path, f"{len(rows)} ground-truth rows for {n_queries} queries")
    if width < k:
        fail(path, f"rows have {width} ids, fewer than --k {k}")
    gt = rows[:, 1:k + 1]
    if gt.min() < 0 or gt.max() >= n_base:
        fail(path, f"ids outside the {n_base} base rows")
    return gt


def exact_top_k(base, queries, k):
    """Exact cosine top-k in f64, ties by id ascending (the order hirevec and its GT use)."""
    b = base.astype(np.float64)
    norms = np.linalg.norm(b, axis=1)
    b /= np.where(norms > 0, norms, 1)[:, None]
    q = queries.astype(np.float64)
    q /= np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-300)
    out = np.empty((len(q), k), dtype=np.int64)
    for s in range(0, len(q), 256):
        sims = q[s:s + 256] @ b.T
        sims[:, norms == 0] = -np.inf  # zero vectors have no cosine; hirevec rejects them
        # Everything scoring at least the k-th best score, so ties at the boundary are all
        # candidates and the id order decides among them.
        kth = -np.partition(-sims, k - 1, axis=1)[:, k - 1]
        for j, row in enumerate(sims):
            c = np.nonzero(row >= kth[j])[0]
            out[s + j] = sorted(c, key=lambda i: (-row[i], i))[:k]
    return out


def percentile(sorted_vals, p):
    """Nearest-rank percentile, as in bench_ann.rs."""
    rank = int(np.ceil(p / 100.0 * len(sorted_vals)))
    return float(sorted_vals[min(max(rank, 1), len(sorted_vals)) - 1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", required=True)
    ap.add_argument("--queries", required=True)
    ap.add_argument("--gt")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--m", type=int, default=16)
    ap.add_argument("--ef-construction", type=int, default=200)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--ef", default="16,32,64,128,256,512")
    ap.add_argument("--json")
    ap.add_argument("--out-dir", help="keep the saved index here (default: a temp dir)")
    ap.add_argument("--seed", type=int, default=42, help="hnswlib random_seed")
    ap.add_argument("--warmup", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=3,
                    help="passes per ef and mode; the fastest is reported")
    a = ap.parse_args()

    efs = [int(x) for x in a.ef.split(",") if x.strip()]
    if not efs:
        sys.exit("--ef needs at least one value")
    if a.repeat < 1:
        sys.exit("--repeat must be at least 1")
    if min(efs) < a.k:
        sys.exit(f"--ef {min(efs)} is smaller than --k {a.k}; every ef must be >= k")

    t = time.perf_counter()
    base, input_dtype = read_vectors(a.base)
    queries, _ = read_vectors(a.queries)
    print(f"read {a.base} {base.shape}, {a.queries} {queries.shape} in "
          f"{time.perf_counter() - t:.2f}s", file=sys.stderr)
    if base.shape[1] != queries.shape[1]:
        fail(a.queries, f"queries have dimension {queries.shape[1]}, base has {base.shape[1]}")
    n, dim = base.shape
    nq = len(queries)
    if a.gt:
        gt, gt_source = read_ivecs(a.gt, a.k, nq, n), "file"
    else:
        print(f"computing exact cosine top-{a.k} (numpy, f64)...", file=sys.stderr)
        gt, gt_source = exact_top_k(base, queries, a.k), "exact"

    index = hnswlib.Index(space="cosine", dim=dim)
    index.init_index(max_elements=n, M=a.m, ef_construction=a.ef_construction,
                     random_seed=a.seed)
    t = time.perf_counter()
    index.add_items(base, np.arange(n), num_threads=a.threads)
    build_seconds = time.perf_counter() - t
    print(f"built in {build_seconds:.2f}s ({n / build_seconds:.0f} inserts/s)", file=sys.stderr)

    dataset = os.path.basename(os.path.dirname(os.path.abspath(a.base))) or "dataset"
    tmp = None
    out_dir = a.out_dir
    if out_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="hnswlib-bench-")
        out_dir = tmp.name
    os.makedirs(out_dir, exist_ok=True)
    idx_path = os.path.join(out_dir, f"{dataset}-hnswlib-m{a.m}-efc{a.ef_construction}.bin")
    t = time.perf_counter()
    index.save_index(idx_path)
    seal_seconds = time.perf_counter() - t
    index_bytes = os.path.getsize(idx_path)
    # Search the reloaded index, as hirevec searches its reopened file.
    index = hnswlib.Index(space="cosine", dim=dim)
    index.load_index(idx_path, max_elements=n)

    index.set_ef(max(efs))
    index.knn_query(queries[:min(a.warmup, nq)], k=a.k, num_threads=1)

    runs = []
    for ef in efs:
        # Each figure is the fastest of --repeat passes, as in bench_ann.rs.
        index.set_ef(ef)
        single = multi = float("inf")
        for _ in range(a.repeat):
            t = time.perf_counter()
            labels, _ = index.knn_query(queries, k=a.k, num_threads=1)
            single = min(single, time.perf_counter() - t)
        found = sum(len(np.intersect1d(labels[i], gt[i][:a.k])) for i in range(nq))
        for _ in range(a.repeat):
            t = time.perf_counter()
            index.knn_query(queries, k=a.k, num_threads=a.threads)
            multi = min(multi, time.perf_counter() - t)
        lat, lat_total = None, float("inf")
        for _ in range(a.repeat):
            this = np.empty(nq, dtype=np.int64)
            for i in range(nq):
                q = queries[i:i + 1]
                s = time.perf_counter_ns()
                index.knn_query(q, k=a.k, num_threads=1)
                this[i] = time.perf_counter_ns() - s
            if this.sum() < lat_total:
                lat, lat_total = this, this.sum()
        lat.sort()
        runs.append({
            "ef": ef,
            "recall_at_k": found / (nq * a.k),
            "qps_single_thread": nq / single,
            "qps_all_threads": nq / multi,
            "p50_us": percentile(lat, 50) / 1e3,
            "p99_us": percentile(lat, 99) / 1e3,
        })

    report = {
        "engine": "hnswlib",
        "engine_version": getattr(hnswlib, "__version__", None),
        "dataset": dataset,
        "base": a.base,
        "queries": a.queries,
        "gt": a.gt,
        "gt_source": gt_source,
        "n_base": n,
        "n_queries": nq,
        "dim": dim,
        "stored_dim": dim,
        "dtype": "f32",  # hnswlib stores f32 only
        "input_dtype": input_dtype,
        "k": a.k,
        "m": a.m,
        "ef_construction": a.ef_construction,
        "threads": a.threads,
        "seed": a.seed,
        "repeat": a.repeat,
        "build_seconds": build_seconds,
        "seal_seconds": seal_seconds,
        "index_bytes": index_bytes,
        "runs": runs,
    }
    print(f"\n{dataset} | hnswlib | {n} base x {nq} queries | dim {dim} | m {a.m} "
          f"ef_construction {a.ef_construction} | {a.threads} threads")
    print(f"build {build_seconds:.2f}s, index {index_bytes / 1e6:.1f} MB")
    print(f"\n{'ef':>6} {'recall@' + str(a.k):>10} {'QPS 1 thr':>12} "
          f"{'QPS ' + str(a.threads) + ' thr':>12} {'p50 us':>9} {'p99 us':>9}")
    for r in runs:
        print(f"{r['ef']:>6} {r['recall_at_k']:>10.4f} {r['qps_single_thread']:>12.0f} "
              f"{r['qps_all_threads']:>12.0f} {r['p50_us']:>9.1f} {r['p99_us']:>9.1f}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(report, f, indent=2)
            f.write("\n")
        print(f"wrote {a.json}", file=sys.stderr)
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
