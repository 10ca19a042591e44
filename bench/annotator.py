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
With no trained annotator in the data dir, `snowcoder materialize +quality_annotator` makes
one first (through the Dagster instance, as a user would) and its wall time is reported.

Usage: python bench/annotator.py [--config snowcoder.toml] [--per-side 200] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import time
from datetime import date

import numpy as np

from snowcoder_assets.config import PythonInstallSourceConfig, load_config
from snowcoder_assets.layout import annotator_dir
from snowcoder_assets.phase2.annotator_training_set import load_training_set
from snowcoder_assets.phase2.quality_eval import build_eval_set, drop_overlapping

DOCSTRING = re.compile(
    r"^[ \t]*def [^\n]*(?:\n[^\n]*?){0,6}?:[ \t]*\n[ \t]+[rRbBuU]?(\"\"\"|''')", re.M
)
SIGNALS = (
    "alnum_fraction",
    "alpha_fraction",
    "mean_line_length",
    "max_line_length",
    "comment_fraction",
)


def emit(**fields) -> None:
    base = {"bench": "annotator", "date": date.today().isoformat(), "machine": _machine()}
    print(json.dumps({**base, **fields}), flush=True)


def _machine() -> str:
    import os

    return f"{platform.machine()} {os.cpu_count()} cores"


def corpus_packages(config) -> set[str]:
    """Top-level packages the corpus reads (never in the eval set); '*' means all of them."""
    names: set[str] = set()
    for source in config.sources:
        if isinstance(source, PythonInstallSourceConfig):
            wanted = source.site_packages
            names |= {"*"} if wanted == "*" else set(wanted)
    return names


def ensure_annotator(config) -> float | None:
    """Seconds `snowcoder materialize +quality_annotator` took, or None if one existed."""
    if (annotator_dir(config.data_dir) / "model.safetensors").is_file():
        return None
    from snowcoder_assets.orchestration.materialize import materialize

    started = time.perf_counter()
    if not materialize(config, "+quality_annotator", echo=lambda _: None).ok:
        raise SystemExit("materializing quality_annotator failed")
    return round(time.perf_counter() - started, 1)


def signal_scores(texts: list[str]) -> dict[str, np.ndarray]:
    from snowcoder_assets.phase1.signals import compute_signals

    rows = [compute_signals(t, "python", "snippet.py") for t in texts]
    return {s: np.array([float(r.get(s) or 0.0) for r in rows]) for s in SIGNALS}


def auc(labels, scores) -> float:
    from sklearn.metrics import roc_auc_score

    return round(float(roc_auc_score(labels, scores)), 4)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config")
    parser.add_argument("--per-side", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    config = load_config(args.config)
    exclude = corpus_packages(config)
    if "*" in exclude:
        raise SystemExit(
            "the corpus reads every installed package: no package is left to evaluate on"
        )
    trained_s = ensure_annotator(config)
    train = load_training_set(config.data_dir, "train")
    train_texts, train_labels = [t for t, _ in train], np.array([y for _, y in train])
    seen = train_texts + [t for t, _ in load_training_set(config.data_dir, "validation")]
    built = build_eval_set(exclude, args.per_side, args.seed)
    rows = drop_overlapping(built, seen)
    texts, labels = [r["text"] for r in rows], np.array([r["label"] for r in rows])
    emit(
        eval_rows=len(rows),
        positives=int(labels.sum()),
        dropped_as_in_training=len(built) - len(rows),
        packages=sorted({r["package"] for r in rows}),
    )

    from snowcoder_assets.phase2.scoring import Scorer

    meta = json.loads((annotator_dir(config.data_dir) / "annotator.json").read_text())
    started = time.perf_counter()
    scorer = Scorer(annotator_dir(config.data_dir), config.annotator.max_length, config.scoring)
    scores = scorer.score(texts)
    emit(
        method="annotator",
        roc_auc=auc(labels, scores),
        validation_roc_auc=meta.get("report", {}).get("roc_auc"),
        training_s=meta.get("report", {}).get("seconds"),
        materialize_s=trained_s,
        scoring_s=round(time.perf_counter() - started, 1),
    )
    results = {"docstring_rule": auc(labels, [1.0 if DOCSTRING.search(t) else 0.0 for t in texts])}
    on_train, on_eval = signal_scores(train_texts), signal_scores(texts)
    for name in SIGNALS:
        sign = 1.0 if auc(train_labels, on_train[name]) >= 0.5 else -1.0
        results[f"signal:{name}"] = auc(labels, sign * on_eval[name])
    results["hashed_ngram_lr"] = auc(
        labels, ngram_model(train_texts, train_labels).predict_proba(texts)[:, 1]
    )
    for name, value in results.items():
        emit(method=name, roc_auc=value)
    best = max(results, key=results.get)
    emit(best_baseline=best, best_baseline_roc_auc=results[best])


def ngram_model(texts: list[str], labels: np.ndarray):
    from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    model = make_pipeline(
        HashingVectorizer(
            ngram_range=(1, 2), n_features=1 << 18, alternate_sign=False, token_pattern=r"\w+"
        ),
        TfidfTransformer(),
        LogisticRegression(max_iter=2000, class_weight="balanced"),
    )
    return model.fit(texts, labels)


if __name__ == "__main__":
    main()
