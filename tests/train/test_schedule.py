import itertools
import math

import pytest

from snowcoder_train.manifest import LRSchedule
from snowcoder_train.schedule import lr_at

COSINE = {"kind": "warmup_cosine", "peak_lr": 1.0, "final_lr": 0.1, "warmup_steps": 10}
REWARM = {"kind": "rewarm_linear", "peak_lr": 1.0, "final_lr": 0.0, "warmup_steps": 10}
PAPER_PHASE1 = {"kind": "warmup_cosine", "peak_lr": 5.3e-4, "final_lr": 5.3e-5, "warmup_steps": 600}
PAPER_PHASE2 = {"kind": "rewarm_linear", "peak_lr": 5.3e-4, "final_lr": 0.0, "warmup_steps": 1000}


@pytest.mark.parametrize(
    ("schedule", "step", "total", "expected"),
    [
        (COSINE, 0, 110, 0.0),
        (COSINE, 5, 110, 0.5),
        (COSINE, 10, 110, 1.0),  # the peak, reached at the end of warm-up
        (COSINE, 35, 110, 0.1 + 0.45 * (1 + math.cos(math.pi / 4))),
        (COSINE, 60, 110, 0.55),  # halfway through the cosine: the mean of peak and final
        (COSINE, 110, 110, 0.1),
        (COSINE, 500, 110, 0.1),  # past the end it stays at final_lr
        (REWARM, 0, 110, 0.0),
        (REWARM, 5, 110, 0.5),
        (REWARM, 10, 110, 1.0),
        (REWARM, 60, 110, 0.5),
        (REWARM, 85, 110, 0.25),
        (REWARM, 110, 110, 0.0),
        (PAPER_PHASE1, 300, 61035, 2.65e-4),
        (PAPER_PHASE1, 600, 61035, 5.3e-4),
        (PAPER_PHASE1, 61035, 61035, 5.3e-5),
        (PAPER_PHASE2, 500, 6103, 2.65e-4),
        (PAPER_PHASE2, 1000, 6103, 5.3e-4),
        (PAPER_PHASE2, 6103, 6103, 0.0),
        ({**COSINE, "warmup_steps": 0}, 1, 10, 0.1 + 0.45 * (1 + math.cos(math.pi / 10))),
        ({**REWARM, "warmup_steps": 20}, 15, 10, 0.75),  # warm-up longer than the phase
    ],
)
def test_lr_at_formula(schedule, step, total, expected):
    assert lr_at(step, total, schedule) == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_lr_at_accepts_the_manifest_dataclass():
    assert lr_at(60, 110, LRSchedule(**COSINE)) == pytest.approx(0.55)


@pytest.mark.parametrize("schedule", [COSINE, REWARM])
def test_lr_at_decays_monotonically_after_warmup(schedule):
    values = [lr_at(step, 110, schedule) for step in range(10, 111)]
    assert all(a >= b for a, b in itertools.pairwise(values))


def test_lr_at_unknown_kind_raises():
    with pytest.raises(ValueError, match="unknown lr_schedule kind 'step'"):
        lr_at(20, 100, {**COSINE, "kind": "step"})
