"""The `vllm` backend for real: a tiny Llama in vLLM's venv, through a Dagster materialization.

Needs `.venv-vllm` (`make .venv-vllm/.installed`); without it the vllm tests fail rather than
skip, so CI cannot pass without the path it is meant to check. One engine start is ~15-20 s
on a CPU (eager, in-process; see vllm_worker.CPU_DEFAULTS).
"""

from pathlib import Path
from typing import ClassVar

import dagster as dg
import pytest

from snowcoder_assets.phase3.generation import (
    GenerationError,
    PromptRequest,
    ResponseJournal,
    Sampling,
)
from snowcoder_assets.phase3.vllm_backend import DEFAULT_PYTHON, VllmBackend

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
CODE = ["def add(a, b):\n    return a + b\n", "class Stack:\n    def push(self, x):\n"]
MAX_MODEL_LEN = 256
OPTIONS = {"max_model_len": MAX_MODEL_LEN, "gpu_memory_utilization": 0.1}
GREEDY = Sampling(max_tokens=16, temperature=0.0, seed=0)
SEEDS = ["def fibonacci(n):", "import os\n", "class Stack:", "# utils\n", "def add(", "x = 1\n"]
REQUESTS = [
    PromptRequest(
        f"p{i}",
        ({"role": "system", "content": "You write code."}, {"role": "user", "content": seed}),
        seed,
    )
    for i, seed in enumerate(SEEDS)
]
TOO_LONG = PromptRequest("long", ({"role": "user", "content": "x"},), CODE[0] * 40)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random tiny Llama (head_dim 64, which vLLM's CPU attention supports) with a byte-level
    BPE tokenizer and a chat template, saved like a checkpoint."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=512,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(CODE * 50, trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, eos_token="<|endoftext|>", pad_token="<|endoftext|>"
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=128, intermediate_size=256,
        num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
        max_position_embeddings=512, eos_token_id=0, bos_token_id=0, pad_token_id=0,
        tie_word_embeddings=True,
    )  # fmt: skip
    folder = tmp_path_factory.mktemp("tiny-llama")
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(autouse=True)
def _scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """vLLM's caches and temp files in the test's folder; one torch thread (faster here)."""
    (tmp_path / "tmp").mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    monkeypatch.setenv("VLLM_CACHE_ROOT", str(tmp_path / "vllm-cache"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


class CountingClient(dg.PipesSubprocessClient):
    """Counts worker launches, to show a finished journal starts no vLLM at all."""

    launches: ClassVar[list[list[str]]] = []

    def run(self, **kwargs):  # type: ignore[override]
        CountingClient.launches.append(list(kwargs["command"]))
        return super().run(**kwargs)


def generate(
    model: Path,
    journal: Path,
    requests: list[PromptRequest],
    endpoint: str = "completions",
    python: Path | None = DEFAULT_PYTHON,
) -> dict:
    """Materialize a one-off asset that sends `requests` through a VllmBackend."""

    @dg.asset
    def synthetic(
        context: dg.AssetExecutionContext, pipes_subprocess_client: dg.PipesSubprocessClient
    ) -> dg.MaterializeResult:
        backend = VllmBackend(
            python=python, model=str(model), endpoint=endpoint, batch_size=4, options=OPTIONS,
            pipes_client=pipes_subprocess_client, context=context,
            work_dir=journal.parent / "work",
        )  # fmt: skip
        backend.generate(requests, GREEDY, ResponseJournal(journal), context.log.info)
        return dg.MaterializeResult(metadata={"generator": backend.generator})

    result = dg.materialize([synthetic], resources={"pipes_subprocess_client": CountingClient()})
    assert result.success
    return {r.prompt_id: r for r in ResponseJournal(journal).read().values()}


def assert_answered(responses: dict, model: Path) -> None:
    for request in REQUESTS:
        response = responses[request.prompt_id]
        assert response.error is None, response
        assert response.text is not None and response.finish_reason in ("stop", "length")
        assert response.prompt_tokens > 0 and 0 < response.completion_tokens <= 16
        assert response.generator == f"vllm:{model.name}"


@pytest.fixture
def venv_python() -> Path:
    assert DEFAULT_PYTHON.is_file(), (
        f"vLLM's venv not found at {DEFAULT_PYTHON}: `make .venv-vllm/.installed` builds it"
    )
    return DEFAULT_PYTHON


@pytest.mark.vllm
def test_completions_resume_and_greedy_repeat(
    model_dir: Path, tmp_path: Path, venv_python: Path
) -> None:
    journal = tmp_path / "a" / "responses.jsonl"
    responses = generate(model_dir, journal, [*REQUESTS, TOO_LONG])
    assert len(journal.read_text().splitlines()) == len(REQUESTS) + 1
    assert_answered(responses, model_dir)
    long = responses["long"]
    assert long.text is None and long.error is not None
    assert f"exceeds max_model_len {MAX_MODEL_LEN}" in long.error

    before, launches = journal.read_bytes(), len(CountingClient.launches)
    generate(model_dir, journal, [*REQUESTS, TOO_LONG])  # all done: nothing to send
    assert journal.read_bytes() == before
    assert len(CountingClient.launches) == launches

    again = generate(model_dir, tmp_path / "b" / "responses.jsonl", REQUESTS)
    assert {k: r.text for k, r in again.items()} == {
        r.prompt_id: responses[r.prompt_id].text for r in REQUESTS
    }


@pytest.mark.vllm
def test_chat_resumes_a_partial_journal(model_dir: Path, tmp_path: Path, venv_python: Path) -> None:
    journal = tmp_path / "chat" / "responses.jsonl"
    first = generate(model_dir, journal, REQUESTS[:2], endpoint="chat")
    responses = generate(model_dir, journal, REQUESTS, endpoint="chat")
    assert_answered(responses, model_dir)
    assert len(journal.read_text().splitlines()) == len(REQUESTS)
    assert {k: responses[k] for k in first} == first  # the first two were not sent again
    # The chat template wrapped the system and user messages around the seed.
    from transformers import AutoTokenizer

    bare = len(AutoTokenizer.from_pretrained(model_dir)(REQUESTS[0].prompt)["input_ids"])
    assert responses["p0"].prompt_tokens > bare + 6


def test_missing_venv_is_a_clear_error(model_dir: Path, tmp_path: Path) -> None:
    missing = tmp_path / "no-venv" / "bin" / "python"
    with pytest.raises(GenerationError, match=r"make \.venv-vllm/\.installed"):
        generate(model_dir, tmp_path / "responses.jsonl", REQUESTS, python=missing)


def test_folder_without_config_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(GenerationError, match=r"no config\.json"):
        generate(tmp_path / "empty", tmp_path / "responses.jsonl", REQUESTS)


def test_chat_without_a_chat_template_is_a_clear_error(tmp_path: Path) -> None:
    folder = tmp_path / "base-model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "tokenizer_config.json").write_text("{}")
    with pytest.raises(GenerationError, match="no chat template"):
        generate(folder, tmp_path / "responses.jsonl", REQUESTS, endpoint="chat")


def test_worker_imports_only_what_vllms_venv_has() -> None:
    """vLLM's venv has no Dagster, pydantic or project dependencies: stdlib, dagster_pipes,
    vllm and the stdlib-only generation module only."""
    import ast
    import sys

    from snowcoder_assets.phase3 import vllm_worker

    allowed = {"dagster_pipes", "vllm", "snowcoder_assets", "__future__"}
    tree = ast.parse(Path(vllm_worker.__file__).read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            assert top in allowed or top in sys.stdlib_module_names, name
            if top == "snowcoder_assets":
                assert name == "snowcoder_assets.phase3.generation", name
