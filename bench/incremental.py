"""Incremental phase 1 as a user runs it: `snowcoder materialize` on a fresh data dir, then again
after one new repository, after one changed threshold, and with nothing changed.

The corpus is 26 installed packages copied as repositories (real multi-language code: ~5k
files, or ~15k with `--size large`); the new repository is one more package, ~1% of the files.
Every step is a fresh `snowcoder` process, timed from start to exit. Prints one JSON line per
step (seconds, runs launched, which assets ran), the marginal cost of the new repository,
(new - no change) / (full - no change), and the per-run overhead read from the instance (a
run's wall time minus its steps' time, and the wait from creation to start).

    python bench/incremental.py [--size small|large] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import site
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPOS = [
    "rich", "pydantic", "graphene", "graphql", "prompt_toolkit", "datasets", "narwhals",
    "huggingface_hub", "polars", "sentence_transformers", "setuptools", "matplotlib",
    "sqlalchemy", "pygments", "pip", "networkx", "alembic", "joblib", "markdown_it", "fsspec",
    "websockets", "anyio", "uvicorn", "dill", "mpmath", "_pytest",
]  # fmt: skip
LARGE = [
    "numpy", "sklearn", "networkx", "pyarrow", "matplotlib", "sqlalchemy", "pygments",
    "fontTools", "pip", "setuptools", "scipy", "pandas", "sympy", "dagster", "transformers",
    "polars", "huggingface_hub", "narwhals", "datasets", "prompt_toolkit", "graphql",
    "graphene", "pydantic", "rich", "joblib", "sentence_transformers",
]  # fmt: skip
NEW_CANDIDATES = ["fire", "wcwidth", "filelock", "markdown_it", "uvicorn", "websockets",
                  "anyio", "dill", "mpmath", "alembic", "dagster_graphql", "cryptography",
                  "torchgen", "dagster_rest_resources"]  # fmt: skip
SKIP = shutil.ignore_patterns("__pycache__", "*.so")
SELECTION = "*phase1_corpus"
PROJECT = Path(__file__).resolve().parents[1]
SNOWCODER = Path(sys.executable).with_name("snowcoder")


def site_packages() -> Path:
    return Path(next(p for p in site.getsitepackages() if p.endswith("site-packages")))


def copy_repo(name: str, corpus: Path) -> int:
    """Copy an installed package as a repository (no caches); the number of files."""
    shutil.copytree(site_packages() / name, corpus / name, ignore=SKIP)
    return count_files(corpus / name)


def count_files(folder: Path) -> int:
    """Files as `copy_repo` copies them (no caches, no compiled extensions)."""
    return sum(
        1
        for p in folder.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".so"
    )


def new_repository(files: int, taken: list[str]) -> str:
    """The installed package whose size is closest to 1% of the corpus."""
    sizes = {
        name: count_files(site_packages() / name)
        for name in NEW_CANDIDATES
        if name not in taken and (site_packages() / name).is_dir()
    }
    return min(sizes, key=lambda name: abs(sizes[name] - files / 100))


def write_config(path: Path, corpus: Path, data: Path, extra: str = "") -> None:
    path.write_text(
        f'[paths]\ndata_dir = "{data}"\n\n'
        f'[[sources]]\nname = "packages"\nkind = "local_dir"\npath = "{corpus}"\n{extra}'
    )


def materialize(config: Path) -> dict:
    """One `snowcoder materialize` as a user types it; seconds, runs, assets that ran."""
    start = time.perf_counter()
    done = subprocess.run(
        [str(SNOWCODER), "--config", str(config), "materialize", "--select", SELECTION],
        capture_output=True, text=True, check=False, cwd=PROJECT,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(
            f"snowcoder materialize failed:\n{done.stdout[-4000:]}{done.stderr[-2000:]}"
        )
    runs = int(re.search(r"\((\d+) runs", done.stdout).group(1))
    ran = sorted(set(re.findall(r"(\w+) \(\d+ [a-z ]+", " ".join(
        line for line in done.stdout.splitlines() if line.startswith("plan:")))))  # fmt: skip
    return {"seconds": round(seconds, 2), "runs": runs, "assets_run": ran}


def run_overheads(data: Path) -> dict:
    """Per run (from the instance): wall time minus steps, and creation-to-start wait."""
    import os

    import dagster as dg

    os.environ["DAGSTER_HOME"] = str(data / "dagster_home")  # its dagster.yaml reads it
    instance = dg.DagsterInstance.get()
    inside, waits = [], []
    for record in instance.get_run_records():
        events = instance.all_logs(record.dagster_run.run_id)
        times = {}
        steps = 0.0
        started: dict[str, float] = {}
        for event in events:
            kind = event.dagster_event_type
            if kind in (dg.DagsterEventType.RUN_START, dg.DagsterEventType.RUN_SUCCESS):
                times[kind] = event.timestamp
            elif kind == dg.DagsterEventType.STEP_START:
                started[event.step_key] = event.timestamp
            elif kind == dg.DagsterEventType.STEP_SUCCESS:
                steps += event.timestamp - started.pop(event.step_key, event.timestamp)
        if len(times) == 2:
            inside.append(
                times[dg.DagsterEventType.RUN_SUCCESS]
                - times[dg.DagsterEventType.RUN_START]
                - steps
            )
            waits.append(times[dg.DagsterEventType.RUN_START] - record.create_timestamp.timestamp())
    return {
        "runs": len(inside),
        "median_in_run_overhead_s": round(statistics.median(inside), 2) if inside else None,
        "median_create_to_start_s": round(statistics.median(waits), 2) if waits else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=["small", "large"], default="small")
    parser.add_argument("--keep", help="work in this folder and keep it (default: a temp folder)")
    args = parser.parse_args()
    repos = REPOS if args.size == "small" else LARGE
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="snowcoder-incr-"))
    shutil.rmtree(work / "corpus", ignore_errors=True)
    shutil.rmtree(work / "data", ignore_errors=True)
    corpus, data, config = work / "corpus", work / "data", work / "bench.toml"
    files = sum(copy_repo(name, corpus) for name in repos if (site_packages() / name).is_dir())
    write_config(config, corpus, data)
    results = {"full": materialize(config)}
    new_files = copy_repo(new_repository(files, repos), corpus)
    results["new_repository"] = materialize(config)
    write_config(config, corpus, data, "\n[filters]\nmax_line_length = 900\n")
    results["changed_threshold"] = materialize(config)
    results["no_change"] = materialize(config)
    for step, result in results.items():
        print(json.dumps({"bench": "incremental", "step": step, **result}))
    full, new, none = (results[k]["seconds"] for k in ("full", "new_repository", "no_change"))
    print(json.dumps({
        "bench": "incremental", "size": args.size, "repositories": len(repos), "files": files,
        "new_repository_files": new_files, "new_fraction": round(new_files / files, 4),
        "marginal_cost": round((new - none) / (full - none), 4),
        "no_change_runs": results["no_change"]["runs"],
        "threshold_ran_file_signals": "file_signals" in results["changed_threshold"]["assets_run"],
        **run_overheads(data),
    }))  # fmt: skip
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
