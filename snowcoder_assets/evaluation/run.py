"""Evaluate one checkpoint: greedy completions for every task, then each run in the sandbox.

Completions go into an append-only journal per generator (the checkpoint's weights digest is
in its label), like phase 3's responses: a killed run keeps what was generated and a re-run
generates only what is missing; execution is cheap and always redone. A task whose prompt
could not be generated (too long for the context) is executed with an empty completion and
so fails, with the generation error in its result: every task has a row.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from snowcoder_assets.evaluation.benchmarks import Task, canonical_program
from snowcoder_assets.evaluation.sandbox import Limits, Outcome, Sandbox
from snowcoder_assets.evaluation.transformers_backend import cut_at_stop
from snowcoder_assets.io import digest, file_digest, read_json
from snowcoder_assets.layout import checkpoints_dir, manifest_path
from snowcoder_assets.phase3.generation import (
    Backend,
    PromptRequest,
    Response,
    ResponseJournal,
    Sampling,
    journal_name,
)

Log = Callable[[str], None]


@dataclass(frozen=True)
class Checkpoint:
    """A phase's final checkpoint (or why there is none to evaluate)."""

    phase: str
    path: Path | None
    label: str
    skip_reason: str | None = None


def phase_checkpoints(data_dir: Path, phases: Sequence[str]) -> list[Checkpoint]:
    """Each phase's final checkpoint, labelled by its weights' digest; a phase the manifest
    skipped or that has not trained yet comes back with its reason."""
    manifest = read_json(manifest_path(data_dir)) if manifest_path(data_dir).is_file() else {}
    skipped = {p["name"]: p.get("skip_reason") for p in manifest.get("phases", [])}
    found = []
    for phase in phases:
        final = checkpoints_dir(data_dir) / phase / "final"
        weights = sorted(final.glob("*.safetensors"))
        if (final / "config.json").is_file() and weights:
            label = f"{phase}@{digest(*[file_digest(w) for w in weights])[:12]}"
            found.append(Checkpoint(phase, final, label))
        else:
            reason = skipped.get(phase) or f"no final checkpoint at {final}"
            found.append(Checkpoint(phase, None, phase, f"skipped: {reason}"))
    return found


def requests_for(tasks: Sequence[Task], sampling: Sampling) -> list[PromptRequest]:
    """One completions-endpoint request per task; its id covers prompt, stops and sampling."""
    return [
        PromptRequest(
            prompt_id=digest(
                t.benchmark, t.task_id, t.generation_prompt, t.stop, sampling.as_dict()
            ),
            messages=({"role": "user", "content": t.generation_prompt},),
            prompt=t.generation_prompt,
            stop=t.stop,
        )
        for t in tasks
    ]


def completions_path(data_dir: Path, generator: str) -> Path:
    return data_dir / "evaluation" / "completions" / journal_name(generator)


def generate(
    data_dir: Path,
    checkpoint: Checkpoint,
    backend: Backend,
    tasks: Sequence[Task],
    sampling: Sampling,
    log: Log,
) -> list[Response | None]:
    """The journaled response of every task (None where the journal has none). The journal
    is the checkpoint's (its weights digest) and the generator's: a served model keeps its
    name when retrained, and its old completions must not be reused."""
    requests = requests_for(tasks, sampling)
    journal = ResponseJournal(completions_path(data_dir, f"{checkpoint.label}|{backend.generator}"))
    backend.generate(requests, sampling, journal, log)
    done = journal.read()
    return [done.get(r.prompt_id) for r in requests]


def sample_rows(
    checkpoint: Checkpoint,
    tasks: Sequence[Task],
    responses: Sequence[Response | None],
    harness: Harness,
    log: Log,
) -> list[dict[str, Any]]:
    """Execute every task's completion; one `evaluation` row each."""
    completions = [
        cut_at_stop(r.text, t.stop)[0] if r is not None and r.text is not None else ""
        for t, r in zip(tasks, responses, strict=True)
    ]
    outcomes = run_grouped(
        harness, tasks, [t.program(c) for t, c in zip(tasks, completions, strict=True)], log
    )
    rows = []
    for task, response, completion, outcome in zip(
        tasks, responses, completions, outcomes, strict=True
    ):
        result = outcome.result
        if response is None or response.text is None:
            why = response.error if response is not None else "no response"
            result = f"failed: no completion ({why})"
        rows.append(
            {
                "checkpoint": checkpoint.label,
                "phase": checkpoint.phase,
                "benchmark": task.benchmark,
                "task_id": task.task_id,
                "passed": outcome.passed and response is not None and response.text is not None,
                "result": result[:300],
                "completion": completion,
                "sandbox": harness.tier,
                "seconds": round(outcome.seconds, 4),
                "generator": response.generator if response is not None else "",
                "completion_tokens": response.completion_tokens if response is not None else 0,
            }
        )
    return rows


@dataclass
class Harness:
    """Sandboxes with the configured limits, one per timeout a benchmark asks for."""

    limits: Limits
    isolation: str = "auto"
    log: Log | None = None
    workers: int | None = None  # samples at once; None: one per core
    _boxes: dict[float, Sandbox] = field(default_factory=dict)

    def sandbox(self, timeout_s: float | None = None) -> Sandbox:
        timeout = timeout_s or self.limits.timeout_s
        if timeout not in self._boxes:
            limits = replace(self.limits, timeout_s=timeout)
            self._boxes[timeout] = Sandbox(limits, self.isolation, log=self.log)
        return self._boxes[timeout]

    @property
    def tier(self) -> str:
        return self.sandbox().isolation


def run_grouped(
    harness: Harness, tasks: Sequence[Task], programs: Sequence[str], log: Log
) -> list[Outcome]:
    """Run the programs, each task under its benchmark's timeout; outcomes in input order."""
    outcomes: list[Outcome | None] = [None] * len(programs)
    by_timeout: dict[float | None, list[int]] = {}
    for i, task in enumerate(tasks):
        by_timeout.setdefault(task.timeout_s, []).append(i)
    started = time.perf_counter()
    for timeout, indexes in by_timeout.items():
        done = harness.sandbox(timeout).run_many(
            [programs[i] for i in indexes],
            workers=harness.workers,
            progress=_progress(log, len(indexes), started),
        )
        for i, outcome in zip(indexes, done, strict=True):
            outcomes[i] = outcome
    return [o for o in outcomes if o is not None]


def _progress(log: Log, total: int, started: float) -> Callable[[int, int], None]:
    step = max(1, total // 4)

    def report(done: int, _total: int) -> None:
        if done % step == 0 or done == total:
            rate = done / max(time.perf_counter() - started, 1e-9)
            log(f"sandbox: {done}/{total} samples executed ({rate:.1f}/s)")

    return report


def self_test(
    harness: Harness, tasks: dict[str, list[Task]], log: Log
) -> dict[str, dict[str, int]]:
    """The harness checked on each benchmark: canonical solutions must all pass, empty
    completions must all fail. Per benchmark: tasks with a solution, solutions passed,
    empty completions passed."""
    report = {}
    for name, rows in tasks.items():
        solvable = [t for t in rows if t.canonical_solution is not None]
        canonical = run_grouped(
            harness, solvable, [canonical_program(t) or "" for t in solvable], log
        )
        empty = run_grouped(harness, rows, [t.program("") for t in rows], log)
        failed = [t.task_id for t, o in zip(solvable, canonical, strict=True) if not o.passed]
        report[name] = {
            "solutions": len(solvable),
            "solutions_passed": len(solvable) - len(failed),
            "empty_passed": sum(o.passed for o in empty),
            "tasks": len(rows),
            "failed_solutions": failed[:10],
        }
        log(f"self-test {name}: {report[name]}")
    return report
