"""`synthetic_generator`: the model that writes phase 3, named or (for the demo) trained here.

With `[synthetic] model` set, this records the model (a Hub id or a local folder that vLLM
loads, or the served model's name for the `openai` backend). With `model = ""`, no
instruction model being available offline, it trains the demo's generator: a small Llama of
the demo shape on the top-k corpus, through the same `snowcoder_train` Pipes launch as
`checkpoints`. It is not the phase-2 checkpoint itself: phase-3 data feeds `packed_shards`,
`phase_manifest` and `checkpoints`, so a generator taken from `checkpoints` would make the
asset graph a cycle. The demo generator is a base model: it is prompted through the
completions endpoint, and its context is raised to fit a prompt and its answer.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from snowcoder_assets.config import SnowcoderConfig
from snowcoder_assets.io import read_json, write_json
from snowcoder_assets.layout import tokenizer_dir, topk_dir

DEMO_CONTEXT = 2048  # positions of the demo generator: prompt (~600 tokens) + answer
Log = Callable[[str], None]


def generator_dir(data_dir: Path) -> Path:
    return data_dir / "synthetic_generator"


def generator_record_path(data_dir: Path) -> Path:
    return generator_dir(data_dir) / "generator.json"


def demo_model_dir(data_dir: Path) -> Path:
    return generator_dir(data_dir) / "train" / "phase1" / "final"


def read_generator(data_dir: Path) -> dict[str, Any]:
    return read_json(generator_record_path(data_dir))


def named_generator(config: SnowcoderConfig) -> dict[str, Any]:
    """The configured model (empty with `max_prompts = 0`: nothing will be generated)."""
    settings = config.synthetic
    return {
        "backend": settings.backend,
        "model": settings.model,
        "endpoint": settings.endpoint,
        "trained_here": False,
    }


def demo_manifest(config: SnowcoderConfig, index_path: Path, log: Log) -> dict[str, Any]:
    """A one-phase manifest: `generator_steps` demo-shaped steps on the packed top-k corpus."""
    from snowcoder_assets.tokens.manifest import TrainingConfig, build_manifest, check_manifest

    training = TrainingConfig(
        preset="demo", compile=False, model={"max_position_embeddings": DEMO_CONTEXT}
    )
    manifest = build_manifest(
        training,
        tokenizer_dir(config.data_dir),
        generator_dir(config.data_dir) / "train",
        {"phase1": index_path},
        {"phase1": 1},
        config.synthetic.seed,
        log=log,
    )
    phase = manifest["phases"][0]
    held = read_json(index_path)["num_tokens"]
    wanted = config.synthetic.generator_steps * phase["batch_size"] * phase["seq_len"]
    phase["token_budget"] = min(wanted, held)
    phase["lr_schedule"]["warmup_steps"] = max(1, config.synthetic.generator_steps // 10)
    problems = check_manifest(manifest)
    if problems:
        raise ValueError("the demo generator cannot train:\n- " + "\n- ".join(problems))
    return manifest


def pack_topk(config: SnowcoderConfig, log: Log) -> Path:
    from snowcoder_assets.tokens.manifest import seq_len_for
    from snowcoder_assets.tokens.packing import pack_corpus

    out = generator_dir(config.data_dir) / "packed"
    files = sorted(str(p) for p in topk_dir(config.data_dir).rglob("*.parquet"))
    if not files:
        raise ValueError("the top-k corpus holds no documents: nothing to train a generator on")
    index = pack_corpus(
        files,
        tokenizer_dir(config.data_dir),
        out,
        seq_len_for(config.training),
        config.corpus.seed,
        log,
    )
    if index["num_tokens"] == 0:
        raise ValueError("the top-k corpus fills no whole training sequence")
    return out / "index.json"


def write_record(data_dir: Path, record: dict[str, Any]) -> Path:
    write_json(generator_record_path(data_dir), record)
    return generator_record_path(data_dir)
