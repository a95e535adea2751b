#!/usr/bin/env python3
"""sentence-transformers on PyTorch CPU over the same texts as `hirevec bench embed`, printing
the same JSON shape. encode() sorts by length and pads per batch, as hirevec's batcher does, and
truncates at the model's max_seq_length (256 for all-MiniLM-L6-v2)."""
import argparse
import json
import os
import sys
import time

import torch
from sentence_transformers import SentenceTransformer


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="models/all-MiniLM-L6-v2")
    p.add_argument("--input", required=True)
    p.add_argument("--limit", type=int, default=2000)
    p.add_argument("--batch-sizes", default="1,8,32,128")
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    a = p.parse_args()

    torch.set_num_threads(a.threads)
    texts = []
    with open(a.input) as f:
        for line in f:
            if len(texts) >= a.limit:
                break
            texts.append(json.loads(line)["text"])
    model = SentenceTransformer(a.model, device="cpu")
    tok = model.tokenizer
    lengths = [len(x) for x in tok(texts, truncation=True, max_length=model.max_seq_length)["input_ids"]]
    tokens = sum(lengths)
    results = []
    with torch.inference_mode():
        for bs in [int(x) for x in a.batch_sizes.split(",")]:
            model.encode(texts[: max(bs, 8)], batch_size=bs, normalize_embeddings=True)  # warm-up
            best = float("inf")
            for _ in range(max(1, a.repeat)):
                t0 = time.perf_counter()
                out = model.encode(texts, batch_size=bs, normalize_embeddings=True, convert_to_numpy=True)
                best = min(best, time.perf_counter() - t0)
                assert out.shape[0] == len(texts)
            results.append({
                "batch_size": bs,
                "seconds": best,
                "docs_per_s": len(texts) / best,
                "tokens_per_s": tokens / best,
                "tokens": tokens,
            })
            print(f"batch {bs:>4}: {len(texts) / best:8.1f} docs/s", file=sys.stderr)
    print(json.dumps({
        "engine": f"sentence-transformers (torch {torch.__version__}, cpu)",
        "model": a.model,
        "threads": torch.get_num_threads(),
        "texts": len(texts),
        "results": results,
    }, indent=2))


if __name__ == "__main__":
    main()
