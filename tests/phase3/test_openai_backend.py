"""The `openai` backend against a local OpenAI-compatible server (`tests/phase3/openai_server`):
both endpoints, the client's retries (429 + Retry-After, 5xx, timeouts), per-request failures
kept as `error` responses, `GenerationError` for a refused key, an unknown model or no server,
bounded concurrency, and a key that never reaches the log.

Retry waits are kept short with `Retry-After` headers from the server (the client honours
them) and small `max_retries`, so the file runs in seconds.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from snowcoder_assets.phase3.generation import (
    GenerationError,
    PromptRequest,
    Response,
    ResponseJournal,
    Sampling,
)
from snowcoder_assets.phase3.openai_backend import OpenAIBackend
from tests.phase3.openai_server import OpenAIServer, Reply, default_responder, prompt_text

FAST = {"Retry-After": "0.05"}  # keeps retry waits short where their length is not the point


def prompts(count: int, tag: str = "task") -> list[PromptRequest]:
    out = []
    for i in range(count):
        user = f"Write a small Python function for {tag} number {i}."
        messages = (
            {"role": "system", "content": "You write code."},
            {"role": "user", "content": user},
        )
        out.append(PromptRequest(f"p{i}", messages, f"You write code.\n\n{user}\n"))
    return out


def backend(server: OpenAIServer, **options: Any) -> OpenAIBackend:
    settings: dict[str, Any] = {"model": "tiny-model", "api_key": None, "max_retries": 2}
    return OpenAIBackend(server.base_url, **(settings | options))


def journal_lines(journal: ResponseJournal) -> list[dict[str, Any]]:
    return [json.loads(line) for line in journal.path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def journal(tmp_path: Path) -> ResponseJournal:
    return ResponseJournal(tmp_path / "synthetic" / "responses.jsonl")


@pytest.mark.parametrize("endpoint", ["chat", "completions"])
def test_both_endpoints_write_one_response_per_prompt(
    endpoint: str, journal: ResponseJournal
) -> None:
    sampling = Sampling(max_tokens=77, temperature=0.7, top_p=0.9, seed=3, stop=("\n\n\n",))
    requests = prompts(4)
    logs: list[str] = []
    with OpenAIServer() as server:
        backend(server, endpoint=endpoint).generate(requests, sampling, journal, logs.append)
    lines = journal_lines(journal)
    assert sorted(line["prompt_id"] for line in lines) == ["p0", "p1", "p2", "p3"]
    done = journal.read()
    for request in requests:
        response = done[request.prompt_id]
        assert response.error is None
        assert response.text is not None and response.text.startswith("```python\ndef add_")
        assert response.finish_reason == "stop"
        assert response.prompt_tokens == len(request.prompt.split())
        assert response.completion_tokens == len(response.text.split()) > 0
        assert response.generator == "openai:tiny-model"
    assert len({response.text for response in done.values()}) == 4  # prompt-specific code
    assert len(server.requests) == 4
    for body in server.requests:
        assert body["model"] == "tiny-model"
        assert (body["max_tokens"], body["temperature"], body["top_p"]) == (77, 0.7, 0.9)
        assert (body["seed"], body["stop"]) == (3, ["\n\n\n"])
    if endpoint == "chat":
        sent = sorted(json.dumps(body["messages"]) for body in server.requests)
        assert sent == sorted(json.dumps(list(request.messages)) for request in requests)
    else:
        assert sorted(b["prompt"] for b in server.requests) == sorted(r.prompt for r in requests)
        assert all("messages" not in body for body in server.requests)
    assert any("4/4 responses, 0 failed" in line for line in logs)


def test_no_stop_strings_sends_no_stop_and_missing_usage_counts_zero(
    journal: ResponseJournal,
) -> None:
    def no_usage(endpoint: str, body: dict[str, Any], attempt: int) -> Reply:
        choice = {"index": 0, "message": {"role": "assistant", "content": "x = 1"}}
        raw = {"id": "c", "object": "chat.completion", "created": 0, "model": body["model"]}
        return Reply(body=raw | {"choices": [choice | {"finish_reason": "length"}]})

    with OpenAIServer(responder=no_usage) as server:
        backend(server).generate(prompts(1), Sampling(), journal, lambda line: None)
    assert "stop" not in server.requests[0] or server.requests[0]["stop"] is None
    assert journal.read()["p0"] == Response(
        "p0", "x = 1", "length", 0, 0, None, "openai:tiny-model"
    )


def test_429_retry_after_is_honoured(journal: ResponseJournal) -> None:
    seen: list[float] = []

    def rate_limited(endpoint: str, body: dict[str, Any], attempt: int) -> Reply:
        seen.append(time.monotonic())
        # 1 s: longer than the client's own first back-off (<= 0.5 s), so a wait this long
        # shows Retry-After was read, not just that some back-off happened.
        if attempt == 1:
            return Reply(status=429, headers={"Retry-After": "1"})
        return default_responder(endpoint, body, attempt)

    with OpenAIServer(responder=rate_limited) as server:
        backend(server).generate(prompts(1), Sampling(), journal, lambda line: None)
    response = journal.read()["p0"]
    assert response.error is None and response.text and response.text.startswith("```python")
    assert len(server.requests) == 2
    assert seen[1] - seen[0] >= 0.95


def test_5xx_twice_then_success(journal: ResponseJournal) -> None:
    def flaky(endpoint: str, body: dict[str, Any], attempt: int) -> Reply:
        status = 500 if attempt == 1 else 503
        return Reply(status=status, headers=FAST) if attempt <= 2 else Reply(text="ok = True")

    with OpenAIServer(responder=flaky) as server:
        backend(server, max_retries=2).generate(prompts(1), Sampling(), journal, lambda _: None)
        assert server.attempts("chat", server.requests[0]) == 3
    assert journal.read()["p0"].text == "ok = True"
    assert journal.read()["p0"].error is None


def test_a_prompt_that_always_fails_is_recorded_and_the_others_succeed(
    journal: ResponseJournal,
) -> None:
    def broken_for_p2(endpoint: str, body: dict[str, Any], attempt: int) -> Reply:
        if "number 2." in prompt_text(body):
            return Reply(status=500, headers=FAST)
        if "number 3." in prompt_text(body):
            too_long = {"message": "prompt is longer than the context", "type": "BadRequestError"}
            return Reply(status=400, body={"error": too_long})
        return default_responder(endpoint, body, attempt)

    logs: list[str] = []
    with OpenAIServer(responder=broken_for_p2) as server:
        backend(server, max_retries=2).generate(prompts(5), Sampling(), journal, logs.append)
    done = journal.read()
    assert len(journal_lines(journal)) == 5
    failed = done["p2"]
    assert failed.text is None and failed.finish_reason is None
    assert failed.error is not None and failed.error.startswith("HTTP 500 after 3 attempts")
    rejected = done["p3"]  # a 400 is not retried
    assert rejected.text is None
    assert rejected.error == "HTTP 400 after 1 attempt: prompt is longer than the context"
    assert sum("number 3." in prompt_text(body) for body in server.requests) == 1
    for prompt_id in ("p0", "p1", "p4"):
        assert done[prompt_id].error is None and done[prompt_id].text
    assert any("5/5 responses, 2 failed" in line for line in logs)


def test_a_server_slower_than_the_timeout_is_retried_then_recorded(
    journal: ResponseJournal,
) -> None:
    def slow(endpoint: str, body: dict[str, Any], attempt: int) -> Reply:
        return Reply(text="late", delay_s=1.0)

    started = time.monotonic()
    with OpenAIServer(responder=slow) as server:
        backend(server, timeout_s=0.3, max_retries=1).generate(
            prompts(1), Sampling(), journal, lambda _: None
        )
        assert len(server.requests) == 2
    assert time.monotonic() - started < 5
    response = journal.read()["p0"]
    assert response.text is None
    assert response.error == "timeout after 2 attempts (0.3 s each)"


def test_a_refused_key_names_the_variable_not_the_key(
    journal: ResponseJournal, monkeypatch: pytest.MonkeyPatch
) -> None:
    logs: list[str] = []
    with OpenAIServer(api_key="sk-right-0123456789") as server:
        wrong = backend(server, api_key="sk-wrong-9876543210", api_key_env="SNOW_TEST_KEY")
        with pytest.raises(GenerationError) as refused:
            wrong.generate(prompts(2), Sampling(), journal, logs.append)
        assert server.requests == []  # stopped at GET /v1/models, before any prompt
    assert "$SNOW_TEST_KEY" in str(refused.value) and "401" in str(refused.value)
    assert "sk-wrong" not in str(refused.value) and "9876543210" not in str(refused.value)
    assert not any("sk-wrong" in line for line in logs)
    assert not journal.path.exists()


def test_a_key_refused_mid_run_stops_the_run_and_keeps_what_finished(
    journal: ResponseJournal,
) -> None:
    def revoked_after_two(endpoint: str, body: dict[str, Any], attempt: int) -> Reply:
        if "number 2." in prompt_text(body):
            return Reply(status=403, body={"error": {"message": "key revoked", "type": "x"}})
        return default_responder(endpoint, body, attempt)

    with OpenAIServer(responder=revoked_after_two) as server:
        run = backend(server, concurrency=1, api_key_env="SNOW_TEST_KEY")
        with pytest.raises(GenerationError, match=r"\$SNOW_TEST_KEY \(unset\).*403"):
            run.generate(prompts(6), Sampling(), journal, lambda _: None)
        assert len(server.requests) == 3  # nothing sent after the refusal
    assert sorted(journal.read()) == ["p0", "p1"]


def test_a_404_model_answer_mid_run_is_a_generation_error(journal: ResponseJournal) -> None:
    def model_gone(endpoint: str, body: dict[str, Any], attempt: int) -> Reply:
        if "number 1." in prompt_text(body):
            gone = {"message": "The model `tiny-model` does not exist.", "code": 404}
            return Reply(status=404, body={"error": gone})
        return default_responder(endpoint, body, attempt)

    with (
        OpenAIServer(responder=model_gone) as server,
        pytest.raises(GenerationError, match=r"404.*does not exist"),
    ):
        backend(server, concurrency=1).generate(prompts(4), Sampling(), journal, lambda _: None)
    assert sorted(journal.read()) == ["p0"]


def test_the_right_key_works_and_never_reaches_the_log_or_journal(
    journal: ResponseJournal,
) -> None:
    key = "sk-secret-abcdef123456"

    def echoing(endpoint: str, body: dict[str, Any], attempt: int) -> Reply:
        if "number 1." in prompt_text(body):  # a server that echoes the key in its error
            return Reply(status=500, headers=FAST, body={"error": {"message": f"bad {key}"}})
        return default_responder(endpoint, body, attempt)

    logs: list[str] = []
    with OpenAIServer(api_key=key, responder=echoing) as server:
        backend(server, api_key=key, max_retries=1).generate(
            prompts(3), Sampling(), journal, logs.append
        )
    done = journal.read()
    assert done["p0"].text and done["p2"].text
    assert done["p1"].error == "HTTP 500 after 2 attempts: bad ***"
    assert logs and not any(key in line for line in logs)
    assert key not in journal.path.read_text(encoding="utf-8")


def test_a_model_the_server_does_not_serve_names_the_served_models(
    journal: ResponseJournal,
) -> None:
    with OpenAIServer(models=("qwen-coder", "llama-70b")) as server:
        with pytest.raises(GenerationError) as unknown:
            backend(server, model="tiny-model").generate(
                prompts(2), Sampling(), journal, lambda _: None
            )
        assert server.requests == []
    message = str(unknown.value)
    assert "'tiny-model'" in message and "'qwen-coder'" in message and "'llama-70b'" in message


def test_a_server_without_models_route_is_used_unchecked(journal: ResponseJournal) -> None:
    logs: list[str] = []
    with OpenAIServer(list_models=False) as server:
        backend(server).generate(prompts(2), Sampling(), journal, logs.append)
    assert len(journal.read()) == 2
    assert any("no /v1/models" in line for line in logs)


def test_no_server_names_the_url(journal: ResponseJournal) -> None:
    with socket.socket() as probe:  # a port nothing listens on once it is closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    started = time.monotonic()
    down = OpenAIBackend(url, "tiny-model", None, max_retries=4)
    with pytest.raises(GenerationError, match="no OpenAI-compatible server answers at " + url):
        down.generate(prompts(2), Sampling(), journal, lambda _: None)
    assert time.monotonic() - started < 3  # the start check retries once, not four times
    assert not journal.path.exists()


def test_concurrency_bounds_requests_in_flight(journal: ResponseJournal) -> None:
    def slowish(endpoint: str, body: dict[str, Any], attempt: int) -> Reply:
        return Reply(text="pass", delay_s=0.15)

    with OpenAIServer(responder=slowish) as server:
        backend(server, concurrency=2).generate(prompts(8), Sampling(), journal, lambda _: None)
        assert server.max_in_flight == 2
    assert len(journal.read()) == 8


def test_a_dropped_connection_is_retried_then_recorded(journal: ResponseJournal) -> None:
    def hangs_up_on_p0(endpoint: str, body: dict[str, Any], attempt: int) -> Reply:
        if "number 0." in prompt_text(body):
            return Reply(drop=True)
        return default_responder(endpoint, body, attempt)

    with OpenAIServer(responder=hangs_up_on_p0) as server:
        backend(server, max_retries=1).generate(prompts(2), Sampling(), journal, lambda _: None)
        assert len(server.requests) == 3
    done = journal.read()
    assert done["p0"].text is None
    assert done["p0"].error is not None
    assert done["p0"].error.startswith("connection error after 2 attempts")
    assert done["p1"].text and done["p1"].error is None


def test_a_server_gone_mid_run_stops_the_run_instead_of_failing_every_prompt(
    journal: ResponseJournal,
) -> None:
    def shuts_down_at_p1(endpoint: str, body: dict[str, Any], attempt: int) -> Reply:
        if "number 1." in prompt_text(body):
            server.close()  # later connections are refused; this answer still goes out
        return default_responder(endpoint, body, attempt)

    with OpenAIServer(responder=shuts_down_at_p1) as server:
        url = server.base_url
        with pytest.raises(GenerationError, match="lost the server at " + url):
            backend(server, concurrency=1, max_retries=1).generate(
                prompts(5), Sampling(), journal, lambda _: None
            )
    assert sorted(journal.read()) == ["p0", "p1"]  # p2..p4 are not recorded as failed


def test_answers_of_the_wrong_shape_fail_their_prompt_not_the_run(
    journal: ResponseJournal,
) -> None:
    shapes = {
        "number 0.": {"id": "x", "choices": [{"index": 0, "finish_reason": "stop"}]},
        "number 1.": {"id": "x", "choices": []},
        "number 2.": {"id": "x", "choices": [{"index": 0, "message": {"content": 42}}]},
        "number 3.": {"unexpected": True},
    }

    def misbehaving(endpoint: str, body: dict[str, Any], attempt: int) -> Reply:
        for marker, shape in shapes.items():
            if marker in prompt_text(body):
                return Reply(body=shape)
        return default_responder(endpoint, body, attempt)

    with OpenAIServer(responder=misbehaving) as server:
        backend(server).generate(prompts(5), Sampling(), journal, lambda _: None)
    done = journal.read()
    assert len(done) == 5
    for prompt_id in ("p0", "p1", "p2", "p3"):
        assert done[prompt_id].text is None and done[prompt_id].error, prompt_id
    assert done["p4"].error is None and "```python" in (done["p4"].text or "")
