"""The phase manifest: preset values, the exact contract keys, problems found before training."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from snowcoder_assets.io import read_json, write_json
from snowcoder_assets.tokens.manifest import (
    SKIP_REASONS,
    TrainingConfig,
    build_manifest,
    check_manifest,
    demo_preset,
    paper_preset,
    resolve_preset,
    seq_len_for,
    write_manifest,
)

VOCAB = 400
TOP_KEYS = {"version", "preset", "model", "tokenizer", "output_dir", "seed", "phases"}
MODEL_KEYS = {
    "vocab_size",
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "max_position_embeddings",
    "rope_theta",
    "rms_norm_eps",
    "tie_word_embeddings",
    "eos_token_id",
    "bos_token_id",
    "pad_token_id",
}
PHASE_KEYS = {
    "name",
    "data",
    "seq_len",
    "token_budget",
    "repeats",
    "batch_size",
    "micro_batch_size",
    "lr_schedule",
    "weight_decay",
    "grad_clip",
    "betas",
    "init_from",
    "checkpoint_every",
    "precision",
    "compile",
    "skip_reason",
}
SCHEDULE_KEYS = {"kind", "peak_lr", "final_lr", "warmup_steps"}


def fake_index(folder: Path, seq_len: int, num_sequences: int, eod_id: int = 0) -> Path:
    """A packed folder of zeros with the index `pack_corpus` writes."""
    folder.mkdir(parents=True, exist_ok=True)
    np.zeros((num_sequences, seq_len), np.uint16).tofile(folder / "shard-00000.bin")
    shards = [{"path": "shard-00000.bin", "num_sequences": num_sequences}] if num_sequences else []
    index = {
        "dtype": "uint16",
        "seq_len": seq_len,
        "eod_id": eod_id,
        "num_sequences": num_sequences,
        "num_tokens": num_sequences * seq_len,
        "dropped_tail_tokens": 0,
        "num_documents": num_sequences,
        "tokens_by_lang": {"py": num_sequences * seq_len},
        "seed": 0,
        "tokenizer": "tok",
        "shards": shards,
    }
    write_json(folder / "index.json", index)
    return folder / "index.json"


def _build(config: TrainingConfig, tmp_path: Path, indexes: dict, **kw) -> dict:
    repeats = kw.pop("repeats", {"phase2": 4})
    return build_manifest(
        config, tmp_path / "tok", tmp_path / "ckpt", indexes, repeats, 0, vocab_size=VOCAB, **kw
    )


@pytest.fixture
def demo_indexes(tmp_path: Path) -> dict[str, Path | None]:
    """Enough data for the demo budgets (7000 and 200 x 4 sequences of 256 tokens), no phase 3."""
    return {
        "phase1": fake_index(tmp_path / "p1", 256, 7000),
        "phase2": fake_index(tmp_path / "p2", 256, 200),
        "phase3": None,
    }


def _budgets(preset: dict) -> list[int]:
    return [phase["token_budget"] for phase in preset["phases"]]


def test_demo_preset_keeps_the_500_50_5_ratios() -> None:
    p1, p2, p3 = _budgets(demo_preset(VOCAB))
    assert p1 == 10 * p2 == 100 * p3
    assert p1 == 100 * 16 * 256
    steps = [b // (16 * 256) for b in (p1, p2, p3)]
    assert steps == [100, 10, 1]


def test_demo_preset_is_a_small_model() -> None:
    preset = demo_preset(VOCAB)
    model = preset["model"]
    assert (model["num_hidden_layers"], model["hidden_size"], model["intermediate_size"]) == (
        4,
        256,
        704,
    )
    assert model["num_attention_heads"] == model["num_key_value_heads"] == 4
    assert model["vocab_size"] == VOCAB
    assert {(p["seq_len"], p["batch_size"], p["micro_batch_size"]) for p in preset["phases"]} == {
        (256, 16, 8)
    }


def test_paper_preset_matches_the_paper() -> None:
    preset = paper_preset(64000)
    model = preset["model"]
    assert model["num_hidden_layers"] == 24
    assert model["hidden_size"] == 2048
    assert model["intermediate_size"] == 5632
    assert model["num_attention_heads"] == model["num_key_value_heads"] == 16
    assert model["vocab_size"] == 64000
    assert model["max_position_embeddings"] == 8192
    assert model["tie_word_embeddings"] is True
    assert _budgets(preset) == [500_000_000_000, 50_000_000_000, 5_000_000_000]
    p1, p2, p3 = preset["phases"]
    assert {(p["seq_len"], p["batch_size"]) for p in preset["phases"]} == {(8192, 512)}
    assert p1["lr_schedule"] == {
        "kind": "warmup_cosine",
        "peak_lr": 5.3e-4,
        "final_lr": 5.3e-5,
        "warmup_steps": 600,
    }
    for phase in (p2, p3):
        assert phase["lr_schedule"] == {
            "kind": "rewarm_linear",
            "peak_lr": 5.3e-4,
            "final_lr": 0.0,
            "warmup_steps": 1000,
        }
    assert [p["repeats"] for p in preset["phases"]] == [1, 4, 1]
    assert [p["init_from"] for p in preset["phases"]] == [None, "phase1", "phase2"]


def test_manifest_follows_the_contract(tmp_path: Path, demo_indexes) -> None:
    manifest = _build(TrainingConfig(), tmp_path, demo_indexes)

    assert set(manifest) == TOP_KEYS
    assert set(manifest["model"]) == MODEL_KEYS
    assert manifest["version"] == 1
    assert manifest["preset"] == "demo"
    assert manifest["tokenizer"] == str((tmp_path / "tok").resolve())
    assert manifest["output_dir"] == str((tmp_path / "ckpt").resolve())
    assert [p["name"] for p in manifest["phases"]] == ["phase1", "phase2", "phase3"]
    for phase in manifest["phases"]:
        assert set(phase) == PHASE_KEYS
        assert set(phase["lr_schedule"]) == SCHEDULE_KEYS
    p1, p2, _ = manifest["phases"]
    assert p1["data"] == {"index": str(demo_indexes["phase1"].resolve())}
    assert (p1["repeats"], p2["repeats"]) == (1, 4)
    assert (p1["lr_schedule"]["kind"], p2["lr_schedule"]["kind"]) == (
        "warmup_cosine",
        "rewarm_linear",
    )
    assert (p1["init_from"], p2["init_from"]) == (None, "phase1")


def test_manifest_skips_an_absent_phase_3(tmp_path: Path, demo_indexes) -> None:
    phase3 = _build(TrainingConfig(), tmp_path, demo_indexes)["phases"][2]
    assert phase3["data"] is None
    assert phase3["token_budget"] == 0
    assert phase3["skip_reason"] == SKIP_REASONS["phase3"]
    assert phase3["skip_reason"] == ("no synthetic corpus packed: phase 3 needs synthetic_corpus")
    assert phase3["init_from"] == "phase2"


def test_manifest_paper_budget_over_the_data_is_an_error(tmp_path: Path) -> None:
    indexes = {
        "phase1": fake_index(tmp_path / "p1", 8192, 2),
        "phase2": fake_index(tmp_path / "p2", 8192, 2),
    }
    with pytest.raises(ValueError) as error:
        _build(TrainingConfig(preset="paper"), tmp_path, indexes)
    message = str(error.value)
    assert "phase1 asks for 500000000000 tokens but its shards hold 16384 tokens x 1 repeats" in (
        message
    )
    assert "phase2 asks for 50000000000 tokens but its shards hold 16384 tokens x 4 repeats" in (
        message
    )


def test_manifest_demo_budget_is_lowered_to_the_data(tmp_path: Path) -> None:
    notes: list[str] = []
    indexes = {
        "phase1": fake_index(tmp_path / "p1", 256, 7000),
        "phase2": fake_index(tmp_path / "p2", 256, 10),
    }
    manifest = _build(TrainingConfig(), tmp_path, indexes, log=notes.append)

    assert manifest["phases"][1]["token_budget"] == 10 * 256 * 4
    assert manifest["phases"][0]["token_budget"] == 100 * 16 * 256  # enough data: unchanged
    note = "phase2: demo budget of 40960 tokens lowered to the 10240 its shards hold"
    assert notes == [f"{note} (2560 tokens x 4 repeats)"]


def test_manifest_demo_phase_without_a_whole_sequence_is_skipped(tmp_path: Path) -> None:
    indexes = {
        "phase1": fake_index(tmp_path / "p1", 256, 7000),
        "phase2": fake_index(tmp_path / "p2", 256, 0),
    }
    phase2 = _build(TrainingConfig(), tmp_path, indexes, log=lambda _: None)["phases"][1]
    assert (phase2["data"], phase2["token_budget"]) == (None, 0)
    assert "no whole sequence of 256 tokens" in phase2["skip_reason"]


def test_manifest_missing_shard_is_an_error(tmp_path: Path, demo_indexes) -> None:
    (demo_indexes["phase2"].parent / "shard-00000.bin").unlink()
    with pytest.raises(ValueError, match=r"phase2 shard missing: .*shard-00000\.bin"):
        _build(TrainingConfig(), tmp_path, demo_indexes)


def test_manifest_missing_index_is_an_error(tmp_path: Path, demo_indexes) -> None:
    demo_indexes["phase1"].unlink()
    with pytest.raises(ValueError, match=r"phase1 index missing: .*index\.json"):
        _build(TrainingConfig(), tmp_path, demo_indexes)


def test_manifest_phase_starting_from_a_skipped_phase_is_an_error(tmp_path: Path) -> None:
    indexes = {"phase1": None, "phase2": fake_index(tmp_path / "p2", 256, 200)}
    with pytest.raises(ValueError, match="phase2 starts from phase1, which is skipped"):
        _build(TrainingConfig(), tmp_path, indexes)


def _valid(tmp_path: Path) -> dict:
    indexes = {"phase1": fake_index(tmp_path / "p1", 256, 7000), "phase2": None}
    return _build(TrainingConfig(), tmp_path, indexes)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (
            lambda m: m["phases"][0].update(seq_len=128),
            "phase1 trains on seq_len 128 but its shards hold sequences of 256 tokens",
        ),
        (
            lambda m: m["phases"][0].update(micro_batch_size=5),
            "phase1 batch_size 16 is not a multiple of micro_batch_size 5",
        ),
        (
            lambda m: m["model"].update(max_position_embeddings=200),
            "phase1 seq_len 256 exceeds max_position_embeddings 200",
        ),
        (
            lambda m: m["phases"][0].update(repeats=1, token_budget=7000 * 256 + 1),
            "phase1 asks for 1792001 tokens but its shards hold 1792000 tokens x 1 repeats",
        ),
        (
            lambda m: m["model"].update(eos_token_id=3),
            "phase1 shards end documents with id 0 but the model's eos_token_id is 3",
        ),
        (
            lambda m: m["phases"][0].update(repeats=0),
            "phase1 repeats its data 0 times (at least 1)",
        ),
        (
            lambda m: m["phases"][2].update(token_budget=5),
            "phase3 has no data but a token budget of 5",
        ),
    ],
)
def test_check_manifest_finds_the_problem(tmp_path: Path, change, problem: str) -> None:
    manifest = copy.deepcopy(_valid(tmp_path))
    assert check_manifest(manifest) == []
    change(manifest)
    assert any(found.startswith(problem) for found in check_manifest(manifest)), check_manifest(
        manifest
    )


def test_check_manifest_finds_a_truncated_shard(tmp_path: Path) -> None:
    manifest = _valid(tmp_path)
    shard = tmp_path / "p1" / "shard-00000.bin"
    shard.write_bytes(shard.read_bytes()[:-2])
    assert check_manifest(manifest) == [
        f"phase1 shard {shard.resolve()} holds {7000 * 512 - 2} bytes, not {7000 * 512}"
    ]


def test_write_manifest_round_trips(tmp_path: Path, demo_indexes) -> None:
    manifest = _build(TrainingConfig(), tmp_path, demo_indexes)
    path = write_manifest(manifest, tmp_path / "out" / "manifest.json")
    assert read_json(path) == manifest
    assert [p.name for p in path.parent.iterdir()] == ["manifest.json"]


def test_training_config_overrides_apply_to_every_phase() -> None:
    config = TrainingConfig(
        total_tokens=555_000,
        seq_len=128,
        batch_size=32,
        micro_batch_size=4,
        checkpoint_every=7,
        compile=False,
        model={"num_hidden_layers": 2},
    )
    preset = resolve_preset(config, VOCAB)
    assert _budgets(preset) == [500_000, 50_000, 5_000]
    assert preset["model"]["num_hidden_layers"] == 2
    for phase in preset["phases"]:
        assert (phase["seq_len"], phase["batch_size"], phase["micro_batch_size"]) == (128, 32, 4)
        assert (phase["checkpoint_every"], phase["compile"]) == (7, False)
    assert seq_len_for(config) == 128
    assert seq_len_for(TrainingConfig(preset="paper")) == 8192


@pytest.mark.parametrize(
    "fields",
    [{"preset": "huge"}, {"model": {"vocab_size": 9}}, {"epochs": 3}, {"total_tokens": 0}],
)
def test_training_config_rejects_bad_fields(fields: dict) -> None:
    with pytest.raises(ValidationError):
        TrainingConfig(**fields)


def test_build_manifest_reads_the_vocabulary_from_the_tokenizer(tmp_path: Path) -> None:
    from snowcoder_assets.tokens.tokenizer import TokenizerConfig, save_tokenizer, train_tokenizer

    tokenizer = train_tokenizer(["def f(x):\n    return x\n"] * 50, TokenizerConfig(vocab_size=300))
    tok_dir = save_tokenizer(tokenizer, tmp_path / "tokenizer")
    indexes = {"phase1": fake_index(tmp_path / "p1", 256, 7000)}
    manifest = build_manifest(TrainingConfig(), tok_dir, tmp_path / "ckpt", indexes, {}, 3)
    assert manifest["model"]["vocab_size"] == len(tokenizer)
    assert manifest["model"]["eos_token_id"] == 0
    assert manifest["seed"] == 3
