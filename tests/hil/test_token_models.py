"""The paper's other models (MLP-Mixer, ViT, ConvMixer, PointNet as their MNIST recipes build
and tile them; the time-series forecaster on its 1-D windows), F32 and INT8, on the emulated
Cortex-M7 and M4: every output equal to the reference interpreter's (INT8 bit for bit, F32
within the parity tolerance). Weights are the recipes' initial ones with BatchNorm statistics
from random inputs: the costs and the arithmetic do not depend on training."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
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


def test_infer_scores_a_forecast_by_its_rmse(tbn_board: Board | None, tmp_path: Path) -> None:
    """`tbn infer --data membrane` streams the time series' test windows to the board and scores
    device and reference by RMSE against the recorded samples (the figure the host computes)."""
    if tbn_board is None or tbn_board.name != "mps2_an500":
        pytest.skip("runs on mps2_an500")
    from tbn.data.membrane import load_membrane
    from tbn.runtime import Interpreter

    torch.manual_seed(0)
    model, _ = build_model(TrainConfig.for_recipe("forecast"))
    x, y = load_membrane("test")
    with torch.no_grad():
        model.train()(torch.from_numpy(x[::16]))
    path = tmp_path / "f.tbn"
    path.write_bytes(compile_model(model.eval(), torch.from_numpy(x[:1]), activations="int8",
                                   calibration=torch.from_numpy(x[::32])))
    out = tmp_path / "r.json"
    subprocess.run([sys.executable, "-m", "tbn.cli.main", "infer", "--board", tbn_board.name, "--model",
                    str(path), "--data", "membrane", "--n", "4", "--json", str(out)], check=True,
                   capture_output=True, text=True)
    doc = json.loads(out.read_text())
    want = float(np.sqrt(np.mean((Interpreter(path.read_bytes()).run_float(x[:4]) - y[:4]) ** 2)))
    assert doc["metric"] == "rmse" and doc["matches"] == 4
    assert doc["rmse"] == pytest.approx(want, rel=1e-6)
    assert doc["reference_rmse"] == pytest.approx(want, rel=1e-6)
    assert doc["results"][0]["label"] == pytest.approx(y[0].tolist())
