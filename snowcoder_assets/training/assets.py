"""`checkpoints` (group `training`): the three phases trained in order through Dagster Pipes.

One asset runs every phase of the manifest in order, each as a `snowcoder_train` subprocess
launched with `PipesSubprocessClient` (under `torchrun` when the machine has several GPUs), so
logs and metrics stream into the run and the training code stays free of Dagster. A phase
starts from the previous phase's final checkpoint (the manifest's `init_from`) and resumes
from its own last checkpoint when a run was killed. Final checkpoints are Hugging Face folders
at `<data_dir>/checkpoints/<phase>/final/`. One asset rather than a partition per phase: the
phases are strictly sequential and share one manifest, so a partition per phase would only
re-encode that order as partition dependencies.

`[training] launcher = "k8s"` runs each phase in a pod of its own instead, through dagster-k8s's
`PipesK8sClient` (`launch.py`): `torchrun` over the pod's `[training.k8s] gpus`, the same
trainer, the same Pipes reports.
"""

import json
import os
import shutil
import sys
from pathlib import Path

import dagster as dg

from snowcoder_assets.io import files_under, read_json
from snowcoder_assets.layout import checkpoints_dir, manifest_path
from snowcoder_assets.metadata import figure_png, png_markdown
from snowcoder_assets.orchestration.automation import ON_MISSING
from snowcoder_assets.orchestration.pools import GPU, GPU_POD
from snowcoder_assets.resources import SnowcoderConfigResource
from snowcoder_assets.results import materialize_files


def train_command(
    manifest: str | os.PathLike[str],
    phase: str,
    devices: int,
    asset_key: str = "checkpoints",
    torchrun: bool | None = None,
) -> list[str]:
    """`python -m snowcoder_train ...`, or `torchrun` over every local GPU when there are >1.
    `torchrun=True` always asks for `torchrun` (a pod's image has it, whatever this machine
    has). The manifest goes as a string: it may be an object-storage URL."""
    args = [
        "-m",
        "snowcoder_train",
        "--manifest",
        str(manifest),
        "--phase",
        phase,
        "--asset-key",
        asset_key,
    ]
    if torchrun is None:
        torchrun = devices > 1 and shutil.which("torchrun") is not None
    if torchrun:
        return ["torchrun", "--standalone", f"--nproc_per_node={max(devices, 1)}", *args]
    return [sys.executable, *args]


def _gpu_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def loss_curves(checkpoint_dir: Path, phases: list[str]) -> dg.MarkdownMetadataValue | None:
    """Loss per step of every trained phase, one line each, from their metrics.jsonl."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3))
    drawn = 0
    offset = 0
    for phase in phases:
        path = checkpoint_dir / phase / "metrics.jsonl"
        if not path.is_file():
            continue
        records = [json.loads(line) for line in path.read_text().splitlines() if line]
        steps = [offset + r["step"] for r in records]
        ax.plot(steps, [r["loss"] for r in records], label=phase)
        offset = steps[-1] if steps else offset
        drawn += 1
    ax.set_xlabel("step (phases back to back)")
    ax.set_ylabel("loss")
    ax.legend()
    png = figure_png(fig)
    return png_markdown(png, "loss curves") if drawn else None


@dg.asset(
    group_name="training",
    deps=["phase_manifest"],
    kinds={"pytorch"},
    pool=GPU,
    op_tags=GPU_POD,
    automation_condition=ON_MISSING,
)
def checkpoints(
    context: dg.AssetExecutionContext,
    snowcoder: SnowcoderConfigResource,
    pipes_subprocess_client: dg.PipesSubprocessClient,
) -> dg.MaterializeResult:
    """Final checkpoints of the three training phases (Hugging Face folders with safetensors and
    the tokenizer), trained in order from the phase manifest through Dagster Pipes."""
    config = snowcoder.load()
    manifest = read_json(manifest_path(config.data_dir))
    metadata: dict = {}
    names = [p["name"] for p in manifest["phases"]]
    for name in names:
        invocation = _run_phase(context, config, pipes_subprocess_client, name)
        reported = [r for r in invocation.get_results() if isinstance(r, dg.MaterializeResult)]
        for key, value in (reported[-1].metadata if reported else {}).items():
            metadata[f"{name}_{key}"] = value
    folder = checkpoints_dir(config.data_dir)
    curves = loss_curves(folder, names)
    if curves is not None:
        metadata["loss_curves"] = curves
    metadata["path"] = dg.MetadataValue.path(str(folder))
    finals = [p for name in names for p in files_under(folder / name / "final")]
    return materialize_files(context, config, finals, metadata)


def _run_phase(
    context: dg.AssetExecutionContext,
    config,
    pipes_subprocess_client: dg.PipesSubprocessClient,
    name: str,
):
    """One phase, on this machine (`launcher = "subprocess"`) or in a pod of its own."""
    manifest = str(manifest_path(config.data_dir))
    if config.training.launcher == "k8s":
        from snowcoder_assets.training.launch import k8s_pipes_client, run_phase_pod

        settings = config.training.k8s
        command = train_command(manifest, name, settings.gpus, torchrun=True)
        context.log.info(f"{name}: pod with {settings.gpus} GPU(s): {' '.join(command)}")
        client = k8s_pipes_client()
        return run_phase_pod(context, client, settings, command, name, str(config.data_dir))
    command = train_command(manifest, name, _gpu_count())
    context.log.info(f"{name}: {' '.join(command)}")
    return pipes_subprocess_client.run(
        command=command, context=context, env={"TOKENIZERS_PARALLELISM": "false"}
    )


def code_versions(config) -> dict[str, str]:
    from snowcoder_assets.versions import code_version

    parts = (
        "checkpoint",
        "data",
        "distributed",
        "manifest",
        "model",
        "report",
        "schedule",
        "train",
    )
    modules = ["snowcoder_train", *(f"snowcoder_train.{m}" for m in parts)]
    return {"checkpoints": code_version(modules, config.training)}
