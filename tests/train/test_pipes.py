"""Launched through Dagster Pipes, the trainer reports its materialization (and skips)."""

import sys
from pathlib import Path

import dagster as dg
import pytest

from tests.train.conftest import manifest_spec, write_index, write_manifest

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def materialize_phase(manifest: Path, phase: str) -> dict:
    @dg.asset(name=f"{phase}_checkpoint")
    def checkpoint(context: dg.AssetExecutionContext, pipes: dg.PipesSubprocessClient):
        command = [sys.executable, "-m", "snowcoder_train", "--manifest", str(manifest),
                   "--phase", phase]  # fmt: skip
        session = pipes.run(command=command, context=context, cwd=str(PROJECT_ROOT))
        return session.get_materialize_result()

    result = dg.materialize(
        [checkpoint], resources={"pipes": dg.PipesSubprocessClient()}, raise_on_error=True
    )
    (event,) = result.asset_materializations_for_node(f"{phase}_checkpoint")
    return {key: value.value for key, value in event.metadata.items()}


@pytest.fixture
def manifest(tmp_path, tokenizer_dir) -> Path:
    spec = manifest_spec(tmp_path, tokenizer_dir, write_index(tmp_path / "packed"))
    spec["phases"][0]["token_budget"] = 3 * 8 * 32  # three steps
    return write_manifest(tmp_path / "manifest.json", spec)


def test_pipes_reports_training_metadata(manifest, tmp_path):
    metadata = materialize_phase(manifest, "phase1")
    assert metadata["steps"] == 3
    assert metadata["tokens_seen"] == 3 * 8 * 32
    assert metadata["final_loss"] > 0
    assert metadata["tokens_per_s"] > 0 and 0 < metadata["mfu"] < 1
    assert metadata["checkpoint"] == str(tmp_path / "checkpoints" / "phase1" / "final")


def test_pipes_reports_a_skipped_phase(manifest):
    assert materialize_phase(manifest, "phase3") == {"skipped": "no synthetic corpus yet"}
