"""`quality_scores`: every phase-1 file's annotator score and token count, per source shard.

A run loads the annotator and the tokenizer once and scores each of its partitions, logging
progress with an ETA; a new shard is scored alone, a retrained annotator rescores them all.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa

from snowcoder_assets.config import SnowcoderConfig
from snowcoder_assets.io import ParquetBatchWriter, iter_rows
from snowcoder_assets.layout import annotator_dir, scores_path, tokenizer_dir
from snowcoder_assets.lineage.decisions import StageStats
from snowcoder_assets.phase1.corpus import format_file
from snowcoder_assets.phase1.decontaminated_files import decontaminated_path

Log = Callable[[str], None]
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
COLUMNS = ["doc_id", "source", "partition", "repo", "path", "lang", "bytes", "content"]
PROGRESS_EVERY_S = 10.0


class PartitionScorer:
    """The annotator and tokenizer of a configuration, loaded once for a run's partitions."""

    def __init__(self, config: SnowcoderConfig, log: Log) -> None:
        from snowcoder_assets.phase2.quality_annotator import quiet_transformers
        from snowcoder_assets.phase2.scoring import Scorer
        from snowcoder_assets.tokens.tokenizer import load_tokenizer

        quiet_transformers()
        self.config, self.log = config, log
        data_dir = config.data_dir
        self.scorer = Scorer(
            annotator_dir(data_dir), config.annotator.max_length, config.scoring, log=log
        )
        self.tokenizer = load_tokenizer(str(tokenizer_dir(data_dir)))

    def score(self, source: str, shard: str) -> tuple[StageStats, Path]:
        """Score the partition's files into its scores file; counts and the file written."""
        from snowcoder_assets.tokens.tokenizer import count_tokens

        stats, target = StageStats(), scores_path(self.config.data_dir, source, shard)
        start = last = time.perf_counter()
        with ParquetBatchWriter(target, SCORES_SCHEMA) as out:
            for rows in iter_rows(
                decontaminated_path(self.config.data_dir, source, shard), COLUMNS
            ):
                scores = self.scorer.score([r["content"] for r in rows])
                tokens = count_tokens(
                    self.tokenizer, [format_file(r["path"], r["content"]) for r in rows]
                )
                for row, score, n in zip(rows, scores, tokens, strict=True):
                    out.write({**row, "tokens": n, "score": float(score)})
                    stats.count(row, True, None)
                if time.perf_counter() - last > PROGRESS_EVERY_S:
                    last = time.perf_counter()
                    self.log(
                        f"quality_scores {source}/{shard}: {stats.files_in} files scored "
                        f"({last - start:.0f}s)"
                    )
        return stats, target
