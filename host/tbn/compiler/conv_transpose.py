"""``nn.ConvTranspose1d/2d`` as the capture stage's nodes: the input spread among zeros
(UPSAMPLE_ZEROS, the stride), then a dense convolution with stride 1, the kernel flipped and
its in and out channels swapped, padded ``d (k - 1) - p`` before and that plus
``output_padding - (stride - 1)`` after. The same arithmetic as PyTorch's, at ``stride^2``
times the multiplies (the zeros), for the decoders and autoencoders that need it."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import fx, nn

from tbn.compiler.geometry import pair
from tbn.compiler.graph import Node, TbnCompileError
from tbn.format.spec import Op


def swap_kernel(w: torch.Tensor, groups: int) -> torch.Tensor:
    """A transposed convolution's ``(Cin, Cout/g, k..)`` kernel as the convolution's ``(Cout,
    Cin/g, k..)``, flipped, or back (the map is its own inverse, the channel counts swapped)."""
    a, b = w.shape[0], w.shape[1] * groups
    w = w.reshape(groups, a // groups, b // groups, *w.shape[2:]).transpose(1, 2)
    return w.reshape(b, a // groups, *w.shape[3:]).flip(dims=tuple(range(2, w.ndim - 1)))


def _as_conv(m: nn.ConvTranspose1d | nn.ConvTranspose2d) -> nn.Module:
    """The convolution equivalent to ``m`` on its zero-spread input (the weights rearranged)."""
    conv = (nn.Conv1d if isinstance(m, nn.ConvTranspose1d) else nn.Conv2d)(
        m.in_channels, m.out_channels, m.kernel_size, dilation=m.dilation, groups=m.groups,
        bias=m.bias is not None)
    with torch.no_grad():
        conv.weight.copy_(swap_kernel(m.weight.detach(), m.groups))
        if m.bias is not None:
            conv.bias.copy_(m.bias.detach())
    return conv.eval()


def expand_conv_transpose(m: nn.ConvTranspose1d | nn.ConvTranspose2d, node: fx.Node, where: str,
                          val: Callable[[object, str], str]) -> list[Node]:
    """The nodes of one transposed convolution; the last one's output is named ``node.name``."""
    one_d = isinstance(m, nn.ConvTranspose1d)
    crop = getattr(m, "crop", None)  # tbn.nn.crop's, uneven: (before, after) per axis
    if m.padding_mode != "zeros" or len(node.args) > 1 or node.kwargs:
        raise TbnCompileError(f"{where}: {type(m).__name__} with padding_mode {m.padding_mode!r} or an "
                              "output_size argument is not supported")
    as2 = (lambda v: (1, v[0])) if one_d else pair
    (kh, kw), (sh, sw), (ph, pw), (dh, dw), (oh, ow) = (as2(v) for v in (
        m.kernel_size, m.stride, m.padding, m.dilation, m.output_padding))
    if one_d:
        ph = oh = 0
    (ct, cb), (cl, cr) = ((0, 0), *crop) if one_d and crop else crop or ((0, 0), (0, 0))
    # cropping p before and p - output_padding after (PyTorch), plus tbn.nn.crop's own
    geom = {"kh": kh, "kw": kw, "sh": 1, "sw": 1, "dh": dh, "dw": dw, "groups": m.groups,
            "pt": dh * (kh - 1) - ph - ct, "pl": dw * (kw - 1) - pw - cl,
            "pb": dh * (kh - 1) - ph + oh - (sh - 1) - cb, "pr": dw * (kw - 1) - pw + ow - (sw - 1) - cr}
    if min(geom.values()) < 0 or max(geom.values()) > 255:
        raise TbnCompileError(f"{where}: {type(m).__name__} with padding past dilation x (kernel - 1), "
                              "or a kernel smaller than its stride; tbn needs padding <= dilation x (kernel "
                              "- 1) and kernel + output_padding >= stride")
    x = node.args[0]
    src = tuple(x.meta["tensor_meta"].shape[1:])
    out = tuple(node.meta["tensor_meta"].shape[1:])
    nodes, name = [], val(x, where)
    if (sh, sw) != (1, 1):
        spread = (src[0], src[1] * sw) if one_d else (src[0], src[1] * sh, src[2] * sw)
        nodes.append(Node(Op.UPSAMPLE_ZEROS, [name], f"{node.name}/spread", spread, where,
                          {"sh": sh, "sw": sw, "conv1d": one_d}))
        name = nodes[-1].output
    nodes.append(Node(Op.DENSE_CONV2D, [name], node.name, out, where,
                      {"module": _as_conv(m), "conv1d": one_d, "geom": geom}))
    return nodes
