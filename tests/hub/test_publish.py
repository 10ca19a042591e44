from __future__ import annotations

import logging
from pathlib import Path

import datasets
import pytest
import yaml

from snowcoder_assets.hub import HubResource, LayoutSpec, PublishError, dataset_layout
from snowcoder_assets.hub import publish_folder as _publish
from tests.hub.conftest import LANGS, TOKEN
from tests.hub.fake_hub import FakeHub

REPO = "snow/phase1"


def publish(hub: FakeHub, folder: Path, token: str = TOKEN, **kwargs):
    api = HubResource(endpoint=hub.endpoint, token=token).client()
    kwargs.setdefault("backoff_s", 0.01)
    return _publish(api, folder, REPO, log=logging.getLogger("hub-test").info, **kwargs)


@pytest.fixture
def folder(corpus_dir: Path, tmp_path: Path) -> Path:
    out = tmp_path / "repo"
    dataset_layout(corpus_dir, out, LayoutSpec("p1", repo_id=REPO, shard_rows=2))
    return out


def local_tree(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


def test_publish_uploads_tree_and_card(hub: FakeHub, folder: Path, tmp_path: Path) -> None:
    summary = publish(hub, folder, batch_files=100)
    repo = hub.repo(REPO)
    assert repo.files == local_tree(folder)
    assert len(repo.commits) == 1 == len(summary.commits)
    header = repo.files["README.md"].decode().split("---\n", 2)[1]
    assert {c["config_name"] for c in yaml.safe_load(header)["configs"]} == {"default", *LANGS}
    for config in ("default", *LANGS):
        paths = []
        for name, data in sorted(repo.files.items()):
            if name.startswith(f"data/{config}/"):
                paths.append(tmp_path / "dl" / name)
                paths[-1].parent.mkdir(parents=True, exist_ok=True)
                paths[-1].write_bytes(data)
        ds = datasets.load_dataset(
            "parquet", data_files=[str(p) for p in paths], split="train", cache_dir=str(tmp_path)
        )
        assert ds.num_rows == (sum(LANGS.values()) if config == "default" else LANGS[config])


def test_republish_identical_data_makes_no_commit(hub: FakeHub, folder: Path) -> None:
    publish(hub, folder)
    commits = list(hub.repo(REPO).commits)
    hub.state.lfs_paths = {p for p in hub.repo(REPO).files if p.endswith(".parquet")}
    summary = publish(hub, folder)
    assert hub.repo(REPO).commits == commits
    assert summary.uploaded == [] and summary.commits == []
    assert len(summary.skipped) == len(local_tree(folder))


def test_interrupted_publish_resumes_with_the_rest(hub: FakeHub, folder: Path) -> None:
    n_files = len(local_tree(folder))
    hub.state.fail_commits = {3, 4}  # commit 3 fails twice: beyond one retry
    with pytest.raises(PublishError, match="commit 3/"):
        publish(hub, folder, batch_files=2, retries=1)
    done = dict(hub.repo(REPO).files)
    assert len(done) == 4 and "README.md" not in done
    summary = publish(hub, folder, batch_files=2)
    assert set(summary.skipped) == set(done)
    assert len(summary.uploaded) == n_files - 4
    assert hub.repo(REPO).files == local_tree(folder)


def test_transient_500_is_retried(hub: FakeHub, folder: Path) -> None:
    hub.state.fail_commits = {1}
    summary = publish(hub, folder, retries=2)
    assert len(summary.commits) == 1
    assert hub.repo(REPO).files == local_tree(folder)


def test_changed_shards_replace_stale_ones(hub: FakeHub, corpus_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "repo"
    dataset_layout(corpus_dir, folder, LayoutSpec("p1", shard_rows=2))
    publish(hub, folder)
    dataset_layout(corpus_dir, folder, LayoutSpec("p1", shard_rows=100))
    summary = publish(hub, folder)
    assert hub.repo(REPO).files == local_tree(folder)
    assert "data/python/train-00000-of-00004.parquet" in summary.deleted


def test_wrong_token_is_a_clear_error_without_the_token(
    hub: FakeHub, folder: Path, caplog, capsys
) -> None:
    caplog.set_level(logging.DEBUG)
    bad = "hf_WrongTokenWrongToken0123456789"
    with pytest.raises(PublishError) as err:
        publish(hub, folder, token=bad)
    assert "not authorized" in str(err.value) and "HF_TOKEN" in str(err.value)
    captured = capsys.readouterr()
    for text in (str(err.value), caplog.text, captured.out, captured.err):
        assert bad not in text and TOKEN not in text


def test_missing_repository_is_a_clear_error(hub: FakeHub, folder: Path) -> None:
    hub.state.store_created = False
    with pytest.raises(PublishError, match="not found"):
        publish(hub, folder)


def test_persistent_500_fails_after_retries(hub: FakeHub, folder: Path) -> None:
    hub.state.fail_commits = set(range(1, 10))
    with pytest.raises(PublishError, match="500"):
        publish(hub, folder, retries=2)
    assert hub.state.commit_requests == 3


def test_token_never_logged_on_success_or_retry(hub: FakeHub, folder: Path, caplog, capsys) -> None:
    caplog.set_level(logging.DEBUG)
    hub.state.fail_commits = {1}
    summary = publish(hub, folder, retries=1)
    captured = capsys.readouterr()
    assert "transient error" in caplog.text
    for text in (caplog.text, captured.out, captured.err, repr(summary.as_metadata())):
        assert TOKEN not in text
    for data in hub.repo(REPO).files.values():
        assert TOKEN.encode() not in data
