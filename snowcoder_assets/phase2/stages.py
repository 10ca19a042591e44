"""Phase-2 stage runners: tokenizer, annotator training set, annotator, scores, top-k corpus.

Each is a plain function of the configuration (the Dagster assets in `assets.py` call them), and
each writes atomically under `data_dir`. Scores are kept per source shard with a completion
marker, so a new shard is scored alone and a retrained annotator rescores everything.
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa

from snowcoder_assets.config import SnowcoderConfig
from snowcoder_assets.io import ParquetBatchWriter, read_json, write_json, write_table
from snowcoder_assets.layout import lineage_part_path
from snowcoder_assets.lineage.schemas import QUALITY_SCHEMA
from snowcoder_assets.phase1.per_file import (
    DECONT_STAGE,
    SIGNALS_STAGE,
    benchmark_index,
    finished_partitions,
    iter_rows,
    stage_path,
)
from snowcoder_assets.phase2.training_set import (
    PROXY_LABEL,
    TRAINING_SET_SCHEMA,
    group_of,
    is_proxy_positive,
    read_text_source,
    split_by_group,
)
from snowcoder_assets.stages import (
    digest,
    global_output_digest,
    is_current,
    output_digest,
    write_marker,
)

Log = Callable[[str], None]
SCORES_STAGE = "quality_scores"
SCORES_SCHEMA = pa.schema(
    [
        ("doc_id", pa.string()),
        ("source", pa.string()),
        ("partition", pa.string()),
        ("repo", pa.string()),
        ("lang", pa.string()),
        ("tokens", pa.int64()),
        ("score", pa.float32()),
    ]
)


def tokenizer_dir(config: SnowcoderConfig) -> Path:
    return config.data_dir / "tokenizer"


def annotator_dir(config: SnowcoderConfig) -> Path:
    return config.data_dir / "quality_annotator"


def training_set_dir(config: SnowcoderConfig) -> Path:
    return config.data_dir / "annotator_training_set"


def topk_dir(config: SnowcoderConfig) -> Path:
    return config.data_dir / "topk_corpus"


# -- what each global stage consumes (its completion marker holds this digest) --------------


def global_input_digests(config: SnowcoderConfig) -> dict[str, Callable[[], str]]:
    """Input digest of each global phase-2 stage, from its upstream markers and its settings."""
    data_dir = config.data_dir

    def upstream(stage: str) -> str | None:
        return global_output_digest(data_dir, stage)

    def scores() -> str:
        parts = finished_partitions(config, DECONT_STAGE)
        return digest(
            SCORES_STAGE,
            [(s, h, output_digest(data_dir, DECONT_STAGE, s, h)) for s, h in parts],
            upstream("quality_annotator"),
            upstream("tokenizer"),
            config.scoring.model_dump(mode="json"),
        )

    return {
        "tokenizer": lambda: digest(
            "tokenizer", config.tokenizer.model_dump(mode="json"), upstream("phase1_corpus")
        ),
        "annotator_training_set": lambda: digest(
            "annotator_training_set",
            config.annotator_data.model_dump(mode="json"),
            upstream("phase1_corpus"),
            config.decontamination.model_dump(mode="json"),
        ),
        "quality_annotator": lambda: digest(
            "quality_annotator",
            config.annotator.model_dump(mode="json"),
            upstream("annotator_training_set"),
        ),
        "quality_scores": scores,
        "topk_corpus": lambda: digest(
            "topk_corpus",
            config.topk.model_dump(mode="json"),
            config.corpus.model_dump(mode="json"),
            upstream("quality_scores"),
        ),
    }


# -- tokenizer ------------------------------------------------------------------------------


def build_tokenizer(config: SnowcoderConfig, log: Log) -> dict[str, Any]:
    """Train a byte-level BPE on a seeded sample of phase-1 documents, or adopt a configured one."""
    from snowcoder_assets.phase1.corpus import corpus_dir
    from snowcoder_assets.tokens.tokenizer import (
        load_tokenizer,
        sample_texts,
        save_tokenizer,
        train_tokenizer,
    )

    settings = config.tokenizer
    if settings.path:
        tokenizer = load_tokenizer(settings.path, settings.trust_remote_code)
        origin = settings.path
    else:
        texts = sample_texts(
            _documents_in_seeded_order(corpus_dir(config), settings.seed), settings.sample_bytes
        )
        tokenizer = train_tokenizer(texts, settings)
        origin = "trained on phase1_corpus"
    save_tokenizer(tokenizer, tokenizer_dir(config))
    log(f"tokenizer ({origin}): {len(tokenizer)} tokens")
    return {"vocab_size": len(tokenizer), "origin": origin}


def _documents_in_seeded_order(folder: Path, seed: int):
    import duckdb

    with duckdb.connect() as con:
        result = con.execute(
            "SELECT text FROM read_parquet(?) ORDER BY md5(? || document_id)",
            [str(folder / "*.parquet"), str(seed)],
        )
        for batch in result.fetch_record_batch(256):
            yield from batch.column(0).to_pylist()


def tokenizer_fingerprint(config: SnowcoderConfig) -> str:
    path = tokenizer_dir(config) / "tokenizer.json"
    return hashlib.blake2b(path.read_bytes(), digest_size=12).hexdigest()


# -- annotator training set -----------------------------------------------------------------


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


def build_training_set(config: SnowcoderConfig, log: Log) -> dict[str, Any]:
    """Write train/validation parquet of (text, label, origin, group); return counts."""
    data = config.annotator_data
    positives, negatives = (
        _Reservoir(data.max_positives, data.seed),
        _Reservoir(data.max_negatives, data.seed + 1),
    )
    for row in _phase1_rows(config):
        row["origin"], row["group"] = "phase1", group_of(f"{row['source']}/{row['repo']}")
        if not data.positives and is_proxy_positive(row):
            positives.offer({**row, "origin": "phase1-proxy"})
        elif not data.negatives:
            negatives.offer(row)
    pos = positives.rows() if not data.positives else _external(config, data.positives, log)
    neg = negatives.rows() if not data.negatives else _external(config, data.negatives, log)
    rows = [_example(r, 1) for r in pos[: data.max_positives]] + [
        _example(r, 0) for r in neg[: data.max_negatives]
    ]
    train, validation = split_by_group(rows, data.validation_fraction)
    split = {"train": train, "validation": validation}
    for name, part in split.items():
        write_table(
            training_set_dir(config) / f"{name}.parquet",
            pa.Table.from_pylist(part, schema=TRAINING_SET_SCHEMA),
        )
    report = {
        "positives": len(pos),
        "negatives": len(neg),
        "train": len(split["train"]),
        "validation": len(split["validation"]),
        "positives_origin": "configured" if data.positives else PROXY_LABEL,
        "negatives_origin": "configured" if data.negatives else "random phase-1 files",
    }
    write_json(training_set_dir(config) / "summary.json", report)
    return report


def _phase1_rows(config: SnowcoderConfig):
    """Phase-1 files (decontaminated) with the signals the proxy needs."""
    import polars as pl

    for source, shard in finished_partitions(config, DECONT_STAGE):
        signals = pl.read_parquet(
            stage_path(config.data_dir, SIGNALS_STAGE, source, shard),
            columns=[
                "doc_id",
                "num_lines",
                "mean_line_length",
                "max_line_length",
                "alnum_fraction",
                "comment_fraction",
            ],
        )
        features = {r["doc_id"]: r for r in signals.to_dicts()}
        for rows in iter_rows(
            stage_path(config.data_dir, DECONT_STAGE, source, shard),
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
        "label": label,
        "origin": row["origin"],
        "group": row["group"],
        "doc_id": row["doc_id"],
    }


def load_training_set(config: SnowcoderConfig, split: str) -> list[tuple[str, int]]:
    import pyarrow.parquet as pq

    table = pq.read_table(training_set_dir(config) / f"{split}.parquet", columns=["text", "label"])
    return list(zip(table["text"].to_pylist(), table["label"].to_pylist(), strict=True))


# -- quality annotator ----------------------------------------------------------------------


def quiet_transformers() -> None:
    """The base encoder has no classification head yet: its load report is expected noise."""
    from transformers.utils import logging

    logging.set_verbosity_error()


def train_quality_annotator(config: SnowcoderConfig, log: Log) -> dict[str, Any]:
    from snowcoder_assets.phase2.annotator import train_annotator

    quiet_transformers()

    train = load_training_set(config, "train")
    validation = load_training_set(config, "validation")
    return train_annotator(train, validation, config.annotator, annotator_dir(config), log)


def annotator_fingerprint(config: SnowcoderConfig) -> str:
    return hashlib.blake2b(
        (annotator_dir(config) / "annotator.json").read_bytes(), digest_size=12
    ).hexdigest()


# -- quality scores -------------------------------------------------------------------------


def scores_path(config: SnowcoderConfig, source: str, shard: str) -> Path:
    return config.data_dir / SCORES_STAGE / source / f"{shard}.parquet"


def scores_input_digest(config: SnowcoderConfig, source: str, shard: str) -> str:
    return digest(
        SCORES_STAGE,
        output_digest(config.data_dir, DECONT_STAGE, source, shard),
        annotator_fingerprint(config),
        tokenizer_fingerprint(config),
        config.scoring.model_dump(mode="json"),
    )


def score_partitions(config: SnowcoderConfig, log: Log) -> dict[str, Any]:
    """Score every phase-1 file of partitions whose inputs changed; count its tokens."""
    from snowcoder_assets.phase1.corpus import format_file
    from snowcoder_assets.phase2.scoring import Scorer
    from snowcoder_assets.tokens.tokenizer import count_tokens, load_tokenizer

    partitions = finished_partitions(config, DECONT_STAGE)
    wanted = {(s, h): scores_input_digest(config, s, h) for s, h in partitions}
    stale = [
        (s, h)
        for (s, h), want in wanted.items()
        if not is_current(config.data_dir, SCORES_STAGE, s, h, want)
    ]
    report = {"partitions": len(partitions), "scored_partitions": len(stale), "files": 0}
    if not stale:
        return report
    quiet_transformers()
    scorer = Scorer(annotator_dir(config), config.annotator.max_length, config.scoring, log=log)
    tokenizer = load_tokenizer(str(tokenizer_dir(config)))
    for i, (source, shard) in enumerate(stale, start=1):
        with ParquetBatchWriter(scores_path(config, source, shard), SCORES_SCHEMA) as out:
            for rows in iter_rows(
                stage_path(config.data_dir, DECONT_STAGE, source, shard),
                ["doc_id", "source", "partition", "repo", "path", "lang", "content"],
            ):
                texts = [r["content"] for r in rows]
                scores = scorer.score(texts)
                tokens = count_tokens(
                    tokenizer, [format_file(r["path"], r["content"]) for r in rows]
                )
                for row, score, n in zip(rows, scores, tokens, strict=True):
                    out.write({**row, "tokens": n, "score": float(score)})
                report["files"] += len(rows)
        write_marker(config.data_dir, SCORES_STAGE, source, shard, wanted[(source, shard)])
        log(f"scored {source}/{shard} ({i}/{len(stale)}), {report['files']} files so far")
    return report


# -- top-k corpus ---------------------------------------------------------------------------


def build_topk_corpus(config: SnowcoderConfig, log: Log) -> dict[str, Any]:
    """Select per language up to the token budget, record `quality`, build the documents."""
    import polars as pl

    from snowcoder_assets.phase1.corpus import build_documents
    from snowcoder_assets.phase2.topk import budget_for, cutoffs, select_topk, summary

    partitions = finished_partitions(config, DECONT_STAGE)
    frame = pl.read_parquet([str(scores_path(config, s, h)) for s, h in partitions])
    budget = budget_for(int(frame["tokens"].sum()), config.topk)
    selected = select_topk(frame.select("doc_id", "lang", "tokens", "score"), budget)
    annotator = f"quality_annotator@{annotator_fingerprint(config)}"
    quality = selected.select(
        "doc_id",
        pl.lit(annotator).alias("annotator"),
        pl.col("score").cast(pl.Float64),
        pl.col("rank").cast(pl.Int64),
        "selected",
        pl.when(pl.col("selected"))
        .then(config.topk.repeats)
        .otherwise(0)
        .cast(pl.Int64)
        .alias("repeats"),
    )
    write_table(
        lineage_part_path(config.data_dir, "quality", "topk", "_corpus", "all"),
        quality.to_arrow().cast(QUALITY_SCHEMA),
    )
    ids = selected.filter(pl.col("selected"))["doc_id"].to_list()
    paths = [str(stage_path(config.data_dir, DECONT_STAGE, s, h)) for s, h in partitions]
    docs = build_documents(
        paths, topk_dir(config), config.corpus.seed, config.corpus.max_document_bytes, doc_ids=ids
    )
    report = {
        "budget_tokens": budget,
        "repeats": config.topk.repeats,
        "selected_files": len(ids),
        "documents": docs.documents,
        "selected_tokens": int(selected.filter(pl.col("selected"))["tokens"].sum()),
        "cutoffs": cutoffs(selected),
        "languages": summary(selected, budget),
    }
    write_json(config.data_dir / "topk_selection.json", report)
    log(f"selected {len(ids)} files, {report['selected_tokens']} of budget {budget} tokens")
    return {**report, "frame": selected}


def read_selection(config: SnowcoderConfig) -> dict[str, Any]:
    return read_json(config.data_dir / "topk_selection.json")
