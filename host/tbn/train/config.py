"""Training configuration: everything needed to reproduce a run and rebuild its model."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from tbn.errors import UsageError
from tbn.nn.options import Tiling
from tbn.train.recipes import RECIPES

OPTIMIZERS: tuple[str, ...] = ("adam", "sgd")
# how the learning rate moves: cosine to 0 over the run; steps to the lr_steps' rates at their
# epochs (MLPerf Tiny's kws01); times lr_decay each epoch (its ic01)
SCHEDULES: tuple[str, ...] = ("cosine", "steps", "exponential", "constant")


@dataclass
class TrainConfig:
    """One training run.  ``p=None`` trains the float model (no tiling)."""

    recipe: str = "mlp"
    p: int | None = 4
    min_params: int = 64_000
    per_layer: dict[str, int] = field(default_factory=dict)
    keep_dense: list[str] = field(default_factory=list)
    # the tiling options (tbn.nn.options.Tiling, whose defaults and checks these take): flat
    # here, as the command line and saved model files name them; ``tiling`` is the object
    alpha: str = Tiling.alpha
    alpha_source: str = Tiling.alpha_source
    ste: str = Tiling.ste
    alpha_init: str = Tiling.alpha_init
    epochs: int = 10
    optimizer: str = "adam"
    lr: float = 1e-3
    schedule: str = "cosine"
    lr_steps: list[list[float]] = field(default_factory=list)  # steps: [epoch, lr] pairs, epochs rising
    lr_decay: float = 0.99  # exponential: the factor per epoch
    momentum: float = 0.9
    nesterov: bool = True  # SGD: Nesterov momentum (tbn's MNIST recipes); the authors' use plain momentum
    weight_decay: float = 0.0
    batch_size: int = 128
    seed: int = 0
    augment: float = 0.0
    rotate: float = 0.0  # MNIST: random rotation of up to this many degrees
    zoom: float = 0.0  # MNIST: random scaling by up to this fraction (0.1: 0.9x to 1.1x)
    recalibrate_bn: bool = False  # re-estimate BatchNorm statistics after the last epoch
    teacher: str | None = None
    distill_weight: float = 0.7
    temperature: float = 4.0
    train_subset: int | None = None
    data_dir: str | None = None
    verify_data: bool = True  # check the dataset against its release's MD5 (False: a subset, a fixture)
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.recipe not in RECIPES:
            raise UsageError(f"unknown recipe {self.recipe!r}; choose one of {', '.join(RECIPES)}")
        if self.p is not None and self.p < 1:
            raise UsageError(f"p must be a positive integer, got {self.p}")
        self.tiling  # noqa: B018  # checks the tiling options
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise UsageError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.optimizer not in OPTIMIZERS:
            raise UsageError(f"optimizer {self.optimizer!r} is not one of {', '.join(OPTIMIZERS)}")
        if self.schedule not in SCHEDULES:
            raise UsageError(f"schedule {self.schedule!r} is not one of {', '.join(SCHEDULES)}")
        epochs = [e for e, _ in self.lr_steps]
        if any(not 0 < r < math.inf for _, r in self.lr_steps) or epochs != sorted(set(epochs)) or \
                any(e < 1 for e in epochs):
            raise UsageError("lr_steps must be [epoch, lr] pairs of rising epochs from 1 and positive "
                             f"rates, got {self.lr_steps}")
        # written so that NaN fails each check too
        ranges = (("lr", 0 < self.lr < math.inf, "a positive, finite number"),
                  ("momentum", 0 <= self.momentum < 1, "in [0, 1)"),
                  ("weight_decay", 0 <= self.weight_decay < math.inf, "0 or more"),
                  ("augment", 0 <= self.augment < math.inf, "0 or more"),
                  ("rotate", 0 <= self.rotate <= 180, "0 to 180 degrees"),
                  ("zoom", 0 <= self.zoom < 1, "in [0, 1)"),
                  ("temperature", 0 < self.temperature < math.inf, "positive"),
                  ("distill_weight", 0 <= self.distill_weight <= 1, "in [0, 1]"),
                  ("min_params", self.min_params >= 0, "0 or more"),
                  ("lr_decay", 0 < self.lr_decay <= 1, "in (0, 1]"))
        for name, ok, want in ranges:
            if not ok:
                raise UsageError(f"{name} must be {want}, got {getattr(self, name)}")
        if self.train_subset is not None and self.train_subset < self.batch_size:
            raise UsageError(f"train_subset={self.train_subset} is smaller than one batch "
                             f"({self.batch_size})")

    @property
    def tiling(self) -> Tiling:
        """The run's :class:`~tbn.nn.options.Tiling`: ``p`` is the policy's default (1, unused,
        for a float run)."""
        return Tiling(self.p or 1, self.alpha, self.alpha_source, self.ste, self.alpha_init)  # type: ignore[arg-type]

    @classmethod
    def for_recipe(cls, recipe: str = "mlp", **options: Any) -> TrainConfig:
        """A config with the recipe's own defaults (the authors' optimizer, schedule, batch and
        augmentation for their CIFAR-10 models) under the ``options`` given."""
        from tbn.train.recipes import recipe as find

        return cls.from_dict({"recipe": recipe, **find(recipe).defaults, **options})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise UsageError(f"unknown training options {unknown}")
        return cls(**d)
