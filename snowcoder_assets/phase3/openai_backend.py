"""The `openai` backend: any OpenAI-compatible server (`vllm serve`, a hosted endpoint).

Retries are the `openai` client's own (openai 3.57, `_base_client.SyncAPIClient.request`):
- retried: timeouts, connection errors (refused, reset) and HTTP 408, 409, 429 and >= 500,
  up to `max_retries` times (so `max_retries + 1` attempts); a response header
  `x-should-retry: true|false` overrides the status rule;
- the wait honours `retry-after-ms`, then `Retry-After` (seconds, a float, or an HTTP date)
  when it is > 0 and <= 120 s; a `Retry-After` over 120 s means *no* retry at all (the error
  is raised at once); otherwise exponential back-off 0.5 s * 2**retry, capped at 8 s, minus up
  to 25 % jitter: 0.5, 1, 2, 4, 8, 8 ... s (7.5 s in all for the default 4 retries);
- `timeout_s` bounds each attempt (connect, read, write, pool), not the whole retried request.

What the caller gets: a request that fails for good (retries spent, or a 400 such as a prompt
over the context) is a `Response` with `error`; failures that would make every request fail
(key refused, model not served, server gone) raise `GenerationError`. The key is never logged.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx2
import openai

from snowcoder_assets.phase3.generation import (
    GenerationError,
    Log,
    PromptRequest,
    Response,
    ResponseJournal,
    Sampling,
)

NO_KEY = "EMPTY"  # vLLM's convention: a local server without --api-key takes any bearer token
SNIPPET_CHARS = 200


class OpenAIBackend:
    """Sends prompts to an OpenAI-compatible server, `concurrency` requests at a time."""

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None,
        endpoint: str = "chat",
        concurrency: int = 8,
        timeout_s: float = 120.0,
        max_retries: int = 4,
        api_key_env: str = "OPENAI_API_KEY",
    ) -> None:
        if endpoint not in ("chat", "completions"):
            raise ValueError(f"endpoint must be 'chat' or 'completions', not {endpoint!r}")
        self.generator = f"openai:{model}"
        self.base_url, self.model, self.endpoint = base_url, model, endpoint
        self.concurrency, self.timeout_s, self.max_retries = concurrency, timeout_s, max_retries
        self.api_key_env = api_key_env
        self._key = api_key or None
        self._client = openai.OpenAI(
            base_url=base_url,
            api_key=api_key or NO_KEY,
            timeout=timeout_s,
            max_retries=max_retries,
        )

    def generate(
        self,
        requests: Sequence[PromptRequest],
        sampling: Sampling,
        journal: ResponseJournal,
        log: Log,
    ) -> None:
        """Append one response per request as each finishes; on a `GenerationError` no new
        request starts, those in flight finish into the journal, then it is raised."""
        if not requests:
            return
        self._check_server(log)
        progress = _Progress(len(requests), log)
        stop = threading.Event()

        def work(request: PromptRequest) -> None:
            if stop.is_set():
                return
            try:
                response = self._send(request, sampling)
                journal.append(response)
            except BaseException:
                stop.set()
                raise
            progress.add(response)

        log(
            f"openai: {len(requests)} prompts to {self.model} at {self.base_url} "
            f"({self.endpoint}, {self.concurrency} in flight)"
        )
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="openai") as pool:
            futures = [pool.submit(work, request) for request in requests]
            try:
                errors = [future.exception() for future in futures]
            except BaseException:  # interrupted (Ctrl-C, a run terminated): send no more
                stop.set()
                raise
        fatal = next((error for error in errors if error is not None), None)
        if fatal is not None:
            log(f"openai: stopped after {progress.summary()}")
            raise fatal

    def _check_server(self, log: Log) -> None:
        """One GET /v1/models, retried once only, so a wrong URL or key fails in seconds."""
        try:
            page = self._client.with_options(max_retries=min(self.max_retries, 1)).models.list()
            served = [model.id for model in page.data]
        except openai.APIConnectionError as error:
            raise GenerationError(
                f"no OpenAI-compatible server answers at {self.base_url} "
                f"({self._reason(error)}); start one (e.g. `vllm serve {self.model}`) "
                "or set [synthetic] base_url"
            ) from None
        except (openai.AuthenticationError, openai.PermissionDeniedError) as error:
            raise self._refused(error) from None
        except openai.NotFoundError:
            log(f"openai: {self.base_url} has no /v1/models; not checking the model name")
            return
        except openai.APIStatusError as error:
            log(f"openai: GET /v1/models failed ({self._reason(error)}); sending anyway")
            return
        if self.model not in served:
            raise GenerationError(
                f"{self.base_url} does not serve model {self.model!r}; it serves: "
                + (", ".join(repr(name) for name in served) or "no models")
            )

    def _send(self, request: PromptRequest, sampling: Sampling) -> Response:
        """One request, retried by the client; a per-request failure comes back as `error`."""
        params: dict[str, Any] = {
            "model": self.model,
            "max_tokens": sampling.max_tokens,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "seed": sampling.seed,
        }
        if stops := request.stops(sampling):
            params["stop"] = list(stops)[:4]  # the OpenAI API takes at most four
        try:
            if self.endpoint == "chat":
                completion: Any = self._client.chat.completions.create(
                    messages=list(request.messages),  # type: ignore[arg-type]
                    **params,
                )
            else:
                completion = self._client.completions.create(prompt=request.prompt, **params)
        except (openai.AuthenticationError, openai.PermissionDeniedError) as error:
            raise self._refused(error) from None
        except openai.NotFoundError as error:
            raise GenerationError(
                f"{self.base_url} answered 404 to a request for model {self.model!r}: "
                f"{self._reason(error)}"
            ) from None
        except openai.APIConnectionError as error:
            if isinstance(error.__cause__, httpx2.ConnectError):
                # Refused after every retry: the server is gone, and recording every prompt
                # left as failed for good would keep a re-run from sending them again.
                raise GenerationError(
                    f"lost the server at {self.base_url}: {self._reason(error)}"
                ) from None
            return self._failed(request, self._reason(error))
        except openai.APIError as error:
            return self._failed(request, self._reason(error))
        try:
            return self._response(request, completion)
        except (AttributeError, IndexError, KeyError, TypeError, ValueError) as error:
            # A server that answers 200 with the wrong shape: this prompt fails, not the run.
            return self._failed(request, f"malformed response: {type(error).__name__}")

    def _response(self, request: PromptRequest, completion: Any) -> Response:
        if not completion.choices:
            return self._failed(request, "the server answered without choices")
        choice = completion.choices[0]
        text = choice.message.content if self.endpoint == "chat" else choice.text
        if text is not None and not isinstance(text, str):
            raise TypeError("text is not a string")
        usage = completion.usage
        finish = choice.finish_reason
        return Response(
            prompt_id=request.prompt_id,
            text=text or "",
            finish_reason=None if finish is None else str(finish),
            prompt_tokens=int(usage.prompt_tokens or 0) if usage else 0,
            completion_tokens=int(usage.completion_tokens or 0) if usage else 0,
            generator=self.generator,
        )

    def _failed(self, request: PromptRequest, reason: str) -> Response:
        return Response(request.prompt_id, None, None, error=reason, generator=self.generator)

    def _refused(self, error: openai.APIStatusError) -> GenerationError:
        source = f"${self.api_key_env}" if self._key else f"${self.api_key_env} (unset)"
        return GenerationError(
            f"{self.base_url} refused the API key from {source}: {self._reason(error)}"
        )

    def _reason(self, error: openai.APIError) -> str:
        """'HTTP 500 after 5 attempts: <message>'; the key, were it echoed, is masked."""
        retries = error.request.headers.get("x-stainless-retry-count", "0")
        attempts = int(retries) + 1 if retries.isdigit() else "?"
        tries = f"{attempts} attempt" + ("" if attempts == 1 else "s")
        if isinstance(error, openai.APITimeoutError):
            reason = f"timeout after {tries} ({self.timeout_s:g} s each)"
        elif isinstance(error, openai.APIConnectionError):
            cause = error.__cause__
            detail = f"{type(cause).__name__}: {cause}" if cause else error.message
            reason = f"connection error after {tries}: {detail}"
        elif isinstance(error, openai.APIStatusError):
            body = error.body
            message = body.get("message") if isinstance(body, dict) else body
            reason = f"HTTP {error.status_code} after {tries}: {message or error.message}"
        else:
            reason = f"{type(error).__name__}: {error.message}"
        reason = " ".join(reason.split())[:SNIPPET_CHARS]
        return reason.replace(self._key, "***") if self._key else reason


class _Progress:
    """A log line about every 10 % of the responses: done/total, failed, tokens/s."""

    def __init__(self, total: int, log: Log) -> None:
        self.total, self.log = total, log
        self.every = max(1, total // 10)
        self.done = self.failed = self.tokens = 0
        self.start = time.monotonic()
        self._lock = threading.Lock()

    def add(self, response: Response) -> None:
        with self._lock:
            self.done += 1
            self.failed += response.error is not None
            self.tokens += response.completion_tokens
            if self.done % self.every == 0 or self.done == self.total:
                self.log(f"openai: {self.summary()}")

    def summary(self) -> str:
        elapsed = max(time.monotonic() - self.start, 1e-9)
        return (
            f"{self.done}/{self.total} responses, {self.failed} failed, "
            f"{self.tokens} tokens in {elapsed:.1f} s ({self.tokens / elapsed:.1f} tokens/s)"
        )
