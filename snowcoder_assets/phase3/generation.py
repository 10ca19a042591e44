"""What every generation backend takes and gives back, and the journal responses go into.

Standard library only: the vLLM worker (`vllm_worker.py`) runs in vLLM's own venv, where
neither Dagster nor pydantic is installed, and writes the same journal lines.

The journal (`responses.jsonl`) is append-only: one JSON object per line, written and flushed
as each response arrives, so a killed run loses at most the response it was writing. On read,
a torn last line is ignored and the first line of a prompt id wins, so a prompt is never
counted twice. A journal line:

    {"prompt_id": str, "text": str | null, "finish_reason": str | null,
     "prompt_tokens": int, "completion_tokens": int, "error": str | null, "generator": str}

`error` is set (and `text` null) when the request failed for good: the prompt is recorded as
`request_failed: <error>` and is not sent again by a re-run with the same configuration.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol


class GenerationError(RuntimeError):
    """A problem no retry fixes (bad key, unknown model, no server): the run stops, clearly."""


@dataclass(frozen=True)
class Sampling:
    """Sampling parameters, the same for both backends (`SamplingParams` / the OpenAI body)."""

    max_tokens: int = 1024
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0
    stop: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "stop": list(self.stop)}


@dataclass(frozen=True)
class PromptRequest:
    """One prompt: chat messages for chat endpoints, the same rendered as one text for
    completions endpoints and base models."""

    prompt_id: str
    messages: tuple[dict[str, str], ...]
    prompt: str
    stop: tuple[str, ...] | None = None  # this request's stop sequences, else Sampling.stop

    def stops(self, sampling: Sampling) -> tuple[str, ...]:
        return sampling.stop if self.stop is None else self.stop


@dataclass(frozen=True)
class Response:
    prompt_id: str
    text: str | None
    finish_reason: str | None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: str | None = None
    generator: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, sort_keys=True)


Log = Callable[[str], None]


def journal_name(generator: str) -> str:
    """A journal's file name: one per generator, so a new model never reuses another
    model's answers (readable slug + a hash of the whole label)."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", generator)[-60:]
    payload = json.dumps([generator], separators=(",", ":")).encode()
    return f"{slug}-{hashlib.blake2b(payload, digest_size=12).hexdigest()[:8]}.jsonl"


class Backend(Protocol):
    """Sends every request and appends one `Response` per request to the journal as it
    finishes. A request that fails for good is a `Response` with `error`, not an exception;
    `GenerationError` is for failures that would make every request fail."""

    generator: str  # what wrote the text, e.g. "openai:<model>" or "vllm:<model>"

    def generate(
        self,
        requests: Sequence[PromptRequest],
        sampling: Sampling,
        journal: ResponseJournal,
        log: Log,
    ) -> None: ...


@dataclass
class ResponseJournal:
    """The append-only response log of one `synthetic_corpus` configuration."""

    path: Path
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def read(self) -> dict[str, Response]:
        """Responses by prompt id; the first line of an id wins, a torn last line is skipped."""
        done: dict[str, Response] = {}
        for record in _records(self.path):
            done.setdefault(record.prompt_id, record)
        return done

    def missing(self, requests: Sequence[PromptRequest]) -> list[PromptRequest]:
        """The requests the journal holds no response for, in order."""
        done = self.read()
        return [r for r in requests if r.prompt_id not in done]

    def append(self, response: Response) -> None:
        """Write one line and flush it to disk before returning (thread-safe)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = (response.to_json() + "\n").encode("utf-8")
        with self._lock, self.path.open("ab+") as out:
            if out.tell() and (out.seek(-1, os.SEEK_END), out.read(1))[1] != b"\n":
                line = b"\n" + line  # end a line torn by a kill, so this one stays whole
            out.write(line)
            out.flush()
            os.fsync(out.fileno())


def _records(path: Path) -> Iterator[Response]:
    if not path.is_file():
        return
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if not line.endswith("\n"):
                return  # torn by a kill: that prompt is sent again
            try:
                yield Response(**json.loads(line))
            except (json.JSONDecodeError, TypeError):
                continue
