#!/usr/bin/env bash
# Embedding throughput of all-MiniLM-L6-v2: hirevec (candle, CPU f32) against sentence-transformers
# on PyTorch CPU, same texts (the first N O*NET task statements), same machine, same run, both
# using every core. The engines take turns, ROUNDS times (hirevec, then sentence-transformers,
# then again), and each keeps its best pass per batch size: on a shared host a slow spell then
# hits both rather than whichever happened to be running. Prints a markdown table; the JSON
# reports land in target/bench-embed/.
#
#   scripts/bench-embed-vs-st.sh [N] [BATCH_SIZES]      defaults: 2000 "1,8,32,128"
#   PYTHON=/path/to/venv/bin/python ROUNDS=3 scripts/bench-embed-vs-st.sh
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-2000}
BS=${2:-1,8,32,128}
ROUNDS=${ROUNDS:-2}
PY=${PYTHON:-python3}
TEXTS=${TEXTS:-../shared/data/onet-minilm-384/texts.jsonl}
OUT=target/bench-embed
mkdir -p "$OUT"
rm -f "$OUT"/hirevec.*.json "$OUT"/st.*.json

bash scripts/setup-models.sh
# CPU wheels of torch come from PyPI like everything else here.
"$PY" -c 'import torch, sentence_transformers' 2>/dev/null || "$PY" -m pip install -q torch sentence-transformers
cargo build --release --bin hirevec

for r in $(seq 1 "$ROUNDS"); do
  ./target/release/hirevec bench embed --model models/all-MiniLM-L6-v2 --input "$TEXTS" --limit "$N" \
    --batch-sizes "$BS" --repeat 1 --json "$OUT/hirevec.$r.json" > /dev/null
  "$PY" scripts/bench_embed_st.py --model models/all-MiniLM-L6-v2 --input "$TEXTS" --limit "$N" \
    --batch-sizes "$BS" --repeat 1 > "$OUT/st.$r.json"
done

"$PY" - "$OUT" "$ROUNDS" <<'PYEOF'
import json, sys
out, rounds = sys.argv[1], int(sys.argv[2])
def best(engine):
    """Each batch size's fastest pass over the rounds; the reports of round 1 for the rest."""
    reports = [json.load(open(f"{out}/{engine}.{r}.json")) for r in range(1, rounds + 1)]
    rows = {}
    for rep in reports:
        for row in rep["results"]:
            if row["batch_size"] not in rows or row["docs_per_s"] > rows[row["batch_size"]]["docs_per_s"]:
                rows[row["batch_size"]] = row
    merged = dict(reports[0], results=[rows[b] for b in sorted(rows)], rounds=rounds)
    json.dump(merged, open(f"{out}/{engine}.json", "w"), indent=2)
    return merged
h, s = best("hirevec"), best("st")
print(f"all-MiniLM-L6-v2, {h['texts']} texts, {h['results'][0]['tokens']} tokens, best of {rounds} "
      f"alternating rounds; hirevec {h['compute']} {h['threads']} threads; {s['engine']} {s['threads']} threads\n")
print("| batch | hirevec docs/s | sentence-transformers docs/s | ratio |")
print("|---:|---:|---:|---:|")
st = {r["batch_size"]: r for r in s["results"]}
for r in h["results"]:
    o = st.get(r["batch_size"])
    if o:
        print(f"| {r['batch_size']} | {r['docs_per_s']:.1f} | {o['docs_per_s']:.1f} | {r['docs_per_s'] / o['docs_per_s']:.2f}x |")
PYEOF
