"""Does the phase-2 annotator rank code quality? ROC-AUC on the project's own eval set.

The eval set (snowcoder_assets/phase2/quality_eval.py) comes from installed packages that are
not in the configured corpus: documented, typed functions against one-letter, minified,
commented-out, scrambled, truncated, data-dump, generated and boilerplate code made from other
real functions of the same packages. Measured on it, side by side:
- `annotator`: the `quality_annotator` of the data dir, scoring as `quality_scores` does;
- `docstring_rule`: 1 when a def opens a docstring, else 0;
- `signal:<name>`: each phase-1 signal the project computes, its direction chosen on the
  annotator's training set (never on the eval set); the best one is reported as well;
- `hashed_ngram_lr`: TF-IDF on hashed word 1-2-grams + logistic regression (scikit-learn),
  trained on the annotator's own training set.
The measuring lives in snowcoder_assets/phase2/quality_yardstick.py, which the asset's metadata
uses too. With no trained annotator in the data dir, `snowcoder materialize` of
`*quality_annotator` makes one first (through the Dagster instance, as a user would); its wall
time is reported.

Usage: python bench/annotator.py [--config snowcoder.toml] [--per-side 200] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from datetime import date

from snowcoder_assets.config import load_config
from snowcoder_assets.layout import annotator_dir
from snowcoder_assets.phase2.annotator_training_set import load_training_set
from snowcoder_assets.phase2.quality_yardstick import corpus_packages, margin, measure


def emit(**fields) -> None:
    base = {"bench": "annotator", "date": date.today().isoformat(), "machine": _machine()}
    print(json.dumps({**base, **fields}), flush=True)


def _machine() -> str:
    return f"{platform.machine()} {os.cpu_count()} cores"


def ensure_annotator(config) -> float | None:
    """Seconds `snowcoder materialize` of the annotator took, or None if one existed."""
    if (annotator_dir(config.data_dir) / "model.safetensors").is_file():
        return None
    from snowcoder_assets.orchestration.materialize import materialize

    started = time.perf_counter()
    if not materialize(config, "*quality_annotator", echo=lambda _: None).ok:
        raise SystemExit("materializing quality_annotator failed")
    return round(time.perf_counter() - started, 1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config")
    parser.add_argument("--per-side", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    config = load_config(args.config)
    if "*" in corpus_packages(config):
        raise SystemExit(
            "the corpus reads every installed package: no package is left to evaluate on"
        )
    materialize_s = ensure_annotator(config)
    from snowcoder_assets.phase2.scoring import Scorer

    train = load_training_set(config.data_dir, "train")
    seen = [t for t, _ in train] + [t for t, _ in load_training_set(config.data_dir, "validation")]
    folder = annotator_dir(config.data_dir)
    report = json.loads((folder / "annotator.json").read_text()).get("report", {})
    scorer = Scorer(folder, config.annotator.max_length, config.scoring)
    started = time.perf_counter()
    result = measure(config, scorer.score, train, seen, args.per_side, args.seed)
    emit(
        eval_rows=result["eval_rows"],
        positives=result["eval_positives"],
        dropped_as_in_training=result["dropped_as_in_training"],
        packages=result["packages"],
    )
    emit(
        method="annotator",
        roc_auc=result["annotator"]["roc_auc"],
        per_kind=result["annotator"]["per_kind"],
        validation_roc_auc=report.get("roc_auc"),
        training_s=report.get("seconds"),
        materialize_s=materialize_s,
        measure_s=round(time.perf_counter() - started, 1),
    )
    for name, value in result["baselines"].items():
        emit(method=name, **value)
    best = result["best_baseline"]
    emit(
        best_baseline=best,
        best_baseline_roc_auc=result["baselines"][best]["roc_auc"],
        margin=margin(result),
    )


if __name__ == "__main__":
    main()
