"""Scoring with a trained annotator: a file's score is the mean over its top, middle and bottom.

Arctic-SnowCoder (arXiv 2409.02326, phase 2) scores every phase-1 file with the annotator;
this module is that scorer, shared by `quality_scores`, `snowcoder score` and the annotator's
own validation.

Decisions:
- Chunks (`select_chunks`): tokens (no special tokens) are read in windows of
  `max_length - 2`: one if the text fits, first and last if it fills two, else first, centred
  and last. Every window is full length, so no score rests on a few stray tokens;
  [CLS]/[SEP] wrap each window.
- Only what the chunks need is tokenized (`chunk_windows`): a long text is read as three
  character windows (head, centre, tail) cut at whitespace, so the first and last chunks equal
  those of the whole-text tokens; the middle chunk is centred on the middle character rather
  than the middle token. A window that yields too few tokens (whitespace runs, huge words)
  falls back to the whole text. Tokenizing whole files cost ~10% of scoring time.
- Layout (`visible_layout`): BERT's WordPiece drops all whitespace, so an encoder reading raw
  code sees neither line breaks nor indentation: a function with its body lines shuffled, or
  squeezed flat, is nearly or exactly the token sequence of the real one. An annotator trained
  with `[annotator] show_layout` reads each line start as `¶<indent width>` (two tokens a line)
  and every text it scores is written the same way; the setting is read from the annotator's
  own `annotator.json`, so a saved annotator is always scored as it was trained.
- bf16: `dtype="auto"` picks bf16 autocast where the CPU has native bf16 (AVX512-BF16, AMX) or
  the GPU supports it; by capability, not a timing probe, so the choice is reproducible.
  Weights stay fp32; scores move by ~1e-3 (tested: < 0.05).
- `compile`: `torch.compile(dynamic=True)` with inductor freezing (weights become constants and
  are pre-packed for the matmul kernels): ~1.2x per chunk on this CPU, for ~20 s of
  compilation, which pays back after ~2 min of scoring. "auto" compiles once a Scorer has run
  `COMPILE_AFTER_CHUNKS` chunks eagerly (~3 min here): a run that long is most likely a large
  one, and tests, `snowcoder score` on a small file and the demo (~7,000 chunks) never pay.
  A compilation that fails (no C compiler, an unsupported op) warns and scores eagerly: the
  scores are the same.
- `score_jsonl` fails on a line that is not a JSON object with a string `content`, naming the
  line, and leaves no output (blank lines are skipped): `score: null` would let a broken input
  reach the ranking silently.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from snowcoder_assets.io import atomic_path
from snowcoder_assets.strict import StrictModel

if TYPE_CHECKING:
    import torch

ANNOTATOR_FILE = "annotator.json"
LAYOUT_MARK = "¶"  # in the BERT uncased vocabulary, and a character code rarely holds
LINES_PER_BATCH = 512  # score_jsonl reads, scores and writes this many lines at a time
WINDOW_CHARS_PER_TOKEN = 8  # characters read per chunk token around each chunk of a long text
WINDOW_SPARE_TOKENS = 8  # a window must yield this many tokens beyond its chunk to be trusted
COMPILE_AFTER_CHUNKS = 16384  # ~3 min of eager scoring on 2 cores; compiling costs ~20 s


class ScoringConfig(StrictModel):
    batch_size: int = 64  # chunks per forward pass
    dtype: Literal["auto", "float32", "bfloat16"] = "auto"
    threads: int = 0  # torch intra-op threads; 0 = every core this process may use
    compile: Literal["auto", "always", "never"] = "auto"  # auto: after COMPILE_AFTER_CHUNKS


def visible_layout(text: str) -> str:
    """`text` on one line, each original line opened by `¶<its indent width>` (tabs count 4) and
    a blank line as `¶`: the layout the tokenizer would otherwise drop."""
    out = []
    for line in text.expandtabs(4).split("\n"):
        body = line.lstrip(" ")
        out.append(f"{LAYOUT_MARK}{len(line) - len(body)} {body}" if body.strip() else LAYOUT_MARK)
    return " ".join(out)


def select_chunks(ids: Sequence[int], chunk: int) -> list[list[int]]:
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


def chunk_windows(tokenizer, texts: Sequence[str], chunk: int) -> list[list[list[int]]]:
    """Each text's chunks (`select_chunks`), tokenizing three windows of a long text, not all."""
    span = chunk * WINDOW_CHARS_PER_TOKEN
    long = [i for i, text in enumerate(texts) if len(text) > 3 * span]
    pieces = [piece for i in long for piece in _head_centre_tail(texts[i], span)]
    ids = _token_ids(tokenizer, pieces)
    chunks: dict[int, list[list[int]]] = {}
    for n, i in enumerate(long):
        head, centre, tail = ids[3 * n : 3 * n + 3]
        if min(len(head), len(centre), len(tail)) >= chunk + WINDOW_SPARE_TOKENS:
            middle = (len(centre) - chunk) // 2
            chunks[i] = [head[:chunk], centre[middle : middle + chunk], tail[-chunk:]]
    whole = [i for i in range(len(texts)) if i not in chunks]
    for i, tokens in zip(whole, _token_ids(tokenizer, [texts[i] for i in whole]), strict=True):
        chunks[i] = select_chunks(tokens, chunk)
    return [chunks[i] for i in range(len(texts))]


def _head_centre_tail(text: str, span: int) -> tuple[str, str, str]:
    """Three slices of about `span` characters, each cut at whitespace so no word is split."""
    centre = (len(text) - span) // 2
    return (
        text[: _cut_before(text, span)],
        text[_cut_after(text, centre) : _cut_before(text, centre + span)],
        text[_cut_after(text, len(text) - span) :],
    )


def _cut_before(text: str, end: int) -> int:
    """The last whitespace position before `end` (within 64 characters), else `end`."""
    cut = max(text.rfind(" ", 0, end), text.rfind("\n", 0, end))
    return cut if cut > end - 64 else end


def _cut_after(text: str, start: int) -> int:
    """The first whitespace position at or after `start` (within 64 characters), else `start`."""
    found = (text.find(" ", start, start + 64), text.find("\n", start, start + 64))
    return min((p for p in found if p >= 0), default=start)


class Scorer:
    """A saved annotator loaded once; `score(texts)` gives each text its mean chunk probability."""

    def __init__(
        self,
        model_dir: str | Path,
        max_length: int,
        scoring: ScoringConfig | None = None,
        device: str = "cpu",
        log: Callable[[str], None] | None = None,
    ) -> None:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.scoring = scoring or ScoringConfig()
        torch.set_num_threads(self.scoring.threads or usable_cores())
        trained = read_meta(Path(model_dir)).get("config", {})
        trust = trained.get("trust_remote_code", False)
        self.show_layout = bool(trained.get("show_layout", False))  # as the annotator was trained
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir, trust_remote_code=trust)
        self.model = AutoModelForSequenceClassification.from_pretrained(
            model_dir, dtype=torch.float32, trust_remote_code=trust
        )
        self.model.to(device).eval()
        self.device = device
        self.chunk = chunk_tokens(self.tokenizer, max_length)
        self.dtype = resolve_dtype(self.scoring.dtype, device)
        self.compiled: Callable[..., Any] | None = None
        self.compile_failed = False
        self.chunks_run = 0
        self._log = log or (lambda _: None)

    def score(self, texts: Sequence[str]) -> np.ndarray:
        """float32 scores in [0, 1], one per text, in order."""
        import torch

        autocast = torch.bfloat16 if self.dtype == "bfloat16" else None
        return file_scores(
            self._forward,
            self.tokenizer,
            [visible_layout(t) for t in texts] if self.show_layout else texts,
            self.chunk,
            self.scoring.batch_size,
            autocast,
            self.device,
        )

    def _forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Logits of one padded batch: compiled once it pays off, eager otherwise."""
        mode = self.scoring.compile
        due = mode == "always" or (mode == "auto" and self.chunks_run >= COMPILE_AFTER_CHUNKS)
        self.chunks_run += len(inputs["input_ids"])
        if due and self.compiled is None and not self.compile_failed:
            self._compile()
        if self.compiled is not None and len(inputs["input_ids"]) > 1:  # size 1 recompiles
            try:
                with _inductor_freezing():
                    return self.compiled(**inputs).logits
            except Exception as error:  # any compiler failure (no C compiler, an op): eager
                warnings.warn(
                    f"torch.compile failed, scoring eagerly: {error!r:.300}", stacklevel=2
                )
                self.compiled, self.compile_failed = None, True
        return self.model(**inputs).logits

    def _compile(self) -> None:
        import torch

        self._log("compiling the annotator (torch.compile, inductor freezing; once)")
        self.compiled = torch.compile(self.model, dynamic=True)


def _inductor_freezing():
    """Inductor's freezing for the calls that compile (compilation is lazy, at a first call);
    set through the config, as `torch.compile(options=...)` left part of it off (0.63 s
    against 0.58 s a batch of 64 x 128 on the bench's CPU)."""
    import torch._inductor.config

    return torch._inductor.config.patch(freezing=True)


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
        max_length = read_meta(Path(annotator_dir)).get("config", {}).get("max_length")
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


def file_scores(
    forward, tokenizer, texts, chunk, batch_size, autocast, device: str = "cpu"
) -> np.ndarray:
    """Mean sigmoid over each text's chunks, run length-sorted in padded batches.

    `forward` maps a batch (input_ids, attention_mask) to logits: a model's or a Scorer's."""
    import torch

    owners, pieces = [], []
    for owner, chunks in enumerate(chunk_windows(tokenizer, texts, chunk)):
        owners += [owner] * len(chunks)
        pieces += chunks
    order = sorted(range(len(pieces)), key=lambda i: len(pieces[i]))
    probs = np.zeros(len(pieces), dtype=np.float32)
    prefix, suffix = special_tokens(tokenizer)
    with (
        torch.inference_mode(),
        torch.autocast(
            torch.device(device).type, dtype=autocast or torch.float32, enabled=bool(autocast)
        ),
    ):
        for start in range(0, len(order), batch_size):
            index = order[start : start + batch_size]
            batch = collate([pieces[i] for i in index], prefix, suffix, tokenizer.pad_token_id)
            logits = forward({k: v.to(device) for k, v in batch.items()})[:, 0]
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


def special_tokens(tokenizer) -> tuple[list[int], list[int]]:
    """([CLS], [SEP]) ids, or (BOS, EOS) for tokenizers without them."""
    first = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
    last = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
    return [first] if first is not None else [], [last] if last is not None else []


def chunk_tokens(tokenizer, max_length: int) -> int:
    """Text tokens per chunk: `max_length` less the special tokens that wrap it."""
    prefix, suffix = special_tokens(tokenizer)
    chunk = max_length - len(prefix) - len(suffix)
    if chunk < 1:
        raise ValueError(f"max_length {max_length} leaves no room for text tokens")
    return chunk


def collate(pieces, prefix, suffix, pad_id) -> dict[str, torch.Tensor]:
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


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask), else os.cpu_count()."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def read_meta(model_dir: Path) -> dict[str, Any]:
    """The annotator's own record (`annotator.json`), or {} for a plain model folder."""
    path = model_dir / ANNOTATOR_FILE
    return json.loads(path.read_text()) if path.is_file() else {}
