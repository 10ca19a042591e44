"""pass@1 by phase and benchmark in the shape of the paper's Table 2, from the lineage store.

One function makes the rows (the `select_evaluation_pass_at_1` query) and one renders them;
the asset's metadata, the model card and the demo's summary all show the same table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from snowcoder_assets.metadata import markdown_table

TINY_NOTE = (
    "the demo's checkpoints are tiny models trained for minutes on a CPU: pass@1 near 0 is "
    "their true score, not a harness fault (the self-test shows the harness works)"
)
PHASE_TITLES = {"phase1": "phase 1 only", "phase2": "+ phase 2", "phase3": "+ phase 3"}
# arXiv 2409.02326 Table 2 (greedy pass@1, %), for the reader's scale at 1.36B / 555B tokens.
PAPER = {
    "phase1": {"humaneval+": 14.0, "mbpp+": 27.8, "evoeval": 7.4, "bigcodebench": 10.3},
    "phase2": {"humaneval+": 21.3, "mbpp+": 34.7, "evoeval": 12.8, "bigcodebench": 12.3},
    "phase3": {"humaneval+": 28.0, "mbpp+": 42.9, "evoeval": 18.0, "bigcodebench": 19.4},
}


def skipped_phases(data_dir: Path) -> dict[str, str]:
    """Phases the last evaluation did not evaluate, with why (from its results file)."""
    import json

    results = data_dir / "evaluation" / "results.json"
    return json.loads(results.read_text()).get("skipped", {}) if results.is_file() else {}


def pass_at_1_rows(data_dir: Path) -> list[dict[str, Any]]:
    from snowcoder_assets.lineage.store import query

    return query(data_dir, "select_evaluation_pass_at_1")


def comparison(
    rows: Sequence[Mapping[str, Any]], skipped: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """One row per phase, one column per benchmark: pass@1 in percent and passed/tasks."""
    benchmarks = sorted({r["benchmark"] for r in rows})
    table = []
    for phase, title in PHASE_TITLES.items():
        mine = {r["benchmark"]: r for r in rows if r["phase"] == phase}
        if not mine and phase not in (skipped or {}):
            continue
        line: dict[str, Any] = {"phase": title}
        for name in benchmarks:
            r = mine.get(name)
            line[name] = (
                f"{r['pass_at_1']:.1f} ({r['passed']}/{r['tasks']})"
                if r
                else (skipped or {}).get(phase, "-")
            )
        table.append(line)
    return table


def markdown(table: Sequence[Mapping[str, Any]]) -> str:
    return markdown_table(table) if table else "(no checkpoint evaluated)\n"


def summary_lines(config) -> list[str]:
    """The demo's closing words on evaluation: the table, the sandbox, and what it means."""
    rows = pass_at_1_rows(config.data_dir)
    if not rows:
        return []
    sandboxes = ", ".join(sorted({str(r["sandbox"]) for r in rows}))
    lines = ["", f"evaluation (greedy pass@1 %, sandbox {sandboxes}; the `evaluation` view):"]
    table = comparison(rows, skipped_phases(config.data_dir))
    lines += ["  " + line for line in markdown(table).splitlines()]
    if max(r["pass_at_1"] for r in rows) < 1.0 and config.training.preset == "demo":
        lines.append(f"  note: {TINY_NOTE}")
    return lines
