"""The phase manifest: what the pipeline asks the trainer to do, checked before any training.

The pipeline writes one JSON file (version 1) naming the model shape, the tokenizer folder,
the checkpoint folder, the seed and the phases in order; each phase points at a packed-shard
index written by the packer. `load_manifest` checks structure and types (unknown or missing
fields, wrong types); `validate(manifest, phase)` checks everything one phase needs on disk
(index, shards, budget, tokenizer, the checkpoint it starts from) and raises `ManifestError`
naming the phase and the field, so a bad manifest fails in a second, not after an hour.

Steps of a phase: `total_steps = token_budget // (batch_size * seq_len)`. Only the standard
library is imported here: the Dagster definitions may import this module.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

MANIFEST_VERSION = 1
LR_KINDS = ("warmup_cosine", "rewarm_linear")
PRECISIONS = ("auto", "bf16", "fp32")
DTYPE_SIZES = {"uint16": 2, "uint32": 4}
INDEX_KEYS = ("dtype", "seq_len", "eod_id", "num_sequences", "shards")  # what the trainer reads


class ManifestError(ValueError):
    """The manifest (or what it points at) cannot be trained as asked."""


@dataclass(frozen=True)
class ModelConfig:
    """Llama-architecture shape; every field is passed to `transformers.LlamaConfig`."""

    vocab_size: int
    hidden_size: int
    intermediate_size: int  # SwiGLU FFN width
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int  # == num_attention_heads: no KV grouping (the paper's model)
    max_position_embeddings: int  # the context length
    rope_theta: float = 10000.0
    rms_norm_eps: float = 1e-5
    tie_word_embeddings: bool = True
    eos_token_id: int = 0  # the tokenizer's <|endoftext|>, also the packer's EOD
    bos_token_id: int = 0
    pad_token_id: int = 0


@dataclass(frozen=True)
class LRSchedule:
    kind: str  # "warmup_cosine" (phase 1) or "rewarm_linear" (phase 2); see schedule.py
    peak_lr: float
    final_lr: float
    warmup_steps: int


@dataclass(frozen=True)
class PhaseData:
    index: str  # the packer's index.json; shard paths are relative to its folder


@dataclass(frozen=True)
class Phase:
    name: str
    seq_len: int  # tokens per packed sequence; a sequence trains on seq_len - 1 predictions
    token_budget: int  # tokens (sequences x seq_len) to train on; 0 = nothing to train
    batch_size: int  # sequences per optimizer step (global, over all ranks)
    micro_batch_size: int  # sequences per forward; accumulation = batch / (micro x ranks)
    data: PhaseData | None = None
    repeats: int = 1  # passes the data may take (phase 2 repeats its top-k corpus 4 times)
    lr_schedule: LRSchedule | None = None
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    betas: tuple[float, float] = (0.9, 0.95)
    init_from: str | None = None  # an earlier phase: start from <output_dir>/<it>/final
    checkpoint_every: int = 1000  # optimizer steps between step checkpoints
    precision: str = "auto"  # "auto" (bf16 autocast where the device runs it fast), bf16, fp32
    compile: bool = False  # torch.compile the model (slow first step, faster after)
    skip_reason: str | None = None  # non-null: the phase is skipped with this message

    @property
    def total_steps(self) -> int:
        return self.token_budget // (self.batch_size * self.seq_len)

    @property
    def skip_message(self) -> str | None:
        """Why this phase trains nothing, or None when it trains."""
        if self.skip_reason:
            return self.skip_reason
        return "token_budget is 0" if self.token_budget == 0 else None


@dataclass(frozen=True)
class Manifest:
    model: ModelConfig
    tokenizer: str  # HF tokenizer folder, copied into every checkpoint
    output_dir: str  # checkpoints go to <output_dir>/<phase>/step-XXXXXXX and .../final
    phases: list[Phase] = field(default_factory=list)
    version: int = MANIFEST_VERSION
    preset: str = ""
    seed: int = 0

    def phase(self, name: str) -> Phase:
        for phase in self.phases:
            if phase.name == name:
                return phase
        names = ", ".join(p.name for p in self.phases) or "none"
        raise ManifestError(f"unknown phase {name!r} (the manifest has: {names})")

    def phase_dir(self, name: str) -> Path:
        return Path(self.output_dir) / name


def load_manifest(path: str | Path) -> Manifest:
    """Read and type-check a manifest; errors name the field (`phase 'phase2': lr_schedule...`)."""
    try:
        raw = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ManifestError(f"manifest {path} does not exist") from None
    except json.JSONDecodeError as error:
        raise ManifestError(f"manifest {path} is not valid JSON: {error}") from None
    return manifest_from_dict(raw)


def manifest_from_dict(raw: Any) -> Manifest:
    if isinstance(raw, dict) and raw.get("version", MANIFEST_VERSION) != MANIFEST_VERSION:
        raise ManifestError(f"manifest version {raw['version']!r} (this trainer reads 1)")
    manifest = _parse(Manifest, raw, "manifest")
    names = [p.name for p in manifest.phases]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ManifestError(f"manifest: phase name(s) {', '.join(duplicates)} appear twice")
    return manifest


def manifest_to_dict(manifest: Manifest) -> dict[str, Any]:
    """The JSON form (`json.dumps(manifest_to_dict(m))` round-trips through load_manifest)."""
    return json.loads(json.dumps(dataclasses.asdict(manifest)))


def validate(manifest: Manifest, phase_name: str, *, check_init_checkpoint: bool = True) -> Phase:
    """Check that `phase_name` can train as written; return the phase.

    A skipped phase (skip_reason, or token_budget 0) is only looked up. Set
    `check_init_checkpoint=False` to validate a later phase before its init_from phase has run.
    """
    phase = manifest.phase(phase_name)
    if phase.skip_message:
        return phase
    where = f"phase {phase.name!r}"
    _check_numbers(manifest, phase, where)
    index = _check_data(phase, where)
    if index["eod_id"] != manifest.model.eos_token_id:
        raise ManifestError(
            f"{where}: the index's eod_id {index['eod_id']} is not the model's eos_token_id "
            f"{manifest.model.eos_token_id}"
        )
    _check_tokenizer(manifest)
    _check_init_from(manifest, phase, where, check_init_checkpoint)
    return phase


def read_index(path: str | Path) -> dict[str, Any]:
    """The packer's index.json with every key the trainer uses present (else ManifestError)."""
    try:
        index = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ManifestError(f"index {path} does not exist") from None
    except json.JSONDecodeError as error:
        raise ManifestError(f"index {path} is not valid JSON: {error}") from None
    missing = [k for k in INDEX_KEYS if k not in index]
    if missing:
        raise ManifestError(f"index {path}: missing {', '.join(missing)}")
    if index["dtype"] not in DTYPE_SIZES:
        raise ManifestError(f"index {path}: dtype {index['dtype']!r} (expected uint16 or uint32)")
    return index


def _check_numbers(manifest: Manifest, phase: Phase, where: str) -> None:
    for name in ("seq_len", "batch_size", "micro_batch_size", "repeats", "checkpoint_every"):
        if getattr(phase, name) < 1:
            raise ManifestError(f"{where}: {name} must be >= 1, got {getattr(phase, name)}")
    if phase.seq_len < 2:
        raise ManifestError(f"{where}: seq_len must be >= 2 (input s[:-1], target s[1:])")
    if phase.seq_len - 1 > manifest.model.max_position_embeddings:
        raise ManifestError(
            f"{where}: seq_len {phase.seq_len} is longer than the model's "
            f"max_position_embeddings {manifest.model.max_position_embeddings} (+1)"
        )
    if phase.batch_size % phase.micro_batch_size:
        raise ManifestError(
            f"{where}: batch_size {phase.batch_size} is not a multiple of "
            f"micro_batch_size {phase.micro_batch_size}"
        )
    if phase.total_steps < 1:
        raise ManifestError(
            f"{where}: token_budget {phase.token_budget} is less than one step "
            f"(batch_size x seq_len = {phase.batch_size * phase.seq_len} tokens)"
        )
    if phase.precision not in PRECISIONS:
        raise ManifestError(f"{where}: precision {phase.precision!r} (expected {PRECISIONS})")
    schedule = phase.lr_schedule
    if schedule is None:
        raise ManifestError(f"{where}: lr_schedule is missing")
    if schedule.kind not in LR_KINDS:
        raise ManifestError(f"{where}: lr_schedule.kind {schedule.kind!r} (expected {LR_KINDS})")
    if schedule.peak_lr <= 0 or schedule.final_lr < 0 or schedule.warmup_steps < 0:
        raise ManifestError(f"{where}: lr_schedule needs peak_lr > 0, final_lr >= 0, warmup >= 0")
    model = manifest.model
    if model.hidden_size % model.num_attention_heads or (
        model.num_attention_heads % model.num_key_value_heads
    ):
        raise ManifestError(
            "model: hidden_size must divide by num_attention_heads, and heads by KV heads"
        )


def _check_data(phase: Phase, where: str) -> dict[str, Any]:
    if phase.data is None:
        raise ManifestError(
            f"{where}: data is null but token_budget is {phase.token_budget} "
            "(set skip_reason to skip the phase)"
        )
    index_path = Path(phase.data.index)
    if not index_path.is_file():
        raise ManifestError(f"{where}: data.index {index_path} does not exist")
    index = read_index(index_path)
    if index["seq_len"] != phase.seq_len:
        raise ManifestError(
            f"{where}: seq_len {phase.seq_len} does not match the index's seq_len "
            f"{index['seq_len']} ({index_path})"
        )
    itemsize, counted = DTYPE_SIZES[index["dtype"]], 0
    for shard in index["shards"]:
        path = index_path.parent / shard["path"]
        expected = shard["num_sequences"] * phase.seq_len * itemsize
        if not path.is_file():
            raise ManifestError(f"{where}: shard {path} does not exist")
        if path.stat().st_size != expected:
            raise ManifestError(
                f"{where}: shard {path} holds {path.stat().st_size} bytes, expected {expected} "
                f"({shard['num_sequences']} sequences x {phase.seq_len} x {itemsize} bytes)"
            )
        counted += shard["num_sequences"]
    if counted != index["num_sequences"]:
        raise ManifestError(
            f"{where}: shards hold {counted} sequences, the index says {index['num_sequences']}"
        )
    held = counted * phase.seq_len
    if phase.token_budget > held * phase.repeats:
        raise ManifestError(
            f"{where}: token_budget asks for {phase.token_budget} tokens, shards hold {held} x "
            f"repeats {phase.repeats} = {held * phase.repeats}"
        )
    return index


def _check_tokenizer(manifest: Manifest) -> None:
    """The tokenizer folder exists; its vocabulary fits the model and its EOS is the model's."""
    folder = Path(manifest.tokenizer)
    if not folder.is_dir():
        raise ManifestError(f"tokenizer folder {folder} does not exist")
    if not (folder / "tokenizer.json").is_file():
        return  # a slow tokenizer: nothing cheap to check
    backend = json.loads((folder / "tokenizer.json").read_text())
    vocab = dict(backend.get("model", {}).get("vocab") or {})
    vocab.update({t["content"]: t["id"] for t in backend.get("added_tokens", [])})
    size = max(vocab.values(), default=-1) + 1
    if size > manifest.model.vocab_size:
        raise ManifestError(
            f"tokenizer {folder} has {size} ids, more than the model's vocab_size "
            f"{manifest.model.vocab_size}"
        )
    config_path = folder / "tokenizer_config.json"
    eos = json.loads(config_path.read_text()).get("eos_token") if config_path.is_file() else None
    eos = eos.get("content") if isinstance(eos, dict) else eos
    if eos in vocab and vocab[eos] != manifest.model.eos_token_id:
        raise ManifestError(
            f"tokenizer {folder}: eos token {eos!r} is id {vocab[eos]}, the model's "
            f"eos_token_id is {manifest.model.eos_token_id}"
        )


def _check_init_from(manifest: Manifest, phase: Phase, where: str, check_checkpoint: bool) -> None:
    if phase.init_from is None:
        return
    names = [p.name for p in manifest.phases]
    if phase.init_from not in names:
        raise ManifestError(f"{where}: init_from {phase.init_from!r} names no phase")
    if names.index(phase.init_from) >= names.index(phase.name):
        raise ManifestError(f"{where}: init_from {phase.init_from!r} is not an earlier phase")
    final = manifest.phase_dir(phase.init_from) / "final"
    if check_checkpoint and not (final / "config.json").is_file():
        raise ManifestError(
            f"{where}: init_from {phase.init_from!r} has no final checkpoint at {final} "
            f"(train {phase.init_from} first)"
        )


def _parse(cls: type, raw: Any, where: str) -> Any:
    """Build dataclass `cls` from a JSON object, checking names and types field by field."""
    if not isinstance(raw, dict):
        raise ManifestError(f"{where}: expected an object, got {type(raw).__name__}")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ManifestError(f"{where}: unknown field(s) {', '.join(unknown)}")
    hints, values = typing.get_type_hints(cls), {}
    for f in fields(cls):
        if f.name in raw:
            values[f.name] = _coerce(hints[f.name], raw[f.name], f"{where}: {f.name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ManifestError(f"{where}: {f.name} is missing")
    return cls(**values)


def _coerce(tp: Any, value: Any, where: str) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        (tp,) = [a for a in args if a is not type(None)]
        return _coerce(tp, value, where)
    if dataclasses.is_dataclass(tp):
        name = value.get("name") if isinstance(value, dict) and tp is Phase else None
        return _parse(tp, value, f"phase {name!r}" if isinstance(name, str) else where)
    if origin in (list, tuple):
        if not isinstance(value, list) or (origin is tuple and len(value) != len(args)):
            raise ManifestError(f"{where}: expected a list, got {value!r}")
        item_types = args if origin is tuple else [args[0]] * len(value)
        pairs = enumerate(zip(item_types, value, strict=True))
        items = [_coerce(t, v, f"{where}[{i}]") for i, (t, v) in pairs]
        return tuple(items) if origin is tuple else items
    ok = isinstance(value, tp) and not (tp is int and isinstance(value, bool))
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not ok:
        raise ManifestError(f"{where}: expected {tp.__name__}, got {value!r}")
    return value
