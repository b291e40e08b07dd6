"""The latent gradients of every tiled layer against the formulas of docs/method.md,
computed here in float64 numpy from the plain (untiled) op's gradient, not from the layer
code: ``ste="scaled"`` (the authors'): ``dL/dW[k] = alpha[k // (N/p)] * G[k]``;
``"identity"``: ``dL/dW = G``; plus, when the alphas come from ``W`` itself, the path
through ``alpha_i = mean|W[chunk i]|``. ``G = dL/dWhat``."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from tbn.nn import TiledConv1d, TiledConv2d, TiledLinear

LAYERS = {
    "linear": (lambda **kw: TiledLinear(12, 8, **kw), (3, 12), F.linear),
    "conv1d": (lambda **kw: TiledConv1d(4, 8, 3, padding=1, **kw), (2, 4, 9), F.conv1d),
    "conv2d": (lambda **kw: TiledConv2d(4, 8, 3, padding=1, **kw), (2, 4, 6, 6), F.conv2d),
}


def _expected(w: np.ndarray, a: np.ndarray, grad_what: np.ndarray, p: int, alpha: str, source: str,
              ste: str) -> tuple[np.ndarray, np.ndarray | None]:
    """(dL/dW, dL/dA) from G = dL/dWhat, by the formulas alone."""
    n = w.size
    tile = np.where(w.reshape(p, -1).sum(axis=0) > 0, 1.0, -1.0)
    g = grad_what.reshape(p, n // p)
    per_rep = (g * tile).sum(axis=1)  # dL/dalpha_i
    if alpha == "per_tile":
        alphas = np.abs(a.reshape(p, -1)).mean(axis=1)
        dalpha_da = np.sign(a.reshape(p, -1)) / (n // p) * per_rep[:, None]
    else:
        alphas = np.full(p, np.abs(a).mean())
        dalpha_da = np.sign(a.reshape(p, -1)) / n * per_rep.sum()
    through_tile = g * alphas[:, None] if ste == "scaled" else g
    if source == "weight":
        return (through_tile + dalpha_da).reshape(w.shape), None
    return through_tile.reshape(w.shape), dalpha_da.reshape(w.shape)


CASES = list(itertools.product(LAYERS, (1, 2, 4), ("per_tile", "single"), ("separate", "weight"),
                               ("scaled", "identity")))


@pytest.mark.parametrize(("kind", "p", "alpha", "source", "ste"), CASES)
def test_latent_gradient_follows_the_formula(kind: str, p: int, alpha: str, source: str, ste: str) -> None:
    torch.manual_seed(p)
    make, shape, plain = LAYERS[kind]
    layer = make(p=p, alpha=alpha, alpha_source=source, ste=ste).double()
    x = torch.randn(shape, dtype=torch.float64)
    y = layer(x)
    upstream = torch.randn_like(y)
    (y * upstream).sum().backward()
    # G from the plain op on the same effective weight, as a leaf
    what = layer.tiled_weight().detach().clone().requires_grad_(True)
    extra = {"padding": 1} if kind != "linear" else {}
    (plain(x, what, layer.bias.detach(), **extra) * upstream).sum().backward()
    a = (layer.alpha_weight if source == "separate" else layer.weight).detach().numpy()
    want_w, want_a = _expected(layer.weight.detach().numpy(), a, what.grad.numpy(), p, alpha, source, ste)
    np.testing.assert_allclose(layer.weight.grad.numpy(), want_w, rtol=1e-10, atol=1e-12)
    if want_a is not None:
        np.testing.assert_allclose(layer.alpha_weight.grad.numpy(), want_a, rtol=1e-10, atol=1e-12)


def test_the_two_gradients_differ_by_alpha() -> None:
    """At PyTorch's default init alpha is small, so the authors' gradient is far smaller."""
    torch.manual_seed(0)
    grads = {}
    for ste in ("scaled", "identity"):
        torch.manual_seed(0)
        layer = TiledLinear(64, 32, p=4, ste=ste)
        layer(torch.randn(5, 64)).sum().backward()
        grads[ste] = layer.weight.grad.reshape(4, -1)
    ratio = grads["scaled"] / grads["identity"]
    alphas = layer.alphas().detach()
    torch.testing.assert_close(ratio, alphas.reshape(-1, 1).expand_as(ratio))


def test_alpha_tensor_starts_independent_or_as_a_copy() -> None:
    torch.manual_seed(0)
    own = TiledLinear(256, 64, p=4)  # the authors': Kaiming normal, apart from the weights
    assert not torch.equal(own.alpha_weight, own.weight)
    std = float(own.alpha_weight.detach().std())
    assert std == pytest.approx((2 / 256) ** 0.5, rel=0.05)  # fan_in, ReLU gain
    copy = TiledLinear(256, 64, p=4, alpha_init="copy")
    assert torch.equal(copy.alpha_weight, copy.weight)
    with pytest.raises(ValueError, match="alpha_init='other' is not one of independent, copy"):
        TiledLinear(8, 8, p=1, alpha_init="other")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ste='sign' is not one of scaled, identity"):
        TiledLinear(8, 8, p=1, ste="sign")  # type: ignore[arg-type]
