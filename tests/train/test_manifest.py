import json
import shutil
from pathlib import Path

import pytest

from snowcoder_train.manifest import (
    ManifestError,
    load_manifest,
    manifest_from_dict,
    manifest_to_dict,
    validate,
)
from tests.train.conftest import manifest_spec, write_index, write_manifest


@pytest.fixture
def spec(tmp_path, tokenizer_dir):
    return manifest_spec(tmp_path, tokenizer_dir, write_index(tmp_path / "packed", 128))


def phase(spec, name):
    return next(p for p in spec["phases"] if p["name"] == name)


def errors_of(spec, tmp_path, phase_name="phase1"):
    with pytest.raises(ManifestError) as caught:
        validate(load_manifest(write_manifest(tmp_path / "manifest.json", spec)), phase_name)
    return str(caught.value)


def test_valid_manifest_round_trips(spec, tmp_path):
    manifest = load_manifest(write_manifest(tmp_path / "manifest.json", spec))
    assert validate(manifest, "phase1").total_steps == 30
    assert validate(manifest, "phase2", check_init_checkpoint=False).init_from == "phase1"
    assert manifest_to_dict(manifest) == spec
    assert manifest_from_dict(json.loads(json.dumps(manifest_to_dict(manifest)))) == manifest


def test_skipped_phase_validates_without_data(spec, tmp_path):
    manifest = load_manifest(write_manifest(tmp_path / "manifest.json", spec))
    assert validate(manifest, "phase3").skip_message == "no synthetic corpus yet"


def root_of(spec):
    return Path(spec["output_dir"]).parent


def _shard(spec):
    return root_of(spec) / "packed" / "shard-00001.bin"


def _set(name, field, value):
    def mutate(spec):
        phase(spec, name)[field] = value

    return mutate


def _model(field, value):
    def mutate(spec):
        spec["model"][field] = value

    return mutate


def _remove_shard(spec):
    _shard(spec).unlink()


def _truncate_shard(spec):
    path = _shard(spec)
    path.write_bytes(path.read_bytes()[:-2])


def _other_eos_tokenizer(spec):
    folder = root_of(spec) / "tokenizer"
    shutil.copytree(spec["tokenizer"], folder)
    config = json.loads((folder / "tokenizer_config.json").read_text())
    (folder / "tokenizer_config.json").write_text(
        json.dumps({**config, "eos_token": "<|file_sep|>"})
    )
    spec["tokenizer"] = str(folder)


@pytest.mark.parametrize(
    ("mutate", "phase_name", "expected"),
    [
        (None, "phase9", "unknown phase 'phase9' (the manifest has: phase1, phase2, phase3)"),
        (_set("phase1", "data", {"index": "/nowhere/index.json"}), "phase1",
         "phase 'phase1': data.index /nowhere/index.json does not exist"),
        (_remove_shard, "phase1", "/packed/shard-00001.bin does not exist"),
        (_truncate_shard, "phase1",
         "shard-00001.bin holds 4094 bytes, expected 4096 (64 sequences x 32 x 2 bytes)"),
        (_set("phase1", "seq_len", 16), "phase1",
         "phase 'phase1': seq_len 16 does not match the index's seq_len 32"),
        (_set("phase1", "token_budget", 8193), "phase1",
         "phase 'phase1': token_budget asks for 8193 tokens, shards hold 4096 x repeats 2 = 8192"),
        (_set("phase1", "micro_batch_size", 3), "phase1",
         "phase 'phase1': batch_size 8 is not a multiple of micro_batch_size 3"),
        (_set("phase1", "token_budget", 100), "phase1",
         "phase 'phase1': token_budget 100 is less than one step (batch_size x seq_len = 256"),
        (_set("phase1", "init_from", "phase2"), "phase1",
         "phase 'phase1': init_from 'phase2' is not an earlier phase"),
        (_set("phase1", "init_from", "phase0"), "phase1",
         "phase 'phase1': init_from 'phase0' names no phase"),
        (None, "phase2", "phase 'phase2': init_from 'phase1' has no final checkpoint at "),
        (_set("phase1", "data", None), "phase1",
         "phase 'phase1': data is null but token_budget is 7680 (set skip_reason"),
        (_set("phase1", "lr_schedule", {"kind": "step", "peak_lr": 1.0, "final_lr": 0.0,
                                        "warmup_steps": 0}), "phase1",
         "phase 'phase1': lr_schedule.kind 'step'"),
        (_set("phase1", "precision", "fp8"), "phase1", "phase 'phase1': precision 'fp8'"),
        (_model("max_position_embeddings", 16), "phase1",
         "phase 'phase1': seq_len 32 is longer than the model's max_position_embeddings 16"),
        (_model("eos_token_id", 1), "phase1",
         "phase 'phase1': the index's eod_id 0 is not the model's eos_token_id 1"),
        (_model("vocab_size", 200), "phase1", "ids, more than the model's vocab_size 200"),
        (_other_eos_tokenizer, "phase1",
         "eos token '<|file_sep|>' is id 1, the model's eos_token_id is 0"),
    ],
)  # fmt: skip
def test_validate_error_names_phase_and_field(spec, tmp_path, mutate, phase_name, expected):
    if mutate:
        mutate(spec)
    assert expected in errors_of(spec, tmp_path, phase_name)


def test_init_from_checkpoint_is_checked_at_train_time(spec, tmp_path):
    message = errors_of(spec, tmp_path, "phase2")
    assert f"{tmp_path}/checkpoints/phase1/final (train phase1 first)" in message


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda s: s.update(extra=1), "manifest: unknown field(s) extra"),
        (lambda s: s.update(version=2), "manifest version 2 (this trainer reads 1)"),
        (lambda s: s["model"].pop("hidden_size"), "manifest: model: hidden_size is missing"),
        (lambda s: s["phases"][0].update(lr=1.0), "phase 'phase1': unknown field(s) lr"),
        (lambda s: s["phases"][0].update(seq_len="32"),
         "phase 'phase1': seq_len: expected int, got '32'"),
        (lambda s: s["phases"][0].update(compile=1), "phase 'phase1': compile: expected bool"),
        (lambda s: s["phases"][0].update(betas=[0.9]),
         "phase 'phase1': betas: expected a list, got [0.9]"),
        (lambda s: s["phases"][0]["lr_schedule"].pop("peak_lr"),
         "phase 'phase1': lr_schedule: peak_lr is missing"),
        (lambda s: s["phases"][1].update(name="phase1"),
         "manifest: phase name(s) phase1 appear twice"),
    ],
)  # fmt: skip
def test_load_manifest_error_names_the_field(spec, tmp_path, mutate, expected):
    mutate(spec)
    with pytest.raises(ManifestError) as caught:
        load_manifest(write_manifest(tmp_path / "manifest.json", spec))
    assert expected in str(caught.value)


def test_load_manifest_missing_file(tmp_path):
    with pytest.raises(ManifestError, match="does not exist"):
        load_manifest(tmp_path / "absent.json")
