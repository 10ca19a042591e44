"""A local Hub: the routes `HfApi` calls to create a repo, list its tree and commit files.

Files live in memory as bytes. Every file is declared "regular" at pre-upload, so no LFS
transfer happens; `lfs_paths` makes the tree report chosen paths as LFS (sha256 oid) to test
that comparison. `fail_commits` makes the N-th commit requests (1-based) answer 500.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlparse

ROUTE = re.compile(r"^/api/(models|datasets|spaces)/([^/]+/[^/]+)/(\w+)(?:/([^/]+))?(/.*)?$")


@dataclass
class Repo:
    files: dict[str, bytes] = field(default_factory=dict)
    commits: list[str] = field(default_factory=list)
    private: bool = False


@dataclass
class HubState:
    token: str
    repos: dict[str, Repo] = field(default_factory=dict)
    fail_commits: set[int] = field(default_factory=set)
    commit_requests: int = 0
    lfs_paths: set[str] = field(default_factory=set)
    allow_create: bool = True
    store_created: bool = True  # False: create answers 200 but the repo never exists
    requests: list[str] = field(default_factory=list)


def git_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class Handler(BaseHTTPRequestHandler):
    state: HubState

    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    def _send(self, status: int, body: object, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _authorized(self) -> bool:
        if self.headers.get("Authorization") == f"Bearer {self.state.token}":
            return True
        msg = "Invalid credentials in Authorization header"
        self._send(401, {"error": msg}, {"X-Error-Message": msg})
        return False

    def _repo(self, kind: str, repo_id: str) -> Repo | None:
        repo = self.state.repos.get(f"{kind}/{repo_id}")
        if repo is None:
            self._send(404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"})
        return repo

    def do_GET(self) -> None:
        path = urlparse(self.path).path
        self.state.requests.append(f"GET {path}")
        if not self._authorized():
            return
        m = ROUTE.match(path)
        if not m or (repo := self._repo(m[1], m[2])) is None:
            return
        if m[3] == "tree":
            self._send(200, [self._entry(p, d) for p, d in sorted(repo.files.items())])
        elif m[3] == "revision":
            self._send(200, {"id": m[2], "sha": self._sha(repo), "private": repo.private})
        else:
            self._send(404, {"error": "unknown route"})

    def _entry(self, path: str, data: bytes) -> dict:
        entry = {"type": "file", "path": path, "size": len(data), "oid": git_sha1(data)}
        if path in self.state.lfs_paths:
            sha = hashlib.sha256(data).hexdigest()
            entry["lfs"] = {"oid": sha, "size": len(data), "pointerSize": 130}
        return entry

    @staticmethod
    def _sha(repo: Repo) -> str:
        return repo.commits[-1] if repo.commits else "0" * 40

    def do_POST(self) -> None:
        path = urlparse(self.path).path
        self.state.requests.append(f"POST {path}")
        body = self._body()
        if not self._authorized():
            return
        if path == "/api/repos/create":
            return self._create(json.loads(body))
        if path == "/api/validate-yaml":
            return self._send(200, {"errors": [], "warnings": []})
        m = ROUTE.match(path)
        if not m or (repo := self._repo(m[1], m[2])) is None:
            return
        if m[3] == "preupload":
            files = json.loads(body)["files"]
            modes = [
                {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files
            ]
            self._send(200, {"files": modes})
        elif m[3] == "commit":
            self._commit(repo, m[1], m[2], body)
        elif m[3] == "branch":
            self._send(200, {})
        else:
            self._send(404, {"error": "unknown route"})

    def _create(self, payload: dict) -> None:
        kind = f"{payload.get('type') or 'model'}s"
        key = f"{kind}/{payload['organization']}/{payload['name']}"
        url = f"http://{self.headers['Host']}/{kind}/{payload['organization']}/{payload['name']}"
        if key in self.state.repos:  # the real Hub's 409 carries the url too
            return self._send(409, {"error": "You already created this repo", "url": url})
        if not self.state.allow_create:
            return self._send(403, {"error": "You don't have the rights to create"})
        if self.state.store_created:
            self.state.repos[key] = Repo(private=payload.get("visibility") == "private")
        self._send(200, {"url": url})

    def _commit(self, repo: Repo, kind: str, repo_id: str, body: bytes) -> None:
        self.state.commit_requests += 1
        if self.state.commit_requests in self.state.fail_commits:
            return self._send(500, {"error": "Internal Error (injected)"})
        for line in body.splitlines():
            item = json.loads(line)
            value = item["value"]
            if item["key"] == "file":
                repo.files[value["path"]] = base64.b64decode(value["content"])
            elif item["key"] == "deletedFile":
                repo.files.pop(value["path"], None)
            elif item["key"] != "header":
                return self._send(400, {"error": f"unsupported {item['key']}"})
        oid = hashlib.sha1(f"{len(repo.commits)}:{sorted(repo.files)}".encode()).hexdigest()
        repo.commits.append(oid)
        url = f"http://{self.headers['Host']}/{kind}/{repo_id}/commit/{oid}"
        self._send(200, {"commitUrl": url, "commitOid": oid, "pullRequestUrl": None})


class FakeHub:
    """`with FakeHub(token) as hub:` serves on `hub.endpoint` from a background thread."""

    def __init__(self, token: str) -> None:
        self.state = HubState(token=token)
        handler = type("BoundHandler", (Handler,), {"state": self.state})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeHub:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def repo(self, repo_id: str, kind: str = "datasets") -> Repo:
        return self.state.repos[f"{kind}/{unquote(repo_id)}"]
