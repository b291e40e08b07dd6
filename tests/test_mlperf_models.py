"""MLPerf Tiny's architectures in PyTorch (tbn.train.mlperf_models): the MACs the benchmark
publishes, and each, binary and INT8, compiled and run by the C runtime equal to the reference
(the depthwise, pointwise and strided convs of benchmarks/mlperf_tiny.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tbn import compile_model, tile_model
from tbn.engines import open_engine
from tbn.runtime import Interpreter
from tbn.train.mlperf_models import ARCHITECTURES, macs

# MLPerf Tiny v1.4's reference models, as its README states them
PUBLISHED_MACS = {"kws01": 2.66e6, "vww01": 7.49e6, "ic01": 12.5e6, "ad01": 0.264e6}


@pytest.mark.parametrize("task", list(ARCHITECTURES))
def test_architecture_has_the_published_size_and_runs_exactly(task: str) -> None:
    make, shape = ARCHITECTURES[task]
    torch.manual_seed(0)
    model = make()
    assert macs(model, shape) == pytest.approx(PUBLISHED_MACS[task], rel=0.005)
    tile_model(model, p=1, min_params=0)
    x = torch.randn(8, *shape)
    with torch.no_grad():
        model.train()(x)  # BatchNorm statistics
    data = compile_model(model.eval(), x[:1], activations="int8", calibration=x)
    want = Interpreter(data).run(x[:2].numpy())
    assert np.array_equal(open_engine("c", data).run(x[:2].numpy()), want)
