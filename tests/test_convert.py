"""tile_model: conversion anywhere in a module tree, the policy, budgets, accounting."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tbn import BudgetError, plan_tiling, tile_model
from tbn.nn import TiledConv1d, TiledConv2d, TiledLinear, is_tiled
from tbn.train.models import mlp


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(8, 8, 3, padding=1)
        self.inner = nn.ModuleDict({"seq": nn.Sequential(nn.Conv1d(8, 8, 3, padding=1), nn.ReLU())})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        return self.inner["seq"](self.conv(x).reshape(n, c, h * w)).reshape(n, c, h, w)


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 8, 3, padding=1)
        self.blocks = nn.ModuleList([Block(), Block()])
        self.head = nn.Linear(8 * 36, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for b in self.blocks:
            x = b(x)
        return self.head(x.flatten(1))


def test_converts_nested_model_from_original_weights() -> None:
    torch.manual_seed(0)
    net = Net()
    before = {n: m.weight.detach().clone() for n, m in net.named_modules() if hasattr(m, "weight")}
    report = tile_model(net, p=2, min_params=0, alpha_init="copy")
    kinds = {n: type(m) for n, m in net.named_modules() if is_tiled(m)}
    assert kinds == {
        "stem": TiledConv2d, "blocks.0.conv": TiledConv2d, "blocks.0.inner.seq.0": TiledConv1d,
        "blocks.1.conv": TiledConv2d, "blocks.1.inner.seq.0": TiledConv1d, "head": TiledLinear,
    }
    for name, w in before.items():
        m = net.get_submodule(name)
        assert torch.equal(m.weight, w) and torch.equal(m.alpha_weight, w)
    assert [r.name for r in report.layers] == list(kinds)
    assert all(r.p == 2 for r in report.layers)
    assert net(torch.randn(2, 1, 6, 6)).shape == (2, 10)


def test_policy_min_params_per_layer_keep_dense() -> None:
    net = Net()
    report = tile_model(net, p=4, min_params=500, per_layer={"blocks.1.conv": 8},
                        keep_dense=("stem", "blocks.*.inner.*"))
    p = report.per_layer_p()
    assert p == {"stem": None, "blocks.0.conv": 4, "blocks.0.inner.seq.0": None,
                 "blocks.1.conv": 8, "blocks.1.inner.seq.0": None, "head": 4}
    assert type(net.stem) is nn.Conv2d and type(net.head) is TiledLinear and net.head.p == 4
    assert type(net.blocks[0].conv) is TiledConv2d
    assert tile_model(Net(), min_params=10**6).per_layer_p()["head"] == 1


def test_invalid_p_names_the_layer_and_choices() -> None:
    model = nn.Sequential(nn.Linear(7, 9))
    with pytest.raises(ValueError, match=r"layer '0'.*valid choices: 1, 3, 7, 9, 21, 63"):
        tile_model(model, p=2, min_params=0)
    with pytest.raises(KeyError, match="not convertible layers"):
        tile_model(mlp(), per_layer={"nope": 2})


def test_exact_storage_accounting_of_the_mlp() -> None:
    report = tile_model(mlp(), p=8)
    rows = {r.name: r for r in report.layers}
    # 784*256/8 tile bits + 8 fp16 alphas + 256 f32 biases
    assert rows["1"].bits == 25088 + 8 * 16 + 256 * 32
    assert rows["1"].bytes == 3136 + 16 + 1024
    assert rows["4"].p == 8 and rows["4"].bits == 8192 + 128 + 8192
    assert rows["7"].p == 1 and rows["7"].bits == 2560 + 16 + 320  # under min_params: binary
    assert report.total_bits == sum(r.bits for r in report.layers)
    assert report.to_dict()["float32_bytes"] == 4 * (784 * 256 + 256 * 256 + 2560)
    assert "total" in str(report)


def test_budget_picks_p_per_layer_to_fit() -> None:
    budget = 9000
    plan = plan_tiling(mlp(), budget_bytes=budget)
    report = tile_model(model := mlp(), budget_bytes=budget)
    assert report.per_layer_p() == plan
    assert report.total_bytes <= budget
    # the largest layer is tiled hardest; the tiny classifier stays binary
    assert plan["1"] >= plan["4"] and plan["7"] == 1
    # a looser budget never needs more tiling
    loose = plan_tiling(mlp(), budget_bytes=40_000)
    assert all(loose[k] <= plan[k] for k in plan)
    assert model(torch.randn(4, 1, 28, 28)).shape == (4, 10)


def test_budget_too_small_is_a_clear_error() -> None:
    with pytest.raises(BudgetError, match=r"no tiling fits 500 bytes: the smallest reachable is \d+"):
        tile_model(mlp(), budget_bytes=500)


def test_retiling_changes_p_and_keeps_other_layers() -> None:
    model = mlp()
    tile_model(model, p=4)
    first = model[1]
    tile_model(model, p=4, per_layer={"4": 16})
    assert model[1] is first and model[4].p == 16


def test_bare_layer_is_refused() -> None:
    with pytest.raises(TypeError, match="from_float"):
        tile_model(nn.Linear(256, 256), p=2, min_params=0)


class _Attend(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(32, 4, batch_first=True)
        self.fc = nn.Linear(32, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.attn(x, x, x)[0].mean(1))


def test_multihead_attention_splits_and_its_four_projections_tile() -> None:
    """nn.MultiheadAttention packs q, k and v into one weight, which no layer holds: tile_model
    makes it a SplitAttention (the same outputs and weights), plans its four projections like
    any layer, and the compiled file computes what the tiled model does."""
    import numpy as np

    from tbn import compile_model
    from tbn.nn import SplitAttention
    from tbn.runtime import Interpreter

    torch.manual_seed(0)
    model, x = _Attend().eval(), torch.randn(8, 10, 32)
    split = SplitAttention.from_float(model.attn).eval()
    with torch.no_grad():
        for got, want in zip(split(x, x, x), model.attn(x, x, x), strict=True):
            torch.testing.assert_close(got, want, rtol=0, atol=1e-6)
    names = ("attn.q_proj", "attn.k_proj", "attn.v_proj", "attn.out_proj")
    plan = plan_tiling(model, p=4, min_params=0, per_layer={"attn.v_proj": 2}, keep_dense=["attn.out_proj"])
    assert plan == {names[0]: 4, names[1]: 4, names[2]: 2, names[3]: None, "fc": 4}
    assert isinstance(model.attn, nn.MultiheadAttention)  # planning changes nothing
    report = tile_model(model, p=4, min_params=0)
    assert [(r.name, r.p) for r in report.layers] == [(n, 4) for n in (*names, "fc")]
    assert isinstance(model.attn, SplitAttention) and all(is_tiled(getattr(model.attn, n[5:])) for n in names)
    with torch.no_grad():
        want = model.eval()(x).numpy()
    got = Interpreter(compile_model(model, x[:1], params="wide")).run(x.numpy())
    assert np.abs(got - want).max() <= 1e-5 * np.abs(want).max()
    with pytest.raises(ValueError, match="no mask"):
        model.attn(x, x, x, is_causal=True)
