"""`snowcoder publish` end to end against the local Hub: dataset, model, dry run, idempotence."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from snowcoder_assets.cli import main
from snowcoder_assets.phase1.corpus import CORPUS_SCHEMA
from tests.corpora import local_dir_source, write_config
from tests.hub.conftest import TOKEN, corpus_rows


def _project(tmp_path: Path) -> Path:
    """A config whose data_dir holds a phase-1 corpus and a tiny final checkpoint."""
    (tmp_path / "code" / "r").mkdir(parents=True)
    config = write_config(
        tmp_path / "c.toml", tmp_path / "data", local_dir_source("s", tmp_path / "code")
    )
    corpus = tmp_path / "data" / "phase1_corpus"
    corpus.mkdir(parents=True)
    pq.write_table(
        pa.Table.from_pylist(corpus_rows(), schema=CORPUS_SCHEMA), corpus / "part-00000.parquet"
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=64,
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
        )
    )
    model.save_pretrained(tmp_path / "data" / "checkpoints" / "phase1" / "final")
    return config


def test_cli_publishes_dataset_and_model_idempotently(tmp_path, hub, monkeypatch, capsys):
    config = _project(tmp_path)
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    assert main(["--config", str(config), "publish", "phase1", "--repo-id", "me/p1"]) == 0
    repo = hub.repo("me/p1")
    assert "README.md" in repo.files and "data/default/train-00000-of-00001.parquet" in repo.files
    commits = len(repo.commits)
    assert main(["--config", str(config), "publish", "phase1", "--repo-id", "me/p1"]) == 0
    assert len(repo.commits) == commits  # identical data: no new commit
    assert main(["--config", str(config), "publish", "model", "--repo-id", "me/m"]) == 0
    model_repo = hub.repo("me/m", kind="models")
    assert {"config.json", "model.safetensors", "README.md"} <= set(model_repo.files)
    assert b"Training phases" in model_repo.files["README.md"]
    assert TOKEN not in capsys.readouterr().out


def test_cli_dry_run_writes_the_repository_and_uploads_nothing(tmp_path, hub, monkeypatch, capsys):
    config = _project(tmp_path)
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    out = tmp_path / "dry"
    assert (
        main(
            [
                "--config",
                str(config),
                "publish",
                "phase1",
                "--repo-id",
                "me/p1",
                "--dry-run",
                str(out),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert json.loads(printed[printed.index("{") : printed.rindex("}") + 1])["files"] > 3
    assert "snowcoder publish phase1 --repo-id me/p1" in printed
    assert (out / "README.md").is_file() and not hub.state.repos


def test_cli_publish_without_a_corpus_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "code").mkdir()
    config = write_config(
        tmp_path / "c.toml", tmp_path / "data", local_dir_source("s", tmp_path / "code")
    )
    assert (
        main(
            [
                "--config",
                str(config),
                "publish",
                "phase2",
                "--repo-id",
                "me/x",
                "--dry-run",
                str(tmp_path / "o"),
            ]
        )
        == 2
    )
    assert "materialize topk_corpus first" in capsys.readouterr().err
