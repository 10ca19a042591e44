"""Token stage runners: pack each phase corpus, write the phase manifest (plain functions)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from snowcoder_assets.config import SnowcoderConfig
from snowcoder_assets.io import read_json

Log = Callable[[str], None]
PHASE_CORPORA = {"phase1": "phase1_corpus", "phase2": "topk_corpus", "phase3": "synthetic_corpus"}


def packed_dir(config: SnowcoderConfig, phase: str) -> Path:
    return config.data_dir / "packed" / phase


def manifest_path(config: SnowcoderConfig) -> Path:
    return config.data_dir / "phase_manifest.json"


def checkpoints_dir(config: SnowcoderConfig) -> Path:
    return config.data_dir / "checkpoints"


def pack_phases(config: SnowcoderConfig, log: Log) -> dict[str, dict[str, Any]]:
    """Pack every phase corpus that exists; a missing one (phase 3 for now) is left out."""
    from snowcoder_assets.phase2.stages import tokenizer_dir
    from snowcoder_assets.tokens.manifest import seq_len_for
    from snowcoder_assets.tokens.packing import pack_corpus

    indexes = {}
    for phase, corpus in PHASE_CORPORA.items():
        folder = config.data_dir / corpus
        if not any(folder.glob("*.parquet")):
            log(f"{phase}: no {corpus} yet, nothing to pack")
            continue
        indexes[phase] = pack_corpus(
            str(folder / "*.parquet"),
            tokenizer_dir(config),
            packed_dir(config, phase),
            seq_len_for(config.training),
            config.corpus.seed,
            log,
        )
    return indexes


def write_phase_manifest(config: SnowcoderConfig, log: Log) -> dict[str, Any]:
    from snowcoder_assets.phase2.stages import tokenizer_dir
    from snowcoder_assets.tokens.manifest import build_manifest, write_manifest

    indexes = {
        phase: (index if (index := packed_dir(config, phase) / "index.json").is_file() else None)
        for phase in PHASE_CORPORA
    }
    repeats = {"phase1": 1, "phase2": config.topk.repeats, "phase3": 1}
    manifest = build_manifest(
        config.training,
        tokenizer_dir(config),
        checkpoints_dir(config),
        indexes,
        repeats,
        config.corpus.seed,
        log=log,
    )
    write_manifest(manifest, manifest_path(config))
    return manifest


def read_manifest(config: SnowcoderConfig) -> dict[str, Any]:
    return read_json(manifest_path(config))
