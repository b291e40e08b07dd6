"""Model recipes for ``tbn train``: float architectures that ``tile_model`` then converts."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from tbn.errors import UsageError


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


INPUT_SHAPE = (1, 28, 28)  # every recipe reads one MNIST image (channels, height, width)

# "paper-mcu" is the authors' name for the model "mcu" builds: at the defaults (p=4,
# min_params 64,000) its first layer is tiled at p=4 and its classifier stays binary (p=1).
RECIPES: dict[str, Callable[[], nn.Module]] = {"mlp": mlp, "cnn": cnn, "mcu": mcu, "paper-mcu": mcu}


def build(recipe: str) -> nn.Module:
    """The float model of a recipe by name."""
    try:
        return RECIPES[recipe]()
    except KeyError:
        raise UsageError(f"unknown recipe {recipe!r}; choose one of {', '.join(RECIPES)}") from None
