"""The `evaluation` asset for real through vLLM: tiny checkpoints, HumanEval tasks, sandbox.

Needs `.venv-vllm` like tests/phase3/test_vllm_backend.py (fails rather than skips without
it). Phase 3 has no checkpoint here, so it is reported as skipped, not evaluated.
"""

import json
import shutil
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from snowcoder_assets.evaluation.assets import evaluation
from snowcoder_assets.layout import checkpoints_dir, lineage_db_path
from snowcoder_assets.phase3.resources import SyntheticGeneratorResource
from snowcoder_assets.resources import SnowcoderConfigResource
from tests.corpora import local_dir_source, write_config
from tests.phase3.test_vllm_backend import CountingClient, _scratch, model_dir  # noqa: F401

TASKS = 4
SETTINGS = (
    f'backend = "vllm"\nmax_tasks = {TASKS}\nmax_new_tokens = 16\n'
    "vllm_options = { max_model_len = 512, gpu_memory_utilization = 0.1 }"
)


def evaluate(config_path: Path) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [evaluation],
        resources={
            "snowcoder": SnowcoderConfigResource(config_path=str(config_path)),
            "generation": SyntheticGeneratorResource(),
            "pipes_subprocess_client": CountingClient(),
        },
    )


@pytest.mark.vllm
def test_each_checkpoint_is_generated_through_vllm_and_executed(
    model_dir: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    (tmp_path / "code").mkdir()
    data = tmp_path / "data"
    for phase in ("phase1", "phase2"):
        shutil.copytree(model_dir, checkpoints_dir(data) / phase / "final")
    path = write_config(
        tmp_path / "c.toml",
        data,
        local_dir_source("s", tmp_path / "code"),
        evaluation_toml=SETTINGS,
    )
    CountingClient.launches.clear()
    result = evaluate(path)
    assert result.success
    assert len(CountingClient.launches) == 2  # one vLLM worker per checkpoint
    with duckdb.connect(str(lineage_db_path(data)), read_only=True) as con:
        rows = con.execute(
            "SELECT phase, task_id, passed, result, generator, checkpoint FROM evaluation"
        ).fetchall()
    assert sorted((r[0], r[1]) for r in rows) == sorted(
        (p, f"HumanEval/{i}") for p in ("phase1", "phase2") for i in range(TASKS)
    )
    # Same weights in both folders: same digest in the label, different phases.
    labels = {r[0]: r[5] for r in rows}
    assert labels["phase1"].split("@")[1] == labels["phase2"].split("@")[1]
    assert all(r[4] == f"vllm:{r[5]}" or r[3].startswith("failed: no completion") for r in rows)
    assert not any(r[2] for r in rows)  # random weights solve nothing
    metadata = result.asset_materializations_for_node("evaluation")[0].metadata
    assert "skipped" in metadata["pass_at_1"].value  # phase 3: no checkpoint
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks == {"every_task_executed": True, "harness_self_test": True}
    summary = json.loads((data / "evaluation" / "results.json").read_text())
    assert summary["self_test"]["humaneval"]["solutions_passed"] == TASKS

    CountingClient.launches.clear()
    assert evaluate(path).success  # every completion journaled: no vLLM start
    assert CountingClient.launches == []
