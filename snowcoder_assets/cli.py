"""`snowcoder`: run the demo, the UI, part of the graph, and ask the lineage store questions."""

from __future__ import annotations

import argparse
import atexit
import json
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from snowcoder_assets.config import CONFIG_ENV_VAR, ConfigError, SnowcoderConfig, load_config
from snowcoder_assets.layout import lineage_db_path
from snowcoder_assets.orchestration.code_server import LaunchError

DEMO_SELECTION = "*"  # publishing included: with no [hub] namespace it writes a dry run


def main(argv: Sequence[str] | None = None) -> int:
    warnings.filterwarnings("ignore", message=".*is currently in beta.*")  # Dagster's own API use
    parser = _parser()
    args = parser.parse_args(argv)
    if args.config:  # child processes (dagster dev, run workers) read the same file
        os.environ[CONFIG_ENV_VAR] = os.path.abspath(args.config)
    try:
        needs_config = args.command not in ("score", "evaluate")
        config = load_config(args.config) if needs_config else None
        return int(args.handler(args, config) or 0)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (ValueError, LookupError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except LaunchError as exc:  # a run the instance refused, a code location that fails to load
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="snowcoder", description=__doc__)
    parser.add_argument(
        "--config", help="configuration file (default: $SNOWCODER_CONFIG or ./snowcoder.toml)"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="materialize the whole graph on the configured sources")
    demo.set_defaults(handler=_demo)

    ui = sub.add_parser("ui", help="start the Dagster UI (dagster dev) on the project instance")
    ui.add_argument("--host", default="127.0.0.1")
    ui.add_argument("--port", type=int, default=3000)
    ui.set_defaults(handler=_ui)

    mat = sub.add_parser("materialize", help="materialize a Dagster asset selection")
    mat.add_argument("--select", default="*", help="Dagster selection, e.g. raw_files or '*'")
    mat.add_argument(
        "--all-partitions",
        action="store_true",
        help="re-run everything selected, not only what is missing or out of date",
    )
    mat.set_defaults(handler=_materialize)

    disc = sub.add_parser(
        "discover", help="register new source shards as partitions, report changed ones"
    )
    disc.set_defaults(handler=_discover)

    explain = sub.add_parser("explain", help="a file's whole history, by <repo>/<path> or doc_id")
    explain.add_argument("ref")
    explain.set_defaults(handler=_explain)

    score = sub.add_parser("score", help="add a quality `score` to every line of a jsonl file")
    score.add_argument("--annotator", required=True, help="a quality_annotator model folder")
    score.add_argument("input", help="jsonl with a `content` field on every line")
    score.add_argument("--output", help="where to write (default: INPUT with .scored.jsonl)")
    score.add_argument("--batch-size", type=int, default=64)
    score.set_defaults(handler=_score)

    pub = sub.add_parser(
        "publish", help="publish phase1 | phase2 | phase3 | model to the Hugging Face Hub"
    )
    pub.add_argument("artifact", choices=["phase1", "phase2", "phase3", "model"])
    pub.add_argument("--repo-id", required=True, help="NAMESPACE/NAME")
    pub.add_argument("--private", action="store_true")
    pub.add_argument("--revision", help="branch to publish to (created when missing)")
    pub.add_argument("--dry-run", metavar="DIR", help="write the repository to DIR, upload nothing")
    pub.set_defaults(handler=_publish)

    from snowcoder_assets.evaluation.samples import add_parser as add_evaluate

    add_evaluate(sub)

    stats = sub.add_parser("stats", help="files, kept and dropped per stage, with drop reasons")
    stats.set_defaults(handler=_stats)
    return parser


def _materialize(args: argparse.Namespace, config: SnowcoderConfig) -> int:
    server = _early_code_server(config)
    from snowcoder_assets.orchestration.materialize import materialize

    outcome = materialize(config, args.select, args.all_partitions, server=server)
    print(
        f"{'done' if outcome.ok else 'FAILED'} in {outcome.seconds:.1f}s "
        f"({len(outcome.runs)} runs; runs are recorded in {_instance_home(config)})"
    )
    return 0 if outcome.ok else 1


def _instance_home(config: SnowcoderConfig) -> Path:
    from snowcoder_assets.orchestration.instance import instance_home

    return instance_home(config)


def _early_code_server(config: SnowcoderConfig):
    """Started before Dagster is imported here, so it loads while this process does; stopped
    by the materialization (or with this process, whatever happens)."""
    from snowcoder_assets.orchestration.code_server import early_code_server

    server = early_code_server(config)
    if server is not None:
        atexit.register(server.stop)
    return server


def _demo(args: argparse.Namespace, config: SnowcoderConfig) -> int:
    server = _early_code_server(config)
    from snowcoder_assets.orchestration.materialize import materialize

    print(f"snowcoder demo: configuration {config.config_file}", flush=True)
    outcome = materialize(config, DEMO_SELECTION, server=server)
    print(f"\nmaterialized in {outcome.seconds:.1f}s ({len(outcome.runs)} runs)\n")
    _stats(args, config)
    _print_annotator(config)
    _print_selection(config)
    _print_synthetic(config)
    _print_training(config)
    _print_evaluation(config)
    db = lineage_db_path(config.data_dir)
    print(f"\ndata:          {config.data_dir}")
    print(f"runs:          {_instance_home(config)} (the Dagster instance of this data_dir)")
    print(f'lineage store: {db}   (try: duckdb {db} "SELECT * FROM file_status LIMIT 5")')
    print("explain file:  .venv/bin/snowcoder explain <repo>/<path>")
    print("open the UI:   make ui   (or .venv/bin/snowcoder ui; then http://127.0.0.1:3000)")
    if outcome.ok:
        _print_dry_runs(config)
    return 0 if outcome.ok else 1


def _print_dry_runs(config: SnowcoderConfig) -> None:
    """Where the hub assets wrote their dry runs, and how to publish for real."""
    from snowcoder_assets.hub.artifacts import ARTIFACTS
    from snowcoder_assets.layout import hub_dry_run_dir

    print("\nHub dry run (no [hub] namespace configured, nothing uploaded):")
    for artifact in ARTIFACTS:
        out = hub_dry_run_dir(config.data_dir, artifact)
        files = sum(1 for p in out.rglob("*") if p.is_file()) if out.is_dir() else 0
        if not files:
            print(f"  {artifact}: nothing to publish (no files kept)")
            continue
        print(f"  {artifact}: {files} files in {out}")
        print(
            f"    publish: HF_TOKEN=... .venv/bin/snowcoder publish {artifact} "
            f"--repo-id YOUR_NAMESPACE/snowcoder-{artifact}"
        )


def _ui(args: argparse.Namespace, config: SnowcoderConfig) -> int:
    from snowcoder_assets.ui import run_ui

    os.environ[CONFIG_ENV_VAR] = str(config.config_file)  # dagster dev loads the same file
    _discover_quietly(config)  # partitions exist before anyone clicks "Materialize all"
    return run_ui(args.host, args.port)


def _discover_quietly(config: SnowcoderConfig) -> None:
    from snowcoder_assets.orchestration.instance import open_instance
    from snowcoder_assets.raw.discovery import discover_and_register

    found = discover_and_register(config, open_instance(config))
    print(f"{len(found.shards)} shards registered ({len(found.new_partitions)} new)")


def _discover(_args: argparse.Namespace, config: SnowcoderConfig) -> int:
    from snowcoder_assets.orchestration.instance import open_instance
    from snowcoder_assets.raw.discovery import discover_and_register

    found = discover_and_register(config, open_instance(config))
    new, changed = set(found.new_partitions), found.changed_keys
    for shard in found.shards:
        key = shard.partition_key
        state = "new" if key in new else "changed" if key in changed else "unchanged"
        print(
            f"{key}\t{len(shard.unit_keys)} units\t{shard.num_files} files\t"
            f"{shard.num_bytes / 1e6:.1f} MB\t{state}"
        )
    return 0


def _explain(args: argparse.Namespace, config: SnowcoderConfig) -> int:
    from snowcoder_assets.lineage.store import query

    matches = query(config.data_dir, "select_file_matches", ref=args.ref)
    if not matches:
        return _explain_synthetic(config, args.ref)
    for file in matches:
        print(f"{file['repo']}/{file['path']}")
        for key in ("doc_id", "source", "partition", "lang", "bytes", "content_sha"):
            print(f"  {key:<12} {file[key]}")
        for d in query(config.data_dir, "select_file_decisions", doc_id=file["doc_id"]):
            verdict = "kept" if d["kept"] else "DROPPED"
            why = f": {d['reason']}" if d["reason"] else ""
            detail = f" ({d['detail']})" if d["detail"] else ""
            print(f"  [{d['stage']}] {verdict}{why}{detail}")
        for rel in query(config.data_dir, "select_file_related", doc_id=file["doc_id"]):
            print(f"  [{rel['table']}] {rel['row']}")
    return 0


def _explain_synthetic(config: SnowcoderConfig, ref: str) -> int:
    """A phase-3 file (doc_id or prompt_id): its prompt's fate and the seeds it came from."""
    from snowcoder_assets.lineage.store import query

    rows = query(config.data_dir, "select_synthetic_matches", ref=ref)
    if not rows:
        print(
            f"no file matches {ref!r} (give <repo>/<path>, a doc_id or a synthetic prompt_id)",
            file=sys.stderr,
        )
        return 1
    for row in rows:
        verdict = "kept" if row["kept"] else f"DROPPED: {row['reason']}"
        detail = f" ({row['detail']})" if row["detail"] else ""
        print(f"synthetic {row['doc_id']} ({row['lang']}): {verdict}{detail}")
        for key in ("generator", "prompt_id", "template_id", "sampling", "finish_reason"):
            print(f"  {key:<14} {row[key]}")
        print(f"  {'tokens':<14} {row['prompt_tokens']} prompt, {row['completion_tokens']} out")
        for seed in row["seed_doc_ids"]:
            for file in query(config.data_dir, "select_file_matches", ref=seed):
                print(f"  seed           {file['repo']}/{file['path']} ({seed})")
    return 0


def _score(args: argparse.Namespace, _config: Any) -> int:
    from snowcoder_assets.phase2.scoring import ScoringConfig, score_jsonl

    source = Path(args.input)
    if not source.is_file():
        raise FileNotFoundError(f"{source}: no such file")
    output = Path(args.output) if args.output else source.with_suffix(".scored.jsonl")
    count = score_jsonl(args.annotator, source, output, ScoringConfig(batch_size=args.batch_size))
    print(f"scored {count} lines -> {output}")
    return 0


def _publish(args: argparse.Namespace, config: SnowcoderConfig) -> int:
    """Endpoint and token come from HF_ENDPOINT / HF_TOKEN; the token is never printed."""
    from snowcoder_assets.hub.artifacts import publish_artifact
    from snowcoder_assets.hub.resources import HubResource, PublishError

    hub = HubResource(
        **{
            k: v
            for k, v in (
                ("endpoint", os.environ.get("HF_ENDPOINT")),
                ("token", os.environ.get("HF_TOKEN")),
            )
            if v
        }
    )
    dry_run = Path(args.dry_run) if args.dry_run else None
    try:
        result = publish_artifact(
            config,
            args.artifact,
            args.repo_id,
            hub,
            private=args.private,
            revision=args.revision,
            dry_run_dir=dry_run,
        )
    except PublishError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2, default=str))
    if dry_run:
        print(
            f"publish for real: .venv/bin/snowcoder publish {args.artifact} "
            f"--repo-id {args.repo_id}"
        )
    return 0


def _stats(_args: argparse.Namespace, config: SnowcoderConfig) -> int:
    from snowcoder_assets.lineage.store import query

    _print_table(query(config.data_dir, "select_stage_funnel"), "per-stage funnel")
    _print_table(query(config.data_dir, "select_drop_reasons"), "drop reasons")
    return 0


def _print_annotator(config: SnowcoderConfig) -> None:
    """The annotator against the baselines on the quality eval set (quality_yardstick)."""
    from snowcoder_assets.layout import annotator_eval_path
    from snowcoder_assets.phase2.quality_yardstick import margin

    path = annotator_eval_path(config.data_dir)
    if not path.is_file():
        return
    result = json.loads(path.read_text())
    if "skipped" in result:
        print(f"\nphase-2 annotator eval: skipped ({result['skipped']})")
        return
    print(
        f"\nphase-2 annotator on the quality eval set ({result['eval_rows']} snippets from "
        f"{len(result['packages'])} packages the corpus does not read), ROC-AUC:"
    )
    methods = {"annotator": result["annotator"], **result["baselines"]}
    rows = [{"method": name, "roc_auc": m["roc_auc"]} for name, m in methods.items()]
    title = f"annotator vs the best baseline ({result['best_baseline']}): {margin(result):+.4f}"
    _print_table(rows, title)


def _print_selection(config: SnowcoderConfig) -> None:
    """The phase-2 selection per language (the histograms are in the UI, on topk_corpus)."""
    from snowcoder_assets.layout import topk_selection_path

    path = topk_selection_path(config.data_dir)
    if not path.is_file():
        return

    report = json.loads(path.read_text())
    print(
        f"\nphase 2: {report['selected_tokens']} of budget {report['budget_tokens']} tokens, "
        f"{report['selected_files']} files, repeated {report['repeats']}x in training"
    )
    rows = [
        {
            "lang": lang,
            "available_tokens": v["available_tokens"],
            "selected_tokens": v["selected_tokens"],
            "selected_files": v["selected_files"],
            "score_cutoff": "-" if v["cutoff"] is None else f"{v['cutoff']:.3f}",
        }
        for lang, v in sorted(
            report["languages"]["languages"].items(), key=lambda kv: -kv[1]["available_tokens"]
        )
    ]
    _print_table(rows, "per language")


def _print_synthetic(config: SnowcoderConfig) -> None:
    """The phase-3 funnel: prompts sent, kept, dropped by reason; why phase 3 did not train."""
    from snowcoder_assets.phase3.corpus import funnel, synthetic_lineage_path

    if not synthetic_lineage_path(config.data_dir, "synthetic").is_file():
        return  # phase 3 never ran
    counts = funnel(config.data_dir)
    dropped = ", ".join(f"{reason} {n}" for reason, n in counts["dropped"].items())
    print(
        f"\nphase 3: {counts['prompts']} prompts, {counts['sent']} sent, {counts['kept']} kept"
        + (f"; dropped: {dropped}" if dropped else "")
    )
    manifest = config.data_dir / "phase_manifest.json"
    if manifest.is_file():
        phase3 = json.loads(manifest.read_text())["phases"][-1]
        if phase3.get("skip_reason"):
            print(f"phase 3 training skipped: {phase3['skip_reason']}")


def _print_training(config: SnowcoderConfig) -> None:
    """First and last loss of every trained phase, and where its final checkpoint is."""
    rows = []
    for phase in ("phase1", "phase2", "phase3"):
        folder = config.data_dir / "checkpoints" / phase
        metrics = folder / "metrics.jsonl"
        if not metrics.is_file():
            continue
        records = [json.loads(line) for line in metrics.read_text().splitlines() if line]
        if records:
            rows.append(
                {
                    "phase": phase,
                    "steps": records[-1]["step"],
                    "first_loss": round(records[0]["loss"], 3),
                    "last_loss": round(records[-1]["loss"], 3),
                    "tokens_per_s": round(records[-1]["tokens_per_s"]),
                    "final": folder / "final",
                }
            )
    if rows:
        print()
        _print_table(rows, "training (AutoModelForCausalLM.from_pretrained(final) loads it)")


def _print_evaluation(config: SnowcoderConfig) -> None:
    from snowcoder_assets.evaluation.report import summary_lines

    print("\n".join(summary_lines(config)))


def _print_table(rows: list[dict[str, Any]], title: str) -> None:
    print(f"{title}:")
    if not rows:
        print("  (nothing yet)")
        return
    columns = list(rows[0])
    widths = {c: max(len(c), *(len(f"{r[c]}") for r in rows)) for c in columns}
    print("  " + "  ".join(c.ljust(widths[c]) for c in columns))
    for row in rows:
        print("  " + "  ".join(f"{row[c]}".ljust(widths[c]) for c in columns))


if __name__ == "__main__":
    sys.exit(main())
