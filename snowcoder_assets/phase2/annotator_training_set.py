"""`annotator_training_set`: positives vs negatives for the quality annotator, split by repo.

Offline, the positives are a heuristic proxy (well-documented phase-1 files, labelled as such)
and the negatives random phase-1 files, both sampled deterministically in bounded memory; at
paper scale configured sources supply them. Configured texts that overlap a benchmark are left
out.
"""

from __future__ import annotations

import ast
import hashlib
import heapq
import random
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa

from snowcoder_assets.config import SnowcoderConfig, split_partition_key
from snowcoder_assets.io import iter_rows, write_json, write_table
from snowcoder_assets.layout import lineage_part_path, raw_shard_path, training_set_dir
from snowcoder_assets.phase1.decontaminated_files import benchmark_index, decontaminated_path
from snowcoder_assets.phase1.file_signals import signals_path
from snowcoder_assets.phase2.hard_negatives import (
    FILE_CORRUPTIONS,
    FUNCTION_CORRUPTIONS,
    corrupt,
    documented_snippets,
)
from snowcoder_assets.phase2.training_set import (
    PROXY_LABEL,
    TRAINING_SET_SCHEMA,
    AnnotatorDataConfig,
    group_of,
    is_proxy_positive,
    read_text_source,
    split_by_group,
)

Log = Callable[[str], None]
SPLITS = ("train", "validation")
PROXY_FEATURES = [
    "doc_id",
    "num_lines",
    "mean_line_length",
    "max_line_length",
    "alnum_fraction",
    "comment_fraction",
]


def training_set_outputs(data_dir: Path) -> list[Path]:
    folder = training_set_dir(data_dir)
    return [folder / f"{name}.parquet" for name in SPLITS] + [folder / "summary.json"]


def _seeded_key(seed: int, doc_id: str) -> bytes:
    return hashlib.blake2b(f"{seed}\0{doc_id}".encode(), digest_size=8).digest()


class _Reservoir:
    """The k rows with the smallest seeded keys: a deterministic sample, in bounded memory."""

    def __init__(self, k: int, seed: int) -> None:
        self.k, self.seed, self._heap = k, seed, []

    def offer(self, row: dict[str, Any]) -> None:
        item = (tuple(-b for b in _seeded_key(self.seed, row["doc_id"])), row["doc_id"], row)
        if len(self._heap) < self.k:
            heapq.heappush(self._heap, item)
        elif item[:2] > self._heap[0][:2]:
            heapq.heapreplace(self._heap, item)

    def rows(self) -> list[dict[str, Any]]:
        return [r for *_, r in sorted(self._heap, key=lambda t: t[1])]


def build_training_set(config: SnowcoderConfig, partitions: list[str], log: Log) -> dict:
    """Write train/validation parquet of (text, label, origin, group); return counts."""
    data = config.annotator_data
    positives = _Reservoir(data.max_positives, data.seed)
    negatives: dict[str, _Reservoir] = {}
    for row in _phase1_rows(config, partitions):
        row["origin"], row["group"] = "phase1", group_of(f"{row['source']}/{row['repo']}")
        if not data.positives and is_proxy_positive(row):
            positives.offer({**row, "origin": "phase1-proxy"})
        elif not data.negatives:
            lang = row["lang"] if data.balance_languages else ""
            negatives.setdefault(lang, _Reservoir(data.max_negatives, data.seed + 1)).offer(row)
    pos = positives.rows() if not data.positives else _external(config, data.positives, log)
    pos = pos[: data.max_positives]
    if data.negatives:
        neg = _external(config, data.negatives, log)[: data.max_negatives]
    else:
        neg = balanced_negatives(negatives, Counter(r.get("lang", "") for r in pos), data)
    rows = [_example(r, 1) for r in pos] + [_example(r, 0) for r in neg]
    hard = hard_examples(pos, data) + _dropped(config, partitions, log)
    rows += [_example(r, r["label"]) for r in hard]
    split = dict(zip(SPLITS, split_by_group(rows, data.validation_fraction), strict=True))
    for name, part in split.items():
        write_table(
            training_set_dir(config.data_dir) / f"{name}.parquet",
            pa.Table.from_pylist(part, schema=TRAINING_SET_SCHEMA),
        )
    report = {
        "positives": sum(r["label"] for r in rows),
        "negatives": sum(1 - r["label"] for r in rows),
        "train": len(split["train"]),
        "validation": len(split["validation"]),
        "positives_origin": "configured" if data.positives else PROXY_LABEL,
        "negatives_origin": "configured" if data.negatives else "random phase-1 files",
        "origins": dict(sorted(Counter(r["origin"].split(":")[0] for r in rows).items())),
        "languages": _language_table(rows),
    }
    write_json(training_set_dir(config.data_dir) / "summary.json", report)
    return report


def balanced_negatives(
    reservoirs: dict[str, _Reservoir], positive_langs: Counter, data: AnnotatorDataConfig
) -> list[dict[str, Any]]:
    """Random negatives in the positives' language mix, topped up from the other languages."""
    pools = {lang: r.rows() for lang, r in sorted(reservoirs.items())}
    if set(pools) == {""}:
        return pools[""][: data.max_negatives]
    total, known = data.max_negatives, sum(positive_langs.values())
    picked: list[dict[str, Any]] = []
    for lang, pool in pools.items():
        quota = round(total * positive_langs.get(lang, 0) / known) if known else 0
        picked += pool[:quota]
        pools[lang] = pool[quota:]
    rest = sorted((r for pool in pools.values() for r in pool), key=lambda r: r["doc_id"])
    return picked + rest[: max(0, total - len(picked))]


def hard_examples(positives: list[dict[str, Any]], data: AnnotatorDataConfig) -> list[dict]:
    """Documented functions of the positives (label 1) and corrupted copies of every positive
    file and function (label 0, origin `corrupted:<kind>`), each in its source's group; a
    corruption that leaves the text as it was is not kept."""
    rng = random.Random(data.seed)
    out: list[dict[str, Any]] = []
    for row in positives:
        lang = row.get("lang") or guess_lang(row["content"])
        snippets = list(documented_snippets(row["content"])) if lang == "python" else []
        rng.shuffle(snippets)
        units = [(row["content"], row["origin"])]
        units += [(s, "snippet") for s in snippets[: data.snippets_per_positive]]
        for number, (text, origin) in enumerate(units):
            doc_id = f"{row['doc_id']}#{number}"
            if number:
                out.append({**row, "content": text, "origin": origin, "doc_id": doc_id, "label": 1})
            if not data.corrupted_copies:
                continue
            for kind in _corruptions(number, len(out)):
                copy = corrupt(text, kind, lang, rng)
                if copy != text:  # a one-line body shuffled: the positive itself, labelled 0
                    copy_of = {"origin": f"corrupted:{kind}", "doc_id": f"{doc_id}~{kind}"}
                    out.append({**row, "content": copy, **copy_of, "label": 0})
    return out


def _corruptions(number: int, count: int) -> tuple[str, ...]:
    """One corruption per unit, cycling: file-level kinds for a file (number 0), all kinds
    (stubbed and body_shuffled too: a docstring alone must not score high) for a function."""
    kinds = FUNCTION_CORRUPTIONS if number else FILE_CORRUPTIONS
    return (kinds[count % len(kinds)],)


def guess_lang(text: str) -> str:
    """'python' when the text parses as Python, else '' (configured texts carry no language)."""
    try:
        ast.parse(text)
    except (SyntaxError, ValueError, RecursionError):
        return ""
    return "python"


def _dropped(config: SnowcoderConfig, partitions: list[str], log: Log) -> list[dict[str, Any]]:
    """Files phase 1's filters dropped, labelled 0 with their reason; phase 1 never checked
    them for benchmark text, so the decontamination index does here."""
    data = config.annotator_data
    if not data.max_dropped_negatives or data.negatives:
        return []
    reservoir = _Reservoir(data.max_dropped_negatives, data.seed + 2)
    for row in _filter_dropped_rows(config, partitions):
        reservoir.offer(row)
    index, kept = benchmark_index(config), []
    for row in reservoir.rows():
        if index.find(row["content"]):
            continue
        group = group_of(f"{row['source']}/{row['repo']}")
        kept.append({**row, "origin": f"phase1-dropped:{row['reason']}", "group": group})
    log(f"{len(kept)} files phase 1 dropped join the negatives")
    return [{**r, "label": 0} for r in kept]


def _filter_dropped_rows(config: SnowcoderConfig, partitions: list[str]) -> Iterator[dict]:
    import polars as pl

    for key in partitions:
        source, shard = split_partition_key(key)
        decisions = lineage_part_path(config.data_dir, "decisions", "filter", source, shard)
        dropped = pl.read_parquet(decisions, columns=["doc_id", "kept", "reason"]).filter(
            ~pl.col("kept")
        )
        reasons = dict(zip(dropped["doc_id"], dropped["reason"], strict=True))
        if not reasons:
            continue
        for rows in iter_rows(
            raw_shard_path(config.data_dir, source, shard),
            ["doc_id", "source", "repo", "path", "lang", "content"],
        ):
            for row in rows:
                if row["doc_id"] in reasons and row["content"]:
                    yield {**row, "reason": reasons[row["doc_id"]]}


def _language_table(rows: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Per language: positives and negatives (configured texts count as '')."""
    table: dict[str, dict[str, int]] = {}
    for row in rows:
        counts = table.setdefault(row.get("lang") or "", {"positives": 0, "negatives": 0})
        counts["positives" if row["label"] else "negatives"] += 1
    return dict(sorted(table.items(), key=lambda kv: -sum(kv[1].values())))


def _phase1_rows(config: SnowcoderConfig, partitions: list[str]) -> Iterator[dict[str, Any]]:
    """Phase-1 files (decontaminated) with the signals the proxy needs."""
    import polars as pl

    for key in partitions:
        source, shard = split_partition_key(key)
        signals = pl.read_parquet(
            signals_path(config.data_dir, source, shard), columns=PROXY_FEATURES
        )
        features = {r["doc_id"]: r for r in signals.to_dicts()}
        for rows in iter_rows(
            decontaminated_path(config.data_dir, source, shard),
            ["doc_id", "source", "repo", "path", "lang", "content"],
        ):
            for row in rows:
                yield {**features[row["doc_id"]], **row}


def _external(config: SnowcoderConfig, sources, log: Log) -> list[dict[str, Any]]:
    """Configured texts, minus any that overlap a benchmark (the phase-1 index)."""
    index, out, dropped = benchmark_index(config), [], 0
    for source in sources:
        for text in read_text_source(source):
            if index.find(text):
                dropped += 1
                continue
            key = hashlib.blake2b(text.encode(), digest_size=8).hexdigest()
            out.append(
                {"content": text, "origin": source.path, "group": group_of(key), "doc_id": key}
            )
    if dropped:
        log(f"{dropped} configured texts overlap a benchmark and were left out")
    return out


def _example(row: dict[str, Any], label: int) -> dict[str, Any]:
    return {
        "text": row["content"],
        "lang": row.get("lang") or "",
        "label": label,
        "origin": row["origin"],
        "group": row["group"],
        "doc_id": row["doc_id"],
    }


def load_training_set(data_dir: Path, split: str) -> list[tuple[str, int]]:
    import pyarrow.parquet as pq

    table = pq.read_table(
        training_set_dir(data_dir) / f"{split}.parquet", columns=["text", "label"]
    )
    return list(zip(table["text"].to_pylist(), table["label"].to_pylist(), strict=True))
