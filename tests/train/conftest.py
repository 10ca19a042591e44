"""Fixtures for the trainer: a tiny tokenizer, packed shards and manifests in tmp folders."""

from __future__ import annotations

import copy
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

SEQ_LEN = 32
VOCAB = 300
TINY_MODEL = {
    "vocab_size": VOCAB, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
    "num_attention_heads": 4, "num_key_value_heads": 4, "max_position_embeddings": 64,
    "rope_theta": 10000.0, "rms_norm_eps": 1e-5, "tie_word_embeddings": True,
    "eos_token_id": 0, "bos_token_id": 0, "pad_token_id": 0,
}  # fmt: skip


@pytest.fixture(autouse=True)
def _tmpdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """torch writes caches under the temp dir: keep them in the test's folder."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setenv("TMPDIR", str(folder))
    monkeypatch.setattr(tempfile, "tempdir", str(folder))


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch: pytest.MonkeyPatch):
    """A 64-wide model is all overhead: one thread is faster, and ~20x faster than two on a
    busy 2-core machine (thread hand-offs stall). Subprocesses get OMP_NUM_THREADS=1."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A byte-level BPE tokenizer with <|endoftext|> = 0, the vocabulary TINY_MODEL expects."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB,
        special_tokens=["<|endoftext|>", "<|file_sep|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(["def add(a, b):\n    return a + b\n"] * 50, trainer)
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=backend, eos_token="<|endoftext|>", pad_token="<|endoftext|>"
    )
    folder = tmp_path_factory.mktemp("tokenizer")
    wrapped.save_pretrained(folder)
    return folder


def write_index(
    folder: Path, num_sequences: int = 128, shards: int = 2, dtype: str = "uint16"
) -> Path:
    """Packed sequences with structure a tiny model can learn: counting runs split by EOD."""
    rng = np.random.default_rng(0)
    starts = rng.integers(0, 60, size=(num_sequences, 1))
    strides = rng.integers(1, 4, size=(num_sequences, 1))
    data = (2 + (starts + strides * np.arange(SEQ_LEN)) % 60).astype(dtype)
    data[:, 0] = 0  # each sequence opens with a document boundary
    folder.mkdir(parents=True, exist_ok=True)
    entries = []
    for i, part in enumerate(np.array_split(data, shards)):
        name = f"shard-{i:05d}.bin"
        np.ascontiguousarray(part).tofile(folder / name)
        entries.append({"path": name, "num_sequences": len(part)})
    index = {
        "dtype": dtype, "seq_len": SEQ_LEN, "eod_id": 0, "num_sequences": num_sequences,
        "num_tokens": num_sequences * SEQ_LEN, "shards": entries,
    }  # fmt: skip
    (folder / "index.json").write_text(json.dumps(index))
    return folder / "index.json"


def phase_spec(name: str, index: Path | None, steps: int, **overrides: Any) -> dict[str, Any]:
    batch = overrides.get("batch_size", 8)
    spec = {
        "name": name,
        "data": {"index": str(index)} if index else None,
        "seq_len": SEQ_LEN,
        "token_budget": steps * batch * SEQ_LEN,
        "repeats": 2,
        "batch_size": batch,
        "micro_batch_size": 4,
        "lr_schedule": {"kind": "warmup_cosine", "peak_lr": 1e-2, "final_lr": 1e-3,
                        "warmup_steps": 3},
        "weight_decay": 0.1, "grad_clip": 1.0, "betas": [0.9, 0.95], "init_from": None,
        "checkpoint_every": 5, "precision": "auto", "compile": False, "skip_reason": None,
    }  # fmt: skip
    spec.update(overrides)
    return spec


def manifest_spec(root: Path, tokenizer_dir: Path, index: Path) -> dict[str, Any]:
    """phase1 (30 steps, cosine), phase2 (10 steps from phase1/final, re-warm), phase3 skipped."""
    rewarm = {"kind": "rewarm_linear", "peak_lr": 5e-3, "final_lr": 0.0, "warmup_steps": 2}
    return {
        "version": 1,
        "preset": "test",
        "model": copy.deepcopy(TINY_MODEL),
        "tokenizer": str(tokenizer_dir),
        "output_dir": str(root / "checkpoints"),
        "seed": 0,
        "phases": [
            phase_spec("phase1", index, 30),
            phase_spec("phase2", index, 10, repeats=4, lr_schedule=rewarm, init_from="phase1"),
            phase_spec("phase3", None, 0, token_budget=0, skip_reason="no synthetic corpus yet"),
        ],
    }


def write_manifest(path: Path, spec: dict[str, Any]) -> Path:
    path.write_text(json.dumps(spec, indent=1))
    return path


def read_metrics(output_dir: Path | str, phase: str) -> list[dict[str, Any]]:
    text = (Path(output_dir) / phase / "metrics.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines()]
