"""Training throughput: snowcoder_train's step next to a naive baseline, in the same run.

CPU (default): the demo model (vocab 8000, hidden 256, FFN 704, 4 layers, 4 heads), sequences
of 256 tokens, micro batch 8, random token ids, the loop's own `train_step`:
- `snowcoder`: what the demo preset trains with: the device's attention
  (`model.attention_for`: eager on a CPU, SDPA on a GPU), fused AdamW, bf16 autocast where
  `precision="auto"` picks it (native bf16 on the CPU), forward + loss torch.compile'd
  (`compile: true`; compilation falls in the burn-in steps, reported as `burn_in_s`)
- `snowcoder_uncompiled`: the same without torch.compile (`compile: false`)
- `snowcoder_sdpa`: compiled with SDPA attention instead (why the CPU gets eager attention)
- `snowcoder_fp32`: uncompiled fp32, to show what autocast buys
- `naive`: eager attention (`attn_implementation="eager"`), fp32, for-loop AdamW, no compile
Methods take turns step by step (`--rounds` turns of `--steps` steps), so load from other
processes hits them alike; `tokens_per_s` is the best turn (timeit's convention: other load
only ever slows a turn down) and `tokens_per_s_median` the median. MFU is achieved FLOP/s over the
device peak (snowcoder_train.report: SNOWCODER_PEAK_FLOPS, else 989 TFLOP/s on an H100, else a
rough per-thread CPU figure).

CUDA: `--device cuda --paper` trains the arXiv 2409.02326 model (1.36B, 24 x 2048) on
sequences of 8192 tokens (halved until a micro batch of 1 fits), bf16 autocast, fused AdamW,
reporting tokens/s and MFU against 989 TFLOP/s (H100 dense bf16).

Prints one JSON line per method. Usage:
    python bench/train.py [--steps 1] [--rounds 10] [--burn-in 3] [--threads N] [--no-compile]
    python bench/train.py --device cuda --paper [--seq-len 8192] [--no-compile]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import torch

from snowcoder_train.model import (
    attention_for,
    build_model,
    demo_model_config,
    flops_per_token,
    num_parameters,
    paper_model_config,
)
from snowcoder_train.report import peak_flops
from snowcoder_train.train import make_loss_fn, make_optimizer, train_step, use_bf16


@dataclass
class Method:
    name: str
    attn: str
    bf16: bool
    fused: bool
    compile: bool = False
    rounds: list[float] = field(default_factory=list)  # tokens/s per round
    burn_in_s: float = 0.0  # untimed first steps (compilation included)
    state: Any = None  # (model, optimizer, loss function) once built


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--paper", action="store_true", help="the 1.36B paper model")
    parser.add_argument("--seq-len", type=int, default=None)
    parser.add_argument("--micro-batch", type=int, default=None)
    parser.add_argument("--steps", type=int, default=1, help="timed steps per turn")
    parser.add_argument("--rounds", type=int, default=10, help="turns per method")
    parser.add_argument("--burn-in", type=int, default=3, help="untimed steps per method")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (CPU)")
    parser.add_argument("--no-compile", action="store_true", help="snowcoder without compile")
    args = parser.parse_args()

    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    model_cfg = paper_model_config() if args.paper else demo_model_config(8000)
    seq_len = args.seq_len or (model_cfg.max_position_embeddings if args.paper else 256)
    micro = args.micro_batch or (1 if args.paper else 8)
    bf16, attention = use_bf16("auto", device), attention_for(device.type)
    methods = [Method("snowcoder", attention, bf16, fused=True, compile=not args.no_compile)]
    if not args.paper:
        methods += [
            Method("snowcoder_uncompiled", attention, bf16, fused=True),
            Method("snowcoder_sdpa", "sdpa", bf16, fused=True, compile=not args.no_compile),
            Method("snowcoder_fp32", attention, False, fused=True),
            Method("naive", "eager", False, fused=False),
        ]
    if args.paper:
        seq_len = fit_seq_len(methods[0], model_cfg, seq_len, micro, device, args.burn_in)

    if not args.paper:
        measure_in_turns(methods, model_cfg, seq_len, micro, device, args)
    else:  # one model in memory at a time: 1.36B twice may not fit next to activations
        for method in methods:
            measure_in_turns([method], model_cfg, seq_len, micro, device, args)
            method.state = None
            gc.collect()
            torch.cuda.empty_cache()

    common = {
        "bench": "train",
        "date": date.today().isoformat(),
        "machine": machine(device),
        "device": args.device,
        "model": "paper-1.36B" if args.paper else "demo",
        "params": num_parameters(model_cfg),
        "seq_len": seq_len,
        "micro_batch": micro,
        "threads": torch.get_num_threads(),
        "steps_per_round": args.steps,
        "peak_flops": peak_flops(device),
    }
    naive = next((m for m in methods if m.name == "naive"), None)
    flops_per_tok = flops_per_token(model_cfg, seq_len)
    for method in methods:
        tokens_per_s = max(method.rounds)
        record = {
            **common,
            "method": method.name,
            "attention": method.attn,
            "precision": "bf16-autocast" if method.bf16 else "fp32",
            "optimizer": "adamw-fused" if method.fused else "adamw-for-loop",
            "compiled": method.compile,
            "burn_in_s": round(method.burn_in_s, 1),
            "tokens_per_s": round(tokens_per_s, 1),
            "tokens_per_s_median": round(statistics.median(method.rounds), 1),
            "mfu": round(flops_per_tok * tokens_per_s / common["peak_flops"], 5),
            "rounds_tokens_per_s": [round(r, 1) for r in method.rounds],
        }
        if naive is not None:
            record["speedup_vs_naive"] = round(tokens_per_s / max(naive.rounds), 2)
        print(json.dumps(record), flush=True)


def measure_in_turns(
    methods: list[Method], model_cfg: Any, seq_len: int, micro: int, device: torch.device, args
) -> None:
    """Build and burn in each method, then time `args.rounds` turns of `args.steps` steps."""
    for method in methods:
        if method.state is None:
            build(method, model_cfg, device)
            method.burn_in_s = run_steps(method, seq_len, micro, device, args.burn_in)
    for _ in range(args.rounds):
        for method in methods:
            seconds = run_steps(method, seq_len, micro, device, args.steps)
            method.rounds.append(args.steps * micro * seq_len / seconds)


def build(method: Method, model_cfg: Any, device: torch.device) -> None:
    torch.manual_seed(0)
    model = build_model(model_cfg, attn_implementation=method.attn).to(device)
    model.train()
    optimizer = make_optimizer(model, 0.1, (0.9, 0.95), fused=method.fused)
    method.state = (model, optimizer, make_loss_fn(method.compile))


def run_steps(method: Method, seq_len: int, micro: int, device: torch.device, steps: int) -> float:
    """Seconds for `steps` optimizer steps of one micro batch each."""
    model, optimizer, loss_fn = method.state
    vocab = model.config.vocab_size
    generator = torch.Generator().manual_seed(1)
    batches = [torch.randint(0, vocab, (micro, seq_len), generator=generator) for _ in range(2)]
    batches = [b.to(device) for b in batches]
    sync(device)
    start = time.perf_counter()
    for i in range(steps):
        train_step(model, optimizer, [batches[i % 2]], 1e-4, 1.0, method.bf16, loss_fn)
    sync(device)
    return time.perf_counter() - start


def fit_seq_len(
    method: Method, model_cfg: Any, seq_len: int, micro: int, device: torch.device, burn_in: int
) -> int:
    """The longest of seq_len, seq_len/2, ... whose micro batch trains without running out."""
    while True:
        try:
            build(method, model_cfg, device)
            run_steps(method, seq_len, micro, device, max(1, burn_in))
            return seq_len
        except torch.cuda.OutOfMemoryError:
            method.state = None
            gc.collect()
            torch.cuda.empty_cache()
            if seq_len <= 512:
                raise
            seq_len //= 2


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def machine(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    name = platform.processor() or platform.machine()
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        lines = []
    models = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    return f"{models[0] if models else name} {os.cpu_count()} cores"


if __name__ == "__main__":
    main()
