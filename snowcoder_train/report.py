"""Progress out of the loop: metrics.jsonl, MFU, and Dagster Pipes when Dagster launched us.

MFU = achieved FLOP/s / peak FLOP/s, with FLOPs per token from `model.flops_per_token`. The
peak comes from SNOWCODER_PEAK_FLOPS when set, else the dense bf16 figure of the GPU model
(H100/H200 SXM 989 TFLOP/s), else for a CPU a rough per-thread figure: 100 GFLOP/s (fp32
AVX-512 FMA at ~3 GHz), doubled where the CPU has native bf16 (AVX512-BF16 or AMX; AMX chips
are faster still). Set the variable for a number you trust.

`dagster_pipes` is imported only when the process was launched through Dagster Pipes, and it
is the only Dagster package this library touches.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import torch

PEAK_FLOPS_ENV = "SNOWCODER_PEAK_FLOPS"
GPU_PEAK_FLOPS = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "L4": 121e12}
DEFAULT_GPU_PEAK_FLOPS = 989e12
CPU_PEAK_FLOPS_PER_THREAD = 100e9  # x2 with native bf16
PIPES_CONTEXT_ENV = "DAGSTER_PIPES_CONTEXT"  # dagster_pipes.PipesEnvVarParamsLoader checks it


def peak_flops(device: torch.device) -> float:
    """Peak FLOP/s of one device (see the module docstring)."""
    if os.environ.get(PEAK_FLOPS_ENV):
        return float(os.environ[PEAK_FLOPS_ENV])
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        return next((v for k, v in GPU_PEAK_FLOPS.items() if k in name), DEFAULT_GPU_PEAK_FLOPS)
    per_thread = CPU_PEAK_FLOPS_PER_THREAD * (2 if cpu_has_native_bf16() else 1)
    return per_thread * torch.get_num_threads()


def cpu_has_native_bf16() -> bool:
    """AVX512-BF16 or AMX (Linux /proc/cpuinfo): where bf16 matmuls beat fp32 on a CPU."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


class MetricsLog:
    """`metrics.jsonl`, one JSON object per step; a resumed run first drops steps it redoes."""

    def __init__(self, path: Path, resume_step: int) -> None:
        self.path = path
        if path.exists():
            lines = path.read_text().splitlines()
            kept = [line for line in lines if line and json.loads(line)["step"] <= resume_step]
            tmp = path.with_suffix(".tmp")
            tmp.write_text("".join(line + "\n" for line in kept))
            os.replace(tmp, path)

    def write(self, record: dict[str, Any]) -> None:
        with self.path.open("a") as handle:
            handle.write(json.dumps(record) + "\n")


class Reporter:
    """Logs to stdout, and to Dagster through Pipes when Dagster launched this process."""

    def __init__(
        self, asset_key: str | None = None, pipes: bool = True, verbose: bool = True
    ) -> None:
        """`pipes`: talk to Dagster if it launched us; `verbose`: print (off on ranks > 0)."""
        self.asset_key, self.context, self.verbose = asset_key, None, verbose
        if pipes and PIPES_CONTEXT_ENV in os.environ:
            from dagster_pipes import open_dagster_pipes

            self.context = open_dagster_pipes()

    def info(self, message: str, pipes: bool = True) -> None:
        if self.verbose:
            print(message, flush=True)
        if self.context is not None and pipes:
            self.context.log.info(message)

    def error(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)
        if self.context is not None:
            self.context.log.error(message)

    def materialize(self, metadata: dict[str, Any]) -> None:
        if self.verbose:
            print(json.dumps({"materialization": metadata}), flush=True)
        if self.context is not None:
            self.context.report_asset_materialization(metadata=metadata, asset_key=self.asset_key)

    def close(self, error: BaseException | None = None) -> None:
        """Flush Pipes; an exception is passed on to Dagster with its traceback."""
        if self.context is not None:
            exc = (type(error), error, error.__traceback__) if error else (None, None, None)
            self.context.__exit__(*exc)
            self.context = None
