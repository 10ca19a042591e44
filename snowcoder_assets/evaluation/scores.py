"""pass@k (the unbiased estimator of Chen et al., arXiv 2107.03374) and per-benchmark totals.

With greedy decoding there is one sample per task and pass@1 is the share of tasks passed; a
samples file may hold n samples per task, and then pass@1 per task is c / n, averaged.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from math import comb


def pass_at_k(n: int, c: int, k: int) -> float:
    """P(at least one of k samples drawn from n, c of them correct, passes)."""
    if not 0 <= c <= n or k < 1 or n < 1:
        raise ValueError(f"pass@k needs 0 <= c <= n, n >= 1, k >= 1 (n={n}, c={c}, k={k})")
    if k > n:
        raise ValueError(f"pass@{k} needs at least {k} samples per task, got {n}")
    if n - c < k:
        return 1.0
    return 1.0 - comb(n - c, k) / comb(n, k)


def mean_pass_at_k(per_task: Mapping[str, tuple[int, int]], k: int = 1) -> float:
    """The mean over tasks of pass@k, from (samples, correct) per task."""
    if not per_task:
        return 0.0
    return sum(pass_at_k(n, c, k) for n, c in per_task.values()) / len(per_task)


def tally(rows: Iterable[Mapping]) -> dict[str, tuple[int, int]]:
    """(samples, correct) per task_id from rows with `task_id` and `passed`."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for row in rows:
        counts[row["task_id"]][0] += 1
        counts[row["task_id"]][1] += bool(row["passed"])
    return {task: (n, c) for task, (n, c) in counts.items()}
