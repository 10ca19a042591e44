"""Metadata every asset returns, with the same keys (num_rows, num_bytes, tables of counts)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import dagster as dg


def counts_table(
    counts: Mapping[str, int], key_name: str, value_name: str
) -> dg.TableMetadataValue:
    """A two-column table, largest first."""
    schema = dg.TableSchema(
        columns=[dg.TableColumn(key_name, "string"), dg.TableColumn(value_name, "int")]
    )
    rows = sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))
    records = [dg.TableRecord({key_name: str(k), value_name: int(v)}) for k, v in rows]
    return dg.MetadataValue.table(records=records, schema=schema)


def language_table(files: Mapping[str, int], num_bytes: Mapping[str, int]) -> dg.TableMetadataValue:
    schema = dg.TableSchema(
        columns=[
            dg.TableColumn("lang", "string"),
            dg.TableColumn("files", "int"),
            dg.TableColumn("bytes", "int"),
        ]
    )
    langs = sorted(files, key=lambda lang: (-num_bytes.get(lang, 0), str(lang)))
    records = [
        dg.TableRecord({"lang": str(lang), "files": files[lang], "bytes": num_bytes.get(lang, 0)})
        for lang in langs
    ]
    return dg.MetadataValue.table(records=records, schema=schema)


def preview_markdown(rows: list[dict[str, Any]], columns: list[str]) -> dg.MarkdownMetadataValue:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = [str(row.get(c, "")).replace("|", "\\|")[:80] for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return dg.MetadataValue.md("\n".join(lines))


def png_markdown(png: bytes, alt: str) -> dg.MarkdownMetadataValue:
    """A PNG inlined in markdown, so the UI shows the picture with the materialization."""
    import base64

    return dg.MetadataValue.md(f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})")


def figure_png(fig: Any) -> bytes:
    """Render a matplotlib figure to PNG bytes and close it."""
    import io

    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    return buf.getvalue()


def markdown_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """Rows as a GitHub-flavoured Markdown table (cards, metadata, summaries)."""
    if not rows:
        return "(none)\n"
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def cell(value: Any) -> str:
    return "" if value is None else str(value).replace("|", "\\|").replace("\n", " ")
