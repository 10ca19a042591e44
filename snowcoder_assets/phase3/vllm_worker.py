"""Offline vLLM generation, launched by `VllmBackend` through Dagster Pipes in vLLM's own venv.

    <vllm_python> -m snowcoder_assets.phase3.vllm_worker   (PYTHONPATH = the project root)

Imports only the standard library, `dagster_pipes`, `vllm` (inside `main`) and
`snowcoder_assets.phase3.generation`: vLLM's venv has neither Dagster nor the project's other
dependencies. Extras (see `VllmBackend.generate`): requests_path, journal_path, model, endpoint,
sampling, batch_size, options, generator, error_path. Responses go into the journal after
each batch, so a killed run keeps every finished batch and a re-run sends only what is missing.
A prompt that does not fit the context becomes a failed `Response`, never a failed batch.
"""

from __future__ import annotations

import json
import os
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from snowcoder_assets.phase3.generation import PromptRequest, Response, ResponseJournal

# vLLM on a CPU: eager (torch.compile costs ~30 s of start for ~25% more tokens/s on small
# models), bf16 (the CPU kernels' dtype), and the KV cache as this share of RAM.
CPU_DEFAULTS: dict[str, Any] = {
    "dtype": "bfloat16",
    "enforce_eager": True,
    "gpu_memory_utilization": 0.3,
}


def read_requests(path: Path) -> list[PromptRequest]:
    requests = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            stop = row.get("stop")
            requests.append(
                PromptRequest(
                    row["prompt_id"],
                    tuple(row["messages"]),
                    row["prompt"],
                    None if stop is None else tuple(stop),
                )
            )
    return requests


class Generator:
    """One vLLM engine and the journal it writes: batches in, journal lines out."""

    def __init__(self, llm: Any, params: Any, endpoint: str, generator: str) -> None:
        self.llm, self.params, self.endpoint, self.generator = llm, params, endpoint, generator
        self.tokenizer = llm.get_tokenizer()
        self.max_len: int = llm.llm_engine.model_config.max_model_len
        if endpoint == "chat" and not getattr(self.tokenizer, "chat_template", None):
            raise ValueError(
                f"{generator}: the tokenizer has no chat template; set endpoint = 'completions'"
            )
        from vllm import exceptions

        # A request vLLM refuses (too long, bad parameter): only that request fails.
        self.refused: tuple[type[BaseException], ...] = (
            ValueError,
            *(e for e in [getattr(exceptions, "VLLMValidationError", None)] if e),
        )

    def prompt_length(self, request: PromptRequest) -> int:
        """Tokens of the prompt as vLLM will see it (chat: the rendered template)."""
        if self.endpoint == "chat":
            text = self.tokenizer.apply_chat_template(
                list(request.messages), add_generation_prompt=True, tokenize=False
            )
            return len(self.tokenizer.encode(text, add_special_tokens=False))
        return len(self.tokenizer.encode(request.prompt))

    def params_for(self, batch: Sequence[PromptRequest]) -> Any:
        """One SamplingParams for the batch, or one per request where requests carry stops."""
        if all(r.stop is None for r in batch):
            return self.params
        return [self.params if r.stop is None else self.with_stop(r.stop) for r in batch]

    def with_stop(self, stop: tuple[str, ...]) -> Any:
        """Built anew: SamplingParams derives its stop-string buffer when constructed."""
        import vllm

        fields = ("max_tokens", "temperature", "top_p", "seed")
        return vllm.SamplingParams(
            **{f: getattr(self.params, f) for f in fields}, stop=list(stop) or None
        )

    def submit(self, batch: Sequence[PromptRequest]) -> list[Any]:
        params = self.params_for(batch)
        if self.endpoint == "chat":
            conversations = [list(r.messages) for r in batch]
            return self.llm.chat(conversations, params, use_tqdm=False)
        return self.llm.generate([r.prompt for r in batch], params, use_tqdm=False)

    def response(self, request: PromptRequest, output: Any) -> Response:
        completion = output.outputs[0]
        return Response(
            prompt_id=request.prompt_id,
            text=completion.text,
            finish_reason=completion.finish_reason,
            prompt_tokens=len(output.prompt_token_ids or []),
            completion_tokens=len(completion.token_ids),
            generator=self.generator,
        )

    def failed(self, request: PromptRequest, error: str, tokens: int = 0) -> Response:
        return Response(
            request.prompt_id, None, None, tokens, error=error, generator=self.generator
        )

    def run(self, batch: Sequence[PromptRequest]) -> list[Response]:
        """Responses of one batch; a refused request is retried alone to find which failed."""
        responses: dict[str, Response] = {}
        fitting = []
        for request in batch:
            tokens = self.prompt_length(request)
            if tokens >= self.max_len:
                error = f"prompt of {tokens} tokens exceeds max_model_len {self.max_len}"
                responses[request.prompt_id] = self.failed(request, error, tokens)
            else:
                fitting.append(request)
        try:
            outputs = list(zip(fitting, self.submit(fitting), strict=True)) if fitting else []
        except self.refused:
            outputs = []
            for request in fitting:
                try:
                    outputs.append((request, self.submit([request])[0]))
                except self.refused as exc:
                    responses[request.prompt_id] = self.failed(request, f"vllm: {exc}")
        for request, output in outputs:
            responses[request.prompt_id] = self.response(request, output)
        return [responses[r.prompt_id] for r in batch]


def main() -> None:
    from dagster_pipes import open_dagster_pipes

    with open_dagster_pipes() as pipes:
        error_path = pipes.extras.get("error_path")
        try:
            run(pipes)
        except BaseException as exc:
            # Pipes reports the traceback as an engine event; the backend reads this file to
            # put the reason itself into its GenerationError.
            if error_path:
                reason = "".join(traceback.format_exception_only(type(exc), exc)).strip()
                Path(error_path).write_text(reason, encoding="utf-8")
            raise


def run(pipes: Any) -> None:
    extras = pipes.extras
    journal = ResponseJournal(Path(extras["journal_path"]))
    requests = read_requests(Path(extras["requests_path"]))
    todo = journal.missing(requests)
    stats: dict[str, Any] = {"sent": 0, "skipped": len(requests) - len(todo), "failed": 0}
    stats.update(prompt_tokens=0, generated_tokens=0, seconds=0.0, tokens_per_s=0.0)
    stats["engine_start_s"] = 0.0
    if not todo:
        pipes.log.info(f"vllm: all {len(requests)} prompts already in the journal")
        pipes.report_custom_message(stats)
        return

    started = time.perf_counter()
    import vllm
    from vllm.platforms import current_platform

    sampling = extras["sampling"]
    options: dict[str, Any] = {}
    if current_platform.is_cpu():
        # In-process engine: starts in seconds rather than ~30 s of spawned processes
        # re-importing vLLM, and its errors surface here rather than in a child's log.
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        options.update(CPU_DEFAULTS)
    options.update(extras.get("options") or {})
    llm = vllm.LLM(
        **{"enable_prefix_caching": True, "seed": sampling["seed"], **options},
        model=extras["model"],
    )
    params = vllm.SamplingParams(
        max_tokens=sampling["max_tokens"],
        temperature=sampling["temperature"],
        top_p=sampling["top_p"],
        seed=sampling["seed"],
        stop=list(sampling["stop"]) or None,
    )
    stats["engine_start_s"] = round(time.perf_counter() - started, 2)
    pipes.log.info(f"vllm: engine up in {stats['engine_start_s']} s, {len(todo)} prompts to go")

    generator = Generator(llm, params, extras["endpoint"], extras["generator"])
    batch_size = int(extras["batch_size"])
    for start in range(0, len(todo), batch_size):
        began = time.perf_counter()
        responses = generator.run(todo[start : start + batch_size])
        seconds = time.perf_counter() - began
        for response in responses:
            journal.append(response)
        tokens = sum(r.completion_tokens for r in responses)
        stats["sent"] += len(responses)
        stats["failed"] += sum(r.error is not None for r in responses)
        stats["prompt_tokens"] += sum(r.prompt_tokens for r in responses)
        stats["generated_tokens"] += tokens
        stats["seconds"] += seconds
        pipes.log.info(
            f"vllm: {stats['sent']}/{len(todo)} prompts, {tokens / max(seconds, 1e-9):.0f} "
            f"tokens/s ({stats['failed']} failed)"
        )
    stats["seconds"] = round(stats["seconds"], 3)
    stats["tokens_per_s"] = round(stats["generated_tokens"] / max(stats["seconds"], 1e-9), 1)
    pipes.report_custom_message(stats)


if __name__ == "__main__":  # vLLM may start processes that re-import this module
    main()
