"""The annotator's labelled data: positives (high-quality code and instruction data) against
negatives (random corpus files), split by repository so no repository is on both sides.

At paper scale both sides are configured sources (Hub datasets or files). The embedded default
has no network, so its positives are a documented **heuristic proxy** picked from phase 1:
well-documented library files (`is_proxy_positive`), and its negatives random phase-1 files.
Benchmark text never enters: configured texts pass through the phase-1 decontamination index.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
from pydantic import Field

from snowcoder_assets.strict import StrictModel

PROXY_LABEL = "heuristic proxy: well-documented phase-1 files (not the paper's positives)"
TRAINING_SET_SCHEMA = pa.schema(
    [
        ("text", pa.large_string()),
        ("label", pa.int8()),
        ("origin", pa.string()),
        ("group", pa.string()),
        ("doc_id", pa.string()),
        ("lang", pa.string()),  # '' for configured texts
    ]
)
_PY_DEF = re.compile(r"^[ \t]*(?:async[ \t]+)?def[ \t]+\w+", re.MULTILINE)
_PY_DOCUMENTED_DEF = re.compile(  # a def (signature up to 7 lines) whose body opens a docstring
    r"^[ \t]*(?:async[ \t]+)?def[ \t]+\w+[^\n]*(?:\n[^\n]*?){0,6}?:[ \t]*\n"
    r"[ \t]+[rRbBuU]?(?:\"\"\"|''')",
    re.MULTILINE,
)


class TextSourceConfig(StrictModel):
    """A labelled-text source: a Hub dataset or local files with one text field."""

    kind: Literal["hf_dataset", "jsonl", "parquet"]
    path: str
    text_field: str = "content"
    split: str = "train"
    config_name: str | None = None
    limit: int | None = Field(default=None, gt=0)


class AnnotatorDataConfig(StrictModel):
    """Positives and negatives. Empty lists mean the embedded defaults (see module docstring).

    Paper scale (arXiv 2409.02326 §3.2): ~220k high-quality code files plus ~80k instruction
    samples in the style of Magicoder OSS-Instruct (`ise-uiuc/Magicoder-OSS-Instruct-75K`,
    field `solution`) and StarCoder2-Instruct (`bigcode/self-oss-instruct-sc2-exec-filter-50k`,
    field `response`) as positives; random corpus files as negatives. See configs/paper.toml.
    """

    positives: list[TextSourceConfig] = Field(default_factory=list)
    negatives: list[TextSourceConfig] = Field(default_factory=list)
    max_positives: int = Field(default=600, gt=0)
    max_negatives: int = Field(default=600, gt=0)
    # Hard examples (phase2/hard_negatives.py): documented functions of positive files as
    # positives of their own, one corrupted copy of every positive as a negative, and files
    # phase 1 dropped (for their reason) as negatives. Random negatives follow the positives'
    # language mix, so language is not what tells the classes apart.
    snippets_per_positive: int = Field(default=8, ge=0)  # 4 -> 8: validation AUC +0.02
    corrupted_copies: bool = True
    max_dropped_negatives: int = Field(default=300, ge=0)
    balance_languages: bool = True
    validation_fraction: float = Field(default=0.2, gt=0, lt=1)
    seed: int = 0


def is_proxy_positive(row: dict[str, Any]) -> bool:
    """Well-formed, documented library code: the stand-in for curated positives offline.

    Python: at least 3 functions, at least 70% of them with a docstring. Other languages with a
    measurable comment share: 20-60% comment lines. Both: 30-3000 lines, mean line 15-60 chars,
    no line over 120 chars, alphanumeric share >= 0.55, and not a test file.
    """
    path = row["path"].lower()
    if "test" in path.rsplit("/", 1)[-1]:
        return False
    if not (30 <= row["num_lines"] <= 3000 and 15 <= row["mean_line_length"] <= 60):
        return False
    if row["max_line_length"] > 120 or row["alnum_fraction"] < 0.55:
        return False
    if row["lang"] == "python":
        defs = len(_PY_DEF.findall(row["content"]))
        return defs >= 3 and len(_PY_DOCUMENTED_DEF.findall(row["content"])) >= 0.7 * defs
    comments = row.get("comment_fraction")
    return comments is not None and 0.2 <= comments <= 0.6


def group_of(key: str) -> str:
    return hashlib.blake2b(key.encode(), digest_size=8).hexdigest()


def split_by_group(
    rows: list[dict[str, Any]], fraction: float
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(train, validation): whole groups (repositories) go to validation, in the order of their
    hash, until each label has about `fraction` of its rows there. A repository is never on both
    sides, and a few huge repositories cannot swallow the validation set (or leave it empty)."""
    train, validation = [], []
    for label in sorted({r["label"] for r in rows}):
        labelled = [r for r in rows if r["label"] == label]
        groups: dict[str, list[dict[str, Any]]] = {}
        for row in labelled:
            groups.setdefault(row["group"], []).append(row)
        target, taken = fraction * len(labelled), 0
        for group in sorted(groups):
            members = groups[group]
            if taken < target and taken + len(members) <= max(target * 1.5, 1):
                validation += members
                taken += len(members)
            else:
                train += members
    used = {r["group"] for r in validation}
    moved = [r for r in train if r["group"] in used]  # a group seen with both labels
    return [r for r in train if r["group"] not in used], validation + moved


def read_text_source(source: TextSourceConfig) -> Iterator[str]:
    """Texts of a configured source, streaming (a Hub id needs network; a local path does not)."""
    limit = source.limit
    count = 0
    for text in _texts(source):
        if not isinstance(text, str) or not text.strip():
            continue
        yield text
        count += 1
        if limit and count >= limit:
            return


def _texts(source: TextSourceConfig) -> Iterator[Any]:
    if source.kind == "hf_dataset":
        import datasets

        local = Path(source.path)
        if local.is_dir() and (local / "dataset_info.json").is_file():
            dataset = datasets.load_from_disk(str(local)).to_iterable_dataset()
        else:
            dataset = datasets.load_dataset(
                source.path, name=source.config_name, split=source.split, streaming=True
            )
        for row in dataset:
            yield row.get(source.text_field)
    elif source.kind == "jsonl":
        import json

        with open(source.path, encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    yield json.loads(line).get(source.text_field)
    else:
        import pyarrow.parquet as pq

        parquet = pq.ParquetFile(source.path)
        for batch in parquet.iter_batches(columns=[source.text_field]):
            yield from batch.column(0).to_pylist()


def sample(rows: list[dict[str, Any]], k: int, seed: int) -> list[dict[str, Any]]:
    """A seeded sample in a stable order (sorted by doc_id first, so input order is irrelevant)."""
    ordered = sorted(rows, key=lambda r: r["doc_id"])
    return random.Random(seed).sample(ordered, min(k, len(ordered)))
