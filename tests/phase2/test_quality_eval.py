"""The quality eval set: balanced, deterministic, never from the corpus's packages or texts."""

from collections import Counter

from snowcoder_assets.phase2.quality_eval import NEGATIVE_KINDS, build_eval_set, drop_overlapping

SMALL = {"per_side": 40, "seed": 3, "max_files": 15}


def test_eval_set_is_balanced_over_kinds_and_deterministic() -> None:
    rows = build_eval_set(set(), **SMALL)
    again = build_eval_set(set(), **SMALL)
    assert [r["text"] for r in rows] == [r["text"] for r in again]
    labels = Counter(r["label"] for r in rows)
    assert labels[1] == 40 and 30 <= labels[0] <= 40
    assert set(NEGATIVE_KINDS) <= {r["kind"] for r in rows}
    assert len({r["text"] for r in rows}) == len(rows)
    assert all('"""' in r["text"] or "'''" in r["text"] for r in rows if r["label"] == 1)


def test_negatives_are_made_from_other_functions_than_the_positives() -> None:
    rows = build_eval_set(set(), **SMALL)
    positives = [r["text"] for r in rows if r["label"] == 1]
    commented = [r["text"] for r in rows if r["kind"] == "commented_out"]
    truncated = [r["text"] for r in rows if r["kind"] == "truncated"]
    assert commented and truncated
    uncommented = {"\n".join(line[2:] for line in t.splitlines()) for t in commented}
    assert not uncommented & set(positives)
    assert not any(p.startswith(t) for t in truncated for p in positives)


def test_packages_the_corpus_reads_never_enter() -> None:
    everything = {r["package"] for r in build_eval_set(set(), **SMALL)}
    left_out = set(sorted(everything)[:3])
    rows = build_eval_set(left_out, **SMALL)
    assert rows and not {r["package"] for r in rows} & left_out


def test_a_snippet_contained_in_a_training_text_is_dropped() -> None:
    rows = build_eval_set(set(), **SMALL)
    vendored = "# vendored copy\nimport os\n\n" + rows[0]["text"] + "\n\n\ndef other():\n    pass\n"
    kept = drop_overlapping(rows, [vendored])
    assert rows[0] not in kept
    assert len(kept) >= len(rows) - 3  # only what the training text contains


def test_a_near_duplicate_of_a_training_text_is_dropped_too() -> None:
    rows = build_eval_set(set(), **SMALL)
    row = max(rows, key=lambda r: len(r["text"]))
    lines = row["text"].splitlines()
    lines[len(lines) // 2] = "    value = compute_something_else(value)  # edited"
    edited = "\n".join("\t" + line for line in lines).replace("return", "return  ", 1)
    assert edited.strip() != row["text"].strip()
    kept = drop_overlapping(rows, [edited])
    assert row not in kept
    assert len(kept) >= len(rows) - 3


def test_eval_rows_leave_out_the_packages_a_configured_corpus_reads(tmp_path):
    from snowcoder_assets.config import load_config
    from snowcoder_assets.phase2.quality_yardstick import corpus_packages, eval_rows
    from tests.corpora import write_config

    source = (
        '[[sources]]\nname = "py"\nkind = "python_install"\nstdlib = false\n'
        'site_packages = ["attr", "httpx", "networkx"]\n'
    )
    config = load_config(write_config(tmp_path / "c.toml", tmp_path / "data", source))
    assert corpus_packages(config) == {"attr", "httpx", "networkx"}
    rows, dropped = eval_rows(config, seen=[], per_side=20)
    assert rows and dropped == 0
    assert not {r["package"] for r in rows} & {"attr", "httpx", "networkx"}
    copied, dropped = eval_rows(config, seen=[rows[0]["text"], rows[-1]["text"]], per_side=20)
    assert dropped >= 2 and rows[0]["text"] not in {r["text"] for r in copied}
    everything = write_config(tmp_path / "all.toml", tmp_path / "d2", source.replace(
        '["attr", "httpx", "networkx"]', '"*"'))  # fmt: skip
    assert eval_rows(load_config(everything), seen=[]) == ([], 0)
