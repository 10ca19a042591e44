"""`synthetic_corpus`: prompts sent, responses parsed and filtered, one file per kept response.

Order of work: every seed becomes a prompt (`prompts.py`); prompts not yet in the journal are
sent (in chunks when `budget_tokens` caps the generated tokens); every prompt then gets one
`synthetic` row: kept, or dropped with its reason (parsing, then phase 1's filters, dedup and
decontamination). A prompt the budget left unsent is recorded as `budget_exhausted`. Kept
files are documents like phase 1's (`<|file_sep|>path` + code), one per file, with their
provenance (seed ids, generator, prompt and template id) in the rows.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from snowcoder_assets.config import SnowcoderConfig
from snowcoder_assets.io import doc_id_for, write_table
from snowcoder_assets.languages import EXTENSIONS
from snowcoder_assets.layout import lineage_part_path
from snowcoder_assets.lineage.schemas import CONTAMINATION_SCHEMA, SYNTHETIC_SCHEMA
from snowcoder_assets.phase1.corpus import CORPUS_SCHEMA, format_file
from snowcoder_assets.phase3.generation import (
    Backend,
    PromptRequest,
    Response,
    ResponseJournal,
    journal_name,
)
from snowcoder_assets.phase3.seeds import seeds_path

SOURCE = "synthetic"
BUDGET_CHUNK = 64  # prompts between two looks at the token budget
# Phase 1's document columns, then the provenance a synthetic file carries.
SYNTHETIC_CORPUS_SCHEMA = pa.schema(
    [
        *CORPUS_SCHEMA,
        ("seed_doc_ids", pa.list_(pa.string())),
        ("generator", pa.string()),
        ("prompt_id", pa.string()),
        ("template_id", pa.string()),
    ]
)
Log = Callable[[str], None]


def corpus_dir(data_dir: Path) -> Path:
    return data_dir / "synthetic_corpus"


def corpus_path(data_dir: Path) -> Path:
    return corpus_dir(data_dir) / "synthetic.parquet"


def synthetic_lineage_path(data_dir: Path, table: str) -> Path:
    return lineage_part_path(data_dir, table, "synthetic", "_corpus", "all")


def funnel(data_dir: Path) -> dict[str, Any]:
    """Prompts, sent, kept and dropped by reason, from the `synthetic` view: what the demo
    prints and the dataset card tells."""
    from snowcoder_assets.lineage.store import query

    rows = query(data_dir, "select_synthetic_funnel")
    dropped: Counter[str] = Counter()
    for row in rows:
        if not row["kept"]:
            dropped[row["reason"]] += row["prompts"]
    return {
        "prompts": sum(r["prompts"] for r in rows),
        "sent": sum(r["prompts"] for r in rows if r["reason"] != "budget_exhausted"),
        "kept": sum(r["prompts"] for r in rows if r["kept"]),
        "dropped": dict(dropped.most_common()),
        "generators": sorted({r["generator"] for r in rows}),
    }


def journal_path(data_dir: Path, generator: str) -> Path:
    """One journal per generator, so a new model never reuses another model's answers."""
    return data_dir / "synthetic_responses" / journal_name(generator)


def outputs(data_dir: Path) -> list[Path]:
    return [
        corpus_path(data_dir),
        *(synthetic_lineage_path(data_dir, t) for t in ("synthetic", "contamination")),
    ]


def read_seeds(data_dir: Path) -> list[dict[str, Any]]:
    return pq.read_table(seeds_path(data_dir)).to_pylist()


def send_missing(
    requests: list[PromptRequest],
    journal: ResponseJournal,
    backend: Backend,
    config: SnowcoderConfig,
    log: Log,
) -> tuple[dict[str, int], dict[str, Response]]:
    """Send the prompts the journal lacks, within the token budget; what was sent, and every
    response the journal then holds."""
    settings = config.synthetic
    done = journal.read()
    pending = [r for r in requests if r.prompt_id not in done]
    spent = sum(r.completion_tokens for r in done.values())
    log(
        f"{len(requests)} prompts: {len(requests) - len(pending)} answered before, "
        f"{len(pending)} to send with {backend.generator}"
    )
    budget = settings.budget_tokens
    chunk = len(pending) if budget is None else BUDGET_CHUNK
    sent = 0
    while pending and (budget is None or spent < budget):
        batch, pending = pending[:chunk], pending[chunk:]
        backend.generate(batch, settings.sampling(), journal, log)
        sent += len(batch)
        done = journal.read()
        spent = sum(r.completion_tokens for r in done.values())
    if pending:
        log(f"budget of {budget} generated tokens reached: {len(pending)} prompts not sent")
    return {"sent": sent, "unsent": len(pending), "generated_tokens": spent}, done


def build_synthetic_corpus(
    config: SnowcoderConfig, backend: Backend, partitions: list[str], log: Log
) -> dict[str, Any]:
    """Generate what is missing, then parse, filter and write corpus and lineage."""
    from snowcoder_assets.phase3.prompts import build_request, template_id

    data_dir, settings = config.data_dir, config.synthetic
    seeds = read_seeds(data_dir)
    requests = [build_request(s, settings.system_message, settings.sampling()) for s in seeds]
    journal = ResponseJournal(journal_path(data_dir, backend.generator))
    sending, responses = send_missing(requests, journal, backend, config, log)
    template = template_id()
    rows, files = _parse_all(seeds, requests, responses, backend.generator, template, config)
    evidence = _filter(config, files, partitions)
    _write(data_dir, files, rows, evidence, template)
    reasons = Counter(r["reason"].split(":")[0] for r in rows if not r["kept"])
    kept = sum(r["kept"] for r in rows)
    log(f"phase 3 funnel: {len(rows)} prompts, {kept} kept, dropped {dict(reasons)}")
    return {
        "prompts": len(rows),
        "kept": kept,
        "dropped_by_reason": dict(reasons),
        "kept_by_language": dict(Counter(r["lang"] for r in rows if r["kept"])),
        "kept_tokens": sum(r["completion_tokens"] for r in rows if r["kept"]),
        "journal": str(journal.path),
        **sending,
    }


def _parse_all(
    seeds: list[dict],
    requests: list[PromptRequest],
    responses: dict[str, Response],
    generator: str,
    template: str,
    config: SnowcoderConfig,
) -> tuple[list[dict], list[dict]]:
    """A `synthetic` row per prompt; the files whose response held usable code."""
    from snowcoder_assets.phase3.parse import extract_code

    sampling = json.dumps(config.synthetic.sampling().as_dict(), sort_keys=True)
    rows, files = [], []
    for seed, request in zip(seeds, requests, strict=True):
        response = responses.get(request.prompt_id)
        doc_id = doc_id_for(SOURCE, generator, request.prompt_id)
        row = {
            "doc_id": doc_id,
            "seed_doc_ids": [seed["doc_id"]],
            "generator": generator,
            "prompt_id": request.prompt_id,
            "kept": False,
            "lang": seed["lang"],
            "template_id": template,
            "sampling": sampling,
            "finish_reason": response.finish_reason if response else None,
            "prompt_tokens": response.prompt_tokens if response else 0,
            "completion_tokens": response.completion_tokens if response else 0,
        }
        rows.append(row)
        if response is None:
            row.update(reason="budget_exhausted", detail="not sent: budget_tokens reached")
            continue
        parsed = extract_code(response, seed["lang"])
        syntax = f"syntax {parsed.syntax}" if parsed.code is not None else ""
        row.update(reason=parsed.reason, detail=parsed.detail or syntax)
        if parsed.code is not None:
            ext = EXTENSIONS.get(seed["lang"], ("",))[0]
            path = f"{request.prompt_id}{ext}"
            files.append(
                {
                    "doc_id": doc_id,
                    "lang": seed["lang"],
                    "path": path,
                    "repo": generator,
                    "code": parsed.code,
                    "row": row,
                }
            )
    return rows, files


def _filter(config: SnowcoderConfig, files: list[dict], partitions: list[str]) -> list[dict]:
    """Mark each file's row kept or dropped by phase 1's machinery; the contamination rows."""
    from snowcoder_assets.phase3.filtering import apply_filters

    evidence = []
    for file, verdict in zip(files, apply_filters(config, files, partitions), strict=True):
        row = file["row"]
        if verdict.reason is None:
            row["kept"] = True
        else:
            row.update(reason=verdict.reason, detail=verdict.detail)
            evidence += verdict.evidence or []
    return evidence


def _write(
    data_dir: Path, files: list[dict], rows: list[dict], evidence: list[dict], template: str
) -> None:
    documents = []
    for file in files:
        row = file["row"]
        if not row["kept"]:
            continue
        text = format_file(f"{file['repo']}/{file['path']}", file["code"])
        documents.append(
            {
                "document_id": file["doc_id"],
                "source": SOURCE,
                "repo": file["repo"],
                "lang": file["lang"],
                "part": 0,
                "text": text,
                "doc_ids": [file["doc_id"]],
                "num_files": 1,
                "bytes": len(text.encode("utf-8")),
                "seed_doc_ids": row["seed_doc_ids"],
                "generator": row["generator"],
                "prompt_id": row["prompt_id"],
                "template_id": template,
            }
        )
    write_table(corpus_path(data_dir), pa.Table.from_pylist(documents, SYNTHETIC_CORPUS_SCHEMA))
    write_table(
        synthetic_lineage_path(data_dir, "synthetic"), pa.Table.from_pylist(rows, SYNTHETIC_SCHEMA)
    )
    write_table(
        synthetic_lineage_path(data_dir, "contamination"),
        pa.Table.from_pylist(evidence, CONTAMINATION_SCHEMA),
    )
