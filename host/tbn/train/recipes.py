"""Model recipes for ``tbn train``: float architectures that ``tile_model`` then converts, each
with the dataset it reads and the training defaults of its source (the authors' for theirs)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor, nn

from tbn.errors import UsageError
from tbn.train.mlperf_models import ds_cnn, resnet8
from tbn.train.point_models import pointnet
from tbn.train.token_models import convmixer, mixer, vit


def mlp() -> nn.Sequential:
    """784-256-256-10 MLP with BatchNorm (the paper's microcontroller-scale model, wider)."""
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(784, 256), nn.BatchNorm1d(256), nn.ReLU(),
        nn.Linear(256, 256), nn.BatchNorm1d(256), nn.ReLU(),
        nn.Linear(256, 10),
    )


def cnn() -> nn.Sequential:
    """A small MNIST CNN: two conv blocks (32, 64 channels) and a 3136-128-10 head."""
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64 * 7 * 7, 128), nn.BatchNorm1d(128), nn.ReLU(),
        nn.Linear(128, 10),
    )


def mcu() -> nn.Sequential:
    """The authors' microcontroller demo: a 784-128-10 MLP without bias (tiled at p=4, the
    1,280-weight classifier falls under min_params and stays binary)."""
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 128, bias=False), nn.ReLU(),
                         nn.Linear(128, 10, bias=False))


def tiny_cnn() -> nn.Sequential:
    """An MNIST CNN whose int8 program fits 1.5 KB of arena: stride-2 3x3 convs (4, 12, 32
    channels) with BatchNorm and ReLU, then a 128-10 classifier. The first conv stays int8
    (the recipe keeps it dense: it needs no table scratch, and a binary first layer of 4
    filters loses most of the image); the rest are binary (p=1 under min_params)."""
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, stride=2), nn.BatchNorm2d(4), nn.ReLU(),
        nn.Conv2d(4, 12, 3, stride=2), nn.BatchNorm2d(12), nn.ReLU(),
        nn.Conv2d(12, 32, 3, stride=2), nn.BatchNorm2d(32), nn.ReLU(),
        nn.Flatten(), nn.Linear(32 * 2 * 2, 10),
    )


def tiny() -> nn.Sequential:
    """MNIST for 2 KB of RAM (the Arduino Uno's budget), on 16x16 images (the border cropped,
    then averaged on the host: :func:`tbn.data.datasets.mnist16`):
    3x3 convs of 12 (stride 2), 32 (stride 2), 32 and 40 channels with BatchNorm and ReLU, a
    640-10 classifier and BatchNorm on the logits. Peak activation RAM is 1,280 bytes at int8
    (the second conv's input and output together; the memory plan fits the rest beside them),
    which leaves the Uno's firmware room for its stack. The first conv stays dense int8; the
    rest are binary (p=1 under min_params). Distilled from ``tiny-teacher``: 99.05-99.15% int8
    over four runs (docs/results.md).
    ../shared/notes/tiny-mnist.md has the experiments behind the shape."""
    return nn.Sequential(
        nn.Conv2d(1, 12, 3, stride=2, padding=1), nn.BatchNorm2d(12), nn.ReLU(),
        nn.Conv2d(12, 32, 3, stride=2, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
        nn.Conv2d(32, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
        nn.Conv2d(32, 40, 3, padding=1), nn.BatchNorm2d(40), nn.ReLU(),
        nn.Flatten(), nn.Linear(40 * 4 * 4, 10), nn.BatchNorm1d(10),
    )


def tiny3() -> nn.Sequential:
    """The first 2 KB recipe: three convs (12 stride 2, 32 stride 2, 48) and a 768-10
    classifier, in the same 1,280 bytes of arena; 98.7-98.9% distilled."""
    return nn.Sequential(
        nn.Conv2d(1, 12, 3, stride=2, padding=1), nn.BatchNorm2d(12), nn.ReLU(),
        nn.Conv2d(12, 32, 3, stride=2, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
        nn.Conv2d(32, 48, 3, padding=1), nn.BatchNorm2d(48), nn.ReLU(),
        nn.Flatten(), nn.Linear(48 * 4 * 4, 10), nn.BatchNorm1d(10),
    )


def tiny_teacher() -> nn.Sequential:
    """The float teacher of the 2 KB recipes, on the same 16x16 images: 3x3 convs of 32, 64
    (stride 2), 128 (stride 2) and 128 channels and a 2048-10 classifier; 30 epochs with random
    rotations (10 degrees) and scaling (10%) beside the shifts: 99.55%.
    Too large for a small board; its soft labels are what the tiny students learn from."""
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
        nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.BatchNorm2d(64), nn.ReLU(),
        nn.Conv2d(64, 128, 3, stride=2, padding=1), nn.BatchNorm2d(128), nn.ReLU(),
        nn.Conv2d(128, 128, 3, padding=1), nn.BatchNorm2d(128), nn.ReLU(),
        nn.Flatten(), nn.Linear(128 * 4 * 4, 10),
    )


def tiny_wide() -> nn.Sequential:
    """``tiny3`` wider (16, 32 and 64 channels, a 1024-10 classifier): 1,536 bytes of int8
    arena, more than the Uno's firmware leaves (its stack)."""
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
        nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(),
        nn.Flatten(), nn.Linear(64 * 4 * 4, 10), nn.BatchNorm1d(10),
    )


class BasicBlock(nn.Module):
    """ResNet's two 3x3 convs with BatchNorm, plus the input (a 1x1 conv where the shape changes)."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        self.relu2 = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        y = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
        return self.relu2(y + self.shortcut(x))


class ResNet18(nn.Module):
    """The CIFAR-10 ResNet-18 of the authors' code: a 3x3 stem (no max pool), four stages of two
    BasicBlocks (64, 128, 256, 512 channels), global average pool and a 512-10 classifier;
    21 weighted layers (16 block convs, 3 shortcut convs, stem, classifier)."""

    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()
        stages, cin = [], 64
        for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            stages.append(nn.Sequential(BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)))
            cin = cout
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(512, classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.flatten(self.pool(x)))


def resnet18() -> nn.Module:
    return ResNet18()


def vgg_small() -> nn.Sequential:
    """VGG-small for CIFAR-10 (the binary-network literature's, as the authors train it):
    128-128-M-256-256-M-512-512-M, each conv with BatchNorm and ReLU, then 8192-10."""
    layers: list[nn.Module] = []
    cin = 3
    for cout in (128, 128, "M", 256, 256, "M", 512, 512, "M"):
        if cout == "M":
            layers.append(nn.MaxPool2d(2))
            continue
        layers += [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]
        cin = cout
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(512 * 4 * 4, 10))


def _paper_p_list(pattern: tuple[int, ...]) -> Callable[[nn.Module, int], dict[str, int]]:
    """The authors' per-layer p lists (configs/cifar10/*-kn-tiled-8.yaml): ``pattern`` gives,
    for each weighted layer in order, 1 (kept at p=1) or 0 (tiled at the run's p; their -4,
    -8 and -16 configs differ only there)."""

    def per_layer(model: nn.Module, p: int) -> dict[str, int]:
        names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear | nn.Conv2d)]
        if len(names) != len(pattern):
            raise UsageError(f"the authors' p list has {len(pattern)} entries, the model "
                             f"{len(names)} weighted layers")
        return {n: 1 if keep else p for n, keep in zip(names, pattern, strict=True)}

    return per_layer


@dataclass(frozen=True)
class Recipe:
    """A model, the dataset it reads and the training options its source uses."""

    build: Callable[[], nn.Module]
    dataset: str = "mnist"
    defaults: dict[str, Any] = field(default_factory=dict)  # TrainConfig fields
    per_layer: Callable[[nn.Module, int], dict[str, int]] | None = None  # p per layer, given the run's p
    note: str = ""


# The authors' CIFAR-10 training (tbn-method.md): SGD with plain momentum 0.9, lr 0.1 cosine,
# weight decay 1e-4, batch 128, random crop (padding 4) and horizontal flip; 300 epochs for ResNet-18.
_AUTHORS_CIFAR = {"optimizer": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": False, "weight_decay": 1e-4,
                  "batch_size": 128, "augment": 4.0, "epochs": 300, "p": 8}

# MLPerf Tiny's reference training (mlcommons/tiny benchmark/training/<task>/): kws01 Adam with the
# learning rate stepped 5e-4, 1e-4, 2e-5 over 36 epochs of 100; ic01 Adam 1e-3 times 0.99 an epoch,
# 500 epochs of 32, shifts of 10% and flips (its 15-degree rotations are not in tbn's CIFAR-10 pipeline)
_MLPERF_KWS = {"optimizer": "adam", "lr": 5e-4, "schedule": "steps", "lr_steps": [[12, 1e-4], [24, 2e-5]],
               "epochs": 36, "batch_size": 100}
_MLPERF_IC = {"optimizer": "adam", "lr": 1e-3, "schedule": "exponential", "lr_decay": 0.99, "epochs": 500,
              "batch_size": 32, "augment": 3.0}

# "paper-mcu" is the authors' name for the model "mcu" builds: at the defaults (p=4,
# min_params 64,000) its first layer is tiled at p=4 and its classifier stays binary (p=1).
RECIPES: dict[str, Recipe] = {
    "mlp": Recipe(mlp),
    "cnn": Recipe(cnn),
    "mcu": Recipe(mcu),
    "tiny-cnn": Recipe(tiny_cnn, defaults={"keep_dense": ["0"]}),
    "tiny": Recipe(tiny, "mnist16",
                   {"keep_dense": ["0"], "epochs": 60, "augment": 1.0, "recalibrate_bn": True},
                   note="16x16 MNIST in 1.25 KB of arena; ~99% distilled from tiny-teacher (--teacher)"),
    "tiny3": Recipe(tiny3, "mnist16",
                    {"keep_dense": ["0"], "epochs": 30, "augment": 1.0, "recalibrate_bn": True},
                    note="16x16 MNIST in 1.25 KB of arena, three convs"),
    "tiny-teacher": Recipe(tiny_teacher, "mnist16",
                           {"p": None, "epochs": 30, "augment": 1.0, "rotate": 10.0, "zoom": 0.1,
                            "recalibrate_bn": True},
                           note="the float teacher of the tiny recipes (train it first, then --teacher)"),
    "tiny-wide": Recipe(tiny_wide, "mnist16",
                        {"keep_dense": ["0"], "epochs": 30, "augment": 1.0, "recalibrate_bn": True},
                        note="16x16 MNIST in 1.5 KB of arena"),
    "paper-mcu": Recipe(mcu),
    # the authors train their token models with Adam 1e-4 and a cosine schedule (tbn-method.md); at
    # MNIST scale every layer is under the 64K-weight bar, so the recipe tiles from 512 weights (the
    # classifier at p=2, which divides its 10 outputs, as INT8 needs)
    "mixer": Recipe(mixer, defaults={"optimizer": "adam", "lr": 1e-3, "epochs": 15, "min_params": 512,
                                     "per_layer": {"head": 2}},
                    note="MLP-Mixer over 7x7 patches (16 tokens of 64 features, 4 blocks)"),
    "vit": Recipe(vit, defaults={"optimizer": "adam", "lr": 1e-3, "epochs": 15, "min_params": 512,
                                 "per_layer": {"head": 2}},
                  note="ViT over 7x7 patches (16 tokens of 64 features, 4 blocks of 4 heads)"),
    "convmixer": Recipe(convmixer, defaults={"optimizer": "adam", "lr": 1e-3, "epochs": 15,
                                             "min_params": 512},
                        note="ConvMixer over 2x2 patches (48 channels, 5 blocks, 5x5 depthwise)"),
    "pointnet": Recipe(pointnet, "mnist-points",
                       {"optimizer": "adam", "lr": 1e-3, "epochs": 15, "min_params": 512,
                        "per_layer": {"head.3": 2}, "keep_dense": ["transform.fc.3"]},
                       note="PointNet on MNIST digits as 128 ink points (input transform, max pool)"),
    "kws": Recipe(ds_cnn, "speech_commands", _MLPERF_KWS,
                  note="MLPerf Tiny kws01: DS-CNN on Speech Commands MFCC (target 90% top-1; teacher: "
                       "kws_ref_model_float32.tflite)"),
    "ic": Recipe(resnet8, "cifar10", _MLPERF_IC,
                 note="MLPerf Tiny ic01: ResNet-8 on CIFAR-10 (target 85% top-1)"),
    "resnet18": Recipe(resnet18, "cifar10", _AUTHORS_CIFAR,
                       _paper_p_list((1, 1, 1, 1) + (0,) * 16 + (1,)),
                       "authors: p=4 93.2, p=8 92.1-92.5, p=16 ~91.4 (CIFAR-10 top-1, 300 epochs)"),
    "vgg-small": Recipe(vgg_small, "cifar10", {**_AUTHORS_CIFAR, "epochs": 500},
                        _paper_p_list((1, 1, 0, 0, 0, 0, 1)),
                        "authors: p=4 92.7, p=8 ~91.0, p=16 ~88.7 (CIFAR-10 top-1)"),
}


def recipe(name: str) -> Recipe:
    """A recipe by name, or a :class:`UsageError` listing them."""
    try:
        return RECIPES[name]
    except KeyError:
        raise UsageError(f"unknown recipe {name!r}; choose one of {', '.join(RECIPES)}") from None


def build(name: str) -> nn.Module:
    """The float model of a recipe by name."""
    return recipe(name).build()


def input_shape(name: str) -> tuple[int, int, int]:
    """The (channels, height, width) of one input of a recipe's dataset."""
    from tbn.data.datasets import dataset

    return dataset(recipe(name).dataset).input_shape
