"""The response journal: a torn last line (a kill mid-write) costs only that response."""

from __future__ import annotations

from pathlib import Path

from snowcoder_assets.phase3.generation import Response, ResponseJournal


def test_a_torn_line_is_skipped_and_the_next_append_stays_whole(tmp_path: Path) -> None:
    journal = ResponseJournal(tmp_path / "responses.jsonl")
    journal.append(Response("a", "one", "stop", 3, 1, None, "g"))
    with journal.path.open("a") as out:
        out.write('{"prompt_id": "b", "text": "tw')  # killed here
    assert list(journal.read()) == ["a"]
    journal.append(Response("c", "three", "stop"))
    journal.append(Response("a", "again", "stop"))  # a duplicate never replaces the first
    done = journal.read()
    assert list(done) == ["a", "c"]
    assert done["a"].text == "one" and done["a"].prompt_tokens == 3
    assert done["c"].text == "three"


def test_failed_requests_are_journaled_as_such(tmp_path: Path) -> None:
    journal = ResponseJournal(tmp_path / "r.jsonl")
    journal.append(Response("x", None, None, error="HTTP 500 after 5 attempts"))
    assert journal.read()["x"].error == "HTTP 500 after 5 attempts"
