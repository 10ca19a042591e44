"""Prompts: OSS-Instruct adapted to pretraining.

Magicoder's OSS-Instruct (Wei et al., 2023, arXiv 2312.02120) shows an LLM a snippet of open-
source code and asks for a coding problem it inspires plus a solution, so the synthetic data
inherits the diversity of real code. Arctic-SnowCoder's phase 3 adapts the idea to
pretraining: the model writes one documented, self-contained *file* that solves a problem the
seed inspires, rather than an instruction/response pair. The template is ours, in
`prompt_template.txt` beside this module; the system message is `[synthetic]
system_message`.

A prompt id is a hash of the template, the system message, the seed, its language and the
sampling parameters: the journal of responses is keyed by it, so a changed template or
sampling setting makes new prompts while an unchanged one is never sent twice.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from snowcoder_assets.io import digest
from snowcoder_assets.phase3.generation import PromptRequest, Sampling

TEMPLATE_PATH = Path(__file__).with_name("prompt_template.txt")
# How a fenced block names the language (what models write after ```), when not the name.
FENCE_NAMES = {
    "c++": "cpp",
    "c-sharp": "csharp",
    "shell": "bash",
    "objective-c": "objc",
    "vim-script": "vim",
    "batchfile": "bat",
}
DISPLAY_NAMES = {
    "c++": "C++",
    "c-sharp": "C#",
    "javascript": "JavaScript",
    "typescript": "TypeScript",
    "php": "PHP",
    "sql": "SQL",
    "html": "HTML",
    "css": "CSS",
    "objective-c": "Objective-C",
    "powershell": "PowerShell",
}
_BACKTICK_RUN = re.compile(r"`{3,}")


@cache
def template_text() -> str:
    return TEMPLATE_PATH.read_text(encoding="utf-8")


def template_id() -> str:
    """Names the template version in every `synthetic` row."""
    return "oss-instruct-file@" + digest(template_text())[:12]


def fence_name(lang: str) -> str:
    return FENCE_NAMES.get(lang, lang)


def display_name(lang: str) -> str:
    return DISPLAY_NAMES.get(lang, lang.capitalize())


def render_user_message(seed: Mapping[str, Any]) -> str:
    """The template filled in; the seed is fenced with more backticks than it contains."""
    longest = max((len(m) for m in _BACKTICK_RUN.findall(seed["text"])), default=2)
    fields = {
        "{language}": display_name(seed["lang"]),
        "{path}": seed["path"],
        "{fence}": fence_name(seed["lang"]),
        "{open}": "`" * max(3, longest + 1),
    }
    text = template_text()
    for key, value in fields.items():
        text = text.replace(key, value)
    return text.replace("{seed}", seed["text"].rstrip("\n"), 1)  # last: seeds hold braces


def prompt_id(user: str, system: str, sampling: Sampling) -> str:
    return digest(template_id(), system, user, sampling.as_dict())


def build_request(seed: Mapping[str, Any], system: str, sampling: Sampling) -> PromptRequest:
    """Chat messages for instruction models, the same as one text for completions."""
    user = render_user_message(seed)
    messages = ({"role": "system", "content": system}, {"role": "user", "content": user})
    return PromptRequest(
        prompt_id=prompt_id(user, system, sampling),
        messages=messages,
        prompt=f"{system}\n\n{user}\n\n",
    )
