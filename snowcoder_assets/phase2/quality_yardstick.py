"""Does the annotator rank code quality? ROC-AUC on the project's eval set, beside baselines.

The eval set (`quality_eval.py`) comes from installed packages the corpus does not read, minus
any snippet a training text contains. Measured on it, side by side:
- `annotator`: the trained `quality_annotator`, scoring as `quality_scores` does;
- `docstring_rule`: 1 when a def opens a docstring, else 0;
- `signal:<name>`: each phase-1 signal, its direction chosen on the training set (never on the
  eval set);
- `hashed_ngram_lr`: TF-IDF on hashed word 1-2-grams + logistic regression (scikit-learn),
  trained on the annotator's own training set.
Used by the `quality_annotator` asset (metadata) and `bench/annotator.py` (figures).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from snowcoder_assets.config import PythonInstallSourceConfig, SnowcoderConfig
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
Scores = Callable[[list[str]], np.ndarray]


def corpus_packages(config: SnowcoderConfig) -> set[str]:
    """Top-level packages the corpus reads (never in the eval set); '*' means all of them."""
    names: set[str] = set()
    for source in config.sources:
        if isinstance(source, PythonInstallSourceConfig):
            wanted = source.site_packages
            names |= {"*"} if wanted == "*" else set(wanted)
    return names


def eval_rows(
    config: SnowcoderConfig, seen: Sequence[str], per_side: int = 200, seed: int = 0
) -> tuple[list[dict[str, Any]], int]:
    """(eval rows, how many were dropped as contained in `seen`); no rows when the corpus
    reads every installed package."""
    exclude = corpus_packages(config)
    if "*" in exclude:
        return [], 0
    built = build_eval_set(exclude, per_side, seed)
    rows = drop_overlapping(built, list(seen))
    return rows, len(built) - len(rows)


def auc(labels: Sequence[int], scores: Sequence[float]) -> float:
    from sklearn.metrics import roc_auc_score

    return round(float(roc_auc_score(labels, scores)), 4)


def per_kind(rows: list[dict[str, Any]], scores: np.ndarray) -> dict[str, float]:
    """ROC-AUC of the positives against each kind of negative alone."""
    labels = np.array([r["label"] for r in rows])
    kinds = np.array([r["kind"] for r in rows])
    out = {}
    for kind in sorted(set(kinds[labels == 0])):
        mask = (labels == 1) | (kinds == kind)
        out[kind] = auc(labels[mask], scores[mask])
    return out


def baselines(
    train: Sequence[tuple[str, int]], rows: list[dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Each baseline's eval ROC-AUC and per-kind AUC."""
    texts = [r["text"] for r in rows]
    train_texts = [t for t, _ in train]
    train_labels = np.array([y for _, y in train])
    scores = {"docstring_rule": np.array([1.0 if DOCSTRING.search(t) else 0.0 for t in texts])}
    on_train, on_eval = signal_scores(train_texts), signal_scores(texts)
    for name in SIGNALS:
        sign = 1.0 if auc(train_labels, on_train[name]) >= 0.5 else -1.0
        scores[f"signal:{name}"] = sign * on_eval[name]
    model = ngram_model(train_texts, train_labels)
    scores["hashed_ngram_lr"] = model.predict_proba(texts)[:, 1]
    labels = [r["label"] for r in rows]
    return {
        name: {"roc_auc": auc(labels, s), "per_kind": per_kind(rows, s)}
        for name, s in scores.items()
    }


def signal_scores(texts: list[str]) -> dict[str, np.ndarray]:
    from snowcoder_assets.phase1.signals import compute_signals

    rows = [compute_signals(t, "python", "snippet.py") for t in texts]
    return {s: np.array([float(r.get(s) or 0.0) for r in rows]) for s in SIGNALS}


def ngram_model(texts: list[str], labels: np.ndarray):
    """TF-IDF on hashed word 1-2-grams + balanced logistic regression."""
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


def measure(
    config: SnowcoderConfig,
    score: Scores,
    train: Sequence[tuple[str, int]],
    seen: Sequence[str],
    per_side: int = 200,
    seed: int = 0,
) -> dict[str, Any]:
    """The annotator's and the baselines' eval ROC-AUC, per kind, and the extreme snippets."""
    rows, dropped = eval_rows(config, seen, per_side, seed)
    if not rows or len({r["label"] for r in rows}) < 2:
        return {"skipped": "no eval package is left outside the corpus (site_packages = '*')"}
    scores = np.asarray(score([r["text"] for r in rows]), dtype=np.float64)
    labels = [r["label"] for r in rows]
    others = baselines(train, rows)
    best = max(others, key=lambda name: others[name]["roc_auc"])
    return {
        "eval_rows": len(rows),
        "eval_positives": sum(labels),
        "dropped_as_in_training": dropped,
        "packages": sorted({r["package"] for r in rows}),
        "annotator": {"roc_auc": auc(labels, scores), "per_kind": per_kind(rows, scores)},
        "baselines": others,
        "best_baseline": best,
        "extremes": extremes(rows, scores),
    }


def margin(result: dict[str, Any]) -> float:
    """The annotator's eval AUC minus the best baseline's, from a `measure` result (the goal is
    >= 0.05); derived, so eval files written before it existed still give it."""
    best = result["baselines"][result["best_baseline"]]
    return round(result["annotator"]["roc_auc"] - best["roc_auc"], 4)


def extremes(rows: list[dict[str, Any]], scores: np.ndarray, k: int = 5) -> list[dict]:
    """The k top and k bottom scored snippets: score, label, kind, package and first line."""
    order = np.argsort(-scores, kind="stable")
    picked = [("top", i) for i in order[:k]] + [("bottom", i) for i in order[-k:]]
    return [
        {
            "end": end,
            "score": round(float(scores[i]), 4),
            "label": rows[i]["label"],
            "kind": rows[i]["kind"],
            "path": rows[i]["path"],
            "first_line": rows[i]["text"].strip().splitlines()[0][:80],
        }
        for end, i in picked
    ]
