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
