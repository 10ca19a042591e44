"""Configuration: a bad file fails before any work, naming the file, the key and the expectation."""

from __future__ import annotations

from pathlib import Path

import pytest

from snowcoder_assets.config import (
    ConfigError,
    LocalDirSourceConfig,
    default_config_path,
    load_config,
    split_partition_key,
)


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "conf.toml"
    path.write_text(body)
    return path


def test_load_config_resolves_paths_against_the_file(tmp_path: Path):
    (tmp_path / "code" / "repo").mkdir(parents=True)
    path = _write(
        tmp_path,
        '[paths]\ndata_dir = "out"\n[[sources]]\nname = "mine"\n'
        'kind = "local_dir"\npath = "code"\n',
    )
    config = load_config(path)
    assert config.data_dir == tmp_path / "out"
    assert isinstance(config.sources[0], LocalDirSourceConfig)
    assert config.sources[0].path == tmp_path / "code"
    assert config.config_file == path


def test_project_default_config_is_valid():
    config = load_config(Path(__file__).resolve().parent.parent / "snowcoder.toml")
    assert config.sources[0].kind == "python_install"


def test_default_config_path_follows_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SNOWCODER_CONFIG", str(tmp_path / "x.toml"))
    assert default_config_path() == tmp_path / "x.toml"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            '[paths]\ndata_dirr = "x"\n[[sources]]\nname="a"\nkind="python_install"\n',
            "paths.data_dirr: unknown key",
        ),
        (
            '[ingest]\nmax_file_bytes = "big"\n[[sources]]\nname="a"\nkind="python_install"\n',
            "ingest.max_file_bytes: Input should be a valid integer",
        ),
        ('[[sources]]\nname="a"\nkind="ftp"\n', "sources[0]: unknown kind 'ftp'; expected one of"),
        ('[[sources]]\nname="a"\nkind="local_dir"\n', "sources[0].path: missing required key"),
        (
            '[[sources]]\nname="a"\nkind="local_dir"\npath="/does/not/exist"\n',
            "sources[0].path: /does/not/exist is not an existing folder",
        ),
        (
            '[[sources]]\nname="a"\nkind="parquet"\npath="/nothing/*.parquet"\n',
            "sources[0].path: /nothing/*.parquet matches no file",
        ),
        (
            '[[sources]]\nname="a"\nkind="python_install"\nbogus=1\n',
            "sources[0].bogus: unknown key",
        ),
        ('[[sources]]\nname="Bad Name"\nkind="python_install"\n', "sources[0].name: String should"),
        (
            '[[sources]]\nname="a"\nkind="python_install"\n[[sources]]\nname="a"\n'
            'kind="python_install"\n',
            "sources[1].name: duplicate source name 'a'",
        ),
        (
            '[ingest]\nlanguages = ["klingon"]\n[[sources]]\nname="a"\nkind="python_install"\n',
            "ingest.languages: Value error, unknown language(s) ['klingon']",
        ),
        (
            '[[sources]]\nname="a"\nkind="python_install"\n[synthetic]\nbackend = "openai"\n',
            "synthetic: Value error, backend = 'openai' needs model",
        ),
        (
            '[[sources]]\nname="a"\nkind="python_install"\n[synthetic]\nbackend = "tgi"\n',
            "synthetic.backend: Input should be 'vllm' or 'openai'",
        ),
        ("[paths\n", "not valid TOML"),
        ('[paths]\ndata_dir = "x"\n', "sources: missing required key"),
    ],
)
def test_load_config_rejects_bad_files_with_file_and_key(tmp_path: Path, body: str, expected: str):
    path = _write(tmp_path, body)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value)
    assert expected in str(info.value)


def test_load_config_missing_file(tmp_path: Path):
    with pytest.raises(ConfigError, match="configuration file not found"):
        load_config(tmp_path / "absent.toml")


def test_split_partition_key_rejects_malformed_keys():
    assert split_partition_key("src/00001") == ("src", "00001")
    with pytest.raises(ValueError, match="<source>/<shard>"):
        split_partition_key("no-shard")


def test_paper_config_is_valid_apart_from_its_data_paths():
    import tomllib

    from snowcoder_assets.config import SnowcoderConfig

    raw = tomllib.loads(
        (Path(__file__).resolve().parent.parent / "configs" / "paper.toml").read_text()
    )
    config = SnowcoderConfig.model_validate(raw)
    assert config.tokenizer.vocab_size == 64000
    assert config.topk.budget_tokens == 12_500_000_000 and config.topk.repeats == 4
    assert config.annotator.base_model == "Snowflake/snowflake-arctic-embed-m"
    assert config.synthetic.model == "meta-llama/Llama-3.1-70B-Instruct"
    assert config.synthetic.budget_tokens == 2_000_000_000
