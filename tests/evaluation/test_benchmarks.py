"""Benchmark files: HumanEval from the package, EvalPlus rows, clear errors; pass@k."""

import gzip
import json
import re
from pathlib import Path

import pytest

from snowcoder_assets.evaluation.benchmarks import (
    BenchmarkError,
    canonical_program,
    humaneval_tasks,
    load_benchmark,
    load_tasks,
)
from snowcoder_assets.evaluation.scores import mean_pass_at_k, pass_at_k, tally
from snowcoder_assets.evaluation.settings import (
    FILE_STOPS,
    FUNCTION_STOPS,
    BenchmarkSpec,
    EvaluationConfig,
)

MBPP_LIKE = {
    "task_id": "Mbpp/2",
    "prompt": '"""\nWrite a function to return the shared elements of two lists.\n"""\n',
    "entry_point": "shared",
    "canonical_solution": "def shared(a, b):\n    return sorted(set(a) & set(b))\n",
    "base_input": [[[1, 2, 3], [2, 3, 4]], [[], [1]]],
    "plus_input": [[[5, 5, 6], [6, 5]]],
    "atol": 0,
}
FLOATS = {
    "task_id": "HumanEval/float",
    "prompt": 'def mean(xs: list) -> float:\n    """The mean."""\n',
    "entry_point": "mean",
    "canonical_solution": "    return sum(xs) / len(xs)\n",
    "base_input": [[[0.1, 0.2, 0.3]], [[1.0]]],
    "plus_input": [],
    "atol": 1e-9,
}


def write_jsonl(path: Path, rows: list[dict], gz: bool = False) -> Path:
    text = "".join(json.dumps(r) + "\n" for r in rows)
    if gz:
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def run_program(program: str) -> bool:
    """Trusted test code only (canonical solutions): exec here, as the test's own check."""
    try:
        exec(program, {"__name__": "__main__"})
    except AssertionError:
        return False
    return True


def test_humaneval_ships_164_tasks_with_function_stops() -> None:
    tasks = humaneval_tasks()
    assert len(tasks) == 164 and len({t.task_id for t in tasks}) == 164
    assert all(t.stop == FUNCTION_STOPS and t.canonical_solution for t in tasks)
    assert tasks[0].generation_prompt == tasks[0].prompt.rstrip() != tasks[0].prompt


def test_evalplus_rows_become_differential_tests(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "plus.jsonl.gz", [MBPP_LIKE, FLOATS], gz=True)
    mbpp, floats = load_benchmark(BenchmarkSpec(name="plus", path=path))
    assert mbpp.stop == FILE_STOPS and floats.stop == FUNCTION_STOPS
    assert run_program(canonical_program(mbpp))
    assert run_program(canonical_program(floats))
    right = "def shared(a, b):\n    return sorted(x for x in set(a) if x in b)\n"
    assert run_program(mbpp.program(right, prompt=mbpp.prompt))
    # Wrong only on the plus input (duplicates): the plus tests are what catches it.
    wrong = "def shared(a, b):\n    return [x for x in a if x in b]\n"
    assert not run_program(mbpp.program(wrong, prompt=mbpp.prompt))
    # A float result within atol passes; one off by 1e-3 does not.
    assert run_program(floats.program("\n    return sum(xs) / len(xs) + 1e-12\n"))
    assert not run_program(floats.program("\n    return sum(xs) / len(xs) + 1e-3\n"))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "benchmark file not found"),
        ("{not json\n", "not a readable jsonl file"),
        ('["a list"]\n', ":1: expected a JSON object"),
        ('{"task_id": "t", "prompt": "p"}\n', ":1: missing or mistyped fields"),
        ("", "no tasks"),
    ],
)
def test_a_bad_benchmark_file_is_a_clear_error(tmp_path: Path, content, message) -> None:
    path = tmp_path / "bench.jsonl"
    if content is not None:
        path.write_text(content)
    with pytest.raises(BenchmarkError, match=re.escape(message)):
        load_tasks(EvaluationConfig(humaneval=False, benchmarks=[{"name": "b", "path": path}]))


def test_evoeval_rows_with_inputs_are_differential_too(tmp_path: Path) -> None:
    row = {k: v for k, v in FLOATS.items() if k not in ("base_input", "plus_input")}
    path = write_jsonl(tmp_path / "evo.jsonl", [{**row, "inputs": FLOATS["base_input"]}])
    (task,) = load_benchmark(BenchmarkSpec(name="evoeval", path=path))
    assert run_program(task.program("\n    return sum(xs) / len(xs)\n"))
    assert not run_program(task.program("\n    return 0.0\n"))


def test_duplicate_task_ids_are_refused(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "dup.jsonl", [MBPP_LIKE, MBPP_LIKE])
    with pytest.raises(BenchmarkError, match=r"'Mbpp/2' appears twice"):
        load_benchmark(BenchmarkSpec(name="dup", path=path))


def test_max_tasks_keeps_the_first_tasks_of_each_benchmark(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "plus.jsonl", [MBPP_LIKE, FLOATS])
    tasks = load_tasks(EvaluationConfig(max_tasks=1, benchmarks=[{"name": "plus", "path": path}]))
    assert {k: [t.task_id for t in v] for k, v in tasks.items()} == {
        "humaneval": ["HumanEval/0"],
        "plus": ["Mbpp/2"],
    }


def test_pass_at_k_matches_the_unbiased_estimator() -> None:
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)
    assert pass_at_k(10, 3, 5) == pytest.approx(1 - 21 / 252)  # 1 - C(7,5)/C(10,5)
    assert pass_at_k(10, 0, 5) == 0.0 and pass_at_k(4, 2, 3) == 1.0
    with pytest.raises(ValueError, match="at least 10 samples"):
        pass_at_k(5, 1, 10)
    rows = [
        *({"task_id": "a", "passed": p} for p in (True, False, False, False)),
        {"task_id": "b", "passed": True},
        {"task_id": "c", "passed": False},
    ]
    per_task = tally(rows)
    assert per_task == {"a": (4, 1), "b": (1, 1), "c": (1, 0)}
    assert mean_pass_at_k(per_task, 1) == pytest.approx((0.25 + 1 + 0) / 3)
