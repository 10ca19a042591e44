"""Learning-rate schedules of arXiv 2409.02326, as pure functions of the step.

`step` is the optimizer update number, 1..total_steps (step 0 is "before training"):
- phase 1, "warmup_cosine": linear warm-up 0 -> peak_lr over warmup_steps, then cosine from
  peak_lr to final_lr at total_steps (paper: 600 warm-up steps, 5.3e-4 -> 5.3e-5).
- phase 2, "rewarm_linear": re-warm 0 -> peak_lr over warmup_steps, then linear to final_lr at
  total_steps (paper: 1000 steps to 5.3e-4, then linear to 0; it beat linear annealing and a
  constant LR).

So lr_at(0) = 0, lr_at(warmup_steps) = peak_lr and lr_at(total_steps) = final_lr; with
warmup_steps = 0 the first update already runs at peak_lr. Past total_steps the LR stays at
final_lr; if warm-up is as long as the phase, the LR never leaves the ramp.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


def lr_at(step: int, total_steps: int, schedule: Mapping[str, Any] | Any) -> float:
    """The learning rate of update `step` (1-based) in a phase of `total_steps` updates.

    `schedule` is the manifest's lr_schedule: a dict or an object with the same fields
    (kind, peak_lr, final_lr, warmup_steps).
    """
    get = schedule.get if isinstance(schedule, Mapping) else schedule.__getattribute__
    kind, peak, final = get("kind"), float(get("peak_lr")), float(get("final_lr"))
    warmup = int(get("warmup_steps"))
    if step < warmup:
        return peak * step / warmup
    if step >= total_steps:
        return final if total_steps > warmup else peak
    progress = (step - warmup) / (total_steps - warmup)  # 0 at the peak, 1 at the end
    if kind == "warmup_cosine":
        return final + 0.5 * (peak - final) * (1.0 + math.cos(math.pi * progress))
    if kind == "rewarm_linear":
        return peak + (final - peak) * progress
    raise ValueError(f"unknown lr_schedule kind {kind!r}")
