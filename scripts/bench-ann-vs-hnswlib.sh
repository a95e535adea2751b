#!/usr/bin/env bash
# hirevec (f32 and f16) against hnswlib on the same data, same ground truth, same threads, in
# one run on one machine. Writes JSON, logs, a markdown table and a recall-vs-QPS chart (SVG) per
# dataset to target/bench-ann/.
#
#   scripts/bench-ann-vs-hnswlib.sh [glove-50] [onet-384]       (default: both)
#   THREADS=2 EF=16,24,32,48,64,96,128,256 K=10 scripts/bench-ann-vs-hnswlib.sh onet-384
#
# The data come from scripts/setup-data.sh (run here if missing). Timings on a machine that is
# busy with something else (a compile) are worthless; the load average before and after each
# engine is written next to the table so a noisy run can be recognised.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
THREADS=${THREADS:-2}
EF=${EF:-16,24,32,48,64,96,128,192,256,384,512}
K=${K:-10}
OUT=target/bench-ann
datasets=("$@")
[ ${#datasets[@]} -gt 0 ] || datasets=(glove-50 onet-384)

"$PY" -c 'import numpy, hnswlib' 2>/dev/null || "$PY" -m pip install -q numpy hnswlib
for ds in "${datasets[@]}"; do
  if [ ! -f "data/$ds/gt-$K.ivecs" ] && [ "$K" = 10 ]; then scripts/setup-data.sh; fi
  if [ ! -f "data/$ds/gt-$K.ivecs" ]; then
    echo "data/$ds/gt-$K.ivecs missing (scripts/setup-data.sh writes k=10 only)" >&2
    exit 1
  fi
done
if [ -z "${HIREVEC:-}" ]; then
  cargo build --release --bin hirevec
  HIREVEC=target/release/hirevec
fi
mkdir -p "$OUT"

load() { cut -d' ' -f1 /proc/loadavg; }

for ds in "${datasets[@]}"; do
  common=(--base "data/$ds/base.npy" --queries "data/$ds/queries.npy" --gt "data/$ds/gt-$K.ivecs"
          --k "$K" --threads "$THREADS" --ef "$EF")
  notes="$OUT/$ds-load.txt"
  : > "$notes"
  echo "== $ds: hnswlib" >&2
  echo "hnswlib: load before $(load)" >> "$notes"
  "$PY" scripts/hnswlib_bench.py "${common[@]}" --m 16 --ef-construction 200 \
    --json "$OUT/$ds-hnswlib.json" 2>&1 | tee "$OUT/$ds-hnswlib.log" >&2
  echo "hnswlib: load after $(load)" >> "$notes"
  for dtype in f32 f16; do
    echo "== $ds: hirevec $dtype" >&2
    echo "hirevec $dtype: load before $(load)" >> "$notes"
    plot=()
    # The last engine draws the chart with the other two curves: recall@k against QPS.
    [ "$dtype" = f16 ] && plot=(--plot "$OUT/$ds-recall-qps.svg"
                                --plot-with "$OUT/$ds-hirevec-f32.json,$OUT/$ds-hnswlib.json")
    "$HIREVEC" bench ann "${common[@]}" --m 16 --ef-construction 200 --dtype "$dtype" \
      --json "$OUT/$ds-hirevec-$dtype.json" "${plot[@]}" 2>&1 | tee "$OUT/$ds-hirevec-$dtype.log" >&2
    echo "hirevec $dtype: load after $(load)" >> "$notes"
  done
  {
    "$PY" scripts/ann_table.py "$OUT/$ds-hirevec-f32.json" "$OUT/$ds-hirevec-f16.json" \
      "$OUT/$ds-hnswlib.json"
    echo
    echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs);" \
         "1-minute load average around each engine: $(paste -sd';' "$notes" | sed 's/;/; /g')"
    echo
    echo "Reproduce: THREADS=$THREADS EF=$EF K=$K scripts/bench-ann-vs-hnswlib.sh $ds"
  } > "$OUT/$ds.md"
  cat "$OUT/$ds.md"
  echo
done
