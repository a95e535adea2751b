#!/usr/bin/env bash
# Runs the segment-parser fuzzer for SECONDS (default 60) from a seed corpus of valid files.
# cargo-fuzz needs nightly-only sanitizer flags; RUSTC_BOOTSTRAP lets the stable toolchain
# accept them (the machine has no nightly).
set -euo pipefail
cd "$(dirname "$0")"
SECONDS_TO_RUN=${1:-60}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
mkdir -p corpus/segment_parse
(cd .. && cargo run --release -q --example seed_segments -- fuzz/corpus/segment_parse)
RUSTC_BOOTSTRAP=1 cargo fuzz run segment_parse corpus/segment_parse -- \
  -max_total_time="$SECONDS_TO_RUN" -max_len=65536 -print_final_stats=1
