"""Dagster concurrency pools (limits in the instance's dagster.yaml: one step at a time each).

Global assets that write shared files (the dedup state, corpora, the tokenizer, the manifest)
run in `global_writers`, so a UI backfill and a CLI run never write them at the same time; GPU
stages run in `gpu`.
"""

GLOBAL_WRITERS = "global_writers"
GPU = "gpu"
