"""Near-dedup throughput on the embedded corpus: snowcoder vs datatrove vs a naive baseline.

All methods see the same documents (the usable files of the configured sources) in the same
run and find near duplicates with word 5-gram MinHash LSH:
- `rensa_hash_only`: rensa hashing of Python-built shingles, no clustering (the practical limit)
- `snowcoder`: signatures + band hashes + candidate pairs + verified clusters (phase1/minhash.py)
- `datasketch_naive`: datasketch MinHash + MinHashLSH insert/query, one document at a time
- `datatrove`: its 4-stage MinhashDedup pipeline (signature, buckets, cluster, filter) with
  LocalPipelineExecutor, `--workers` tasks (needs `pip install -e '.[bench]'`)
Prints one JSON line per method. Usage: python bench/dedup.py [--config FILE] [--limit N]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import shutil
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

from snowcoder_assets.config import load_config
from snowcoder_assets.phase1.minhash import (
    MinhashConfig,
    band_hashes,
    candidate_pairs,
    cluster,
    shingle_sets,
    signatures,
)


def corpus_texts(config_path: str | None, limit: int | None) -> list[str]:
    """The usable text files of the configured sources, read the way ingestion reads them."""
    from snowcoder_assets.raw.shards import discover_all
    from snowcoder_assets.sources import build_source
    from snowcoder_assets.sources.base import REASON_UNKNOWN_LANGUAGE

    config = load_config(config_path)
    scratch = Path(tempfile.mkdtemp(prefix="snowcoder-bench-"))
    config = config.model_copy(
        update={"paths": config.paths.model_copy(update={"data_dir": scratch})}
    )
    texts = []
    try:
        from snowcoder_assets.languages import language_of

        for shard in discover_all(config):
            source = build_source(config, shard.source)
            if hasattr(source, "language_gate"):
                source.language_gate = lambda p: None if language_of(p) else REASON_UNKNOWN_LANGUAGE
            texts += [r.text for r in source.read(shard.unit_keys) if r.text]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return texts[:limit] if limit else texts


def run_snowcoder(texts: list[str], cfg: MinhashConfig) -> int:
    sigs = signatures(texts, cfg)
    bands = band_hashes(sigs, cfg)
    n = len(texts)
    table = pl.DataFrame(
        {
            "doc_index": np.repeat(np.arange(n, dtype=np.int64), cfg.bands),
            "band": np.tile(np.arange(cfg.bands, dtype=np.int32), n),
            "hash": bands.reshape(-1),
        }
    )
    roots = cluster(n, candidate_pairs(table), sigs, cfg)
    return int(n - len(np.unique(roots)))


def run_rensa_only(texts: list[str], cfg: MinhashConfig) -> int:
    from rensa import RMinHash

    for shingles in shingle_sets(texts, cfg.ngram):
        m = RMinHash(num_perm=cfg.num_perm, seed=cfg.seed)
        m.update(shingles)
        m.digest()
    return 0


def run_datasketch(texts: list[str], cfg: MinhashConfig) -> int:
    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(threshold=cfg.threshold, num_perm=cfg.num_perm)
    dropped = 0
    for i, shingles in enumerate(shingle_sets(texts, cfg.ngram)):
        m = MinHash(num_perm=cfg.num_perm, seed=cfg.seed)
        m.update_batch(s.encode() for s in shingles)
        if lsh.query(m):
            dropped += 1
        else:
            lsh.insert(str(i), m)
    return dropped


def run_datatrove(texts: list[str], workers: int, scratch: Path) -> tuple[int, float]:
    """(documents dropped, seconds) of datatrove's default MinHash dedup over a jsonl copy."""
    from datatrove.pipeline.dedup.minhash import MinhashConfig as DtConfig
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.utils.hashing import HashConfig
    from datatrove_minhash import minhash_stages, run_stages

    data = scratch / "input"
    data.mkdir(parents=True)
    per = -(-len(texts) // workers)
    for w in range(workers):  # one input file per task, written before the clock starts
        with open(data / f"{w:03d}.jsonl", "w") as handle:
            for i, text in enumerate(texts[w * per : (w + 1) * per]):
                handle.write(json.dumps({"text": text, "id": f"{w}-{i}"}) + "\n")
    # datatrove 0.10.1's default xxhash path passes str to xxhash 4.x, which wants bytes; its
    # other built-in hash (sha1, 64 bit) works, with the default 14 x 8 buckets and 5-grams.
    cfg, out = DtConfig(hash_config=HashConfig(hash_fc="sha1")), scratch / "dt"

    def reader():
        return JsonlReader(str(data))

    seconds = run_stages(minhash_stages(reader, out, cfg, workers), out, workers)
    kept = 0
    for part in (out / "kept").rglob("*.jsonl*"):
        with gzip.open(part, "rt") if part.suffix == ".gz" else open(part) as handle:
            kept += sum(1 for _ in handle)
    return len(texts) - kept, seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", default=None)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    texts = corpus_texts(args.config, args.limit)
    cfg = MinhashConfig()
    common = {
        "bench": "dedup",
        "date": date.today().isoformat(),
        "machine": f"{platform.machine()} {os.cpu_count()} cores",
        "docs": len(texts),
        "mb": round(sum(len(t.encode()) for t in texts) / 1e6, 1),
    }
    run_snowcoder(texts[:200], cfg)  # burn-in (imports, polars thread pool)
    for method, fn in [
        ("rensa_hash_only", run_rensa_only),
        ("snowcoder", run_snowcoder),
        ("datasketch_naive", run_datasketch),
    ]:
        start = time.perf_counter()
        dropped = fn(texts, cfg)
        _emit(common, method, time.perf_counter() - start, dropped)
    try:
        scratch = Path(tempfile.mkdtemp(prefix="snowcoder-bench-dt-"))
        dropped, seconds = run_datatrove(texts, args.workers, scratch)
        _emit(common, "datatrove", seconds, dropped, workers=args.workers)
    except ImportError:
        print(
            json.dumps(
                {
                    **common,
                    "method": "datatrove",
                    "skipped": "pip install -e '.[bench]' to compare with datatrove",
                }
            )
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _emit(common: dict, method: str, seconds: float, dropped: int, **extra) -> None:
    print(
        json.dumps(
            {
                **common,
                "method": method,
                **extra,
                "seconds": round(seconds, 2),
                "docs_per_s": round(common["docs"] / seconds, 1),
                "near_duplicates_dropped": dropped,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
