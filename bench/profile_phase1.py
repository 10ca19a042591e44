"""Where each per-shard phase-1 stage spends its time: cProfile of every stage on one shard.

Materializes phase 1 once through the product (`snowcoder materialize --select
'*phase1_corpus'` on a fresh data dir), then re-runs each per-shard stage function on the first
shard in this process under cProfile (the stages write atomically, so a re-run rewrites the same
files) and prints, per stage, its seconds and the functions with the most own time.

Usage: python bench/profile_phase1.py --corpus DIR [--top 6]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from phase1 import run_snowcoder  # noqa: E402


def stages():
    from snowcoder_assets.phase1.decontaminated_files import run_decontaminate
    from snowcoder_assets.phase1.deduped_files import run_dedup_apply
    from snowcoder_assets.phase1.file_signals import run_file_signals
    from snowcoder_assets.phase1.filtered_files import run_filter
    from snowcoder_assets.raw.ingest import ingest_shard

    return {
        "raw_files": lambda c, s, p: ingest_shard(c, s, p, log=print),
        "file_signals": lambda c, s, p: run_file_signals(c, s, p, print),
        "filtered_files": lambda c, s, p: run_filter(c, s, p, print),
        "deduped_files": lambda c, s, p: run_dedup_apply(c, s, p, print),
        "decontaminated_files": lambda c, s, p: run_decontaminate(c, s, p, print),
    }


def top_functions(profile: cProfile.Profile, top: int) -> list[dict]:
    """The `top` functions by own time."""
    stats = pstats.Stats(profile, stream=io.StringIO()).stats
    ranked = sorted(stats.items(), key=lambda item: -item[1][2])[:top]
    return [
        {"function": f"{Path(file).name}:{line}({name})" if line else name,
         "calls": calls, "own_s": round(own, 3)}
        for (file, line, name), (_, calls, own, _, _) in ranked
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--top", type=int, default=6)
    args = parser.parse_args()
    from snowcoder_assets.config import load_config
    from snowcoder_assets.orchestration.instance import open_instance
    from snowcoder_assets.raw.discovery import config_partitions

    with tempfile.TemporaryDirectory(prefix="profile-phase1-") as tmp:
        seconds, _, step_seconds = run_snowcoder(args.corpus, Path(tmp))
        config = load_config(Path(tmp) / "snowcoder.toml")
        with open_instance(config) as instance:
            partitions = config_partitions(instance, config)
        source, shard = partitions[0].split("/", 1)
        print(json.dumps({"materialize_s": round(seconds, 1), "shards": len(partitions)}))
        for name, run in stages().items():
            profile, start = cProfile.Profile(), time.perf_counter()
            profile.runcall(run, config, source, shard)
            elapsed = time.perf_counter() - start
            row = {"stage": name, "shard": partitions[0], "seconds": round(elapsed, 2)}
            print(json.dumps({**row, "top": top_functions(profile, args.top)}), flush=True)
        print(json.dumps({"step_seconds_all_shards": step_seconds}))


if __name__ == "__main__":
    main()
