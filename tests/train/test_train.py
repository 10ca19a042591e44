"""The training loop end to end on a tiny Llama (2 layers, hidden 64, vocab 300, seq 32)."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from snowcoder_train.data import PackedSequences
from snowcoder_train.model import attention_for
from snowcoder_train.schedule import lr_at
from snowcoder_train.train import main, use_bf16
from tests.train.conftest import manifest_spec, read_metrics, write_index, write_manifest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CHECKPOINT_FILES = {
    "config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
    "tokenizer_config.json", "trainer_state.json", "trainer_state.pt",
}  # fmt: skip


@dataclass
class Workspace:
    root: Path
    spec: dict
    manifest: Path

    @property
    def output_dir(self) -> Path:
        return Path(self.spec["output_dir"])


def train(manifest: Path, phase: str, *extra: str) -> int:
    return main(["--manifest", str(manifest), "--phase", phase, *extra])


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, tokenizer_dir) -> Workspace:
    """phase1 trained straight through, 30 steps (shared by the tests below)."""
    root = tmp_path_factory.mktemp("train")
    spec = manifest_spec(root, tokenizer_dir, write_index(root / "packed"))
    manifest = write_manifest(root / "manifest.json", spec)
    (root / "tmp").mkdir()
    threads = torch.get_num_threads()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TMPDIR", str(root / "tmp"))
        patch.setattr(tempfile, "tempdir", str(root / "tmp"))
        torch.set_num_threads(1)
        assert train(manifest, "phase1") == 0
    torch.set_num_threads(threads)
    return Workspace(root, spec, manifest)


def copy_with(workspace: Workspace, tmp_path: Path, **changes) -> Path:
    """The workspace's manifest with a fresh output_dir (and top-level changes)."""
    spec = {**copy.deepcopy(workspace.spec), "output_dir": str(tmp_path / "ckpt"), **changes}
    return write_manifest(tmp_path / "manifest.json", spec)


def test_phase_trains_with_falling_loss(workspace):
    metrics = read_metrics(workspace.output_dir, "phase1")
    assert [m["step"] for m in metrics] == list(range(1, 31))
    losses = [m["loss"] for m in metrics]
    assert np.mean(losses[:5]) > np.mean(losses[-5:]) + 1.0
    schedule = workspace.spec["phases"][0]["lr_schedule"]
    assert [m["lr"] for m in metrics] == [lr_at(s, 30, schedule) for s in range(1, 31)]
    assert metrics[-1]["tokens_seen"] == 30 * 8 * 32
    assert all(m["tokens_per_s"] > 0 and 0 < m["mfu"] < 1 for m in metrics)


def test_checkpoint_layout_keeps_last_two_steps_and_final(workspace):
    phase_dir = workspace.output_dir / "phase1"
    assert sorted(p.name for p in phase_dir.iterdir()) == [
        "final", "metrics.jsonl", "step-0000020", "step-0000025",
    ]  # fmt: skip
    assert {p.name for p in (phase_dir / "final").iterdir()} == CHECKPOINT_FILES
    meta = json.loads((phase_dir / "final" / "trainer_state.json").read_text())
    assert (meta["step"], meta["tokens_seen"], meta["data_position"]) == (30, 7680, 240)
    state = torch.load(phase_dir / "final" / "trainer_state.pt", weights_only=True)
    assert {"optimizer", "rng", "losses", "step", "data_position"} <= set(state)
    assert state["losses"] == [m["loss"] for m in read_metrics(workspace.output_dir, "phase1")]


def test_final_checkpoint_loads_and_generates(workspace):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    final = workspace.output_dir / "phase1" / "final"
    model = AutoModelForCausalLM.from_pretrained(final)
    tokenizer = AutoTokenizer.from_pretrained(final)
    inputs = tokenizer("def add(a, b):", return_tensors="pt")
    out = model.generate(**inputs, max_new_tokens=5, do_sample=False)
    assert out.shape[1] <= inputs["input_ids"].shape[1] + 5
    assert out.shape[1] > inputs["input_ids"].shape[1]


def test_resume_after_kill_repeats_the_same_losses(workspace, tmp_path):
    manifest = copy_with(workspace, tmp_path)
    assert train(manifest, "phase1", "--max-steps", "12") == 0
    phase_dir = tmp_path / "ckpt" / "phase1"
    assert not (phase_dir / "final").exists()
    assert [p.name for p in sorted(phase_dir.glob("step-*"))] == ["step-0000010", "step-0000012"]
    # As if killed while writing step 12's checkpoint: the newest complete one is step 10.
    shutil.rmtree(phase_dir / "step-0000012")
    (phase_dir / ".tmp-step-0000012-4242").mkdir()
    assert train(manifest, "phase1") == 0
    assert not (phase_dir / ".tmp-step-0000012-4242").exists()

    straight = read_metrics(workspace.output_dir, "phase1")
    resumed = read_metrics(tmp_path / "ckpt", "phase1")
    assert [m["step"] for m in resumed] == list(range(1, 31))
    assert [m["loss"] for m in resumed] == [m["loss"] for m in straight]
    assert [m["grad_norm"] for m in resumed] == [m["grad_norm"] for m in straight]
    a = load_file(workspace.output_dir / "phase1" / "final" / "model.safetensors")
    b = load_file(phase_dir / "final" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_complete_phase_is_not_trained_again(workspace, capsys):
    before = (workspace.output_dir / "phase1" / "metrics.jsonl").read_text()
    assert train(workspace.manifest, "phase1") == 0
    assert "phase1: already complete" in capsys.readouterr().out
    assert (workspace.output_dir / "phase1" / "metrics.jsonl").read_text() == before


def test_checkpoints_of_another_manifest_are_not_resumed(workspace, tmp_path, capsys):
    assert train(copy_with(workspace, tmp_path), "phase1", "--max-steps", "5") == 0
    assert train(copy_with(workspace, tmp_path, seed=1), "phase1", "--max-steps", "3") == 0
    assert "not resuming from" in capsys.readouterr().out
    phase_dir = tmp_path / "ckpt" / "phase1"
    assert [p.name for p in phase_dir.glob("step-*")] == ["step-0000003"]
    assert [m["step"] for m in read_metrics(tmp_path / "ckpt", "phase1")] == [1, 2, 3]


def test_init_from_starts_from_the_previous_final(workspace):
    from transformers import AutoModelForCausalLM

    assert train(workspace.manifest, "phase2") == 0
    metrics = read_metrics(workspace.output_dir, "phase2")
    phase2 = workspace.spec["phases"][1]
    assert [m["lr"] for m in metrics] == [lr_at(s, 10, phase2["lr_schedule"]) for s in range(1, 11)]
    meta = json.loads(
        (workspace.output_dir / "phase2" / "final" / "trainer_state.json").read_text()
    )
    assert meta["init_from"] == "phase1"

    # The first phase-2 loss is phase1/final's loss on phase 2's first batch.
    model = AutoModelForCausalLM.from_pretrained(
        workspace.output_dir / "phase1" / "final", attn_implementation=attention_for("cpu")
    )  # the trainer's attention, so the same kernels give the same loss
    data = PackedSequences(phase2["data"]["index"], "phase2", seed=0)
    bf16 = use_bf16("auto", torch.device("cpu"))
    losses = []
    for first in (0, 4):
        batch = torch.from_numpy(data.batch(first, 4))
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = model(input_ids=batch[:, :-1]).logits
        losses.append(
            torch.nn.functional.cross_entropy(
                logits.float().flatten(0, 1), batch[:, 1:].flatten()
            ).item()
        )
    assert metrics[0]["loss"] == pytest.approx(np.mean(losses), rel=1e-5)
    phase1_first = read_metrics(workspace.output_dir, "phase1")[0]["loss"]
    assert metrics[0]["loss"] < phase1_first - 1.0


def test_skipped_phase_exits_cleanly(workspace):
    done = subprocess.run(
        [sys.executable, "-m", "snowcoder_train", "--manifest", str(workspace.manifest),
         "--phase", "phase3"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "phase3: skipped: no synthetic corpus yet" in done.stdout
    assert '"skipped": "no synthetic corpus yet"' in done.stdout
    assert not (workspace.output_dir / "phase3").exists()


def test_manifest_error_exits_2_before_training(workspace, capsys):
    assert train(workspace.manifest, "phase9") == 2
    assert "manifest error: unknown phase 'phase9'" in capsys.readouterr().err
