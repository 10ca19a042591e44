from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from snowcoder_assets.phase1.corpus import CORPUS_SCHEMA
from tests.hub.fake_hub import FakeHub

TOKEN = "hf_SecretTokenForTests0123456789"
LANGS = {"python": 7, "java": 4, "markdown": 2}


def corpus_rows() -> list[dict]:
    rows = []
    for lang, n in LANGS.items():
        for i in range(n):
            text = f"<|file_sep|>{lang}/f{i}.txt\n" + f"{lang} {i}\n" * (i + 1)
            rows.append(
                {
                    "document_id": f"{lang}-{i:03d}",
                    "source": "demo",
                    "repo": f"org/{lang}{i % 3}",
                    "lang": lang,
                    "part": 0,
                    "text": text,
                    "doc_ids": [f"{lang}-{i}-a", f"{lang}-{i}-b"],
                    "num_files": 2,
                    "bytes": len(text.encode()),
                }
            )
    return rows


@pytest.fixture
def corpus_dir(tmp_path: Path) -> Path:
    out = tmp_path / "phase1_corpus"
    out.mkdir()
    rows = corpus_rows()
    # two part files in an order unlike the published one
    pq.write_table(
        pa.Table.from_pylist(rows[::2], schema=CORPUS_SCHEMA), out / "part-00001.parquet"
    )
    pq.write_table(
        pa.Table.from_pylist(rows[1::2], schema=CORPUS_SCHEMA), out / "part-00000.parquet"
    )
    return out


@pytest.fixture
def hub():
    with FakeHub(TOKEN) as server:
        yield server
