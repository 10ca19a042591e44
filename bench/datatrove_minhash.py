"""datatrove's MinHash dedup alone, default `MinhashConfig`, over parquet files (The Stack's
`content` column): the baseline `bench/phase1.py` runs in `.venv-datatrove` (`make
datatrove-venv`), where pip resolves the xxhash datatrove's default hashing expects.

Usage: .venv-datatrove/bin/python bench/datatrove_minhash.py INPUT_DIR OUT_DIR [--workers 2]
Prints one JSON line: documents, documents dropped, seconds.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def minhash_stages(reader, out: Path, config, workers: int) -> list[tuple[list, int]]:
    """datatrove's four MinhashDedup stages as (pipeline, tasks); `reader()` makes a reader."""
    from datatrove.pipeline.dedup import (
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
        MinhashDedupSignature,
    )
    from datatrove.pipeline.writers import JsonlWriter

    return [
        ([reader(), MinhashDedupSignature(str(out / "sigs"), config=config)], workers),
        (
            [MinhashDedupBuckets(str(out / "sigs"), str(out / "buckets"), config=config)],
            config.num_buckets,
        ),
        ([MinhashDedupCluster(str(out / "buckets"), str(out / "remove"), config=config)], 1),
        (
            [reader(), MinhashDedupFilter(str(out / "remove")), JsonlWriter(str(out / "kept"))],
            workers,
        ),
    ]


def run_stages(stages: list[tuple[list, int]], out: Path, workers: int) -> float:
    """Seconds to run the stages one after the other with LocalPipelineExecutor."""
    from datatrove.executor import LocalPipelineExecutor

    start = time.perf_counter()
    for i, (pipeline, tasks) in enumerate(stages):
        LocalPipelineExecutor(
            pipeline, tasks=tasks, workers=min(tasks, workers), logging_dir=str(out / f"logs{i}")
        ).run()
    return time.perf_counter() - start


def main() -> None:
    from datatrove.pipeline.dedup.minhash import MinhashConfig
    from datatrove.pipeline.readers import ParquetReader

    parser = argparse.ArgumentParser()
    parser.add_argument("input")
    parser.add_argument("out")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    config, out, workers = MinhashConfig(), Path(args.out), args.workers

    def reader():
        return ParquetReader(args.input, text_key="content", glob_pattern="*.parquet")

    seconds = run_stages(minhash_stages(reader, out, config, workers), out, workers)
    print(json.dumps({"seconds": round(seconds, 2)}))


if __name__ == "__main__":
    main()
