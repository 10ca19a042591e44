"""`SyntheticGeneratorResource`: the one place a generation backend is chosen and built, for
phase 3's synthetic data and for the evaluation's completions.

`[synthetic] backend` picks it: `vllm` (offline `vllm.LLM` in vLLM's own venv, launched
through Dagster Pipes) or `openai` (any OpenAI-compatible server). The API key is bound in the
definitions as `dg.EnvVar(<[synthetic] api_key_env>)`, so it is never read, shown or logged by
an asset body; the assets only call `backend(...)`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg

from snowcoder_assets.config import SnowcoderConfig
from snowcoder_assets.phase3.generation import Backend, GenerationError

if TYPE_CHECKING:
    from snowcoder_assets.evaluation.run import Checkpoint


class SyntheticGeneratorResource(dg.ConfigurableResource):
    """The OpenAI-compatible endpoint's key (None: the server needs none)."""

    api_key: str | None = None
    evaluation_api_key: str | None = None  # `[evaluation] api_key_env`, for served checkpoints

    def backend(
        self,
        config: SnowcoderConfig,
        model: str,
        endpoint: str,
        context: dg.AssetExecutionContext,
        pipes_client: dg.PipesSubprocessClient,
        work_dir: Path,
        label: str | None = None,
    ) -> Backend:
        """The configured backend for `model`; with no model (`max_prompts = 0`), none."""
        settings = config.synthetic
        if not model:
            return NoGenerator()
        if settings.backend == "openai":
            from snowcoder_assets.phase3.openai_backend import OpenAIBackend

            return OpenAIBackend(
                base_url=settings.base_url,
                model=model,
                api_key=self.api_key,
                endpoint=endpoint,
                concurrency=settings.concurrency,
                timeout_s=settings.timeout_s,
                max_retries=settings.max_retries,
                api_key_env=settings.api_key_env,
            )
        from snowcoder_assets.phase3.vllm_backend import VllmBackend

        return VllmBackend(
            python=settings.vllm_python,
            model=model,
            endpoint=endpoint,
            batch_size=settings.vllm_batch_size,
            options=dict(settings.vllm_options),
            pipes_client=pipes_client,
            context=context,
            work_dir=work_dir,
            label=label,
        )

    def evaluation_backend(
        self,
        config: SnowcoderConfig,
        checkpoint: Checkpoint,
        context: dg.AssetExecutionContext,
        pipes_client: dg.PipesSubprocessClient,
        work_dir: Path,
    ) -> Backend:
        """The `[evaluation] backend` for one phase checkpoint (greedy completions)."""
        settings = config.evaluation
        if settings.backend == "transformers":
            from snowcoder_assets.evaluation.transformers_backend import TransformersBackend

            return TransformersBackend(str(checkpoint.path), checkpoint.label)
        if settings.backend == "openai":
            from snowcoder_assets.phase3.openai_backend import OpenAIBackend

            return OpenAIBackend(
                base_url=settings.base_url,
                model=settings.served_models[checkpoint.phase],
                api_key=self.evaluation_api_key,
                endpoint="completions",
                concurrency=settings.concurrency,
                timeout_s=settings.request_timeout_s,
                max_retries=settings.max_retries,
                api_key_env=settings.api_key_env,
            )
        from snowcoder_assets.phase3.vllm_backend import VllmBackend

        return VllmBackend(
            python=settings.vllm_python or config.synthetic.vllm_python,
            model=str(checkpoint.path),
            endpoint="completions",
            batch_size=settings.vllm_batch_size,
            options=dict(settings.vllm_options),
            pipes_client=pipes_client,
            context=context,
            work_dir=work_dir,
            label=checkpoint.label,
        )


class NoGenerator:
    """The backend of `max_prompts = 0`: phase 3 is switched off, nothing may be sent."""

    generator = "none"

    def generate(self, requests, sampling, journal, log) -> None:
        if requests:
            raise GenerationError("no generator: [synthetic] model is empty and max_prompts = 0")
