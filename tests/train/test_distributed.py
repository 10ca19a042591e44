"""FSDP2 under torchrun: two CPU processes (gloo) train like one process and share checkpoints."""

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

from snowcoder_train.train import main
from tests.train.conftest import manifest_spec, read_metrics, write_index, write_manifest

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def test_fsdp_two_ranks_match_one_process(tmp_path, tokenizer_dir):
    spec = manifest_spec(tmp_path, tokenizer_dir, write_index(tmp_path / "packed"))
    spec["phases"][0]["token_budget"] = 6 * 8 * 32  # six steps: a step checkpoint and final
    single = write_manifest(tmp_path / "single.json", spec)
    sharded = write_manifest(
        tmp_path / "sharded.json", {**copy.deepcopy(spec), "output_dir": str(tmp_path / "fsdp")}
    )
    assert main(["--manifest", str(single), "--phase", "phase1"]) == 0

    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc-per-node", "2", "-m", "snowcoder_train", "--manifest", str(sharded),
               "--phase", "phase1", "--device", "cpu"]  # fmt: skip
    done = subprocess.run(
        command, cwd=PROJECT_ROOT, capture_output=True, text=True, check=False,
        env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("phase1 step 6/6") == 1  # only rank 0 reports

    one = read_metrics(tmp_path / "checkpoints", "phase1")
    two = read_metrics(tmp_path / "fsdp", "phase1")
    assert [m["loss"] for m in two] == pytest.approx([m["loss"] for m in one], rel=2e-3)
    final = tmp_path / "fsdp" / "phase1" / "final"
    assert json.loads((final / "trainer_state.json").read_text())["step"] == 6
    a = load_file(tmp_path / "checkpoints" / "phase1" / "final" / "model.safetensors")
    b = load_file(final / "model.safetensors")
    assert a.keys() == b.keys()
    # Reductions run in another order across ranks: where a gradient is ~0, Adam's
    # sign-like update may differ by up to ~2 x lr in a handful of elements (seen: 0.009 in one
    # element on this CPU), so the bound is on nearly all elements, with a loose one on the rest.
    for k in a:
        diff = (a[k] - b[k]).abs().flatten().float()
        assert diff.quantile(0.999) < 5e-3 and diff.max() < 3e-2, k
