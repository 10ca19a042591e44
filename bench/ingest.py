"""Ingestion throughput on the embedded corpus next to a plain Python read of the same files.

Both sides read exactly the files ingestion reads content for (known language, under the size
limit); ingestion also decodes, hashes, classifies and writes three parquet files per shard.
Prints one JSON line per measurement. Usage: python bench/ingest.py [--config FILE] [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import date
from pathlib import Path

from snowcoder_assets.config import load_config
from snowcoder_assets.languages import language_of
from snowcoder_assets.raw.ingest import ingest_shard
from snowcoder_assets.raw.shards import discover_all
from snowcoder_assets.sources import build_source
from snowcoder_assets.sources.base import walk_files


def files_ingestion_reads(config, source_name: str, units: list[str]) -> list[Path]:
    """The files whose content ingestion reads: regular, known language, within the limit."""
    source = build_source(config, source_name)
    repos = source.repositories()
    out = []
    for unit in units:
        for entry in repos.get(unit, []):
            walk = walk_files(entry) if entry.is_dir() and not entry.is_symlink() else [(entry, 0)]
            for name, in_vcs in walk:
                path = Path(name)
                if in_vcs or path.is_symlink() or not path.is_file():
                    continue
                size = path.stat().st_size
                if language_of(path.name) and 0 < size <= config.ingest.max_file_bytes:
                    out.append(path)
    return out


def plain_read(paths: list[Path]) -> tuple[float, int]:
    start, total = time.perf_counter(), 0
    for path in paths:
        with open(path, "rb") as handle:
            total += len(handle.read())
    return time.perf_counter() - start, total


def drop_page_cache() -> bool:
    """Evict file contents from the page cache so reads come from disk; False if not allowed."""
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as handle:
            handle.write("3\n")
        return True
    except OSError:
        return False


def _ingest_one(args: tuple[str, str, str]) -> int:
    config_path, source, shard = args
    return ingest_shard(load_config(config_path), source, shard).files


def snowcoder_ingest(config_path: str, shards, workers: int) -> float:
    jobs = [(config_path, s.source, s.shard) for s in shards]
    start = time.perf_counter()
    if workers == 1:
        for job in jobs:
            _ingest_one(job)
    else:
        with ProcessPoolExecutor(workers) as pool:
            list(pool.map(_ingest_one, jobs))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", default=None)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    base = load_config(args.config)
    scratch = Path(tempfile.mkdtemp(prefix="snowcoder-bench-"))
    try:
        config_file = scratch / "bench.toml"
        _write_config(config_file, base, scratch / "data")  # same sources, scratch data_dir
        config = load_config(config_file)
        shards = discover_all(config)
        paths = [
            p for s in shards for p in files_ingestion_reads(config, s.source, list(s.unit_keys))
        ]
        common = {
            "bench": "ingest",
            "date": date.today().isoformat(),
            "machine": f"{platform.machine()} {os.cpu_count()} cores",
            "files": len(paths),
            "bytes": sum(p.stat().st_size for p in paths),
        }
        methods = [
            ("plain_python_read", 1),
            ("snowcoder_ingest", 1),
            ("snowcoder_ingest", os.cpu_count() or 1),
        ]
        for cache in ("warm", "cold"):
            if cache == "cold" and not drop_page_cache():
                print(
                    json.dumps(
                        {
                            **common,
                            "cache": cache,
                            "skipped": "cannot drop the page "
                            "cache here (needs root and a writable /proc/sys/vm)",
                        }
                    )
                )
                continue
            plain_read(paths)  # burn-in
            for _ in range(args.repeat):
                for method, workers in methods:
                    if cache == "cold":
                        drop_page_cache()
                    if method == "plain_python_read":
                        seconds = plain_read(paths)[0]
                    else:
                        seconds = snowcoder_ingest(str(config_file), shards, workers)
                    _emit({**common, "cache": cache}, method, workers, seconds)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _write_config(config_file: Path, base, data_dir: Path) -> None:
    """A copy of the base config with absolute paths and a scratch data_dir."""
    import tomllib

    raw = tomllib.loads(base.config_file.read_text())
    raw.setdefault("paths", {})["data_dir"] = str(data_dir)
    for source in raw.get("sources", []):
        if "path" in source and not os.path.isabs(source["path"]):
            source["path"] = str((base.config_file.parent / source["path"]).resolve())
    config_file.write_text(_to_toml(raw))


def _to_toml(raw: dict) -> str:
    lines = []
    for key, table in raw.items():
        if key == "sources":
            continue
        lines.append(f"[{key}]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in table.items()]
    for source in raw.get("sources", []):
        lines.append("[[sources]]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in source.items()]
    return "\n".join(lines) + "\n"


def _emit(common: dict, method: str, workers: int, seconds: float) -> None:
    files, total = common["files"], common["bytes"]
    print(
        json.dumps(
            {
                **common,
                "method": method,
                "workers": workers,
                "seconds": round(seconds, 3),
                "files_per_s": round(files / seconds, 1),
                "mb_per_s": round(total / 1e6 / seconds, 1),
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
