"""Which Dagster instance a configuration uses: one per `data_dir`.

Unless `DAGSTER_HOME` is set, the instance lives in `<data_dir>/dagster_home/`, created from the
project's template (`dagster_home/dagster.yaml`) on first use, so two configurations with
different data never share partitions, runs or staleness. An instance given by `DAGSTER_HOME`
is bound to the first data_dir that uses it; another data_dir is refused with a clear message.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from snowcoder_assets.config import SnowcoderConfig, project_root
from snowcoder_assets.io import atomic_path
from snowcoder_assets.layout import instance_dir
from snowcoder_assets.storage import local_dir

if TYPE_CHECKING:
    import dagster as dg

BINDING_KEY = "snowcoder/data_dir"
QUEUE_DAEMON = "QUEUED_RUN_COORDINATOR"
HEARTBEAT_FRESH_S = 60.0  # Dagster daemons beat every 30 s


_SET_HERE: dict[str, str] = {}  # the DAGSTER_HOME this process chose itself (not the user's)


class InstanceMismatch(ValueError):
    """The instance in DAGSTER_HOME records another data_dir's runs."""


def template_path() -> Path:
    return project_root() / "dagster_home" / "dagster.yaml"


def instance_home(config: SnowcoderConfig) -> Path:
    """DAGSTER_HOME when the user set it, else `<data_dir>/dagster_home`."""
    explicit = os.environ.get("DAGSTER_HOME")
    if explicit and explicit != _SET_HERE.get("home"):
        return Path(explicit).expanduser().resolve()
    return instance_home_of(config)


def instance_home_of(config: SnowcoderConfig) -> Path:
    """`<data_dir>/dagster_home`, or under `local_dir` when data_dir is on object storage."""
    return instance_dir(local_dir(config.data_dir)).resolve()


def use_instance(config: SnowcoderConfig) -> Path:
    """Point DAGSTER_HOME (for this process and its children) at the configuration's instance,
    creating the folder and its dagster.yaml when missing."""
    home = instance_home(config)
    home.mkdir(parents=True, exist_ok=True)
    settings = home / "dagster.yaml"
    if not settings.is_file():
        write_settings(settings)
    if os.environ.get("DAGSTER_HOME") != str(home):  # ours to choose: not the user's setting
        os.environ["DAGSTER_HOME"] = _SET_HERE["home"] = str(home)
    return home


def instance_exists(home: Path) -> bool:
    """Has the instance's storage been created (sqlite run storage in `history/`)? An instance
    on another storage (Postgres) counts as existing once its dagster.yaml names one."""
    settings = home / "dagster.yaml"
    if (home / "history" / "runs.db").is_file():
        return True
    return settings.is_file() and "sqlite" not in settings.read_text()


def write_settings(target: Path) -> None:
    """The template with `max_concurrent_runs` = this machine's cores."""
    import yaml

    settings = yaml.safe_load(template_path().read_text())
    settings.setdefault("concurrency", {}).setdefault("runs", {})["max_concurrent_runs"] = (
        os.cpu_count() or 1
    )
    with atomic_path(target) as tmp:
        tmp.write_text(yaml.safe_dump(settings, sort_keys=False))


def open_instance(config: SnowcoderConfig) -> dg.DagsterInstance:
    """The configuration's instance, checked to belong to its data_dir."""
    import dagster as dg

    use_instance(config)
    instance = dg.DagsterInstance.get()
    check_instance(instance, config)
    return instance


def check_instance(instance: dg.DagsterInstance, config: SnowcoderConfig) -> None:
    """Bind the instance to the data_dir on first use; refuse one bound to another data_dir,
    unless it lives inside this data_dir (a moved data_dir takes its instance along)."""
    home = Path(instance.root_directory or ".").resolve()
    own = home == instance_home_of(config)
    data_dir = str(config.data_dir)
    bound = instance.run_storage.get_cursor_values({BINDING_KEY}).get(BINDING_KEY)
    if bound is None or (own and bound != data_dir):
        instance.run_storage.set_cursor_values({BINDING_KEY: data_dir})
    elif bound != data_dir:
        raise InstanceMismatch(
            f"the Dagster instance in DAGSTER_HOME={home} records the runs of data_dir {bound}, "
            f"not {config.data_dir}: unset DAGSTER_HOME (each data_dir then keeps its own "
            f"instance in <data_dir>/dagster_home) or point it at an instance for this data_dir"
        )


def queue_daemon_running(instance: dg.DagsterInstance) -> bool:
    """True when a daemon (`dagster dev`, `dagster-daemon run`) dequeues this instance's runs."""
    beat = instance.get_daemon_heartbeats().get(QUEUE_DAEMON)
    return beat is not None and time.time() - beat.timestamp < HEARTBEAT_FRESH_S
