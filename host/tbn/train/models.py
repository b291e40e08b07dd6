"""The float architectures of ``tbn train``'s own recipes (MNIST, the tiny 2 KB models, the
authors' CIFAR-10 ResNet-18 and VGG-small); :mod:`tbn.train.recipes` names them."""

from __future__ import annotations

from torch import Tensor, nn


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
