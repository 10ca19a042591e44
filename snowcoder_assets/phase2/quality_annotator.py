"""`quality_annotator`: the encoder + linear head trained on `annotator_training_set`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from snowcoder_assets.config import SnowcoderConfig
from snowcoder_assets.io import file_digest
from snowcoder_assets.layout import annotator_dir
from snowcoder_assets.phase2.annotator_training_set import load_training_set


def quiet_transformers() -> None:
    """The base encoder has no classification head yet: its load report is expected noise."""
    from transformers.utils import logging

    logging.set_verbosity_error()


def train_quality_annotator(config: SnowcoderConfig, log: Callable[[str], None]) -> dict[str, Any]:
    from snowcoder_assets.phase2.annotator import train_annotator

    quiet_transformers()
    train = load_training_set(config.data_dir, "train")
    validation = load_training_set(config.data_dir, "validation")
    return train_annotator(train, validation, config.annotator, annotator_dir(config.data_dir), log)


def annotator_fingerprint(data_dir: Path) -> str:
    """Names the annotator a `quality` row was scored by: a digest of its weights (its report
    holds timings, so two identical trainings would get two names)."""
    return file_digest(annotator_dir(data_dir) / "model.safetensors")[:24]
