"""The objectives' test scores: a batch at a time, in eval mode, the model's mode restored."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tbn.errors import UsageError
from tbn.train.objective import Classify, Forecast, Reconstruct


def test_a_score_runs_in_eval_mode_and_restores_training() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.Dropout(0.9))  # in training mode dropout changes the outputs
    x = torch.randn(25, 4)
    y = model.eval()(x).argmax(1)
    model.train()
    assert Classify().score(model, x, y, batch=7) == 1.0
    assert model.training


def test_a_reconstruction_is_scored_by_each_clips_mean_error() -> None:
    """Two clips of each kind on one machine, three vectors a clip (batches cross clips): an
    all-zero reconstruction errs more on the louder anomalous clips, so the AUC is 1."""
    model = nn.Linear(4, 4)
    nn.init.zeros_(model.weight), nn.init.zeros_(model.bias)
    loud = torch.tensor([0.1, 0.1, 1.0, 1.0]).repeat_interleave(3)
    x = loud[:, None] * torch.ones(12, 4)
    rows = torch.stack([torch.zeros(12, dtype=torch.long), torch.arange(12) // 3, (loud > 0.5).long()], 1)
    assert Reconstruct().score(model, x, rows, batch=5) == 1.0
    assert model.training


@pytest.mark.parametrize("goal", [Classify(), Forecast(), Reconstruct()])
def test_an_empty_test_split_is_named(goal: object) -> None:
    model = nn.Linear(4, 4)
    with pytest.raises(UsageError, match="no inputs to score"):
        goal.score(model, torch.zeros(0, 4), torch.zeros(0, 3, dtype=torch.long))
    assert model.training
