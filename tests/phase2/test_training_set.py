"""The annotator's training set: the offline proxy and the split by repository."""

from __future__ import annotations

import inspect
import textwrap

import pytest

from snowcoder_assets.phase1.signals import compute_signals
from snowcoder_assets.phase2.training_set import is_proxy_positive, split_by_group


def _row(content: str, path: str = "pkg/mod.py") -> dict:
    return {
        **compute_signals(content, "python", path),
        "content": content,
        "path": path,
        "lang": "python",
    }


def test_proxy_positive_takes_documented_code_and_rejects_undocumented():
    documented = inspect.getsource(textwrap)
    stripped = "\n".join(
        line
        for line in documented.splitlines()
        if '"""' not in line and not line.strip().startswith("#")
    )
    assert is_proxy_positive(_row(documented))
    assert not is_proxy_positive(_row(stripped))
    assert not is_proxy_positive(_row(documented, "pkg/test_mod.py"))  # tests are not positives


@pytest.mark.parametrize("fraction", [0.2, 0.3])
def test_split_by_group_keeps_repositories_whole_and_both_labels_in_validation(fraction):
    rows = [{"label": i % 2, "group": f"repo{i % 13}", "i": i} for i in range(400)]
    rows += [{"label": 0, "group": "huge", "i": 1000 + i} for i in range(300)]
    train, validation = split_by_group(rows, fraction)
    assert len(train) + len(validation) == len(rows)
    assert not {r["group"] for r in train} & {r["group"] for r in validation}
    assert {r["label"] for r in validation} == {0, 1}
    assert 0.05 < len(validation) / len(rows) < 0.5
    assert split_by_group(list(reversed(rows)), fraction)[1] != []


def _positive(doc_id: str, lang: str, content: str, group: str) -> dict:
    return {"doc_id": doc_id, "lang": lang, "content": content, "group": group,
            "origin": "phase1-proxy", "source": "s", "repo": group}  # fmt: skip


def test_hard_examples_add_snippets_and_corrupted_copies_in_the_same_group():
    from snowcoder_assets.phase2.annotator_training_set import hard_examples
    from snowcoder_assets.phase2.training_set import AnnotatorDataConfig

    python = _positive("p1", "python", inspect.getsource(textwrap), "g1")
    c_file = _positive("c1", "c", "/* add */\nint add(int a, int b) {\n  return a + b;\n}\n", "g2")
    data = AnnotatorDataConfig(snippets_per_positive=3)
    out = hard_examples([python, c_file], data)
    assert out == hard_examples([python, c_file], data)  # seeded
    snippets = [r for r in out if r["origin"] == "snippet"]
    corrupted = [r for r in out if r["origin"].startswith("corrupted:")]
    assert len(snippets) == 3 and all(r["label"] == 1 for r in snippets)
    assert all(r["content"].lstrip().startswith(("def ", "@")) for r in snippets)
    assert len(corrupted) == 3 + 2 and all(r["label"] == 0 for r in corrupted)
    assert len({r["origin"] for r in corrupted}) == 5  # the kinds cycle
    assert {r["group"] for r in out if r["doc_id"].startswith("p1")} == {"g1"}
    assert [r["group"] for r in out if r["doc_id"].startswith("c1")] == ["g2"]
    assert len({r["doc_id"] for r in out}) == len(out)
    one_line = _positive("c2", "c", "int answer = 42;", "g3")  # shuffling it changes nothing
    assert hard_examples([one_line], data) == []
    assert (
        hard_examples(
            [python], AnnotatorDataConfig(corrupted_copies=False, snippets_per_positive=0)
        )
        == []
    )


def test_random_negatives_follow_the_positives_language_mix():
    from collections import Counter

    from snowcoder_assets.phase2.annotator_training_set import _Reservoir, balanced_negatives
    from snowcoder_assets.phase2.training_set import AnnotatorDataConfig

    data = AnnotatorDataConfig(max_negatives=40)
    pools = {lang: _Reservoir(100, 0) for lang in ("python", "xml", "c")}
    for i in range(300):
        lang = ("python", "xml", "c")[i % 3]
        pools[lang].offer({"doc_id": f"{lang}{i}", "lang": lang})
    picked = balanced_negatives(pools, Counter({"python": 30, "c": 10}), data)
    assert Counter(r["lang"] for r in picked) == {"python": 30, "c": 10}
    few = {"python": _Reservoir(100, 0), "xml": _Reservoir(100, 0)}
    for i in range(5):
        few["python"].offer({"doc_id": f"p{i}", "lang": "python"})
    for i in range(50):
        few["xml"].offer({"doc_id": f"x{i}", "lang": "xml"})
    topped = balanced_negatives(few, Counter({"python": 1}), data)
    assert len(topped) == 40 and Counter(r["lang"] for r in topped)["python"] == 5
