"""The phase manifest: one JSON file that tells the trainer the model and the three phases.

Contract (version 1; the trainer's reader is written against exactly these keys):

    {"version": 1, "preset": "demo" | "paper", "model": {...Llama config...},
     "tokenizer": abs path, "output_dir": abs path, "seed": int,
     "phases": [{"name", "data": {"index": abs path} | null, "seq_len", "token_budget",
                 "repeats", "batch_size", "micro_batch_size",
                 "lr_schedule": {"kind", "peak_lr", "final_lr", "warmup_steps"},
                 "weight_decay", "grad_clip", "betas", "init_from", "checkpoint_every",
                 "precision", "compile", "skip_reason"}, ...]}

`batch_size` and `micro_batch_size` count sequences (global batch per optimizer step, and per
forward pass); `token_budget` counts tokens trained, repeats included.

What arXiv 2409.02326 (v1) says, and the paper preset uses: Llama-2 architecture, 24 layers,
hidden 2048, FFN 5632, 16 heads without KV grouping, vocabulary 64000, context 8192, tied
embeddings; batch 512 x 8192 tokens, Adam; 500B / 50B (12.5B x 4) / 5B tokens. Phase 1: 600
warm-up steps, cosine 5.3e-4 -> 5.3e-5. Phase 2: the LR re-warms 0 -> 5.3e-4 over 1000 steps,
then falls linearly to 0 (this beat linear annealing and a constant LR).

Our choices, where the paper is silent: phase 3 reuses phase 2's schedule (re-warm over 1000
steps, linear to 0; at 5B tokens that is ~1192 steps, so most of it is warm-up); AdamW with
weight decay 0.1, betas (0.9, 0.95), gradient clipping 1.0 and RoPE theta 10000 (Llama-2's);
micro batch 4 and a checkpoint every 1000 steps at paper scale; torch.compile in both presets
(on the demo's CPU it trains 1.3x faster than eager after ~20 s of compilation); precision
"auto" (the trainer takes bf16 where the device supports it). The vocabulary is the
tokenizer's (64000 at paper scale), so a preset takes it as an argument.

The demo preset keeps the 500:50:5 token ratios with a model of ~5M parameters (4 layers,
hidden 256, FFN 704, 4 heads, context 512) trained on 256-token sequences in batches of 16:
phase 1 is 100 steps (409,600 tokens), phase 2 10 steps (warm-up 3), phase 3 1 step
(warm-up 1): fewer phase-1 steps would leave phase 3 without a whole step. A step is ~140
GFLOP (6 x 5.3M parameters x 4096 tokens, plus attention); one takes ~0.5 s on 2 idle CPU
cores (bf16, compiled; bench/train.py), so the 111 steps take about a minute plus the
compilation, which is what the demo can afford; `total_tokens` scales it (the loss is still
falling steeply at 100 steps: the demo shows the mechanics).

When a demo phase asks for more tokens than its shards hold (x repeats), `build_manifest`
lowers the budget to what they hold and logs it, because a demo corpus is whatever is at
hand; at paper scale a short corpus is an error (`check_manifest`), never a silent change.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator

from snowcoder_assets.io import read_json, write_json
from snowcoder_assets.strict import StrictModel
from snowcoder_assets.training.launch import TrainingK8sConfig
from snowcoder_train.model import as_dict, demo_model_config, paper_model_config

MANIFEST_VERSION = 1
PHASES = ("phase1", "phase2", "phase3")
TOKEN_RATIOS = {"phase1": 500, "phase2": 50, "phase3": 5}  # the paper's 500B : 50B : 5B
PEAK_LR, PHASE1_FINAL_LR = 5.3e-4, 5.3e-5
SKIP_REASONS = {
    "phase1": "no phase-1 corpus packed",
    "phase2": "no top-k corpus packed: phase 2 needs the quality annotator's selection",
    "phase3": "no synthetic corpus packed: phase 3 needs synthetic_corpus",
}
EMPTY_REASON = "its corpus fills no whole sequence of {seq_len} tokens"
SHORT_REASON = "its corpus holds {held} tokens (x{repeats} repeats), less than one step of {step}"
# Model keys a config may override; the vocabulary and the token ids come from the tokenizer.
MODEL_OVERRIDES = (
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "max_position_embeddings",
    "rope_theta",
    "rms_norm_eps",
    "tie_word_embeddings",
)
Log = Callable[[str], None]


class TrainingConfig(StrictModel):
    """A preset (`demo` or `paper`) plus optional overrides that apply to every phase."""

    preset: Literal["demo", "paper"] = "demo"
    total_tokens: int | None = Field(default=None, gt=0)  # all phases, split 500:50:5
    seq_len: int | None = Field(default=None, gt=0)
    batch_size: int | None = Field(default=None, gt=0)  # sequences per optimizer step
    micro_batch_size: int | None = Field(default=None, gt=0)  # sequences per forward pass
    checkpoint_every: int | None = Field(default=None, gt=0)  # optimizer steps
    compile: bool | None = None
    model: dict[str, int | float | bool] = Field(default_factory=dict)
    # Where each phase runs: "subprocess" on the step's machine, "k8s" in a pod of its own
    # (`[training.k8s]`, training/launch.py). Not part of what is trained, so excluded from
    # dumps: code versions and configuration hashes do not change with the launcher.
    launcher: Literal["subprocess", "k8s"] = Field(default="subprocess", exclude=True)
    k8s: TrainingK8sConfig = Field(default_factory=TrainingK8sConfig, exclude=True)

    @field_validator("model")
    @classmethod
    def _known_model_keys(cls, value: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(value) - set(MODEL_OVERRIDES))
        if unknown:
            raise ValueError(f"unknown model keys {unknown}; allowed: {list(MODEL_OVERRIDES)}")
        return value


def _phase(name: str, budget: int, repeats: int, schedule: dict, **shape: Any) -> dict[str, Any]:
    return {
        "name": name,
        "data": None,
        "seq_len": shape["seq_len"],
        "token_budget": budget,
        "repeats": repeats,
        "batch_size": shape["batch_size"],
        "micro_batch_size": shape["micro_batch_size"],
        "lr_schedule": schedule,
        "weight_decay": 0.1,
        "grad_clip": 1.0,
        "betas": [0.9, 0.95],
        "init_from": PHASES[PHASES.index(name) - 1] if name != PHASES[0] else None,
        "checkpoint_every": shape["checkpoint_every"],
        "precision": "auto",
        "compile": shape["compile"],
        "skip_reason": None,
    }


def _schedule(kind: str, final_lr: float, warmup_steps: int) -> dict[str, Any]:
    return {"kind": kind, "peak_lr": PEAK_LR, "final_lr": final_lr, "warmup_steps": warmup_steps}


def split_budget(phase1_tokens: int) -> dict[str, int]:
    """Each phase's budget for a phase-1 budget, in the 500:50:5 ratio (rounded down)."""
    return {
        name: phase1_tokens * ratio // TOKEN_RATIOS["phase1"]
        for name, ratio in TOKEN_RATIOS.items()
    }


def _preset(name: str, model: dict, budgets: dict, warmups: dict, **shape: Any) -> dict:
    schedules = {
        "phase1": _schedule("warmup_cosine", PHASE1_FINAL_LR, warmups["phase1"]),
        "phase2": _schedule("rewarm_linear", 0.0, warmups["phase2"]),
        "phase3": _schedule("rewarm_linear", 0.0, warmups["phase3"]),
    }
    repeats = {"phase1": 1, "phase2": 4, "phase3": 1}  # phase 2: the top 12.5B tokens x 4
    phases = [_phase(p, budgets[p], repeats[p], schedules[p], **shape) for p in PHASES]
    return {"preset": name, "model": model, "phases": phases}


def demo_preset(vocab_size: int) -> dict[str, Any]:
    """~5M parameters, 100 + 10 + 1 steps of 16 x 256 tokens (see the module docstring)."""
    shape = {"seq_len": 256, "batch_size": 16, "micro_batch_size": 8}
    model = as_dict(demo_model_config(vocab_size))  # the shape lives in snowcoder_train
    budgets = split_budget(100 * shape["batch_size"] * shape["seq_len"])
    warmups = {"phase1": 10, "phase2": 3, "phase3": 1}
    return _preset("demo", model, budgets, warmups, **shape, checkpoint_every=50, compile=True)


def paper_preset(vocab_size: int) -> dict[str, Any]:
    """Arctic-SnowCoder-1.3B: Llama-2 shape, 500B / 50B / 5B tokens of 512 x 8192 batches."""
    shape = {"seq_len": 8192, "batch_size": 512, "micro_batch_size": 4}
    model = as_dict(dataclasses.replace(paper_model_config(), vocab_size=vocab_size))
    budgets = split_budget(500_000_000_000)
    warmups = {"phase1": 600, "phase2": 1000, "phase3": 1000}
    return _preset("paper", model, budgets, warmups, **shape, checkpoint_every=1000, compile=True)


PRESETS = {"demo": demo_preset, "paper": paper_preset}


def resolve_preset(config: TrainingConfig, vocab_size: int) -> dict[str, Any]:
    """The config's preset with its overrides applied."""
    preset = PRESETS[config.preset](vocab_size)
    preset["model"].update(config.model)
    if config.total_tokens is not None:
        total_ratio = sum(TOKEN_RATIOS.values())
        for phase in preset["phases"]:
            phase["token_budget"] = config.total_tokens * TOKEN_RATIOS[phase["name"]] // total_ratio
    for key in ("seq_len", "batch_size", "micro_batch_size", "checkpoint_every", "compile"):
        value = getattr(config, key)
        if value is not None:
            for phase in preset["phases"]:
                phase[key] = value
    return preset


def seq_len_for(config: TrainingConfig) -> int:
    """The sequence length to pack the shards with (every phase shares it)."""
    return resolve_preset(config, vocab_size=1)["phases"][0]["seq_len"]


def build_manifest(
    config: TrainingConfig,
    tokenizer_dir: Path,
    output_dir: Path,
    indexes: Mapping[str, Path | None],
    repeats: Mapping[str, int],
    seed: int,
    *,
    vocab_size: int | None = None,
    eod_id: int = 0,
    log: Log = print,
) -> dict[str, Any]:
    """The manifest for `config`; raises ValueError listing every `check_manifest` problem.

    `indexes` maps a phase to its packed `index.json` (None or absent: the phase is skipped);
    `repeats` overrides the preset's repeats per phase. `vocab_size` defaults to the size of
    the tokenizer at `tokenizer_dir` (loaded only then) and `eod_id` to its EOD id.
    """
    if vocab_size is None:
        from snowcoder_assets.tokens.packing import eod_token_id
        from snowcoder_assets.tokens.tokenizer import load_tokenizer

        tokenizer = load_tokenizer(str(tokenizer_dir))
        vocab_size, eod_id = len(tokenizer), eod_token_id(tokenizer)
    preset = resolve_preset(config, vocab_size)
    for key in ("eos_token_id", "bos_token_id", "pad_token_id"):
        preset["model"][key] = eod_id
    for phase in preset["phases"]:
        phase["repeats"] = int(repeats.get(phase["name"], phase["repeats"]))
        _attach_data(phase, indexes.get(phase["name"]), config.preset == "demo", log)
    manifest = {
        "version": MANIFEST_VERSION,
        "preset": config.preset,
        "model": preset["model"],
        "tokenizer": str(Path(tokenizer_dir).resolve()),
        "output_dir": str(Path(output_dir).resolve()),
        "seed": seed,
        "phases": preset["phases"],
    }
    problems = check_manifest(manifest)
    if problems:
        raise ValueError("the phase manifest cannot train:\n- " + "\n- ".join(problems))
    return manifest


def _attach_data(phase: dict, index_path: Path | None, clamp: bool, log: Log) -> None:
    """Point the phase at its shards, or skip it; a demo budget is lowered to what they hold."""
    name = phase["name"]
    if index_path is None:
        _skip(phase, SKIP_REASONS[name])
        return
    index_path = Path(index_path).resolve()
    phase["data"] = {"index": str(index_path)}
    if not clamp or not index_path.is_file():
        return  # check_manifest reports a missing index, and a paper budget the data lacks
    index = read_json(index_path)
    held = index["num_tokens"]
    if held == 0:
        _skip(phase, EMPTY_REASON.format(seq_len=index["seq_len"]))
        log(f"{name}: skipped, {phase['skip_reason']}")
    elif held * phase["repeats"] < (step := phase["batch_size"] * phase["seq_len"]):
        _skip(phase, SHORT_REASON.format(held=held, repeats=phase["repeats"], step=step))
        log(f"{name}: skipped, {phase['skip_reason']}")
    elif phase["token_budget"] < step:
        log(f"{name}: demo budget of {phase['token_budget']} tokens raised to one step ({step})")
        phase["token_budget"] = step
    elif phase["token_budget"] > held * phase["repeats"]:
        cap = held * phase["repeats"]
        log(
            f"{name}: demo budget of {phase['token_budget']} tokens lowered to the {cap} "
            f"its shards hold ({held} tokens x {phase['repeats']} repeats)"
        )
        phase["token_budget"] = cap


def _skip(phase: dict, reason: str) -> None:
    phase.update(data=None, token_budget=0, skip_reason=reason)


def write_manifest(manifest: Mapping[str, Any], path: Path) -> Path:
    """Write the manifest atomically (temp file + rename)."""
    write_json(Path(path), copy.deepcopy(dict(manifest)))
    return Path(path)


def check_manifest(manifest: Mapping[str, Any]) -> list[str]:
    """Everything that would stop or corrupt training, found before it starts."""
    problems: list[str] = []
    phases = {phase["name"]: phase for phase in manifest["phases"]}
    for phase in manifest["phases"]:
        problems += _check_shape(phase, manifest["model"])
        problems += _check_init(phase, phases)
        problems += _check_data(phase, manifest["model"])
    return problems


def _check_shape(phase: Mapping[str, Any], model: Mapping[str, Any]) -> list[str]:
    name, problems = phase["name"], []
    batch, micro = phase["batch_size"], phase["micro_batch_size"]
    if micro < 1 or batch < 1 or batch % micro:
        problems.append(f"{name} batch_size {batch} is not a multiple of micro_batch_size {micro}")
    if phase["repeats"] < 1:
        problems.append(f"{name} repeats its data {phase['repeats']} times (at least 1)")
    if model["max_position_embeddings"] < phase["seq_len"]:
        problems.append(
            f"{name} seq_len {phase['seq_len']} exceeds max_position_embeddings "
            f"{model['max_position_embeddings']}"
        )
    return problems


def _check_init(phase: Mapping[str, Any], phases: Mapping[str, Mapping[str, Any]]) -> list[str]:
    name, parent = phase["name"], phase["init_from"]
    if parent is None or phase["data"] is None:
        return []
    if parent not in phases or list(phases).index(parent) >= list(phases).index(name):
        return [f"{name} starts from {parent!r}, which is not an earlier phase"]
    if phases[parent]["data"] is None:
        return [f"{name} starts from {parent}, which is skipped ({phases[parent]['skip_reason']})"]
    return []


def _check_data(phase: Mapping[str, Any], model: Mapping[str, Any]) -> list[str]:
    name, budget, repeats = phase["name"], phase["token_budget"], phase["repeats"]
    if phase["data"] is None:
        problems = [] if phase["skip_reason"] else [f"{name} has no data and no skip_reason"]
        if budget:
            problems.append(f"{name} has no data but a token budget of {budget}")
        return problems
    index_path = Path(phase["data"]["index"])
    if not index_path.is_file():
        return [f"{name} index missing: {index_path}"]
    index = read_json(index_path)
    problems = _check_shards(name, index_path, index)
    if index["seq_len"] != phase["seq_len"]:
        problems.append(
            f"{name} trains on seq_len {phase['seq_len']} but its shards hold sequences of "
            f"{index['seq_len']} tokens ({index_path})"
        )
    if index["eod_id"] != model["eos_token_id"]:
        problems.append(
            f"{name} shards end documents with id {index['eod_id']} but the model's "
            f"eos_token_id is {model['eos_token_id']}"
        )
    if 0 < budget < phase["batch_size"] * phase["seq_len"]:
        problems.append(
            f"{name} token_budget {budget} is less than one step "
            f"({phase['batch_size']} x {phase['seq_len']} tokens)"
        )
    if budget > index["num_tokens"] * repeats:
        problems.append(
            f"{name} asks for {budget} tokens but its shards hold "
            f"{index['num_tokens']} tokens x {repeats} repeats"
        )
    return problems


def _check_shards(name: str, index_path: Path, index: Mapping[str, Any]) -> list[str]:
    itemsize = np.dtype(index["dtype"]).itemsize
    problems = []
    for shard in index["shards"]:
        path = index_path.parent / shard["path"]
        expected = shard["num_sequences"] * index["seq_len"] * itemsize
        if not path.is_file():
            problems.append(f"{name} shard missing: {path}")
        elif path.stat().st_size != expected:
            problems.append(
                f"{name} shard {path} holds {path.stat().st_size} bytes, not {expected}"
            )
    return problems


def write_phase_manifest(
    config: TrainingConfig,
    tokenizer_dir: Path,
    checkpoints_dir: Path,
    indexes: Mapping[str, Path | None],
    repeats: Mapping[str, int],
    seed: int,
    path: Path,
    log: Log = print,
) -> dict[str, Any]:
    """The `phase_manifest` stage: build the manifest from the packed indexes and write it."""
    manifest = build_manifest(
        config, tokenizer_dir, checkpoints_dir, indexes, repeats, seed, log=log
    )
    write_manifest(manifest, path)
    return manifest
