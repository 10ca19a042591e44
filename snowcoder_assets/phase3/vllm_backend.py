"""The `vllm` backend: offline `vllm.LLM` in vLLM's own venv, launched through Dagster Pipes.

vLLM pins its own torch and transformers, so it cannot share the project's venv: the asset
writes the prompts to a jsonl file and runs `vllm_worker.py` with vLLM's interpreter through
`PipesSubprocessClient`; its logs stream into the run, and it appends each batch's responses to
the same `ResponseJournal` the asset reads back. Neither vllm nor torch is imported here.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import dagster as dg

# Not exported by `dagster`: what PipesSubprocessClient.run raises on a non-zero exit.
from dagster._core.errors import DagsterPipesExecutionError

from snowcoder_assets.io import write_jsonl
from snowcoder_assets.phase3.generation import (
    GenerationError,
    Log,
    PromptRequest,
    ResponseJournal,
    Sampling,
)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PYTHON = PROJECT_ROOT / ".venv-vllm" / "bin" / "python"
WORKER = "snowcoder_assets.phase3.vllm_worker"


def resolve_python(python: Path | None) -> Path:
    """vLLM's interpreter: as given (a relative path against the working directory, then the
    checkout), or the checkout's `.venv-vllm`. Not resolved: a venv's python is a symlink."""
    if python is None:
        return DEFAULT_PYTHON
    if python.is_absolute() or python.exists():
        return python.absolute()
    return PROJECT_ROOT / python


def local_model(model: str) -> Path | None:
    """The folder `model` names, or None for a Hub id (`org/name` with no such folder here)."""
    path = Path(model).expanduser()
    if path.exists() or path.is_absolute() or model.startswith(".") or model.count("/") > 1:
        return path.absolute()
    return None


def model_label(folder: Path) -> str:
    """A local model as recorded: its path under the working directory, else its name."""
    try:
        return str(folder.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return folder.name


def has_chat_template(folder: Path) -> bool:
    """Where transformers saves one: `chat_template.jinja`, or in `tokenizer_config.json`."""
    if (folder / "chat_template.jinja").is_file():
        return True
    config = folder / "tokenizer_config.json"
    try:
        return bool(config.is_file() and json.loads(config.read_text()).get("chat_template"))
    except (OSError, ValueError):
        return True  # unreadable here: let vLLM's tokenizer decide


class VllmBackend:
    """Sends prompts to `vllm.LLM` in a Pipes subprocess; see the module docstring."""

    def __init__(
        self,
        python: Path | None,
        model: str,
        endpoint: str,
        batch_size: int,
        options: dict[str, Any],
        pipes_client: dg.PipesSubprocessClient,
        context: dg.AssetExecutionContext,
        work_dir: Path,
        label: str | None = None,
    ) -> None:
        """`label` names the model in `generator` (and so in the journal's name and doc ids);
        default: a local folder's path under the working directory, else its name."""
        if endpoint not in ("chat", "completions"):
            raise GenerationError(f"vllm: endpoint must be chat or completions, not {endpoint!r}")
        self.python = resolve_python(python)
        self.model = model
        self.endpoint = endpoint
        self.batch_size = batch_size
        self.options = dict(options)
        self.pipes_client = pipes_client
        self.context = context
        self.work_dir = Path(work_dir).absolute()
        self.folder = local_model(model) if model else None
        label = label or (model_label(self.folder) if self.folder else model)
        self.generator = f"vllm:{label}"

    def check(self) -> None:
        """What would make every request fail, found before vLLM's ~15-45 s start."""
        if not self.model:
            raise GenerationError("vllm: no model (set [synthetic] model)")
        if self.folder and not (self.folder / "config.json").is_file():
            raise GenerationError(f"vllm: model folder {self.folder} has no config.json")
        if self.folder and self.endpoint == "chat" and not has_chat_template(self.folder):
            raise GenerationError(
                f"vllm: {self.folder}: its tokenizer has no chat template "
                "(endpoint = 'completions' needs none)"
            )
        if not self.python.is_file():
            raise GenerationError(
                f"vLLM's venv not found at {self.python}: `make .venv-vllm/.installed` builds it"
            )

    def generate(
        self,
        requests: Sequence[PromptRequest],
        sampling: Sampling,
        journal: ResponseJournal,
        log: Log,
    ) -> None:
        todo = journal.missing(requests)
        if not todo:
            log(f"vllm: all {len(requests)} prompts already in the journal; not starting vLLM")
            return
        self.check()
        requests_path = self.work_dir / "vllm_requests.jsonl"
        error_path = self.work_dir / "vllm_error.txt"
        error_path.unlink(missing_ok=True)
        rows = [{"prompt_id": r.prompt_id, "messages": list(r.messages), "prompt": r.prompt,
                 "stop": None if r.stop is None else list(r.stop)} for r in todo]  # fmt: skip
        write_jsonl(requests_path, rows)
        extras = {
            "requests_path": str(requests_path),
            "journal_path": str(Path(journal.path).absolute()),
            "error_path": str(error_path),
            "model": str(self.folder or self.model),
            "endpoint": self.endpoint,
            "sampling": sampling.as_dict(),
            "batch_size": self.batch_size,
            "options": self.options,
            "generator": self.generator,
        }
        done = len(requests) - len(todo)
        log(f"vllm: {len(todo)} prompts ({done} already done) to {self.generator}")
        try:
            invocation = self.pipes_client.run(
                command=[str(self.python), "-m", WORKER],
                context=self.context,
                extras=extras,
                env=self.env(),
            )
        except DagsterPipesExecutionError as exc:
            raise GenerationError(self.failure(error_path, exc)) from exc
        stats = [m for m in invocation.get_custom_messages() if isinstance(m, dict)]
        if stats:
            log("vllm: " + ", ".join(f"{k} {v}" for k, v in stats[-1].items()))

    def env(self) -> dict[str, str]:
        """The worker's additions to the inherited environment (HF_* and VLLM_* pass through:
        HF_HUB_OFFLINE is only set where the parent sets it)."""
        tmp = self.work_dir / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        return {
            "PYTHONPATH": str(PROJECT_ROOT),  # the worker imports snowcoder_assets.phase3
            "TMPDIR": str(tmp),
            "VLLM_CACHE_ROOT": os.environ.get("VLLM_CACHE_ROOT")
            or str(self.work_dir / "vllm-cache"),
            "TOKENIZERS_PARALLELISM": "false",
        }

    def failure(self, error_path: Path, exc: Exception) -> str:
        """The worker's own reason when it wrote one, else what a silent death usually means."""
        if error_path.is_file():
            reason = error_path.read_text(encoding="utf-8").strip()
            return f"vLLM worker ({self.generator}) failed: {reason}"
        return (
            f"vLLM worker ({self.generator}) died without a reason ({exc}): killed, or out of "
            "memory (lower [synthetic] vllm_options gpu_memory_utilization / max_model_len); "
            "its stderr is in the run's logs"
        )
