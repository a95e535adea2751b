#!/usr/bin/env bash
# Embedding throughput of all-MiniLM-L6-v2: hirevec (candle, CPU f32) against sentence-transformers
# on PyTorch CPU, same texts (the first N O*NET task statements), same machine, same run, both
# using every core. Prints a markdown table; the JSON reports land in target/bench-embed/.
#
#   scripts/bench-embed-vs-st.sh [N] [BATCH_SIZES]      defaults: 2000 "1,8,32,128"
#   PYTHON=/path/to/venv/bin/python scripts/bench-embed-vs-st.sh
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-2000}
BS=${2:-1,8,32,128}
REPEAT=${REPEAT:-2}
PY=${PYTHON:-python3}
TEXTS=${TEXTS:-../shared/data/onet-minilm-384/texts.jsonl}
OUT=target/bench-embed
mkdir -p "$OUT"

bash scripts/setup-models.sh
# CPU wheels of torch come from PyPI like everything else here.
"$PY" -c 'import torch, sentence_transformers' 2>/dev/null || "$PY" -m pip install -q torch sentence-transformers
cargo build --release --bin hirevec

./target/release/hirevec bench embed --model models/all-MiniLM-L6-v2 --input "$TEXTS" --limit "$N" \
  --batch-sizes "$BS" --repeat "$REPEAT" --json "$OUT/hirevec.json" > /dev/null
"$PY" scripts/bench_embed_st.py --model models/all-MiniLM-L6-v2 --input "$TEXTS" --limit "$N" \
  --batch-sizes "$BS" --repeat "$REPEAT" > "$OUT/st.json"

"$PY" - "$OUT/hirevec.json" "$OUT/st.json" <<'PYEOF'
import json, sys
h, s = (json.load(open(p)) for p in sys.argv[1:3])
print(f"all-MiniLM-L6-v2, {h['texts']} texts, {h['results'][0]['tokens']} tokens; "
      f"hirevec {h['compute']} {h['threads']} threads; {s['engine']} {s['threads']} threads\n")
print("| batch | hirevec docs/s | sentence-transformers docs/s | ratio |")
print("|---:|---:|---:|---:|")
st = {r["batch_size"]: r for r in s["results"]}
for r in h["results"]:
    o = st.get(r["batch_size"])
    if o:
        print(f"| {r['batch_size']} | {r['docs_per_s']:.1f} | {o['docs_per_s']:.1f} | {r['docs_per_s'] / o['docs_per_s']:.2f}x |")
PYEOF
