#!/usr/bin/env bash
# Runs the request-conversion fuzzer for SECONDS (default 60) from a seed corpus of valid
# requests, which the target itself writes (HIREVEC_FUZZ_SEEDS). Extra arguments go to
# `cargo fuzz run` (e.g. `-s none` where AddressSanitizer is unavailable).
# cargo-fuzz needs nightly-only sanitizer flags; RUSTC_BOOTSTRAP lets the stable toolchain
# accept them (the machine has no nightly).
set -euo pipefail
cd "$(dirname "$0")"
SECONDS_TO_RUN=${1:-60}
shift || true
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
# Optional speed-up: link the RocksDB that a release build of the server already compiled
# instead of compiling its C++ again (about 13 minutes). Without one, librocksdb-sys builds it.
if [[ -z "${ROCKSDB_LIB_DIR:-}" ]]; then
  lib=$(ls ../target/release/build/librocksdb-sys-*/out/librocksdb.a 2>/dev/null | head -1 || true)
  if [[ -n "$lib" ]]; then
    export ROCKSDB_LIB_DIR=$(cd "$(dirname "$lib")" && pwd) ROCKSDB_STATIC=1
  fi
fi
# Start from the server's lock file, so the fuzzed code is built with the versions it ships with.
[[ -f Cargo.lock ]] || cp ../Cargo.lock Cargo.lock
export RUSTC_BOOTSTRAP=1
mkdir -p corpus/request_convert
HIREVEC_FUZZ_SEEDS="$PWD/corpus/request_convert" cargo fuzz run "$@" request_convert -- -runs=0
cargo fuzz run "$@" request_convert corpus/request_convert -- \
  -max_total_time="$SECONDS_TO_RUN" -max_len=65536 -print_final_stats=1
