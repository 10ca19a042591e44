"""Train one phase of the manifest: `python -m snowcoder_train --manifest M --phase P`.

Top to bottom: read and validate the manifest, skip or pick the starting point (the newest
resumable checkpoint, the init_from phase's final checkpoint, or fresh weights), then the loop:
LR from the schedule, `train_step` (grad accumulation, bf16 autocast, clipping, fused AdamW),
a metrics line, a step checkpoint every `checkpoint_every` steps, and `final` at the end.

Determinism: seeded weights, data read by position, and every RNG state in the checkpoint, so
on a CPU a run stopped at step k and resumed gives the same per-step losses, bit for bit, as
one run straight through. Under torchrun with WORLD_SIZE > 1 the model is sharded with FSDP2
(distributed.py); a global batch of `batch_size` sequences is split evenly over the ranks.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from snowcoder_train import checkpoint as ckpt
from snowcoder_train import distributed
from snowcoder_train.data import PackedSequences
from snowcoder_train.manifest import Manifest, ManifestError, Phase, load_manifest, validate
from snowcoder_train.model import attention_for, build_model, flops_per_token
from snowcoder_train.report import MetricsLog, Reporter, cpu_has_native_bf16, peak_flops
from snowcoder_train.schedule import lr_at

PIPES_LOGS_PER_PHASE = 20  # progress lines sent to Dagster (stdout gets every step)
_SHAPE_FIELDS = (
    "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
    "num_attention_heads", "num_key_value_heads",
)  # fmt: skip


@dataclass
class TrainState:
    step: int = 0  # optimizer updates done
    tokens_seen: int = 0  # step x batch_size x seq_len (the unit of token_budget)
    data_position: int = 0  # global sequence offset into the phase's (repeated) data
    losses: list[float] = field(default_factory=list)  # per step, the whole phase so far
    train_seconds: float = 0.0  # wall time inside train steps, summed over runs


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m snowcoder_train", description=__doc__)
    parser.add_argument("--manifest", required=True, help="the phase manifest (JSON)")
    parser.add_argument("--phase", required=True, help="the phase to train")
    parser.add_argument(
        "--max-steps", type=int, default=None,
        help="stop after this global step (as if interrupted), saving a step checkpoint",
    )  # fmt: skip
    parser.add_argument("--resume", choices=("auto", "never"), default="auto")
    parser.add_argument("--device", default="auto", help="auto (cuda if present), cpu, cuda")
    parser.add_argument("--asset-key", default=None, help="Pipes asset key (multi-asset steps)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    is_main = distributed.env_rank() == 0
    reporter = Reporter(args.asset_key, pipes=is_main, verbose=is_main)
    try:
        manifest = load_manifest(args.manifest)
        phase = validate(manifest, args.phase)
        if phase.skip_message:
            reporter.info(f"{phase.name}: skipped: {phase.skip_message}")
            reporter.materialize({"skipped": phase.skip_message})
        else:
            summary = train_phase(
                manifest, phase, reporter, max_steps=args.max_steps, resume=args.resume,
                device=args.device,
            )  # fmt: skip
            reporter.materialize(summary)
    except ManifestError as error:
        reporter.error(f"manifest error: {error}")
        reporter.close()
        return 2
    except BaseException as error:
        reporter.close(error)
        raise
    reporter.close()
    return 0


def train_phase(
    manifest: Manifest,
    phase: Phase,
    reporter: Reporter | None = None,
    *,
    max_steps: int | None = None,
    resume: str = "auto",
    device: str = "auto",
) -> dict[str, Any]:
    """Train `phase` (validated) up to its total steps or `max_steps`; return the summary."""
    reporter = reporter or Reporter(pipes=False)
    ctx = distributed.init_distributed()
    dev = pick_device(device, ctx)
    phase_dir = manifest.phase_dir(phase.name)
    phase_dir.mkdir(parents=True, exist_ok=True)
    if ctx.is_main:
        ckpt.remove_partial(phase_dir)
    total = phase.total_steps
    stop_at = min(total, max_steps) if max_steps is not None else total
    fingerprint = ckpt.phase_fingerprint(manifest, phase)
    start = find_start(phase_dir, fingerprint, resume, reporter)
    if start is not None and start.name == ckpt.FINAL:
        reporter.info(f"{phase.name}: already complete ({start})")
        state = restore_train_state(ckpt.load_meta(start))
        return summarize(manifest, phase, state, start, 0, 0.0, dev, ctx)

    if phase.batch_size % (ctx.world_size * phase.micro_batch_size):
        raise ManifestError(
            f"phase {phase.name!r}: batch_size {phase.batch_size} does not split into "
            f"{ctx.world_size} ranks x micro_batch_size {phase.micro_batch_size}"
        )
    model, optimizer, state = prepare(manifest, phase, start, dev, ctx)
    data = PackedSequences(phase.data.index, phase.name, manifest.seed)
    metrics = MetricsLog(phase_dir / "metrics.jsonl", state.step) if ctx.is_main else None
    bf16 = use_bf16(phase.precision, dev)
    loss_fn = make_loss_fn(phase.compile and not ctx.sharded)
    per_rank = phase.batch_size // ctx.world_size
    tokens_per_step = phase.batch_size * phase.seq_len
    flops_per_step = flops_per_token(manifest.model, phase.seq_len) * tokens_per_step
    peak = peak_flops(dev) * ctx.world_size
    log_every = max(1, total // PIPES_LOGS_PER_PHASE)
    reporter.info(
        f"{phase.name}: steps {state.step + 1}..{stop_at} of {total}, {dev}, "
        f"{'bf16 autocast' if bf16 else 'fp32'}, from {start or phase.init_from or 'scratch'}"
    )
    run_seconds, run_steps, saved_at = 0.0, 0, None
    model.train()
    while state.step < stop_at:
        began = time.perf_counter()
        lr = lr_at(state.step + 1, total, phase.lr_schedule)
        first = state.data_position + ctx.rank * per_rank
        micro = [
            torch.from_numpy(data.batch(first + i, phase.micro_batch_size)).to(dev)
            for i in range(0, per_rank, phase.micro_batch_size)
        ]
        loss, grad_norm = train_step(model, optimizer, micro, lr, phase.grad_clip, bf16, loss_fn)
        loss = distributed.mean_over_ranks(loss, dev, ctx)
        seconds = time.perf_counter() - began
        state.step, run_steps = state.step + 1, run_steps + 1
        state.tokens_seen += tokens_per_step
        state.data_position += phase.batch_size
        state.losses.append(loss)
        state.train_seconds += seconds
        run_seconds += seconds
        record = {
            "step": state.step, "loss": loss, "lr": lr, "grad_norm": grad_norm,
            "tokens_seen": state.tokens_seen, "tokens_per_s": tokens_per_step / seconds,
            "mfu": flops_per_step / seconds / peak, "seconds": seconds,
        }  # fmt: skip
        if metrics:
            metrics.write(record)
        eta = run_seconds / run_steps * (stop_at - state.step)
        reporter.info(
            f"{phase.name} step {state.step}/{total} loss {loss:.4f} lr {lr:.3e} "
            f"tok/s {record['tokens_per_s']:.0f} mfu {record['mfu']:.2%} eta {eta:.0f}s",
            pipes=state.step % log_every == 0 or state.step == stop_at,
        )
        name = checkpoint_due(state.step, phase, stop_at)
        if name:
            saved_at = save(phase_dir / name, model, optimizer, state, manifest, phase, ctx)
            reporter.info(f"{phase.name}: saved {saved_at}")
    if saved_at is None:  # nothing left to do before max_steps
        saved_at = start
    return summarize(manifest, phase, state, saved_at, run_steps, run_seconds, dev, ctx)


def prepare(
    manifest: Manifest, phase: Phase, start: Path | None, dev: torch.device, ctx: distributed.Dist
) -> tuple[torch.nn.Module, torch.optim.Optimizer, TrainState]:
    """Model (sharded when distributed), optimizer and state: resumed from `start`, or new."""
    _quiet_transformers()
    seed_everything(manifest.seed)
    model = load_model(manifest, phase, start, attention_for(dev.type)).to(dev)
    if phase.compile and ctx.sharded:  # under FSDP2, compile layer by layer (torchtitan's way)
        for layer in model.model.layers:
            layer.compile()
    model = distributed.shard_model(model, ctx)
    optimizer = make_optimizer(model, phase.weight_decay, phase.betas, fused=True)
    state = TrainState()
    if start is not None:
        saved = ckpt.load_state(start)
        distributed.load_optimizer_state(model, optimizer, saved["optimizer"], ctx)
        state = restore_train_state(saved)
        ckpt.restore_rng_states(saved["rng"])
    elif ctx.is_main:
        ckpt.clear(manifest.phase_dir(phase.name))  # a fresh run forgets any earlier one
    distributed.barrier(ctx)
    return model, optimizer, state


def checkpoint_due(step: int, phase: Phase, stop_at: int) -> str | None:
    """The checkpoint to write after `step`: final at the end, else every checkpoint_every
    steps and where a --max-steps run stops."""
    if step == phase.total_steps:
        return ckpt.FINAL
    if step % phase.checkpoint_every == 0 or step == stop_at:
        return ckpt.step_name(step)
    return None


def forward_loss(model: torch.nn.Module, batch: torch.Tensor, bf16: bool) -> torch.Tensor:
    """Mean next-token cross-entropy of packed sequences: inputs s[:-1], targets s[1:]."""
    with torch.autocast(batch.device.type, dtype=torch.bfloat16, enabled=bf16):
        logits = model(input_ids=batch[:, :-1], use_cache=False).logits
    return F.cross_entropy(logits.float().flatten(0, 1), batch[:, 1:].flatten())


def make_loss_fn(compile: bool) -> Callable[[torch.nn.Module, torch.Tensor, bool], torch.Tensor]:
    """`forward_loss`, torch.compile'd as a whole when asked: compiling the model and the loss
    together also fuses the fp32 upcast and softmax of the logits (demo model on a CPU: 1.36x
    eager, against 1.2x for compiling the model alone)."""
    return CompiledLoss() if compile else forward_loss


class CompiledLoss:
    """`forward_loss` through torch.compile; a compilation that fails (no C compiler, an
    unsupported op) warns once and the run goes on eagerly: same losses, slower steps."""

    def __init__(self) -> None:
        self.compiled: Callable[..., torch.Tensor] | None = torch.compile(forward_loss)

    def __call__(self, model: torch.nn.Module, batch: torch.Tensor, bf16: bool) -> torch.Tensor:
        if self.compiled is not None:
            try:
                return self.compiled(model, batch, bf16)
            except Exception as error:  # any compiler failure: train eagerly
                warnings.warn(
                    f"torch.compile failed, training eagerly: {error!r:.300}", stacklevel=2
                )
                self.compiled = None
        return forward_loss(model, batch, bf16)


def train_step(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    micro_batches: list[torch.Tensor],
    lr: float,
    grad_clip: float,
    bf16: bool,
    loss_fn: Callable[[torch.nn.Module, torch.Tensor, bool], torch.Tensor] = forward_loss,
) -> tuple[float, float]:
    """One optimizer update over micro batches of packed sequences; (mean loss, grad norm)."""
    for group in optimizer.param_groups:
        group["lr"] = lr
    loss_sum = 0.0
    for batch in micro_batches:
        loss = loss_fn(model, batch, bf16)
        (loss / len(micro_batches)).backward()
        loss_sum += loss.item()
    max_norm = grad_clip if grad_clip > 0 else float("inf")
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    norm = norm.full_tensor() if hasattr(norm, "full_tensor") else norm  # FSDP2: a DTensor
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return loss_sum / len(micro_batches), norm.item()


def make_optimizer(
    model: torch.nn.Module,
    weight_decay: float,
    betas: tuple[float, float],
    fused: bool = True,
) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices and embeddings (>= 2-D), none on norms."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]
    if fused:
        return torch.optim.AdamW(groups, lr=0.0, betas=betas, fused=True)
    return torch.optim.AdamW(groups, lr=0.0, betas=betas, foreach=False)


def use_bf16(precision: str, device: torch.device) -> bool:
    """bf16 autocast for "bf16", and for "auto" where the device has native bf16 math.

    On a GPU that is any bf16-capable card. On a CPU it takes AVX512-BF16 or AMX: on a 2-core
    AVX512-BF16 EPYC, bf16 matmuls ran ~2.5x fp32 and a demo-model step 1.3-1.45x
    (bench/train.py); without them bf16 is emulated and slower, so "auto" stays fp32. Either
    way a run is deterministic: same inputs, same kernels, same losses.
    """
    if precision != "auto":
        return precision == "bf16"
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return cpu_has_native_bf16()


def pick_device(name: str, ctx: distributed.Dist) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device("cuda", ctx.local_rank) if name == "cuda" else torch.device(name)


def restore_train_state(saved: dict[str, Any]) -> TrainState:
    return TrainState(**{f.name: saved[f.name] for f in dataclasses.fields(TrainState)})


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def find_start(phase_dir: Path, fingerprint: str, resume: str, reporter: Reporter) -> Path | None:
    """The checkpoint to continue from: the newest one this very phase config wrote."""
    if resume == "never":
        return None
    candidates = ckpt.step_checkpoints(phase_dir)
    if (phase_dir / ckpt.FINAL / ckpt.META_FILE).is_file():
        candidates.append(phase_dir / ckpt.FINAL)
    for folder in reversed(candidates):
        if ckpt.load_meta(folder)["fingerprint"] == fingerprint:
            return folder
        reporter.info(f"not resuming from {folder}: written for a different manifest")
    return None


def load_model(
    manifest: Manifest, phase: Phase, start: Path | None, attention: str
) -> torch.nn.Module:
    """Weights from the resume checkpoint, else init_from's final checkpoint, else fresh."""
    if start is None and phase.init_from is None:
        return build_model(manifest.model, attn_implementation=attention)
    from transformers import LlamaForCausalLM

    source = start or manifest.phase_dir(phase.init_from) / ckpt.FINAL
    model = LlamaForCausalLM.from_pretrained(
        source, dtype=torch.float32, attn_implementation=attention
    )
    for name in _SHAPE_FIELDS:
        have, want = getattr(model.config, name), getattr(manifest.model, name)
        if have != want:
            raise ManifestError(
                f"phase {phase.name!r}: checkpoint {source} has {name} {have}, the manifest {want}"
            )
    return model


def save(
    dest: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    state: TrainState,
    manifest: Manifest,
    phase: Phase,
    ctx: distributed.Dist,
) -> Path:
    model_state = distributed.full_model_state(model, ctx)
    optimizer_state = distributed.full_optimizer_state(model, optimizer, ctx)
    if ctx.is_main:
        meta = {
            **dataclasses.asdict(state),
            "fingerprint": ckpt.phase_fingerprint(manifest, phase),
            "phase": phase.name,
            "total_steps": phase.total_steps,
            "init_from": phase.init_from,
        }
        tensors = {"optimizer": optimizer_state, "rng": ckpt.rng_states()}
        ckpt.save_checkpoint(dest, model, meta, tensors, manifest.tokenizer, model_state)
        ckpt.prune(dest.parent)
    distributed.barrier(ctx)
    return dest


def summarize(
    manifest: Manifest,
    phase: Phase,
    state: TrainState,
    checkpoint: Path | None,
    run_steps: int,
    run_seconds: float,
    device: torch.device,
    ctx: distributed.Dist,
) -> dict[str, Any]:
    """The materialization metadata: this run's throughput, else the whole phase's."""
    steps, seconds = (run_steps, run_seconds) if run_steps else (state.step, state.train_seconds)
    tokens_per_s = steps * phase.batch_size * phase.seq_len / seconds if seconds else 0.0
    flops = flops_per_token(manifest.model, phase.seq_len) * tokens_per_s
    return {
        "final_loss": state.losses[-1] if state.losses else None,
        "tokens_seen": state.tokens_seen,
        "tokens_per_s": round(tokens_per_s, 1),
        "mfu": flops / (peak_flops(device) * ctx.world_size),
        "steps": state.step,
        "total_steps": phase.total_steps,
        "complete": state.step >= phase.total_steps,
        "checkpoint": str(checkpoint) if checkpoint else None,
        "device": str(device),
    }


def _quiet_transformers() -> None:
    from transformers.utils import logging

    logging.disable_progress_bar()
    logging.set_verbosity_error()
