"""`publish_folder`: upload a local repository folder to the Hub, idempotently and resumably.

Local files are compared with the remote tree by content hash (sha256 for LFS files, the git
blob sha1 otherwise), so identical data makes no commit and files committed by an interrupted
run are not sent again. What differs goes up in batches of commits; transient failures (5xx,
429, network) are retried with exponential back-off; authorization errors and missing
repositories become a `PublishError` whose text never holds the token.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from snowcoder_assets.hub.resources import PublishError, scrub

BATCH_FILES = 50
BATCH_BYTES = 2 << 30
RETRIES = 4
BACKOFF_S = 1.0
TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})
CARD = "README.md"
T = TypeVar("T")
Log = Callable[[str], None]


@dataclass(frozen=True)
class LocalFile:
    path: str
    source: Path
    size: int
    sha256: str
    git_sha1: str


@dataclass
class PublishSummary:
    repo_id: str
    revision: str
    uploaded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    commits: list[str] = field(default_factory=list)

    def as_metadata(self) -> dict[str, Any]:
        return {
            "repo_id": self.repo_id,
            "revision": self.revision,
            "files_uploaded": len(self.uploaded),
            "files_skipped": len(self.skipped),
            "files_deleted": len(self.deleted),
            "commits": len(self.commits),
        }


def hash_file(source: Path, path: str) -> LocalFile:
    sha256, size = hashlib.sha256(), source.stat().st_size
    git = hashlib.sha1(f"blob {size}\0".encode())
    with source.open("rb") as f:
        while chunk := f.read(1 << 20):
            sha256.update(chunk)
            git.update(chunk)
    return LocalFile(path, source, size, sha256.hexdigest(), git.hexdigest())


def local_files(folder: Path) -> list[LocalFile]:
    """Every file under `folder` (hidden ones excepted), data first and the card last."""
    files = [
        hash_file(p, p.relative_to(folder).as_posix())
        for p in sorted(Path(folder).rglob("*"))
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    ]
    return sorted(files, key=lambda f: (f.path == CARD, f.path))


def is_unchanged(local: LocalFile, remote: Any) -> bool:
    """Same content as the remote `RepoFile` (None when the path is not there)?"""
    if remote is None or getattr(remote, "size", None) != local.size:
        return False
    lfs = getattr(remote, "lfs", None)
    if lfs is not None:
        return lfs.sha256 == local.sha256
    return remote.blob_id == local.git_sha1


def batches(files: Iterable[LocalFile], max_files: int, max_bytes: int) -> list[list[LocalFile]]:
    out: list[list[LocalFile]] = []
    size = 0
    for f in files:
        if not out or len(out[-1]) >= max_files or size + f.size > max_bytes:
            out.append([])
            size = 0
        out[-1].append(f)
        size += f.size
    return out


class _Hub:
    """Calls `HfApi` with retries and turns failures into messages without the token."""

    def __init__(self, api: Any, repo_id: str, retries: int, backoff_s: float, log: Log) -> None:
        self.api, self.repo_id, self.log = api, repo_id, log
        self.retries, self.backoff_s = retries, backoff_s
        self.token = api.token if isinstance(api.token, str) else None

    def call(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        for attempt in range(self.retries + 1):
            try:
                return fn(*args, **kwargs)
            except Exception as exc:
                if not _is_transient(exc) or attempt == self.retries:
                    raise self._error(what, exc) from None
                wait = self.backoff_s * 2**attempt
                self.log(f"{what}: transient error ({self._text(exc)}); retry in {wait:.1f}s")
                time.sleep(wait)
        raise AssertionError("unreachable")

    def _text(self, exc: BaseException) -> str:
        return scrub(f"{type(exc).__name__}: {exc}", self.token).splitlines()[0]

    def _error(self, what: str, exc: BaseException) -> PublishError:
        status = _status(exc)
        where = f"{self.repo_id} on {self.api.endpoint}"
        if status in (401, 403):
            msg = (
                f"{what}: not authorized to write {where} (HTTP {status}); "
                "check that HF_TOKEN is set and has write access to this namespace"
            )
        elif status == 404 or type(exc).__name__ == "RepositoryNotFoundError":
            msg = f"{what}: repository {where} not found (HTTP 404); check --repo-id and the token"
        else:
            msg = f"{what} failed for {where}: {self._text(exc)}"
        return PublishError(scrub(msg, self.token))


def _status(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None)


def _is_transient(exc: BaseException) -> bool:
    import httpx2

    if isinstance(exc, httpx2.TransportError | ConnectionError | TimeoutError):
        return True
    return _status(exc) in TRANSIENT_STATUS


def publish_folder(
    api: Any,
    folder: Path,
    repo_id: str,
    *,
    repo_type: str = "dataset",
    private: bool = False,
    revision: str | None = None,
    batch_files: int = BATCH_FILES,
    batch_bytes: int = BATCH_BYTES,
    delete_stale_under: str | None = "data/",
    retries: int = RETRIES,
    backoff_s: float = BACKOFF_S,
    log: Log = print,
) -> PublishSummary:
    """Make `repo_id`@`revision` hold `folder`'s files; commit only what differs, in batches.

    Remote files under `delete_stale_under` that the folder lacks (e.g. shards of an older,
    longer layout) are deleted in the last commit. Raises `PublishError` (token-free text).
    """
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete

    hub = _Hub(api, repo_id, retries, backoff_s, log)
    branch = revision or "main"
    summary = PublishSummary(repo_id, branch)
    hub.call("create repository", api.create_repo, repo_id, repo_type=repo_type,
             private=private, exist_ok=True)  # fmt: skip
    if branch != "main":
        hub.call("create branch", api.create_branch, repo_id, branch=branch,
                 repo_type=repo_type, exist_ok=True)  # fmt: skip
    remote = _remote_files(hub, repo_type, branch)
    files = local_files(Path(folder))
    todo = [f for f in files if not is_unchanged(f, remote.get(f.path))]
    summary.skipped = [f.path for f in files if f not in todo]
    local_paths = {f.path for f in files}
    stale = [
        p for p in sorted(remote)
        if delete_stale_under and p.startswith(delete_stale_under) and p not in local_paths
    ]  # fmt: skip
    groups = batches(todo, batch_files, batch_bytes) or ([[]] if stale else [])
    for i, group in enumerate(groups, 1):
        ops: list[Any] = [CommitOperationAdd(f.path, str(f.source)) for f in group]
        if i == len(groups):
            ops += [CommitOperationDelete(p) for p in stale]
        message = f"snowcoder: upload {len(group)} file(s) ({i}/{len(groups)})"
        info = hub.call(f"commit {i}/{len(groups)}", api.create_commit, repo_id, ops,
                        commit_message=message, repo_type=repo_type, revision=branch)  # fmt: skip
        summary.commits.append(info.oid)
        summary.uploaded += [f.path for f in group]
        log(f"{repo_id}@{branch}: committed {len(group)} file(s) ({i}/{len(groups)})")
    summary.deleted = stale
    log(
        f"{repo_id}@{branch}: {len(summary.uploaded)} uploaded, {len(summary.skipped)} unchanged, "
        f"{len(stale)} deleted, {len(summary.commits)} commit(s)"
    )
    return summary


def _remote_files(hub: _Hub, repo_type: str, branch: str) -> dict[str, Any]:
    def listing() -> dict[str, Any]:
        entries = hub.api.list_repo_tree(
            hub.repo_id, recursive=True, repo_type=repo_type, revision=branch
        )
        return {e.path: e for e in entries if hasattr(e, "blob_id")}

    return hub.call("list remote files", listing)
