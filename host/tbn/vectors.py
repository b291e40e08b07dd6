"""Golden test vectors: small models covering every op, compiled for F32 and INT8, with
inputs and the reference interpreter's outputs, for every runtime to test against.

``python -m tbn.vectors [DIR]`` writes them (default ``tests/vectors``); ``--check``
fails if the files there differ from what this code produces. Each vector ``NAME`` is
``NAME.tbn``, ``NAME.input.bin`` and ``NAME.output.bin`` (raw little-endian arrays, a
leading batch axis), described in ``manifest.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from tbn.compiler import compile_model
from tbn.convert import tile_model
from tbn.format import read, serialize
from tbn.format.spec import NONE_ID, RQ16_MAX_SHIFT, rq16_fits
from tbn.format.validate import accumulator_bound
from tbn.parity import describe
from tbn.paths import root
from tbn.runtime import Interpreter

DEFAULT_DIR = root() / "tests" / "vectors"
BATCH = 4


def _randomize_bn(model: nn.Module, gen: torch.Generator) -> None:
    for m in model.modules():
        if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
            c = m.num_features
            m.running_mean.copy_(torch.randn(c, generator=gen) * 0.5)
            m.running_var.copy_(torch.rand(c, generator=gen) + 0.5)
            m.weight.data.copy_(torch.randn(c, generator=gen))  # negative gammas too
            m.bias.data.copy_(torch.randn(c, generator=gen) * 0.3)


class ConvNet(nn.Module):
    """Tiled conv + BN + ReLU, max and average pooling, a residual add with a ReLU6, global
    average pooling, flatten, a tiled and a dense (kept) linear layer."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(2, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.pool = nn.MaxPool2d(2)
        self.branch = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(8)
        self.avg = nn.AvgPool2d(2, stride=1, padding=1)
        self.down = nn.Conv2d(8, 16, 3, stride=2, padding=(1, 0), groups=2)
        self.fc = nn.Linear(16, 12)
        self.head = nn.Linear(12, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(F.relu(self.bn(self.stem(x))))
        x = F.relu6(x + self.bn2(self.branch(x)))
        x = self.down(self.avg(x))
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.head(F.relu(self.fc(x)))


class Conv1dNet(nn.Module):
    """Tiled Conv1d whose p does not divide its channels (moving tile offset), BatchNorm that
    cannot be folded (AFFINE), standalone ReLU, flatten, linear, softmax."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(3, 6, 5, padding=2, stride=2)
        self.bn = nn.BatchNorm1d(6)
        self.fc = nn.Linear(6 * 8, 7)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn(self.conv(x)))
        return torch.softmax(self.fc(x.flatten(1)), dim=1)


class Conv1dNetInt8(nn.Module):
    """Tiled Conv1d (p divides the channels) with BN and ReLU, linear, argmax."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm1d(8)
        self.fc = nn.Linear(8 * 16, 6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn(self.conv(x)))
        return torch.argmax(self.fc(x.flatten(1)), dim=1)


class Misc(nn.Module):
    """A standalone ReLU on the input, a dense (kept) conv, a reshape feeding a tiled conv,
    and a flatten at the output."""

    def __init__(self) -> None:
        super().__init__()
        self.dense_conv = nn.Conv2d(1, 4, 3, padding=1)
        self.conv = nn.Conv2d(8, 4, 3, padding=1, dilation=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dense_conv(torch.relu(x))
        return self.conv(y.view(-1, 8, 4, 8)).flatten(1)


class TableConvNet(nn.Module):
    """Tiled convs whose tiles hold 3 whole rows, so they run the table kernel: stride,
    dilation and padding, a fan-in under one chunk (27) and one not a multiple of it (108),
    a per-repetition scale (no BatchNorm after the second)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 12, 3, stride=2, padding=2, dilation=2)
        self.conv2 = nn.Conv2d(12, 12, 3, padding=1, bias=False)
        self.fc = nn.Linear(12 * 5 * 5, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv2(torch.relu(self.conv1(x))).flatten(1))


class PairConvNet(nn.Module):
    """INT8 convs whose table kernel takes output positions in pairs (an odd count: the last
    alone): a 3x3 conv of 144 inputs (five chunks, so two blocks of packed sums; whole bytes a
    row) at p=2, then a 1x1 conv of 16 (part of a chunk) at p=1."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(16, 16, 3, padding=1)
        self.bn = nn.BatchNorm2d(16)
        self.conv2 = nn.Conv2d(16, 8, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(torch.relu(self.bn(self.conv1(x)))).flatten(1)


def _wide() -> nn.Module:
    """A binary layer of 128 distinct rows (INT8: wide 8-input tables) over 40 inputs (a chunk and
    a part), then 10 (narrow tables)."""
    return nn.Sequential(nn.Flatten(), nn.Linear(40, 128), nn.ReLU(), nn.Linear(128, 10))


class Padded(nn.Module):
    """What TensorFlow's padding='same' with stride 2 makes of an even map: zero padding on the
    bottom and right only (folded into the conv), a max pool that pads with -inf on one side,
    a constant padding no layer takes (a PAD op), a 1-D stretch (asymmetric zero padding, 1-D
    pools) and a global max pool."""

    def __init__(self) -> None:
        super().__init__()
        self.pad = nn.ZeroPad2d((0, 1, 0, 1))
        self.conv = nn.Conv2d(2, 6, 3, stride=2)
        self.conv1d = nn.Conv1d(6, 6, 3)
        self.fc = nn.Linear(6, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv(self.pad(x)))  # 8x8 -> 4x4
        x = F.max_pool2d(F.pad(x, (0, 1, 0, 1), value=float("-inf")), 2, 1)  # 4x4
        x = F.pad(x, (1, 0, 1, 0), value=0.5).flatten(2)  # 5x5 -> 25
        x = F.avg_pool1d(self.conv1d(F.pad(x, (2, 1))), 3, 2, 1)  # 25 -> 26 -> 13
        return self.fc(F.adaptive_max_pool1d(x, 1).flatten(1))


class Softmaxes(nn.Module):
    """Softmax along a map's channels and along its rows (SOFTMAX_AXIS), and over the logits
    (SOFTMAX in F32, SOFTMAX_AXIS in INT8)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3)
        self.fc = nn.Linear(4 * 4 * 4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.softmax(self.conv(x), dim=1)
        x = torch.softmax(x, dim=2)
        return torch.softmax(self.fc(x.flatten(1)), dim=-1)


class Gated(nn.Module):
    """Squeeze-and-excitation: a (C, 1, 1) gate from the pooled map, broadcast over it (MUL),
    then a (1, H, W) spatial gate over the channels."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3)
        self.squeeze, self.excite = nn.Linear(4, 2), nn.Linear(2, 4)
        self.spatial = nn.Conv2d(4, 1, 1)
        self.fc = nn.Linear(4 * 4 * 4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv(x))
        gate = torch.sigmoid(self.excite(torch.relu(self.squeeze(F.adaptive_avg_pool2d(x, 1).flatten(1)))))
        x = x * gate.view(-1, 4, 1, 1)
        return self.fc(torch.mul(torch.sigmoid(self.spatial(x)), x).flatten(1))


class Joined(nn.Module):
    """Concatenation: three maps along the channels (an Inception or U-Net join, the model's
    input one of them) and a map with itself along its width."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Conv2d(2, 4, 3, padding=1), nn.Conv2d(2, 2, 1)
        self.fc = nn.Linear(8 * 5 * 10, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.cat([torch.relu(self.a(x)), self.b(x), x], dim=1)
        return self.fc(torch.cat((y, y), -1).flatten(1))


class Mixed(nn.Module):
    """An MLP-Mixer block over (tokens, features): tiled linear layers over tokens, LayerNorm
    (with and without its affine part), a transpose for token mixing, GELU, a mean over the
    tokens."""

    def __init__(self) -> None:
        super().__init__()
        self.embed, self.n1 = nn.Linear(5, 8), nn.LayerNorm(8)
        self.n2 = nn.LayerNorm(8, elementwise_affine=False)
        self.tok1, self.tok2, self.ch = nn.Linear(6, 8), nn.Linear(8, 6), nn.Linear(8, 8)
        self.head = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed(x)
        x = x + self.tok2(F.gelu(self.tok1(self.n1(x).transpose(1, 2)))).transpose(1, 2)
        x = x + F.gelu(self.ch(self.n2(x)))
        return self.head(x.mean(dim=1))


class Attention(nn.Module):
    """Two-head self-attention over (tokens, features): q k^T with k read transposed and the
    1/sqrt(d) factor taken in, softmax along the keys, both operands of the second product
    read transposed, heads split and joined by reshapes and transposes, a max over tokens."""

    def __init__(self) -> None:
        super().__init__()
        self.norm, self.qkv = nn.LayerNorm(8), nn.ModuleList(nn.Linear(8, 8) for _ in range(3))
        self.out, self.head = nn.Linear(8, 8), nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        y = self.norm(x)
        q, k, v = (f(y).view(b, t, 2, 4).transpose(1, 2) for f in self.qkv)
        a = torch.softmax(q @ k.transpose(-2, -1) * 0.5, dim=-1)
        z = (v.transpose(-2, -1) @ a.transpose(-2, -1)).permute(0, 3, 1, 2).reshape(b, t, 8)
        return self.head(torch.amax(x + self.out(z), dim=1))


class Decoder(nn.Module):
    """A segmentation decoder's upsampling: a transposed convolution (UPSAMPLE_ZEROS, then a
    convolution), nearest upsampling (Upsample and F.interpolate)."""

    def __init__(self) -> None:
        super().__init__()
        self.deconv = nn.ConvTranspose2d(2, 2, 3, stride=2, padding=1, output_padding=1)
        self.up, self.conv = nn.Upsample(scale_factor=(1, 2)), nn.Conv2d(2, 2, 3, padding=1)
        self.fc = nn.Linear(2 * 8 * 12, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(self.up(torch.relu(self.deconv(x))))
        return self.fc(F.interpolate(x, scale_factor=(1, 1), mode="nearest").flatten(1))


class Separable(nn.Module):
    """DS-CNN's and MobileNet's shape, the per-channel kernel's convs: a conv of one input
    channel (10x4 stride 2, padded more after, as TensorFlow's `same`; its tile rows reused),
    depthwise 3x3 convs at strides 1 and 2 with BatchNorm and ReLU, a depth multiplier of 2,
    pointwise 1x1 convs, an average pool."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.ZeroPad2d((1, 1, 4, 5)), nn.Conv2d(1, 8, (10, 4), stride=2))
        self.dw1, self.bn1 = nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False), nn.BatchNorm2d(8)
        self.pw1 = nn.Conv2d(8, 8, 1)
        self.dw2 = nn.Sequential(nn.ZeroPad2d((0, 1, 0, 1)), nn.Conv2d(8, 16, 3, stride=2, groups=8))
        self.fc = nn.Linear(16, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.stem(x))
        x = torch.relu(self.pw1(torch.relu(self.bn1(self.dw1(x)))))
        return self.fc(F.adaptive_avg_pool2d(torch.relu(self.dw2(x)), 1).flatten(1))


def _big_bias() -> nn.Module:
    """A binary layer with BatchNorm (a scale an output) whose biases pass int16 in accumulator
    units: RQ16 with I32 biases, the table kernel's other form of the RQ16 store."""
    model = nn.Sequential(nn.Linear(16, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 4))
    with torch.no_grad():
        model[0].bias.uniform_(-400.0, 400.0)
    return model


def _unary() -> nn.Module:
    """Every op of the unary family, each after a tiled linear layer, as PyTorch spells it
    (tbn.nn.unary.UNARY_MODULES): a new unary op is in the vectors with no edit here."""
    from tbn.nn.unary import UNARY_MODULES

    layers: list[nn.Module] = [nn.Flatten()]
    for make in UNARY_MODULES.values():
        layers += [nn.Linear(16, 16), make()]
    return nn.Sequential(*layers, nn.Linear(16, 6))


def _mlp() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.BatchNorm1d(32), nn.ReLU(),
                         nn.Linear(32, 24), nn.ReLU6(), nn.Linear(24, 10))


# name -> (builder, input shape, tile_model kwargs, activations[, compile_model kwargs]); the
# default compile narrows per-output parameters where they hold (some layers stay wide), the
# "_wide" cases keep every layer wide (format 2.1 files)
CASES: dict[str, tuple[Callable[[], nn.Module], tuple[int, ...], dict, str] | tuple[
    Callable[[], nn.Module], tuple[int, ...], dict, str, dict]] = {
    "mlp_f32": (_mlp, (1, 8, 8), {"p": 4, "min_params": 0, "per_layer": {"6": 2}}, "f32"),
    "mlp_int8": (_mlp, (1, 8, 8), {"p": 4, "min_params": 0, "per_layer": {"6": 2}}, "int8"),
    "mlp_f32_wide": (_mlp, (1, 8, 8), {"p": 4, "min_params": 0, "per_layer": {"6": 2}}, "f32",
                     {"params": "wide"}),
    "mlp_int8_wide": (_mlp, (1, 8, 8), {"p": 4, "min_params": 0, "per_layer": {"6": 2}}, "int8",
                      {"params": "wide"}),
    "mlp_single_alpha_f32": (_mlp, (1, 8, 8), {"p": 8, "min_params": 0, "alpha": "single"}, "f32"),
    "wide_tables_f32": (_wide, (1, 5, 8), {"p": 1, "min_params": 0}, "f32"),
    "wide_tables_int8": (_wide, (1, 5, 8), {"p": 1, "min_params": 0}, "int8"),
    # the direct kernel's conv paths (F32 here, INT8 in conv1d_argmax and misc), which tables
    # would take from one row on (LUT_MIN_ROWS_CONV); the INT8 convnet takes the tables at two
    "convnet_f32": (ConvNet, (2, 12, 12), {"p": 4, "min_params": 0, "keep_dense": ("head",)}, "f32",
                    {"lookup_tables": False}),
    "convnet_int8": (ConvNet, (2, 12, 12), {"p": 4, "min_params": 0, "keep_dense": ("head",)}, "int8"),
    "convnet_int8_wide": (ConvNet, (2, 12, 12), {"p": 4, "min_params": 0, "keep_dense": ("head",)}, "int8",
                          {"params": "wide"}),
    "misc_f32": (Misc, (1, 8, 8), {"p": 2, "min_params": 0, "keep_dense": ("dense_conv",)}, "f32",
                 {"lookup_tables": False}),
    "misc_int8": (Misc, (1, 8, 8), {"p": 2, "min_params": 0, "keep_dense": ("dense_conv",)}, "int8",
                  {"lookup_tables": False}),
    "conv_tables_f32": (TableConvNet, (3, 10, 10), {"p": 4, "min_params": 0, "per_layer": {"fc": 2}},
                        "f32"),
    "conv_tables_int8": (TableConvNet, (3, 10, 10), {"p": 4, "min_params": 0, "per_layer": {"fc": 2}},
                         "int8"),
    "conv_pairs_int8": (PairConvNet, (16, 5, 5), {"p": 1, "min_params": 0, "per_layer": {"conv1": 2}},
                        "int8"),
    "conv1d_offset_f32": (Conv1dNet, (3, 16), {"p": 4, "min_params": 0, "per_layer": {"conv": 9}}, "f32"),
    "conv1d_argmax_int8": (Conv1dNetInt8, (3, 16), {"p": 4, "min_params": 0, "per_layer": {"fc": 3}},
                           "int8", {"lookup_tables": False}),
    # the direct kernel: the Uno then runs padded_int8 too
    "padded_f32": (Padded, (2, 8, 8), {"p": 2, "min_params": 0}, "f32", {"lookup_tables": False}),
    "padded_int8": (Padded, (2, 8, 8), {"p": 2, "min_params": 0}, "int8", {"lookup_tables": False}),
    "gated_f32": (Gated, (2, 6, 6), {"p": 2, "min_params": 0, "per_layer": {"spatial": 1}}, "f32",
                  {"lookup_tables": False}),
    "gated_int8": (Gated, (2, 6, 6), {"p": 2, "min_params": 0, "per_layer": {"spatial": 1}}, "int8",
                   {"lookup_tables": False}),
    "joined_f32": (Joined, (2, 5, 5), {"p": 2, "min_params": 0, "keep_dense": ("fc",)}, "f32",
                   {"lookup_tables": False}),
    "joined_int8": (Joined, (2, 5, 5), {"p": 2, "min_params": 0, "keep_dense": ("fc",)}, "int8",
                    {"lookup_tables": False}),
    "softmax_f32": (Softmaxes, (2, 6, 6), {"p": 2, "min_params": 0}, "f32"),
    "softmax_int8": (Softmaxes, (2, 6, 6), {"p": 2, "min_params": 0}, "int8"),
    # the direct kernel (no lookup tables), so that the Uno's flash holds the firmware too
    "mixer_f32": (Mixed, (6, 5), {"p": 2, "min_params": 0, "keep_dense": ("head",)}, "f32"),
    "mixer_int8": (Mixed, (6, 5), {"p": 2, "min_params": 0, "keep_dense": ("head",)}, "int8"),
    "attention_f32": (Attention, (6, 8), {"p": 2, "min_params": 0}, "f32"),
    "attention_int8": (Attention, (6, 8), {"p": 2, "min_params": 0}, "int8"),
    "upsample_f32": (Decoder, (2, 4, 3), {"p": 2, "min_params": 0}, "f32", {"lookup_tables": False}),
    "upsample_int8": (Decoder, (2, 4, 3), {"p": 2, "min_params": 0}, "int8", {"lookup_tables": False}),
    "separable_f32": (Separable, (1, 13, 10), {"p": 1, "min_params": 0, "per_layer": {"stem.1": 2}}, "f32",
                      {"lookup_tables": False}),
    "separable_int8": (Separable, (1, 13, 10), {"p": 1, "min_params": 0, "per_layer": {"stem.1": 2}}, "int8",
                       {"lookup_tables": False}),
    "big_bias_int8": (_big_bias, (16,), {"p": 1, "min_params": 0}, "int8"),
    "unary_f32": (_unary, (1, 4, 4), {"p": 2, "min_params": 0}, "f32", {"lookup_tables": False}),
    "unary_int8": (_unary, (1, 4, 4), {"p": 2, "min_params": 0}, "int8", {"lookup_tables": False}),
}


def build_case(name: str) -> tuple[nn.Module, bytes, np.ndarray]:
    """The tiled PyTorch model, its compiled bytes and BATCH inputs for one case."""
    builder, shape, tiling, acts, *options = CASES[name]
    seed = name.removesuffix("_wide")  # a wide case has the same weights as its narrow one
    gen = torch.Generator().manual_seed(int(hashlib.sha256(seed.encode()).hexdigest()[:8], 16))
    torch.manual_seed(gen.initial_seed())
    model = builder()
    tile_model(model, **tiling)
    with torch.no_grad():
        for p in model.parameters():  # untrained tiles: make the latents disagree per repetition
            p.add_(torch.randn(p.shape, generator=gen) * 0.05)
        _randomize_bn(model, gen)
    model.eval()
    x = torch.randn(BATCH, *shape, generator=gen)
    # calibrated on the vector's own inputs too, so that no intermediate value saturates on them: the
    # vectors test each runtime's arithmetic (tests/test_compiler.py checks it tracks PyTorch)
    calib = torch.cat([torch.randn(64, *shape, generator=gen), x]) if acts == "int8" else None
    data = compile_model(model, x[:1], activations=acts, calibration=calib, **(options[0] if options else {}))
    return model, data, x.numpy()


def requant_edge_cases() -> dict[str, bytes]:
    """The MLP's INT8 vectors edited so that requantisation leaves the kernels' fast paths
    (every runtime must still match the reference; tests/test_c_runtime.py and tests/hil run
    them). Both take the mlp_int8 inputs.

    ``requant``: the wide form, a bias that takes the sum past 32 bits, and shifts under 32
    (and exactly 32) among larger ones. ``rq16``: the narrow form at its limits: multipliers
    of +-32767 and +-1, the largest pre-shift and shift the 32-bit bound allows, and int16
    biases of 32767 and -32768."""
    out = {}
    prog = read((DEFAULT_DIR / "mlp_int8_wide.tbn").read_bytes())
    op = next(o for o in prog.ops if o.args.get("scratch", NONE_ID) != NONE_ID and o.args["bias"] != NONE_ID)
    scale, bias = prog.scales[op.args["scale"]], prog.biases[op.args["bias"]]
    bias.data = bias.data.copy()
    bias.data[0] = 2**31 - 100  # overflows int32 for any positive sum
    scale.data = scale.data.copy()
    scale.data[1] = (1 << 30, 20)  # shift under 32: saturates
    scale.data[2] = (scale.data[2, 0], 32)
    scale.data[3] = (1 << 30, 31)
    out["requant"] = serialize(prog)

    prog = read((DEFAULT_DIR / "mlp_int8.tbn").read_bytes())
    op = next(o for o in prog.ops if o.args.get("scratch", NONE_ID) != NONE_ID and o.args["bias"] != NONE_ID)
    scale, bias = prog.scales[op.args["scale"]], prog.biases[op.args["bias"]]
    bias.data = bias.data.copy()
    bias.data[:2] = (32767, -32768)
    scale.data = scale.data.copy()
    scale.data[:4] = (32767, -32767, 1, -1)
    bound = accumulator_bound(prog, op)
    # the largest shift whose products still span 2^10 values of the pre-shifted sum
    fits = [(b, a) for b in range(RQ16_MAX_SHIFT + 1) for a in range(RQ16_MAX_SHIFT + 1)
            if rq16_fits(bound, 32767, a, b) and (bound >> a) >= 1 << 10]
    scale.shift, scale.pre_shift = max(fits)
    out["rq16"] = serialize(prog)
    return out


def generate() -> dict[str, bytes]:
    """File name -> contents of every vector and the manifest."""
    files: dict[str, bytes] = {}
    manifest = {}
    for name in CASES:
        _, data, x = build_case(name)
        interp = Interpreter(data)
        xin, _ = interp.prepare(x)
        y = interp.run(xin)
        files[f"{name}.tbn"] = data
        files[f"{name}.input.bin"] = np.ascontiguousarray(xin).tobytes()
        files[f"{name}.output.bin"] = np.ascontiguousarray(y).tobytes()
        manifest[name] = {
            "activations": "int8" if read(data).int8 else "f32",
            "batch": BATCH,
            "input": {"dtype": str(xin.dtype), "shape": list(xin.shape)},
            "output": {"dtype": str(y.dtype), "shape": list(y.shape)},
            "tolerance": describe(read(data).int8),
        }
    files["manifest.json"] = (json.dumps(manifest, indent=2) + "\n").encode()
    return files


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir", nargs="?", type=Path, default=DEFAULT_DIR)
    ap.add_argument("--check", action="store_true", help="exit 1 if the files on disk differ")
    args = ap.parse_args(argv)
    files = generate()
    if args.check:
        stale = [n for n, b in files.items()
                 if not (args.dir / n).is_file() or (args.dir / n).read_bytes() != b]
        if stale:
            print(f"golden vectors out of date: {', '.join(stale)}; run python -m tbn.vectors",
                  file=sys.stderr)
            return 1
        return 0
    args.dir.mkdir(parents=True, exist_ok=True)
    for n, b in files.items():
        (args.dir / n).write_bytes(b)
    print(f"wrote {len(files)} files to {args.dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
