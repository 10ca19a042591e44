"""The one helper every per-file stage uses to count its decisions and build `decisions` rows."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class StageStats:
    """Counts every stage reports: files in, kept, dropped by reason, bytes kept per language."""

    files_in: int = 0
    kept: int = 0
    bytes_kept: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    kept_by_lang: Counter[str] = field(default_factory=Counter)
    bytes_by_lang: Counter[str] = field(default_factory=Counter)

    def count(self, row: dict[str, Any], kept: bool, reason: str | None) -> None:
        self.files_in += 1
        if kept:
            self.kept += 1
            self.bytes_kept += row["bytes"] or 0
            self.kept_by_lang[row["lang"]] += 1
            self.bytes_by_lang[row["lang"]] += row["bytes"] or 0
        else:
            self.dropped[reason or "unknown"] += 1

    def add(self, other: StageStats) -> None:
        """Fold another partition's counts in (a run may cover several partitions)."""
        self.files_in += other.files_in
        self.kept += other.kept
        self.bytes_kept += other.bytes_kept
        self.dropped.update(other.dropped)
        self.kept_by_lang.update(other.kept_by_lang)
        self.bytes_by_lang.update(other.bytes_by_lang)


def decision(
    row: dict[str, Any], stage: str, kept: bool, reason: str | None, detail: str | None
) -> dict[str, Any]:
    """One `decisions` row: what `stage` did with the file in `row`, and why."""
    return {
        "doc_id": row["doc_id"],
        "stage": stage,
        "kept": kept,
        "reason": reason,
        "detail": detail,
        "partition": row["partition"],
    }
