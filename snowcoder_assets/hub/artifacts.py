"""What each publishable artifact is, how its repository folder is built, and publishing it.

`build_repository` writes the exact folder a publication uploads (a dry run stops there);
`publish_artifact` then hands it to `publish_folder`, which uploads only what the remote lacks.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from snowcoder_assets.config import SnowcoderConfig
from snowcoder_assets.io import digest
from snowcoder_assets.storage import local_dir

Log = Callable[[str], None]
DATASETS = {
    "phase1": ("phase1_corpus", "phase1_corpus"),
    "phase2": ("topk_corpus", "topk_corpus"),
    "phase3": ("synthetic_corpus", "synthetic_corpus"),
}
ARTIFACTS = ("phase1", "phase2", "phase3", "model")


def build_repository(
    config: SnowcoderConfig, artifact: str, repo_id: str, out_dir: Path, log: Log = print
) -> Path:
    """Write the repository `artifact` would publish to `out_dir` (replaced whole)."""
    if artifact not in ARTIFACTS:
        raise ValueError(f"unknown artifact {artifact!r}; expected one of {', '.join(ARTIFACTS)}")
    if artifact == "model":
        return _model_repository(config, repo_id, out_dir)
    from snowcoder_assets.hub.cards import lineage_tables
    from snowcoder_assets.hub.layout import LayoutSpec, dataset_layout

    folder, step = DATASETS[artifact]
    corpus = config.data_dir / folder
    if not any(corpus.rglob("*.parquet")):
        raise FileNotFoundError(f"{corpus} holds no corpus yet: materialize {folder} first")
    if empty := nothing_to_publish(config, artifact):
        raise FileNotFoundError(f"{corpus}: {empty}")
    dataset_layout(
        corpus,
        out_dir,
        LayoutSpec(name=f"snowcoder-{artifact}", recipe_step=step, repo_id=repo_id),
        tokens_by_lang=_tokens_by_lang(config, artifact),
        extra=_facts(config, artifact),
        tables=lineage_tables(config.data_dir),
    )
    log(f"{artifact}: repository written to {out_dir}")
    return out_dir


def publish_artifact(
    config: SnowcoderConfig,
    artifact: str,
    repo_id: str,
    hub: Any,
    *,
    private: bool = False,
    revision: str | None = None,
    dry_run_dir: Path | None = None,
    log: Log = print,
) -> dict[str, Any]:
    """Build the repository, then publish it (or stop after building it, for a dry run)."""
    from snowcoder_assets.hub.publish import publish_folder

    out = dry_run_dir or local_dir(config.data_dir) / "hub" / artifact  # uploads read a folder
    build_repository(config, artifact, repo_id, out, log)
    if dry_run_dir is not None:
        return {"dry_run": str(out), "files": sum(1 for p in out.rglob("*") if p.is_file())}
    summary = publish_folder(
        hub.client(),
        out,
        repo_id,
        repo_type="model" if artifact == "model" else "dataset",
        private=private,
        revision=revision,
        log=log,
    )
    return summary.as_metadata()


def _tokens_by_lang(config: SnowcoderConfig, artifact: str) -> dict[str, int] | None:
    index = config.data_dir / "packed" / artifact / "index.json"
    return json.loads(index.read_text())["tokens_by_lang"] if index.is_file() else None


def _facts(config: SnowcoderConfig, artifact: str) -> dict[str, Any]:
    facts = {
        "configuration hash": digest(config.model_dump(mode="json", exclude={"config_file"})),
        "dedup": f"exact (normalized hash) + MinHash {config.dedup.minhash}",
        "decontamination": (
            f"{config.decontamination.ngram}-gram overlap >= "
            f"{config.decontamination.min_ngram_fraction:.0%} of a task, or verbatim "
            "docstring/solution; benchmarks: "
            + ", ".join(
                (["HumanEval"] if config.decontamination.humaneval else [])
                + [b.name for b in config.decontamination.benchmarks]
            )
        ),
        "snowcoder": _version(),
    }
    if artifact == "phase2":
        facts["selection"] = (
            f"top files per language by quality score up to "
            f"{config.topk.budget_tokens or config.topk.budget_fraction} "
            f"(tokens or fraction), repeated {config.topk.repeats}x in training"
        )
    if artifact == "phase3":
        facts.update(_synthetic_facts(config))
    return facts


def nothing_to_publish(config: SnowcoderConfig, artifact: str) -> str | None:
    """Why a built corpus gives nothing to publish (phase 3 when every synthetic file was
    dropped), or None."""
    import pyarrow.parquet as pq

    if artifact != "phase3":
        return None
    files = list((config.data_dir / DATASETS[artifact][0]).rglob("*.parquet"))
    if files and not sum(pq.read_metadata(p).num_rows for p in files):
        return "the synthetic corpus kept no file (see the `synthetic` view): nothing to publish"
    return None


def _synthetic_facts(config: SnowcoderConfig) -> dict[str, Any]:
    """How phase 3 was made: generator, template, sampling and the funnel of its prompts."""
    from snowcoder_assets.phase3.corpus import funnel
    from snowcoder_assets.phase3.prompts import template_id

    counts = funnel(config.data_dir)
    dropped = ", ".join(f"{reason} {n}" for reason, n in counts["dropped"].items()) or "none"
    return {
        "generation": (
            "OSS-Instruct adapted to pretraining (Magicoder, arXiv 2312.02120): the generator "
            "writes one documented, self-contained file that solves a problem a phase-2 seed "
            "file inspires; then phase-1 filters, exact + near dedup against phases 1-2 and "
            "each other, decontamination"
        ),
        "generator": ", ".join(counts["generators"]) or "-",
        "prompt template": template_id(),
        "sampling": str(config.synthetic.sampling().as_dict()),
        "prompts": (
            f"{counts['prompts']} prompts, {counts['sent']} sent, {counts['kept']} kept; "
            f"dropped: {dropped}"
        ),
        "provenance": "every row carries seed_doc_ids, generator, prompt_id and template_id",
    }


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("snowcoder")
    except PackageNotFoundError:
        return "source checkout"


def final_checkpoint(config: SnowcoderConfig) -> Path:
    """The last phase's final checkpoint (phase 3, else 2, else 1)."""
    for phase in ("phase3", "phase2", "phase1"):
        final = config.data_dir / "checkpoints" / phase / "final"
        if (final / "config.json").is_file():
            return final
    raise FileNotFoundError("no final checkpoint yet: materialize `checkpoints` first")


def _model_repository(config: SnowcoderConfig, repo_id: str, out_dir: Path) -> Path:
    source = final_checkpoint(config)
    tmp = out_dir.with_name(f".{out_dir.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(source, tmp, ignore=shutil.ignore_patterns("trainer_state.pt", "*.tmp"))
    (tmp / "README.md").write_text(model_card(config, source, repo_id))
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.rename(out_dir)
    return out_dir


def model_card(config: SnowcoderConfig, checkpoint: Path, repo_id: str) -> str:
    """Architecture, the phases with their tokens and schedules, throughput, datasets."""
    model = json.loads((checkpoint / "config.json").read_text())
    manifest_file = config.data_dir / "phase_manifest.json"
    manifest = json.loads(manifest_file.read_text()) if manifest_file.is_file() else {"phases": []}
    lines = [
        "---",
        "library_name: transformers",
        "pipeline_tag: text-generation",
        "tags: [code, snowcoder, arctic-snowcoder]",
        "---",
        "",
        f"# {repo_id.split('/')[-1]}",
        "",
        "A code model trained by snowcoder with the Arctic-SnowCoder three-phase recipe "
        "(arXiv 2409.02326): general pretraining on the phase-1 corpus, continued pretraining "
        "on the quality-ranked top-k (phase 2), then synthetic data (phase 3).",
        "",
        "## Architecture",
        "",
        f"Llama: {model.get('num_hidden_layers')} layers, hidden {model.get('hidden_size')}, "
        f"FFN {model.get('intermediate_size')}, {model.get('num_attention_heads')} heads "
        f"({model.get('num_key_value_heads')} KV), vocabulary {model.get('vocab_size')}, "
        f"context {model.get('max_position_embeddings')}, tied embeddings "
        f"{model.get('tie_word_embeddings')}.",
        "",
        "## Training phases",
        "",
        "| phase | tokens | repeats | schedule | final loss | tokens/s | MFU |",
        "|---|---|---|---|---|---|---|",
    ]
    for phase in manifest["phases"]:
        done = _last_metrics(config.data_dir / "checkpoints" / phase["name"] / "metrics.jsonl")
        schedule = phase.get("lr_schedule", {})
        lines.append(
            f"| {phase['name']} | {phase['token_budget']} | {phase['repeats']} | "
            f"{phase.get('skip_reason') or _schedule_text(schedule)} | "
            f"{done.get('loss', '-')} | {round(done.get('tokens_per_s', 0)) or '-'} | "
            f"{format(done['mfu'], '.1%') if 'mfu' in done else '-'} |"
        )
    lines += [
        "",
        "## Data",
        "",
        "Trained on the snowcoder phase-1 corpus, phase-2 top-k corpus"
        + (" and phase-3 synthetic corpus" if _trained(manifest, "phase3") else "")
        + " built from these sources: "
        + ", ".join(f"`{s.name}` ({s.kind})" for s in config.sources)
        + ".",
        "",
        *_evaluation_section(config),
        "## Use",
        "",
        "```python",
        "from transformers import AutoModelForCausalLM, AutoTokenizer",
        f'model = AutoModelForCausalLM.from_pretrained("{repo_id}")',
        f'tokenizer = AutoTokenizer.from_pretrained("{repo_id}")',
        "```",
        "",
    ]
    return "\n".join(lines)


def _evaluation_section(config: SnowcoderConfig) -> list[str]:
    """Greedy pass@1 of every phase from the `evaluation` view (Table 2's shape)."""
    from snowcoder_assets.evaluation.report import (
        comparison,
        markdown,
        pass_at_1_rows,
        skipped_phases,
    )

    rows = pass_at_1_rows(config.data_dir)
    if not rows:
        return ["## Evaluation", "", "Not evaluated yet (materialize `evaluation`).", ""]
    sandboxes = ", ".join(sorted({str(r["sandbox"]) for r in rows}))
    return [
        "## Evaluation",
        "",
        "Greedy pass@1 (%, passed/tasks) of each phase's final checkpoint, prompts with "
        "trailing whitespace stripped, every sample executed in snowcoder's sandbox "
        f"({sandboxes}):",
        "",
        markdown(comparison(rows, skipped_phases(config.data_dir))),
    ]


def _trained(manifest: dict[str, Any], name: str) -> bool:
    return any(p["name"] == name and p.get("data") for p in manifest["phases"])


def _schedule_text(schedule: dict[str, Any]) -> str:
    if not schedule:
        return "-"
    return (
        f"{schedule.get('kind')}: peak {schedule.get('peak_lr')}, warm-up "
        f"{schedule.get('warmup_steps')} steps, final {schedule.get('final_lr')}"
    )


def _last_metrics(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    lines = [line for line in path.read_text().splitlines() if line]
    return json.loads(lines[-1]) if lines else {}
