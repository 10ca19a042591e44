"""Checkpoints: Hugging Face folders plus the trainer state, written atomically.

Layout under `<output_dir>/<phase>/`:

    step-0000050/   model.safetensors, config.json, generation_config.json,
                    the tokenizer files, trainer_state.pt, trainer_state.json
    step-0000100/   (only the last KEEP_STEP_CHECKPOINTS step folders are kept)
    final/          same files, written when the phase has run all its steps
    metrics.jsonl   one JSON line per step

Each folder is written as `.tmp-<name>-<pid>` and renamed into place, so a killed run leaves
either the old folder or the new one, never half of one. `trainer_state.pt` holds the
optimizer state, step, tokens_seen, the data position, the Python/numpy/torch RNG states, the
per-step losses and the phase fingerprint; it loads with `torch.load(weights_only=True)`.
`trainer_state.json` repeats everything but the optimizer and RNG states, readable without torch.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from snowcoder_train.manifest import Manifest, Phase, manifest_to_dict

KEEP_STEP_CHECKPOINTS = 2
FINAL = "final"
STATE_FILE = "trainer_state.pt"
META_FILE = "trainer_state.json"
_MODEL_FILES = {"config.json", "generation_config.json", "model.safetensors", STATE_FILE, META_FILE}


def step_name(step: int) -> str:
    return f"step-{step:07d}"


def save_checkpoint(
    dest: Path,
    model: Any,
    meta: dict[str, Any],
    tensors: dict[str, Any],
    tokenizer_dir: str | Path,
    model_state: dict[str, Any] | None = None,
) -> Path:
    """Write `model` (or its full `model_state`), the tokenizer and the trainer state to `dest`.

    `meta` is JSON-able (step, losses, ...); trainer_state.pt holds `meta` and `tensors`
    (optimizer and RNG states).
    """
    tmp = dest.parent / f".tmp-{dest.name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.save_pretrained(tmp, state_dict=model_state)
    for item in Path(tokenizer_dir).iterdir():
        if item.is_file() and item.name not in _MODEL_FILES:
            shutil.copy2(item, tmp / item.name)
    torch.save({**meta, **tensors}, tmp / STATE_FILE)
    (tmp / META_FILE).write_text(json.dumps(meta))
    if dest.exists():  # replace: move the old one aside first, drop it after the rename
        old = dest.parent / f".old-{dest.name}-{os.getpid()}"
        os.replace(dest, old)
        os.replace(tmp, dest)
        shutil.rmtree(old)
    else:
        os.replace(tmp, dest)
    return dest


def step_checkpoints(phase_dir: Path) -> list[Path]:
    """Complete step checkpoints, oldest first."""
    found = [p for p in phase_dir.glob("step-*") if (p / META_FILE).is_file()]
    return sorted(found, key=lambda p: int(p.name.removeprefix("step-")))


def prune(phase_dir: Path, keep: int = KEEP_STEP_CHECKPOINTS) -> None:
    for old in step_checkpoints(phase_dir)[:-keep]:
        shutil.rmtree(old)


def remove_partial(phase_dir: Path) -> None:
    """Drop what killed runs left half-written (`.tmp-*`, `.old-*` folders)."""
    for leftover in [*phase_dir.glob(".tmp-*"), *phase_dir.glob(".old-*")]:
        shutil.rmtree(leftover, ignore_errors=True)


def clear(phase_dir: Path) -> None:
    """Forget a previous run of the phase: checkpoints (final too: it is stale) and metrics."""
    for old in [*phase_dir.glob("step-*"), phase_dir / FINAL]:
        shutil.rmtree(old, ignore_errors=True)
    (phase_dir / "metrics.jsonl").unlink(missing_ok=True)


def load_state(folder: Path) -> dict[str, Any]:
    return torch.load(folder / STATE_FILE, map_location="cpu", weights_only=True)


def load_meta(folder: Path) -> dict[str, Any]:
    return json.loads((folder / META_FILE).read_text())


def phase_fingerprint(manifest: Manifest, phase: Phase) -> str:
    """What a resumable checkpoint must have been trained with: model, seed, phase, data.

    Paths, checkpoint_every and compile are left out (they do not change the numbers); the
    index file's content stands for the data.
    """
    spec = manifest_to_dict(manifest)
    phase_spec = next(p for p in spec["phases"] if p["name"] == phase.name)
    for key in ("checkpoint_every", "compile", "skip_reason", "data"):
        phase_spec.pop(key)
    index = Path(phase.data.index).read_bytes() if phase.data else b""
    blob = json.dumps([spec["model"], spec["seed"], phase_spec], sort_keys=True).encode()
    return hashlib.sha256(blob + hashlib.sha256(index).digest()).hexdigest()[:16]


def rng_states() -> dict[str, Any]:
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": [kind, torch.from_numpy(keys.copy()), pos, has_gauss, gauss],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def restore_rng_states(states: dict[str, Any]) -> None:
    random.setstate(states["python"])
    kind, keys, pos, has_gauss, gauss = states["numpy"]
    np.random.set_state((kind, keys.numpy(), pos, has_gauss, gauss))
    torch.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
