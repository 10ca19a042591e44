"""A local OpenAI-compatible HTTP server for tests: the routes the real `openai` client calls.

    GET  /v1/models              -> {"object": "list", "data": [{"id": ..., "object": "model"}]}
    POST /v1/chat/completions    -> choices[{index, message{role, content}, finish_reason}]
    POST /v1/completions         -> choices[{index, text, finish_reason}]

Each completion request goes to a `responder(endpoint, body, attempt) -> Reply`, where
`endpoint` is "chat" or "completions" (the `[synthetic] endpoint` names) and `attempt` counts
how often this same prompt (same messages, or same prompt text) has arrived, 1 the first time,
so a test can fail the first tries of a prompt and let a retry through. A `Reply` can set the
status, headers (`Retry-After`), a delay before answering (to provoke client timeouts) or a raw
body, or drop the connection unanswered. `close()` from inside a responder stops the server
mid-run (later connections are refused) while the current answer still goes out. Token
counts are whitespace-split word counts. Standard library only.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

ROUTES = {"/v1/chat/completions": "chat", "/v1/completions": "completions"}


@dataclass(frozen=True)
class Reply:
    """How the server answers one completion request."""

    status: int = 200
    text: str = ""  # the completion text (status 200)
    finish_reason: str = "stop"
    headers: Mapping[str, str] = field(default_factory=dict)  # e.g. {"Retry-After": "0.1"}
    delay_s: float = 0.0  # sleep before answering
    body: dict[str, Any] | None = None  # sent as is instead of the standard shape
    drop: bool = False  # close the connection without answering (a reset, to the client)


Responder = Callable[[str, dict[str, Any], int], Reply]


def prompt_text(body: Mapping[str, Any]) -> str:
    """The prompt of a request body: the chat messages' contents, or the completions prompt."""
    if "messages" in body:
        return "\n".join(str(message.get("content", "")) for message in body["messages"])
    prompt = body.get("prompt", "")
    return prompt if isinstance(prompt, str) else json.dumps(prompt)


def prompt_key(endpoint: str, body: Mapping[str, Any]) -> str:
    """What makes two requests 'the same prompt' for attempt counting."""
    prompt = body.get("messages") if endpoint == "chat" else body.get("prompt")
    return endpoint + "\0" + json.dumps(prompt, sort_keys=True)


def default_responder(endpoint: str, body: dict[str, Any], attempt: int) -> Reply:
    """A fenced Python function named after a hash of the prompt: different prompts, different
    code, and the same prompt always the same code."""
    digest = hashlib.sha256(prompt_key(endpoint, body).encode("utf-8")).hexdigest()
    name, offset = f"add_{digest[:8]}", int(digest[8:10], 16)
    text = (
        "```python\n"
        f"def {name}(value: int) -> int:\n"
        f'    """Return value plus {offset}."""\n'
        f"    return value + {offset}\n"
        "```\n"
    )
    return Reply(text=text)


def error_body(message: str, type_: str, code: int | str | None) -> dict[str, Any]:
    """The OpenAI error shape: {"error": {"message", "type", "param", "code"}}."""
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


class OpenAIServer:
    """`with OpenAIServer(...) as server:` serves on 127.0.0.1 (a free port) in a daemon thread.

    `requests` holds every completion request body received, in order; `max_in_flight` is the
    most completion requests seen being handled at once. `api_key` set: any other bearer token
    gets 401. `list_models=False`: GET /v1/models is a 404, like servers without that route.
    """

    def __init__(
        self,
        models: Iterable[str] = ("tiny-model",),
        api_key: str | None = None,
        responder: Responder = default_responder,
        list_models: bool = True,
    ) -> None:
        self.models = tuple(models)
        self.api_key = api_key
        self.responder = responder
        self.list_models = list_models
        self.requests: list[dict[str, Any]] = []
        self.max_in_flight = 0
        self._in_flight = 0
        self._attempts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def __enter__(self) -> OpenAIServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop serving; handlers still sleeping in a delay are daemon threads and just end."""
        if self._thread.is_alive():
            self._httpd.shutdown()
            self._thread.join(timeout=5)
        self._httpd.server_close()

    def attempts(self, endpoint: str, body: Mapping[str, Any]) -> int:
        """How often this prompt has been received so far."""
        with self._lock:
            return self._attempts[prompt_key(endpoint, body)]

    def _receive(self, endpoint: str, body: dict[str, Any]) -> int:
        with self._lock:
            self.requests.append(body)
            key = prompt_key(endpoint, body)
            self._attempts[key] += 1
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
            return self._attempts[key]

    def _done(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def answer(self, endpoint: str, body: dict[str, Any]) -> tuple[int, dict[str, Any], Reply]:
        """(status, JSON body, reply) for one completion request; counts it in flight."""
        attempt = self._receive(endpoint, body)
        try:
            model = body.get("model")
            if model not in self.models:
                message = f"The model `{model}` does not exist."
                return 404, error_body(message, "NotFoundError", 404), Reply(status=404)
            if body.get("stream"):
                message = "the test server does not stream"
                return 400, error_body(message, "BadRequestError", 400), Reply(status=400)
            reply = self.responder(endpoint, body, attempt)
            if reply.delay_s:
                time.sleep(reply.delay_s)
            if reply.body is not None:
                return reply.status, reply.body, reply
            if reply.status != 200:
                message = f"test server error {reply.status}"
                return reply.status, error_body(message, "server_error", reply.status), reply
            return 200, completion_body(endpoint, body, reply), reply
        finally:
            self._done()


def completion_body(endpoint: str, body: Mapping[str, Any], reply: Reply) -> dict[str, Any]:
    """The standard chat.completion / text_completion object for a 200 reply."""
    prompt_tokens, completion_tokens = len(prompt_text(body).split()), len(reply.text.split())
    if endpoint == "chat":
        message = {"role": "assistant", "content": reply.text}
        choice: dict[str, Any] = {"index": 0, "message": message}
    else:
        choice = {"index": 0, "text": reply.text, "logprobs": None}
    choice["finish_reason"] = reply.finish_reason
    return {
        "id": "cmpl-" + hashlib.sha256(reply.text.encode()).hexdigest()[:12],
        "object": "chat.completion" if endpoint == "chat" else "text_completion",
        "created": int(time.time()),
        "model": body.get("model"),
        "choices": [choice],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def _handler(server: OpenAIServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet test output
            pass

        def do_GET(self) -> None:
            if not self._authorized():
                return
            if self.path.rstrip("/") == "/v1/models" and server.list_models:
                data = [
                    {"id": m, "object": "model", "created": 0, "owned_by": "test"}
                    for m in server.models
                ]
                self._send(200, {"object": "list", "data": data})
            else:
                self._send(404, error_body(f"no route {self.path}", "NotFoundError", 404))

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            if not self._authorized():
                return
            endpoint = ROUTES.get(self.path.rstrip("/"))
            if endpoint is None:
                self._send(404, error_body(f"no route {self.path}", "NotFoundError", 404))
                return
            try:
                body = json.loads(raw)
            except json.JSONDecodeError:
                self._send(400, error_body("body is not JSON", "BadRequestError", 400))
                return
            status, payload, reply = server.answer(endpoint, body)
            if reply.drop:
                self.close_connection = True
                return
            self._send(status, payload, reply.headers)

        def _authorized(self) -> bool:
            if server.api_key is None:
                return True
            if self.headers.get("Authorization") == f"Bearer {server.api_key}":
                return True
            message = "Incorrect API key provided."
            self._send(401, error_body(message, "invalid_request_error", "invalid_api_key"))
            return False

        def _send(
            self, status: int, payload: dict[str, Any], headers: Mapping[str, str] | None = None
        ) -> None:
            data = json.dumps(payload).encode("utf-8")
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timed out) before the answer

    return Handler
