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
PUBLISHED_MACS = {"kws01": 2.66e6, "vww01": 7.49e6, "ic01": 12.5e6, "ad01": 0.264e6, "sww01": 0.83e6}


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


def test_the_sww01_net_is_the_published_model() -> None:
    """str_ww with str_ww_ref_model.h5's weights, layer for layer, gives its logits exactly."""
    from torch import nn

    from tbn.foreign import load_foreign, logits
    from tbn.mlperf import reference_file
    from tbn.third_party import SourceNotFoundError
    from tbn.train.mlperf_models import str_ww

    try:
        published = logits(load_foreign(str(reference_file("sww01")))).eval()
    except SourceNotFoundError as e:
        pytest.skip(str(e))
    ours = str_ww().eval()
    kinds = (nn.Conv2d, nn.BatchNorm2d, nn.Linear)
    theirs = [m for m in published.modules() if isinstance(m, kinds)]
    mine = [m for m in ours.modules() if isinstance(m, kinds)]
    assert [type(m) for m in theirs] == [type(m) for m in mine]
    for a, b in zip(theirs, mine, strict=True):
        b.load_state_dict(a.state_dict())
    x = torch.randn(4, *ARCHITECTURES["sww01"][1])
    with torch.no_grad():
        torch.testing.assert_close(ours(x), published(x), rtol=1e-6, atol=1e-5)
