"""MLPerf Tiny's reference architectures (mlcommons/tiny v1.4, ``benchmark/training``) written
in PyTorch, layer for layer as their Keras definitions build them, so that tbn can tile and
compile them: DS-CNN (kws01), MobileNetV1 0.25 (vww01), ResNet-8 (ic01), the FC autoencoder
(ad01) and the streaming wake word's 1-D DS-CNN (sww01). TensorFlow's ``padding="same"`` at
stride 2 pads more after than before; that is a ``ZeroPad2d`` here, which the compiler folds
into the convolution."""

from __future__ import annotations

import math
from itertools import pairwise

from torch import Tensor, nn


def _same(k: tuple[int, int], stride: int, size: tuple[int, int]) -> nn.ZeroPad2d:
    """TensorFlow's ``same`` padding of a ``k`` kernel at ``stride`` on a ``size`` input."""
    pads = []
    for kk, n in zip(k, size, strict=True):
        total = max((math.ceil(n / stride) - 1) * stride + kk - n, 0)
        pads.append((total // 2, total - total // 2))
    (top, bottom), (left, right) = pads
    return nn.ZeroPad2d((left, right, top, bottom))


def _conv_bn(cin: int, cout: int, k: tuple[int, int], stride: int, size: tuple[int, int],
             groups: int = 1) -> list[nn.Module]:
    return [_same(k, stride, size), nn.Conv2d(cin, cout, k, stride, groups=groups, bias=False),
            nn.BatchNorm2d(cout), nn.ReLU()]


def ds_cnn(classes: int = 12, filters: int = 64, size: tuple[int, int] = (49, 10)) -> nn.Sequential:
    """kws01's DS-CNN on 49x10 MFCC frames: a 10x4 stride-2 conv, four depthwise 3x3 + pointwise
    1x1 blocks of ``filters`` channels, an average pool over the 25x5 map and a classifier
    (2.66 M MACs)."""
    out = (math.ceil(size[0] / 2), math.ceil(size[1] / 2))
    layers = _conv_bn(1, filters, (10, 4), 2, size)
    for _ in range(4):
        layers += _conv_bn(filters, filters, (3, 3), 1, out, groups=filters)
        layers += _conv_bn(filters, filters, (1, 1), 1, out)
    return nn.Sequential(*layers, nn.AvgPool2d(out), nn.Flatten(), nn.Linear(filters, classes))


def mobilenet_v1(classes: int = 2, alpha: float = 0.25, size: int = 96) -> nn.Sequential:
    """vww01's MobileNetV1 (width ``alpha``) on ``size`` x ``size`` RGB images: a 3x3 stride-2
    conv, 13 depthwise-separable blocks, an average pool and a classifier (7.49 M MACs at
    0.25, 96x96)."""
    plan = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), *[(512, 1)] * 5, (1024, 2), (1024, 1)]
    c, s = int(32 * alpha), (size, size)
    layers = _conv_bn(3, c, (3, 3), 2, s)
    s = (math.ceil(size / 2),) * 2
    for width, stride in plan:
        cout = int(width * alpha)
        layers += _conv_bn(c, c, (3, 3), stride, s, groups=c)
        s = (math.ceil(s[0] / stride),) * 2
        layers += _conv_bn(c, cout, (1, 1), 1, s)
        c = cout
    return nn.Sequential(*layers, nn.AvgPool2d(s), nn.Flatten(), nn.Linear(c, classes))


class ResBlock(nn.Module):
    """ResNet-8's stack: two 3x3 convs, plus the input (a 1x1 stride-2 conv where it shrinks)."""

    def __init__(self, cin: int, cout: int, stride: int, size: int) -> None:
        super().__init__()
        out = math.ceil(size / stride)
        self.body = nn.Sequential(*_conv_bn(cin, cout, (3, 3), stride, (size, size)),
                                  *_conv_bn(cout, cout, (3, 3), 1, (out, out))[:-1])
        self.shortcut = nn.Identity() if stride == 1 and cin == cout else \
            nn.Conv2d(cin, cout, 1, stride)
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.body(x) + self.shortcut(x))


def resnet8(classes: int = 10, size: int = 32) -> nn.Sequential:
    """ic01's ResNet-8 on 32x32 RGB images: a 3x3 conv of 16, three stacks (16, 32 and 64
    channels; the last two at stride 2), an average pool and a classifier (12.5 M MACs)."""
    blocks, c, s = [], 16, size
    for cout, stride in ((16, 1), (32, 2), (64, 2)):
        blocks.append(ResBlock(c, cout, stride, s))
        c, s = cout, math.ceil(s / stride)
    return nn.Sequential(*_conv_bn(3, 16, (3, 3), 1, (size, size)), *blocks, nn.AvgPool2d(s), nn.Flatten(),
                         nn.Linear(c, classes))


def fc_autoencoder(inputs: int = 640, hidden: int = 128, code: int = 8) -> nn.Sequential:
    """ad01's autoencoder of 5 log-mel frames of 128: four dense layers of ``hidden`` with
    BatchNorm and ReLU, a code of ``code``, four more, and the reconstruction (0.26 M MACs)."""
    def dense(i: int, o: int) -> list[nn.Module]:
        return [nn.Linear(i, o), nn.BatchNorm1d(o), nn.ReLU()]

    widths = [inputs, *[hidden] * 4, code, *[hidden] * 4]
    layers = [m for i, o in pairwise(widths) for m in dense(i, o)]
    return nn.Sequential(*layers, nn.Linear(hidden, inputs))


def str_ww(classes: int = 3, features: int = 40, frames: int = 30) -> nn.Sequential:
    """sww01's wake-word net on ``frames`` x ``features`` log filterbank energies (channels
    first: features, frames, 1): four blocks of a depthwise conv over time (3, 5, 10 and 15
    frames, ``valid``, no bias), a pointwise conv (128, 128, 128, 32), BatchNorm, ReLU and
    dropout of 0.2, then a classifier of the 32 values left (0.83 M MACs; Keras'
    ``keras_model.py``, BatchNorm's epsilon Keras' 1e-3, the softmax left to the loss)."""
    layers: list[nn.Module] = []
    c = features
    for k, cout in ((3, 128), (5, 128), (10, 128), (15, 32)):
        layers += [nn.Conv2d(c, c, (k, 1), groups=c, bias=False), nn.Conv2d(c, cout, 1, bias=False),
                   nn.BatchNorm2d(cout, eps=1e-3), nn.ReLU(), nn.Dropout(0.2)]
        c, frames = cout, frames - k + 1
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(c * frames, classes))


# task -> (model builder, its input's shape, channels first)
ARCHITECTURES = {
    "kws01": (ds_cnn, (1, 49, 10)),
    "vww01": (mobilenet_v1, (3, 96, 96)),
    "ic01": (resnet8, (3, 32, 32)),
    "ad01": (fc_autoencoder, (640,)),
    "sww01": (str_ww, (40, 30, 1)),
}


def macs(model: nn.Module, shape: tuple[int, ...]) -> int:
    """Multiply-accumulates of one inference of ``model`` on an input of ``shape``: its
    convolutions' and linear layers' (BatchNorm, pools and adds are not counted)."""
    import torch

    total = 0

    def count(m: nn.Module, _: tuple[Tensor, ...], out: Tensor) -> None:
        nonlocal total
        w = m.weight
        total += out[0].numel() * w[0].numel() if isinstance(m, nn.Conv2d | nn.Conv1d) else w.numel()

    hooks = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, nn.Conv2d | nn.Conv1d
                                                                                   | nn.Linear)]
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, *shape))
    finally:
        for h in hooks:
            h.remove()
    return total


def random_model(task: str, p: int | None, seed: int = 0) -> tuple[nn.Module, tuple[int, ...], int]:
    """``task``'s architecture (a key of :data:`ARCHITECTURES`) with random weights, tiled at
    ``p`` wherever ``p`` divides a layer's outputs (the rest binary; None: float), and BatchNorm
    statistics measured on random inputs; with its input shape and MACs. What the benchmarks
    and device tests run where costs, not accuracy, are measured."""
    import torch

    from tbn.convert import tile_model
    from tbn.train.loop import recalibrate_batchnorm

    make, shape = ARCHITECTURES[task]
    torch.manual_seed(seed)
    model = make()
    n_macs = macs(model, shape)
    if p is not None:
        outputs = {name: m.weight.shape[0] for name, m in model.named_modules()
                   if isinstance(m, nn.Conv2d | nn.Linear)}
        per_layer = {n: p if o % p == 0 else 1 for n, o in outputs.items()}
        tile_model(model, p=p, min_params=0, per_layer=per_layer)
    with torch.no_grad():
        recalibrate_batchnorm(model, torch.randn(64, *shape))
    return model.eval(), shape, n_macs
