"""Resources shared by every stage: the validated configuration and the lineage store."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from snowcoder_assets.config import SnowcoderConfig, load_config


class SnowcoderConfigResource(dg.ConfigurableResource):
    """The project configuration file (`snowcoder.toml` or `SNOWCODER_CONFIG`)."""

    config_path: str

    def load(self) -> SnowcoderConfig:
        return load_config(self.config_path)

    @property
    def data_dir(self) -> Path:
        return self.load().data_dir
