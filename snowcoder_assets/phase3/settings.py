"""`[synthetic]`: how phase 3 samples seeds, prompts a generator and keeps what it writes.

At paper scale Llama-3.1-70B-Instruct wrote ~2B tokens from phase-2 seeds, Python raised to
about half of the prompts. The defaults are sized for the demo: a few dozen prompts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from snowcoder_assets.phase3.generation import Sampling
from snowcoder_assets.strict import StrictModel

DEFAULT_SYSTEM_MESSAGE = (
    "You are an expert software engineer who writes clear, correct, well-documented code "
    "that teaches the reader something."
)


class SyntheticConfig(StrictModel):
    """Seeds, prompts, generation backend and sampling of the synthetic corpus."""

    # vllm: offline vllm.LLM in its own venv, through Dagster Pipes; openai: any
    # OpenAI-compatible server (`vllm serve`, a hosted endpoint).
    backend: Literal["vllm", "openai"] = "vllm"
    # A Hub id or a local model folder (vllm), or the server's model name (openai). Empty:
    # `synthetic_generator` trains the demo's small generator on the top-k corpus.
    model: str = ""
    endpoint: Literal["chat", "completions"] = "chat"  # chat needs a chat template
    base_url: str = "http://127.0.0.1:8000/v1"
    api_key_env: str = "OPENAI_API_KEY"  # the variable's name; its value is never logged
    system_message: str = DEFAULT_SYSTEM_MESSAGE

    max_prompts: int = Field(default=48, ge=0)  # prompts sent at most
    budget_tokens: int | None = Field(default=None, gt=0)  # stop once this many are generated
    python_share: float = Field(default=0.5, ge=0.0, le=1.0)  # of the prompts
    seed_max_tokens: int = Field(default=384, gt=0)  # a longer seed file is cut to a snippet

    max_tokens: int = Field(default=1024, gt=0)
    temperature: float = Field(default=0.0, ge=0.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    seed: int = 0  # seed sampling and generation

    concurrency: int = Field(default=8, ge=1)  # openai: requests in flight
    timeout_s: float = Field(default=120.0, gt=0)  # openai: one request
    max_retries: int = Field(default=4, ge=0)  # openai: on 429, 5xx and timeouts

    vllm_python: Path | None = None  # vLLM's venv interpreter; default: <checkout>/.venv-vllm
    vllm_batch_size: int = Field(default=64, ge=1)  # prompts per generate call (and per save)
    vllm_options: dict[str, str | int | float | bool] = Field(default_factory=dict)  # LLM(**)

    generator_steps: int = Field(default=60, ge=1)  # the demo generator's training steps

    @model_validator(mode="after")
    def _openai_needs_model(self) -> SyntheticConfig:
        if self.backend == "openai" and not self.model:
            raise ValueError("backend = 'openai' needs model = '<the server's model name>'")
        return self

    def sampling(self) -> Sampling:
        return Sampling(
            max_tokens=self.max_tokens,
            temperature=self.temperature,
            top_p=self.top_p,
            seed=self.seed,
        )
