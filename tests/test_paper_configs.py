"""The paper's CIFAR-10 token models and PointNet on ModelNet40 as recipes: each builds, tiles by
the authors' rule (layers under 64K weights at p=1), compiles to INT8, and tbn-flash says whether
it fits the Nucleo-F767ZI (2 MB of flash, a 256 KB arena), before any build for a model that
cannot."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from tbn import compile_model
from tbn.cli.flash import main as flash
from tbn.format import read
from tbn.train import TrainConfig
from tbn.train.loop import build_model
from tbn.train.recipes import input_shape

# recipe -> whether it fits the Nucleo-F767ZI, and the figures tbn inspect gives for it
FITS = {"mixer-cifar": True, "vit-cifar": True, "convmixer-cifar": True, "pointnet-modelnet40": False}


@pytest.mark.parametrize("name", list(FITS))
def test_the_papers_configurations_compile_and_the_nucleo_fit_is_decided(
        name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("the Arm toolchain is missing: make deps installs it")
    model, report = build_model(TrainConfig.for_recipe(name))
    # the authors' rule: a layer of fewer than 64K weights stays binary (p=1), the rest at p=4
    assert all((layer.p == 1) == (layer.n_weights < 64_000) for layer in report.layers), report
    x = torch.randn(8, *input_shape(name))
    with torch.no_grad():
        model.eval()(x)
    path = tmp_path / f"{name}.tbn"
    path.write_bytes(compile_model(model, x[:1], activations="int8", calibration=x))
    program = read(path.read_bytes())
    code = flash(["--board", "nucleo_f767zi", "--model", str(path), "--dry-run"])
    out = capsys.readouterr()
    if FITS[name]:
        assert code == 0 and "arena 262144" in out.out, out
        assert program.arena_size <= 256 * 1024
    else:  # 1,024 points of 1,024 features: a megabyte of activations
        assert code == 2 and f"the model needs {program.arena_size} bytes of arena, the firmware has 262144" \
            in out.err, out
