"""`quality_annotator`: the encoder + linear head trained on `annotator_training_set`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from snowcoder_assets.config import SnowcoderConfig
from snowcoder_assets.io import file_digest, write_json
from snowcoder_assets.layout import annotator_dir, annotator_eval_path
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


def measure_quality(config: SnowcoderConfig, log: Callable[[str], None]) -> dict[str, Any]:
    """The trained annotator and the baselines on the project's eval set (quality_yardstick)."""
    from snowcoder_assets.phase2.quality_yardstick import measure
    from snowcoder_assets.phase2.scoring import Scorer

    if not config.annotator.eval_per_side:
        result = {"skipped": "[annotator] eval_per_side = 0"}
        write_json(annotator_eval_path(config.data_dir), result)
        return result
    train = load_training_set(config.data_dir, "train")
    seen = [t for t, _ in train] + [t for t, _ in load_training_set(config.data_dir, "validation")]
    scorer = Scorer(annotator_dir(config.data_dir), config.annotator.max_length, config.scoring)
    result = measure(config, scorer.score, train, seen, config.annotator.eval_per_side)
    write_json(annotator_eval_path(config.data_dir), result)
    if "skipped" in result:
        log(f"quality eval set: {result['skipped']}")
        return result
    best = result["best_baseline"]
    log(
        f"quality eval set ({result['eval_rows']} snippets): annotator ROC-AUC "
        f"{result['annotator']['roc_auc']}, best baseline {best} "
        f"{result['baselines'][best]['roc_auc']}"
    )
    return result


def quality_tables(result: dict[str, Any]) -> dict[str, str]:
    """Markdown: every method's eval AUC (overall and per kind), and the extreme snippets."""
    from snowcoder_assets.metadata import markdown_table

    methods = {"annotator": result["annotator"], **result["baselines"]}
    kinds = sorted(result["annotator"]["per_kind"])
    table = [
        {"method": name, "ROC-AUC": m["roc_auc"], **{k: m["per_kind"].get(k) for k in kinds}}
        for name, m in methods.items()
    ]
    extremes = [{**e, "first_line": f"`{e['first_line']}`"} for e in result["extremes"]]
    return {"eval_auc_table": markdown_table(table), "eval_extremes": markdown_table(extremes)}


def annotator_fingerprint(data_dir: Path) -> str:
    """Names the annotator a `quality` row was scored by: a digest of its weights (its report
    holds timings, so two identical trainings would get two names)."""
    return file_digest(annotator_dir(data_dir) / "model.safetensors")[:24]
