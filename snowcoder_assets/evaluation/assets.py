"""`evaluation` (group `evaluation`): greedy pass@1 of every phase checkpoint, sandboxed.

One asset, not a partition per phase: its parent `checkpoints` is one asset (the phases train
in order from one manifest), so per-phase partitions would always go stale together, and the
phase comparison (the paper's Table 2) belongs on one materialization. Each phase still has
its own result: rows in the `evaluation` view, its own pass@1 metadata, and its completions
journaled under its weights' digest, so a re-run after one phase retrained generates for that
phase only.
"""

from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow as pa

from snowcoder_assets.config import SnowcoderConfig
from snowcoder_assets.evaluation.report import TINY_NOTE
from snowcoder_assets.io import write_json, write_table
from snowcoder_assets.layout import lineage_table_dir
from snowcoder_assets.lineage.schemas import EVALUATION_SCHEMA
from snowcoder_assets.lineage.store import refresh_views
from snowcoder_assets.orchestration.automation import ON_MISSING
from snowcoder_assets.orchestration.pools import GPU, GPU_POD
from snowcoder_assets.phase3.resources import SyntheticGeneratorResource
from snowcoder_assets.resources import SnowcoderConfigResource
from snowcoder_assets.results import materialize_files

EVERY_TASK_EXECUTED = "every_task_executed"
HARNESS_SELF_TEST = "harness_self_test"


@dg.asset(
    group_name="evaluation",
    deps=["checkpoints"],
    kinds={"python"},
    pool=GPU,
    op_tags=GPU_POD,
    automation_condition=ON_MISSING,
    check_specs=[
        dg.AssetCheckSpec(EVERY_TASK_EXECUTED, asset="evaluation"),
        dg.AssetCheckSpec(HARNESS_SELF_TEST, asset="evaluation"),
    ],
)
def evaluation(
    context: dg.AssetExecutionContext,
    snowcoder: SnowcoderConfigResource,
    generation: SyntheticGeneratorResource,
    pipes_subprocess_client: dg.PipesSubprocessClient,
) -> dg.MaterializeResult:
    """Greedy pass@1 of each phase's final checkpoint on HumanEval (and the benchmarks
    `[evaluation]` names): completions through the generation backend, every sample executed
    in the sandbox; one `evaluation` row per sample, the phases compared like Table 2."""
    from snowcoder_assets.evaluation.benchmarks import load_tasks
    from snowcoder_assets.evaluation.run import phase_checkpoints, self_test

    config = snowcoder.load()
    settings = config.evaluation
    tasks = load_tasks(settings)  # a bad benchmark file fails here, before any generation
    harness = make_harness(config, context.log.warning)
    context.log.info(f"sandbox: {harness.tier}; tasks: { {k: len(v) for k, v in tasks.items()} }")
    checked = self_test(harness, tasks, context.log.info) if settings.self_test else None
    checkpoints = phase_checkpoints(config.data_dir, settings.phases)
    if all(c.path is None for c in checkpoints):
        raise dg.Failure(
            "no phase checkpoint to evaluate: " + "; ".join(str(c.skip_reason) for c in checkpoints)
        )
    evaluated, skipped = {}, {}
    for checkpoint in checkpoints:
        reason = checkpoint.skip_reason or _unserved(config, checkpoint.phase)
        if reason:
            context.log.info(f"{checkpoint.phase}: {reason}")
            skipped[checkpoint.phase] = reason
            continue
        evaluated[checkpoint.phase] = _evaluate(
            context, config, generation, pipes_subprocess_client, checkpoint, tasks, harness
        )
    outputs = _write(config, evaluated, skipped, checked, harness.tier)
    refresh_views(config.data_dir)
    return materialize_files(
        context,
        config,
        outputs,
        _metadata(config, evaluated, skipped, harness.tier),
        [_executed_check(tasks, evaluated), _self_test_check(checked)],
    )


def make_harness(config: SnowcoderConfig, warn):
    from snowcoder_assets.evaluation.run import Harness
    from snowcoder_assets.evaluation.sandbox import Limits

    settings = config.evaluation
    limits = Limits(timeout_s=settings.timeout_s, memory_bytes=settings.memory_bytes)
    return Harness(limits, settings.isolation, warn, settings.workers or None)


def _unserved(config: SnowcoderConfig, phase: str) -> str | None:
    settings = config.evaluation
    if settings.backend == "openai" and phase not in settings.served_models:
        return f"skipped: [evaluation] served_models names no model for {phase}"
    return None


def _evaluate(context, config, generation, pipes_client, checkpoint, tasks, harness) -> list[dict]:
    from snowcoder_assets.evaluation.run import generate, sample_rows
    from snowcoder_assets.phase3.generation import Sampling

    work_dir = config.data_dir / "evaluation" / "work"
    backend = generation.evaluation_backend(config, checkpoint, context, pipes_client, work_dir)
    flat = [t for rows in tasks.values() for t in rows]
    sampling = Sampling(max_tokens=config.evaluation.max_new_tokens, temperature=0.0)
    context.log.info(f"{checkpoint.phase}: {len(flat)} greedy completions from {backend.generator}")
    responses = generate(config.data_dir, checkpoint, backend, flat, sampling, context.log.info)
    rows = sample_rows(checkpoint, flat, responses, harness, context.log.info)
    passed = sum(r["passed"] for r in rows)
    context.log.info(f"{checkpoint.phase}: {passed}/{len(rows)} samples passed")
    return rows


def _write(config, evaluated, skipped, checked, isolation) -> list[Path]:
    """Each evaluated phase's rows (a phase no longer evaluated loses its file) and a summary
    without timings, which makes the data version: same verdicts, same version."""
    folder = lineage_table_dir(config.data_dir, "evaluation")
    for stale in folder.glob("phase*.parquet"):
        if stale.stem not in evaluated:
            stale.unlink()
    for phase, rows in evaluated.items():
        write_table(
            folder / f"{phase}.parquet", pa.Table.from_pylist(rows, schema=EVALUATION_SCHEMA)
        )
    summary = config.data_dir / "evaluation" / "results.json"
    verdicts = {
        phase: sorted([r["benchmark"], r["task_id"], r["checkpoint"], r["result"]] for r in rows)
        for phase, rows in evaluated.items()
    }
    write_json(
        summary,
        {"sandbox": isolation, "skipped": skipped, "self_test": checked, "verdicts": verdicts},
    )
    return [summary]


def _metadata(config, evaluated, skipped, isolation) -> dict[str, Any]:
    from snowcoder_assets.evaluation.report import comparison, markdown, pass_at_1_rows

    rows = [r for r in pass_at_1_rows(config.data_dir) if r["phase"] in evaluated]
    metadata: dict[str, Any] = {
        "num_rows": sum(len(v) for v in evaluated.values()),
        "sandbox": isolation,
        "pass_at_1": dg.MetadataValue.md(markdown(comparison(rows, skipped))),
        "phases_evaluated": ", ".join(evaluated) or "none",
    }
    for r in rows:
        metadata[f"pass_at_1_{r['phase']}_{r['benchmark']}"] = float(r["pass_at_1"])
    if rows and max(r["pass_at_1"] for r in rows) < 1.0:
        metadata["note"] = TINY_NOTE if config.training.preset == "demo" else "pass@1 below 1%"
    return metadata


def _executed_check(tasks, evaluated) -> dg.AssetCheckResult:
    expected = sum(len(v) for v in tasks.values())
    counts = {phase: len(rows) for phase, rows in evaluated.items()}
    unexecuted = {p: expected - n for p, n in counts.items() if n != expected}
    return dg.AssetCheckResult(
        check_name=EVERY_TASK_EXECUTED,
        passed=bool(evaluated) and not unexecuted,
        metadata={
            "tasks_per_checkpoint": expected,
            "executed": counts or "none",
            "missing": unexecuted or "none",
        },
    )


def _self_test_check(checked) -> dg.AssetCheckResult:
    if checked is None:
        return dg.AssetCheckResult(
            check_name=HARNESS_SELF_TEST,
            passed=False,
            severity=dg.AssetCheckSeverity.WARN,
            description="[evaluation] self_test = false: the harness was not checked",
        )
    passed = all(
        r["solutions_passed"] == r["solutions"] and r["empty_passed"] == 0 for r in checked.values()
    )
    return dg.AssetCheckResult(
        check_name=HARNESS_SELF_TEST,
        passed=passed,
        metadata={name: dg.MetadataValue.json(r) for name, r in checked.items()},
        description="canonical solutions must all pass, empty completions must all fail",
    )


def code_versions(config) -> dict[str, str]:
    from snowcoder_assets.versions import code_version

    modules = [
        *(
            f"snowcoder_assets.evaluation.{m}"
            for m in (
                "benchmarks",
                "run",
                "sandbox",
                "sandbox_proc",
                "sandbox_runner",
                "transformers_backend",
            )
        ),
        "snowcoder_assets.phase3.vllm_worker",
    ]
    return {"evaluation": code_version(modules, config.evaluation)}
