"""Standalone trainer for the SnowCoder phase manifest (imports no Dagster but dagster_pipes).

    python -m snowcoder_train --manifest M --phase P [--max-steps K] [--resume auto|never]

Modules: `manifest` (the JSON contract and its checks; standard library only), `schedule`
(LR as a pure function of the step), `model` (Llama builder, presets, FLOPs), `data` (packed
memmapped shards), `train` (the loop), `checkpoint`, `report` (metrics.jsonl, MFU, Pipes) and
`distributed` (FSDP2 under torchrun). Nothing heavy is imported here: the Dagster definitions
may import `snowcoder_train.manifest` without loading torch.
"""
