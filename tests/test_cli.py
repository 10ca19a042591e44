"""The `snowcoder` command: explain, stats, discover and clear errors on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from snowcoder_assets.cli import main


def test_cli_explain_stats_and_discover(hostile_config, capsys):
    config_path, _ = hostile_config
    assert main(["--config", str(config_path), "discover"]) == 0
    out = capsys.readouterr().out
    assert "hostile/00000" in out and out.rstrip().endswith("new")
    assert main(["--config", str(config_path), "materialize", "--select", "raw_files"]) == 0
    assert "done in" in capsys.readouterr().out
    assert main(["--config", str(config_path), "discover"]) == 0
    assert capsys.readouterr().out.rstrip().endswith("unchanged")
    assert main(["--config", str(config_path), "explain", "bad/binary.py"]) == 0
    out = capsys.readouterr().out
    assert "bad/binary.py" in out and "[ingest] DROPPED: binary" in out
    assert main(["--config", str(config_path), "stats"]) == 0
    out = capsys.readouterr().out
    assert "ingest" in out and "symlink_outside_root" in out
    assert main(["--config", str(config_path), "explain", "nope/nothing.py"]) == 1


def test_cli_bad_config_fails_before_work_with_file_and_key(tmp_path: Path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('[[sources]]\nname = "x"\nkind = "local_dir"\npath = "missing"\n')
    assert main(["--config", str(bad), "materialize"]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "sources[0].path" in err
    assert not (tmp_path / "data").exists()


def test_cli_invalid_selection_is_a_clear_error(hostile_config, capsys):
    assert main(["--config", str(hostile_config[0]), "materialize", "--select", "nosuch"]) == 2
    assert "nosuch" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["--help"], ["explain", "--help"]])
def test_cli_help(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 0


def test_demo_summary_names_the_annotator_margin_over_the_best_baseline(tmp_path: Path, capsys):
    from types import SimpleNamespace

    from snowcoder_assets.cli import _print_annotator
    from snowcoder_assets.layout import annotator_eval_path

    figures = {
        "eval_rows": 400,
        "packages": ["attr", "httpx"],
        "annotator": {"roc_auc": 0.9159},
        "baselines": {
            "docstring_rule": {"roc_auc": 0.8675},
            "hashed_ngram_lr": {"roc_auc": 0.8029},
        },
        "best_baseline": "docstring_rule",
    }
    annotator_eval_path(tmp_path).write_text(json.dumps(figures))
    _print_annotator(SimpleNamespace(data_dir=tmp_path))
    out = capsys.readouterr().out
    assert "400 snippets from 2 packages" in out
    assert "annotator vs the best baseline (docstring_rule): +0.0484" in out
    rows = {line.split()[0]: line.split()[1] for line in out.splitlines()[4:]}
    assert rows == {"annotator": "0.9159", "docstring_rule": "0.8675", "hashed_ngram_lr": "0.8029"}
