"""Standalone training library for the SnowCoder phase manifest (imports no Dagster).

The training loop, manifest reader and checkpointing land with the training issue; this
package exists now so the distribution's import layout matches DESIGN.md.
"""
