"""The paper's other models (MLP-Mixer, ViT, ConvMixer, PointNet as their MNIST recipes build
and tile them; the time-series forecaster on its 1-D windows), F32 and INT8, on the emulated
Cortex-M7 and M4: every output equal to the reference interpreter's (INT8 bit for bit, F32
within the parity tolerance). Weights are the recipes' initial ones with BatchNorm statistics
from random inputs: the costs and the arithmetic do not depend on training."""

from __future__ import annotations

import pytest
import torch

from tbn import compile_model
from tbn.boards import Board
from tbn.device.link import DeviceLink
from tbn.device.runner import DeviceRunner
from tbn.format import read
from tbn.train import TrainConfig
from tbn.train.model_file import build_model
from tbn.train.recipes import input_shape

pytestmark = pytest.mark.hil
BOARDS = ("mps2_an500", "mps2_an386")
RECIPES = ("mixer", "vit", "convmixer", "pointnet", "forecast")


@pytest.mark.parametrize("activations", ["f32", "int8"])
@pytest.mark.parametrize("recipe", RECIPES)
def test_a_token_model_matches_the_reference(tbn_device: DeviceLink, tbn_board: Board | None, recipe: str,
                                             activations: str) -> None:
    if tbn_board is None or tbn_board.name not in BOARDS:
        pytest.skip(f"the token models run on {' and '.join(BOARDS)}")
    torch.manual_seed(0)
    model, _ = build_model(TrainConfig.for_recipe(recipe))
    shape = input_shape(recipe)
    with torch.no_grad():
        model.train()(torch.randn(64, *shape))
    model.eval()
    x = torch.randn(16, *shape, generator=torch.Generator().manual_seed(1))
    data = compile_model(model, x[:1], activations=activations, calibration=x)
    tbn_device.load(data)
    runner = DeviceRunner(tbn_device, read(data))
    for xi in x[:2].numpy():
        result = runner.compare(xi)
        assert result.matches, f"{recipe} {activations}: device and reference differ by {result.error}"
