"""The tiling math and the tiled layers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from tbn.nn import TiledConv1d, TiledConv2d, TiledLinear, pack_bits, tiling, unpack_bits

# A 2x4 weight, p = 2, worked out by hand:
#   w = [1, -2, 3, 0.5 | -1, 2, -4, 0.5]
#   s = w[0:4] + w[4:8] = [0, 0, -1, 1]          (sum, not mean)
#   t = [-1, -1, -1, +1]                          (0 -> -1)
#   alpha_0 = (1 + 2 + 3 + 0.5) / 4 = 1.625,  alpha_1 = (1 + 2 + 4 + 0.5) / 4 = 1.875
#   single alpha = 14 / 8 = 1.75
W = torch.tensor([[1.0, -2.0, 3.0, 0.5], [-1.0, 2.0, -4.0, 0.5]])


def test_hand_worked_example() -> None:
    assert tiling.aggregate(W, 2).tolist() == [0.0, 0.0, -1.0, 1.0]
    tile = tiling.make_tile(W, 2)
    assert tile.tolist() == [-1.0, -1.0, -1.0, 1.0]
    alphas = tiling.compute_alphas(W, 2, "per_tile")
    assert alphas.tolist() == [1.625, 1.875]
    assert tiling.compute_alphas(W, 2, "single").tolist() == [1.75]
    expected = torch.tensor([[-1.625, -1.625, -1.625, 1.625], [-1.875, -1.875, -1.875, 1.875]])
    assert torch.equal(tiling.tiled_weight(W, alphas, 2), expected)
    assert torch.equal(tiling.tiled_weight(W, torch.tensor([1.75]), 2), expected.sign() * 1.75)


def test_layer_reproduces_hand_example() -> None:
    layer = TiledLinear(4, 2, bias=False, p=2, alpha_source="weight")
    with torch.no_grad():
        layer.weight.copy_(W)
    x = torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]])
    assert torch.allclose(layer(x), torch.tensor([[-1.625, -1.875], [1.625, 1.875]]))


def test_p1_is_plain_binary_layer() -> None:
    w = torch.randn(5, 7)
    layer = TiledLinear(7, 5, p=1)
    with torch.no_grad():
        layer.weight.copy_(w)
        layer.alpha_weight.copy_(w)
    expected = torch.where(w > 0, 1.0, -1.0) * w.abs().mean()
    assert torch.allclose(layer.tiled_weight(), expected)


def test_invalid_p_lists_valid_choices() -> None:
    with pytest.raises(ValueError, match=r"p=4 does not divide the 21 entries.*valid choices: 1, 3, 7, 21"):
        TiledLinear(7, 3, p=4)
    with pytest.raises(ValueError, match="valid choices"):
        TiledConv2d(3, 5, 3, p=2)
    assert tiling.divisors(12) == [1, 2, 3, 4, 6, 12]


def test_bad_alpha_options() -> None:
    with pytest.raises(ValueError, match="alpha='mean'"):
        TiledLinear(4, 4, alpha="mean")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="alpha_source='x'"):
        TiledLinear(4, 4, alpha_source="x")  # type: ignore[arg-type]


@settings(max_examples=40, deadline=None)
@given(rows_per_tile=st.integers(1, 6), p=st.sampled_from([1, 2, 4, 8]), in_f=st.integers(1, 9),
       seed=st.integers(0, 2**31 - 1))
def test_rows_r_and_r_plus_out_over_p_share_binary_weights(rows_per_tile: int, p: int, in_f: int,
                                                           seed: int) -> None:
    torch.manual_seed(seed)
    out_f = rows_per_tile * p
    layer = TiledLinear(in_f, out_f, p=p)
    w = layer.tiled_weight().detach()
    signs, alphas = w.sign(), layer.alphas().detach()
    step = out_f // p
    for r in range(out_f - step):
        assert torch.equal(signs[r], signs[r + step])
        # and the magnitudes are the alphas of the two repetitions
        assert torch.allclose(w[r].abs(), alphas[r // step].expand(in_f))


def test_conv_filters_share_tile_across_output_channels() -> None:
    torch.manual_seed(0)
    conv = TiledConv2d(3, 8, 3, p=4)
    signs = conv.tiled_weight().detach().sign()
    for c in range(6):
        assert torch.equal(signs[c], signs[c + 2])
    conv1 = TiledConv1d(2, 6, 5, p=3)
    s1 = conv1.tiled_weight().detach().sign()
    assert torch.equal(s1[0], s1[2]) and torch.equal(s1[1], s1[5])


def test_moving_offset_when_p_does_not_divide_rows() -> None:
    # 3 rows of 4, p = 2: tile of 6 entries; row 1 starts at tile offset 4.
    layer = TiledLinear(4, 3, p=2, bias=False)
    tile = layer.tile()
    signs = layer.tiled_weight().detach().sign().reshape(-1)
    assert torch.equal(signs, torch.cat([tile, tile]))
    assert torch.equal(signs[4:8], torch.cat([tile[4:6], tile[0:2]]))


def test_identity_straight_through_gradient() -> None:
    torch.manual_seed(1)
    w = torch.randn(6, 4, requires_grad=True)
    a = torch.randn(6, 4, requires_grad=True)
    what = tiling.tiled_weight(w, tiling.compute_alphas(a, 3, "per_tile"), 3, ste="identity")
    what.retain_grad()
    x = torch.randn(5, 4)
    (x @ what.t()).pow(2).sum().backward()
    assert torch.equal(w.grad, what.grad)  # dL/dW = dL/dWhat, no clipping or scaling
    # A receives gradient only through the alphas: d alpha_i / d a = sign(a) / chunk size
    tile = tiling.make_tile(w.detach(), 3)
    g_alpha = (what.grad.reshape(3, -1) * tile).sum(1)
    expected_a = (g_alpha.reshape(3, 1) * a.detach().sign().reshape(3, -1) / 8).reshape(6, 4)
    assert torch.allclose(a.grad, expected_a)


def test_single_alpha_gradient_and_latent_source() -> None:
    torch.manual_seed(2)
    layer = TiledLinear(4, 4, p=2, alpha="single", alpha_source="weight")
    assert layer.alpha_weight is None and layer.n_alphas == 1
    assert torch.allclose(layer.alphas(), layer.weight.abs().mean().reshape(1))
    layer(torch.randn(3, 4)).sum().backward()
    assert layer.weight.grad is not None  # STE plus the alpha path, both into the latent


def test_eval_mode_caches_the_tile(monkeypatch: pytest.MonkeyPatch) -> None:
    layer = TiledLinear(16, 8, p=4).eval()
    calls = []
    real = tiling.make_tile
    monkeypatch.setattr(tiling, "make_tile", lambda w, p: calls.append(1) or real(w, p))
    x = torch.randn(2, 16)
    y1 = layer(x)
    y2 = layer(x)
    assert len(calls) == 1 and torch.equal(y1, y2)
    with torch.no_grad():  # an in-place change of a parameter invalidates the cache
        layer.weight.neg_()
    y3 = layer(x)
    assert len(calls) == 2 and not torch.equal(y1, y3)
    layer.train()
    layer(x)
    layer(x)
    assert len(calls) == 4  # training rebuilds every step


def test_pack_bits_order() -> None:
    tile = torch.tensor([1.0, -1, -1, -1, -1, -1, -1, -1, 1, 1])
    packed = pack_bits(tile)
    assert packed.tolist() == [0x01, 0x03]  # element j -> bit j % 8 of byte j // 8
    assert unpack_bits(packed, 10).tolist() == tile.tolist()
    words = np.frombuffer(np.pad(packed, (0, 2)).tobytes(), dtype="<u4")
    assert words[0] == 0x0301  # little-endian 32-bit words: element j -> bit j % 32
    with pytest.raises(ValueError, match="fewer than"):
        unpack_bits(packed, 17)


def test_export_and_exact_storage_bits() -> None:
    layer = TiledLinear(784, 256, p=8)
    e = layer.export()
    assert e.n_bits == 784 * 256 // 8 == 25088
    assert e.tile_bits.dtype == np.uint8 and e.tile_bits.size == 3136
    assert np.array_equal(unpack_bits(e.tile_bits, e.n_bits), layer.tile().numpy())
    assert e.alphas.shape == (8,) and e.bias is not None and e.bias.shape == (256,)
    assert layer.storage_bits() == 25088 + 8 * 16 + 256 * 32
    assert layer.storage_bits(alpha_bits=32, bias_bits=0) == 25088 + 8 * 32
    nobias = TiledConv2d(4, 8, 3, bias=False, p=4, alpha="single")
    assert nobias.storage_bits() == 4 * 8 * 9 // 4 + 16


def test_from_float_copies_weights_and_matches_when_weights_are_binary() -> None:
    lin = nn.Linear(6, 4)
    with torch.no_grad():
        lin.weight.copy_(torch.where(torch.rand(4, 6) > 0.5, 0.5, -0.5))
    t = TiledLinear.from_float(lin, p=1, alpha_init="copy")
    x = torch.randn(3, 6)
    assert torch.allclose(t(x), lin(x), atol=1e-6)
    assert not torch.equal(TiledLinear.from_float(lin, p=1).alpha_weight, lin.weight)  # the authors' init
    with pytest.raises(TypeError, match=r"needs nn\.Linear"):
        TiledLinear.from_float(nn.Conv2d(1, 1, 1))


def test_state_dict_round_trip() -> None:
    a = TiledConv2d(2, 4, 3, p=2)
    b = TiledConv2d(2, 4, 3, p=2)
    b.load_state_dict(a.state_dict())
    x = torch.randn(1, 2, 6, 6)
    assert torch.equal(a.eval()(x), b.eval()(x))
    assert set(a.state_dict()) == {"weight", "bias", "alpha_weight"}


def test_the_tiling_options_are_one_object_every_layer_and_tile_model_take() -> None:
    from tbn import tile_model
    from tbn.nn.options import Tiling
    from tbn.train import TrainConfig

    t = Tiling(p=2, alpha="single", alpha_source="weight")
    torch.manual_seed(0)
    a = TiledLinear(8, 4, tiling=t)
    torch.manual_seed(0)
    b = TiledLinear(8, 4, p=2, alpha="single", alpha_source="weight")
    assert a.tiling == b.tiling == t and (a.p, a.alpha, a.alpha_source) == (2, "single", "weight")
    assert torch.equal(a.tiled_weight(), b.tiled_weight())
    assert TiledConv2d(4, 8, 3, tiling=t, p=4).tiling == Tiling(4, "single", "weight")  # keywords win
    model = nn.Sequential(nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 4))
    report = tile_model(model, tiling=t.with_p(4), min_params=0)
    assert report.per_layer_p() == {"0": 4, "2": 4} and model[0].tiling == Tiling(4, "single", "weight")
    assert TrainConfig(p=8, alpha_init="copy").tiling == Tiling(p=8, alpha_init="copy")
    with pytest.raises(TypeError, match=r"unknown tiling options \['alhpa'\]"):
        TiledLinear(4, 4, alhpa="single")
    with pytest.raises(ValueError, match="ste='sign'"):
        TrainConfig(ste="sign")
