"""Hub publishing: the dataset repository layout, its card, and idempotent uploads."""

from snowcoder_assets.hub.cards import CardInfo, LangStats, lineage_tables, render_card
from snowcoder_assets.hub.layout import LayoutSpec, dataset_layout
from snowcoder_assets.hub.publish import PublishSummary, publish_folder
from snowcoder_assets.hub.resources import HubResource, PublishError, scrub

__all__ = [
    "CardInfo",
    "HubResource",
    "LangStats",
    "LayoutSpec",
    "PublishError",
    "PublishSummary",
    "dataset_layout",
    "lineage_tables",
    "publish_folder",
    "render_card",
    "scrub",
]
