"""`HubResource`: the Hugging Face Hub client, with the token kept out of every message.

The token is bound in the definitions as `dg.EnvVar("HF_TOKEN")` and the endpoint from
configuration or `HF_ENDPOINT`; asset bodies only call `client()`. `scrub` removes the token (and
any `hf_...` token-shaped string) from text before it reaches a log, metadata or an exception.
"""

from __future__ import annotations

import re

import dagster as dg

DEFAULT_ENDPOINT = "https://huggingface.co"
TOKEN_PATTERN = re.compile(r"hf_[A-Za-z0-9]{8,}")
REDACTED = "***"


class PublishError(RuntimeError):
    """A publication failed for a reason the user must fix (authorization, missing repository)."""


def scrub(text: str, token: str | None) -> str:
    """`text` with the token and anything shaped like a Hub token replaced by `***`."""
    if token:
        text = text.replace(token, REDACTED)
    return TOKEN_PATTERN.sub(REDACTED, text)


class HubResource(dg.ConfigurableResource):
    """The Hub endpoint and write token; `client()` builds the real `HfApi`."""

    endpoint: str = DEFAULT_ENDPOINT
    token: str | None = None

    def client(self):  # -> huggingface_hub.HfApi (imported lazily: heavy)
        from huggingface_hub import HfApi

        # `token=False` stops the client from falling back to a cached login on this machine.
        return HfApi(endpoint=self.endpoint.rstrip("/"), token=self.token or False)

    def scrub(self, text: str) -> str:
        return scrub(text, self.token)
