"""Generation throughput: vLLM (phase 3's backend) next to transformers `generate`, same run.

Both generate exactly `--max-tokens` tokens for each of `--prompts` prompts on the same model,
greedy, and count generated tokens only (prompt tokens are not counted):
- `vllm`: one `vllm.LLM.generate` over all prompts (continuous batching), run in `.venv-vllm`
  as a subprocess of this script with the options the `vllm` backend uses on a CPU
  (`vllm_worker.CPU_DEFAULTS`: eager, bf16, in-process engine), `ignore_eos=True`;
  `engine_start_s` is import + `LLM(...)`, not counted in `seconds`, nor is one untimed
  warm-up prompt.
- `transformers`: `model.generate` one prompt at a time (batch 1) under `torch.inference_mode`,
  the checkpoint's dtype, `min_new_tokens = max_new_tokens` so EOS cannot stop it early, after
  one untimed warm-up prompt.
Default model: a random tiny Llama (hidden 128, 2 layers, head_dim 64) built into a temp dir;
`--model data/checkpoints/phase2/final` after `make demo`. Prints one JSON line per method and
a last line with the ratio (goal: >= 5x on a CPU).

`--threads 1` (default) for both: a tiny model is all per-step overhead, and on a small busy
machine a second thread only adds hand-off stalls (transformers dropped ~20x at 2 threads here).

Usage: python bench/generate.py [--model PATH] [--prompts 16] [--max-tokens 128] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VLLM_PYTHON = ROOT / ".venv-vllm" / "bin" / "python"
SEEDS = ["def fibonacci(n):", "import os\n\n", "class Stack:\n    def push(self", "# utils\n"]
CODE = ["def add(a, b):\n    return a + b\n", "class Stack:\n    def push(self, x):\n"]


def prompts(n: int) -> list[str]:
    """Distinct prompts (a number each), so prefix caching cannot share whole prompts."""
    return [f"{SEEDS[i % len(SEEDS)]}# {i}\n" for i in range(n)]


def build_tiny_llama(folder: Path) -> Path:
    """A random tiny Llama with a byte-level BPE tokenizer, saved like a checkpoint."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=512,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(CODE * 50, trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, eos_token="<|endoftext|>", pad_token="<|endoftext|>"
    )
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=128, intermediate_size=256,
        num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
        max_position_embeddings=512, eos_token_id=0, bos_token_id=0, pad_token_id=0,
        tie_word_embeddings=True,
    )  # fmt: skip
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def vllm_child(model: str, n: int, max_tokens: int) -> dict[str, Any]:
    """Runs in `.venv-vllm`: engine start, then one generate over every prompt."""
    from snowcoder_assets.phase3.vllm_worker import CPU_DEFAULTS

    started = time.perf_counter()
    import vllm
    from vllm.platforms import current_platform

    options: dict[str, Any] = {"max_model_len": 512, "seed": 0}
    if current_platform.is_cpu():
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        options.update(CPU_DEFAULTS)
    llm = vllm.LLM(model=model, enable_prefix_caching=True, **options)
    engine_start = time.perf_counter() - started
    params = vllm.SamplingParams(temperature=0.0, max_tokens=max_tokens, ignore_eos=True)
    warm_up = vllm.SamplingParams(temperature=0.0, max_tokens=8, ignore_eos=True)
    llm.generate(["# warm-up\n"], warm_up, use_tqdm=False)  # as transformers gets one
    started = time.perf_counter()
    outputs = llm.generate(prompts(n), params, use_tqdm=False)
    seconds = time.perf_counter() - started
    tokens = sum(len(o.outputs[0].token_ids) for o in outputs)
    return {"tokens": tokens, "seconds": seconds, "engine_start_s": round(engine_start, 1)}


def run_vllm(model: Path, n: int, max_tokens: int, scratch: Path) -> dict[str, Any]:
    if not VLLM_PYTHON.is_file():
        raise SystemExit(f"vLLM's venv not found at {VLLM_PYTHON}: `make .venv-vllm/.installed`")
    (scratch / "tmp").mkdir(exist_ok=True)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "TMPDIR": str(scratch / "tmp"),
        "VLLM_CACHE_ROOT": os.environ.get("VLLM_CACHE_ROOT", str(scratch / "vllm-cache")),
        "TOKENIZERS_PARALLELISM": "false",
    }
    command = [str(VLLM_PYTHON), __file__, "--vllm-child", "--model", str(model)]
    command += ["--prompts", str(n), "--max-tokens", str(max_tokens)]
    done = subprocess.run(command, env=env, stdout=subprocess.PIPE, text=True, check=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith('{"tokens"')]
    return json.loads(lines[-1])  # vLLM logs to stdout too, before and after it


def run_transformers(model_dir: Path, n: int, max_tokens: int) -> dict[str, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()

    def generate(prompt: str, new_tokens: int) -> int:
        ids = tokenizer(prompt, return_tensors="pt")
        out = model.generate(
            **ids, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False,
            pad_token_id=tokenizer.pad_token_id or 0,
        )  # fmt: skip
        return out.shape[1] - ids["input_ids"].shape[1]

    with torch.inference_mode():
        generate(prompts(1)[0], 8)  # warm-up: lazy inits, first-call allocations
        started = time.perf_counter()
        tokens = sum(generate(p, max_tokens) for p in prompts(n))
        seconds = time.perf_counter() - started
    return {"tokens": tokens, "seconds": seconds, "dtype": str(model.dtype).removeprefix("torch.")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=None, help="a HF model folder")
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads for both methods (0: torch's own)"
    )
    parser.add_argument("--vllm-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.vllm_child:
        print(json.dumps(vllm_child(str(args.model), args.prompts, args.max_tokens)), flush=True)
        return
    if args.threads:
        os.environ["OMP_NUM_THREADS"] = str(args.threads)  # the vLLM child reads it too
        import torch

        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="snowcoder-bench-generate-") as folder:
        measure(args, Path(folder))  # the tiny model and vLLM's caches go with it


def measure(args: argparse.Namespace, scratch: Path) -> None:
    model = args.model or build_tiny_llama(scratch / "tiny-llama")
    if not (model / "config.json").is_file():
        raise SystemExit(f"{model}: no config.json (not a model folder)")
    common = {
        "bench": "generate",
        "date": date.today().isoformat(),
        "machine": f"{platform.machine()} {os.cpu_count()} cores",
        "model": str(args.model) if args.model else "tiny-llama (random, hidden 128, 2 layers)",
        "prompts": args.prompts,
        "max_tokens": args.max_tokens,
    }
    rates = {}
    for method in ("vllm", "transformers"):
        if method == "vllm":
            result = run_vllm(model.absolute(), args.prompts, args.max_tokens, scratch)
        else:
            result = run_transformers(model, args.prompts, args.max_tokens)
        rates[method] = result["tokens"] / result["seconds"]
        line = {**common, "method": method, **result, "seconds": round(result["seconds"], 3)}
        line["tokens_per_s"] = round(rates[method], 1)
        print(json.dumps(line), flush=True)
    ratio = rates["vllm"] / rates["transformers"]
    print(json.dumps({**common, "ratio_vllm_over_transformers": round(ratio, 1), "goal": 5.0}))


if __name__ == "__main__":  # vLLM may start processes that re-import this module
    sys.exit(main())
