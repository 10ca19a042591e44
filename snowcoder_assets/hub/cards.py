"""Dataset cards: YAML front matter the Hub and `datasets` understand, and a generated body."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from snowcoder_assets.metadata import markdown_table

# The Hub's `size_categories` buckets, by number of rows (documents).
SIZE_BUCKETS = (
    (1_000, "n<1K"),
    (10_000, "1K<n<10K"),
    (100_000, "10K<n<100K"),
    (1_000_000, "100K<n<1M"),
    (10_000_000, "1M<n<10M"),
    (100_000_000, "10M<n<100M"),
    (1_000_000_000, "100M<n<1B"),
    (10_000_000_000, "1B<n<10B"),
    (100_000_000_000, "10B<n<100B"),
    (1_000_000_000_000, "100B<n<1T"),
)
DEFAULT_TAGS = ("code", "arctic-snowcoder", "snowcoder", "pretraining")


@dataclass
class LangStats:
    """What one config holds: shards, documents, source files, bytes and (when known) tokens."""

    shards: int = 0
    documents: int = 0
    files: int = 0
    bytes: int = 0
    tokens: int | None = None


@dataclass
class CardInfo:
    """Everything a dataset card says; `extra` holds named facts and `tables` named row lists."""

    name: str
    recipe_step: str
    license: str = "other"
    configs: dict[str, LangStats] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, Sequence[Mapping[str, Any]]] = field(default_factory=dict)
    tags: Sequence[str] = DEFAULT_TAGS


def size_category(rows: int) -> str:
    for limit, label in SIZE_BUCKETS:
        if rows < limit:
            return label
    return "n>1T"


def front_matter(info: CardInfo) -> dict[str, Any]:
    total = info.configs.get("default", LangStats()).documents
    return {
        "pretty_name": info.name,
        "license": info.license,
        "task_categories": ["text-generation"],
        "size_categories": [size_category(total)],
        "tags": list(info.tags),
        "configs": [
            {
                "config_name": name,
                "data_files": [{"split": "train", "path": f"data/{name}/*.parquet"}],
                **({"default": True} if name == "default" else {}),
            }
            for name in info.configs
        ],
    }


def render_card(info: CardInfo, repo_id: str = "NAMESPACE/NAME") -> str:
    """The whole README.md: front matter between `---` lines, then the body."""
    header = yaml.safe_dump(front_matter(info), sort_keys=False, allow_unicode=True)
    return f"---\n{header}---\n\n{_body(info, repo_id)}"


def _body(info: CardInfo, repo_id: str) -> str:
    parts = [
        f"# {info.name}\n",
        f"Made by the `{info.recipe_step}` step of the Arctic-SnowCoder recipe "
        "(arXiv 2409.02326) as built by the SnowCoder data factory.\n",
        "## Configurations\n",
        markdown_table(
            [
                {
                    "config": name,
                    "shards": s.shards,
                    "documents": s.documents,
                    "files": s.files,
                    "bytes": s.bytes,
                    "tokens": "—" if s.tokens is None else s.tokens,
                }
                for name, s in info.configs.items()
            ]
        ),
        "## How to load\n",
        "```python\nimport datasets\n\n"
        f'ds = datasets.load_dataset("{repo_id}", name="default", split="train")\n'
        f'python_only = datasets.load_dataset("{repo_id}", name="python", split="train")\n```\n',
    ]
    if info.extra:
        parts += [
            "## Facts\n",
            "\n".join(f"- **{k}**: `{v}`" for k, v in info.extra.items()) + "\n",
        ]
    for title, rows in info.tables.items():
        parts += [f"## {title}\n", markdown_table(rows)]
    return "\n".join(parts)


def lineage_tables(data_dir) -> dict[str, list[dict[str, Any]]]:
    """The card's audit tables from the lineage store: per-stage funnel and drop reasons."""
    from snowcoder_assets.lineage.store import query

    return {
        "Per-stage funnel": query(data_dir, "select_stage_funnel"),
        "Drop reasons": query(data_dir, "select_drop_reasons"),
    }
