"""The whole phase 1 as users run it, against datatrove's MinHash dedup alone, in one run.

- `snowcoder`: `snowcoder materialize --select '*phase1_corpus'` on a fresh data dir and
  Dagster instance (discovery, ingest, signals, filters, near dedup, decontamination, the
  corpus), per-run overhead included; per-stage seconds from the runs' step events.
- `datatrove`: its 4-stage MinhashDedup (default `MinhashConfig`, `--workers` tasks) over the
  same parquet, in `.venv-datatrove` (`make datatrove-venv`), where pip resolves the xxhash
  its default hashing expects.
Both print documents/s, MB/s and the peak RSS of their whole process tree (sampled from /proc
every 0.1 s). The default corpus is a Stack-v1-style parquet of the base interpreter's
files (its stdlib and site-packages, not a venv's; <= 1 MB, UTF-8), in row groups of 1,000
rows; `--limit` takes the first N files, `--corpus` any folder of Stack-style parquet files.

Usage: python bench/phase1.py [--limit 10000] [--corpus DIR] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATATROVE_PYTHON = ROOT / ".venv-datatrove" / "bin" / "python"
ROW_GROUP = 1000
PAGE = os.sysconf("SC_PAGE_SIZE")


def emit(**fields) -> None:
    machine = f"{platform.machine()} {os.cpu_count()} cores"
    print(
        json.dumps(
            {"bench": "phase1", "date": date.today().isoformat(), "machine": machine, **fields}
        ),
        flush=True,
    )


def build_corpus(out: Path, limit: int | None) -> Path:
    """One parquet file of the interpreter's source files, Stack v1 columns, sorted by path."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    base = {"base": sys.base_prefix, "platbase": sys.base_prefix}  # not the venv's packages
    roots = {
        "stdlib": Path(sysconfig.get_paths(vars=base)["stdlib"]),
        "site": Path(sysconfig.get_paths(vars=base)["purelib"]),
    }
    rows = []
    for name, root in roots.items():
        for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink()):
            rel = path.relative_to(root)
            skipped = "__pycache__" in rel.parts or (
                name == "stdlib" and "site-packages" in rel.parts
            )
            if skipped or path.stat().st_size > 1_000_000:
                continue
            try:
                text = path.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue
            repo = f"{name}/{rel.parts[0]}" if len(rel.parts) > 1 else name
            rows.append(
                {
                    "content": text,
                    "max_stars_repo_name": repo,
                    "max_stars_repo_path": rel.as_posix(),
                }
            )
            if limit and len(rows) >= limit:
                break
        if limit and len(rows) >= limit:
            break
    out.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), out / "corpus.parquet", row_group_size=ROW_GROUP)
    return out


def corpus_size(folder: Path) -> tuple[int, float]:
    import pyarrow.parquet as pq

    docs = mb = 0
    for path in sorted(folder.glob("*.parquet")):
        table = pq.read_table(path, columns=["content"])
        docs += table.num_rows
        mb += sum(len(t.encode()) for t in table["content"].to_pylist() if t) / 1e6
    return docs, mb


class TreeRss:
    """Peak summed RSS of a process and all its descendants, sampled from /proc."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self._stop = pid, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TreeRss:
        self._thread.start()
        return self

    def __exit__(self, *_) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._sample())
            time.sleep(0.1)

    def _sample(self) -> int:
        parents: dict[int, int] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    stat = Path(f"/proc/{entry}/stat").read_text()
                    parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
                except (OSError, ValueError, IndexError):
                    continue
        tree, frontier = {self.pid}, [self.pid]
        while frontier:
            parent = frontier.pop()
            children = [p for p, pp in parents.items() if pp == parent and p not in tree]
            tree.update(children)
            frontier += children
        total = 0
        for pid in tree:
            try:
                total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
            except (OSError, ValueError, IndexError):
                continue
        return total


def timed(command: list[str], env: dict[str, str] | None = None) -> tuple[float, int, str]:
    """(seconds, peak tree RSS bytes, stdout) of a command; its failure ends the bench."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    with TreeRss(proc.pid) as rss:
        output, _ = proc.communicate()
    seconds = time.perf_counter() - start
    if proc.returncode:
        sys.exit(f"{command[0]} failed ({proc.returncode}):\n{output[-4000:]}")
    return seconds, rss.peak, output


def run_snowcoder(corpus: Path, scratch: Path) -> tuple[float, int, dict[str, float]]:
    config = scratch / "snowcoder.toml"
    pattern = (corpus / "*.parquet").as_posix()
    config.write_text(
        f'[paths]\ndata_dir = "{(scratch / "data").as_posix()}"\n'
        "[ingest]\nshard_max_bytes = 16_000_000\nshard_max_files = 5_000\n"
        f'[[sources]]\nname = "stack"\nkind = "parquet"\npath = "{pattern}"\n'
    )
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    command = [
        str(ROOT / ".venv" / "bin" / "snowcoder"),
        "--config",
        str(config),
        "materialize",
        "--select",
        "*phase1_corpus",
    ]
    seconds, peak, _ = timed(command, env)
    return seconds, peak, stage_seconds(config)


def stage_seconds(config_path: Path) -> dict[str, float]:
    """Seconds per step (asset) summed over the runs of the instance, from its step stats."""
    from snowcoder_assets.config import load_config
    from snowcoder_assets.orchestration.instance import open_instance

    totals: dict[str, float] = {}
    with open_instance(load_config(config_path)) as instance:
        for run in instance.get_runs():
            for step in instance.get_run_step_stats(run.run_id):
                if step.start_time and step.end_time:
                    totals[step.step_key] = (
                        totals.get(step.step_key, 0.0) + step.end_time - step.start_time
                    )
    return {k: round(v, 2) for k, v in sorted(totals.items(), key=lambda kv: -kv[1])}


def run_datatrove(corpus: Path, scratch: Path, workers: int) -> tuple[float, int] | None:
    if not DATATROVE_PYTHON.is_file():
        return None
    script = ROOT / "bench" / "datatrove_minhash.py"
    seconds, peak, _ = timed(
        [
            str(DATATROVE_PYTHON),
            str(script),
            str(corpus),
            str(scratch / "dt"),
            "--workers",
            str(workers),
        ]
    )
    return seconds, peak


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", type=Path)
    parser.add_argument("--limit", type=int)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-phase1-") as tmp:
        scratch = Path(tmp)
        corpus = args.corpus or build_corpus(scratch / "corpus", args.limit)
        docs, mb = corpus_size(corpus)
        emit(
            corpus=str(args.corpus or f"python install, limit {args.limit}"),
            docs=docs,
            mb=round(mb, 1),
        )
        seconds, peak, stages = run_snowcoder(corpus, scratch)
        emit(**rates("snowcoder_phase1", seconds, peak, docs, mb), stage_seconds=stages)
        baseline = run_datatrove(corpus, scratch, args.workers)
        if baseline is None:
            emit(method="datatrove_minhash", skipped="no .venv-datatrove: run make datatrove-venv")
            return
        emit(**rates("datatrove_minhash", *baseline, docs, mb))
        emit(
            ratio=round(baseline[0] / seconds, 2),
            note="datatrove MinHash dedup alone / snowcoder whole phase 1",
        )


def rates(method: str, seconds: float, peak: int, docs: int, mb: float) -> dict:
    return {
        "method": method,
        "seconds": round(seconds, 1),
        "docs_per_s": round(docs / seconds),
        "mb_per_s": round(mb / seconds, 2),
        "peak_rss_mb": round(peak / 2**20),
    }


if __name__ == "__main__":
    main()
