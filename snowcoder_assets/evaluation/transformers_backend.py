"""The `transformers` generation backend: greedy `generate` in the run's own process.

For tiny models (the tests, a laptop without vLLM's venv): no engine start, but no paged
attention or continuous batching either, so vLLM is ~7-10x faster on the demo checkpoints
(bench/generate.py). It implements phase 3's `Backend` protocol and writes the same journal.
Stop sequences are applied to the decoded text (vLLM's semantics: the stop string is not part
of the completion).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from snowcoder_assets.phase3.generation import (
    GenerationError,
    Log,
    PromptRequest,
    Response,
    ResponseJournal,
    Sampling,
)


def cut_at_stop(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    """The text up to the earliest stop sequence, and whether one was found."""
    ends = [i for i in (text.find(s) for s in stops if s) if i >= 0]
    return (text[: min(ends)], True) if ends else (text, False)


class TransformersBackend:
    """Greedy completions from a local Hugging Face model folder, in batches."""

    def __init__(self, model: str, label: str, batch_size: int = 8) -> None:
        self.model = Path(model)
        self.batch_size = batch_size
        self.generator = f"transformers:{label}"

    def generate(
        self,
        requests: Sequence[PromptRequest],
        sampling: Sampling,
        journal: ResponseJournal,
        log: Log,
    ) -> None:
        todo = journal.missing(requests)
        if not todo:
            return
        if not (self.model / "config.json").is_file():
            raise GenerationError(f"transformers: {self.model} has no config.json")
        model, tokenizer = self._load()
        for start in range(0, len(todo), self.batch_size):
            batch = todo[start : start + self.batch_size]
            for response in self._batch(model, tokenizer, batch, sampling):
                journal.append(response)
            log(f"{self.generator}: {min(start + self.batch_size, len(todo))}/{len(todo)} prompts")

    def _load(self):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(self.model)
        tokenizer.padding_side = "left"
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        model = AutoModelForCausalLM.from_pretrained(self.model, dtype=torch.float32).eval()
        return model, tokenizer

    def _batch(self, model, tokenizer, batch: Sequence[PromptRequest], sampling: Sampling):
        import torch

        limit = getattr(model.config, "max_position_embeddings", None) or 1 << 30
        lengths = [len(tokenizer(r.prompt).input_ids) for r in batch]
        fitting = [r for r, n in zip(batch, lengths, strict=True) if n < limit]
        texts: dict[str, tuple[str, int, int]] = {}
        if fitting:
            encoded = tokenizer([r.prompt for r in fitting], return_tensors="pt", padding=True)
            width = encoded.input_ids.shape[1]
            new_tokens = max(1, min(sampling.max_tokens, limit - width))
            with torch.no_grad():
                output = model.generate(
                    **encoded,
                    max_new_tokens=new_tokens,
                    do_sample=False,
                    pad_token_id=tokenizer.pad_token_id,
                )
            for row, request in enumerate(fitting):
                ids = output[row, width:]
                ids = (
                    ids[ids != tokenizer.pad_token_id]
                    if tokenizer.pad_token_id is not None
                    else ids
                )
                prompt_tokens = int(encoded.attention_mask[row].sum())
                texts[request.prompt_id] = (tokenizer.decode(ids), prompt_tokens, len(ids))
        for request, n in zip(batch, lengths, strict=True):
            if request.prompt_id not in texts:
                error = f"prompt of {n} tokens exceeds the model's context of {limit}"
                yield Response(
                    request.prompt_id, None, None, n, error=error, generator=self.generator
                )
                continue
            raw, prompt_tokens, completion_tokens = texts[request.prompt_id]
            text, stopped = cut_at_stop(raw, request.stops(sampling))
            yield Response(
                request.prompt_id,
                text,
                "stop" if stopped or completion_tokens < sampling.max_tokens else "length",
                prompt_tokens,
                completion_tokens,
                generator=self.generator,
            )
