"""One training loop for every recipe: checkpoints each epoch, resumes, runs under DDP.

Reproducibility: the data order and augmentation of epoch ``e`` come from a generator
seeded with ``(seed, e)`` alone, and the model, optimizer and scheduler state are saved
after every epoch, so a run that is killed and resumed with ``resume=True`` ends with
the same weights as one that was never interrupted (on CPU, same thread count).

Distributed: under ``torchrun --nproc_per_node=N`` (``WORLD_SIZE`` > 1) the model is
wrapped in ``DistributedDataParallel`` (gloo on CPU, nccl on CUDA); each rank takes every
N-th sample of the shared permutation with ``batch_size / N`` samples per step, and rank 0
alone evaluates, writes files and draws the progress bar.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn import functional as F
from tqdm import tqdm

from tbn.convert import tile_model
from tbn.data import load_arrays
from tbn.data.datasets import as_float, dataset
from tbn.errors import TbnError
from tbn.foreign import is_foreign, load_foreign, logits
from tbn.layout import channels_first_shape
from tbn.train.config import TrainConfig
from tbn.train.model_file import (
    ModelFileError,
    atomic_save,
    build_model,
    load_model,
    restore,
    safe_load,
    save_model,
    structure,
)
from tbn.train.objective import Classify, Objective, objective
from tbn.train.recipes import input_shape, recipe

CHECKPOINT = "checkpoint.pt"
MODEL = "model.pt"
METRICS = "metrics.json"
# Options that may differ when resuming: they do not change the computation.
_RESUME_FREE = {"data_dir", "device", "verify_data"}


class TrainError(TbnError, RuntimeError):
    """A training run cannot start or continue as asked."""


def dataset_tensors(name: str, split: str, data_dir: str | None = None, verify: bool = True,
                    stored: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """A dataset split as normalised float images ``(n, C, H, W)`` and int64 labels; ``stored``:
    the images as the dataset holds them, bytes for some (:func:`tbn.data.datasets.as_float`
    converts a batch)."""
    x, y = load_arrays(name, split, data_dir, verify, stored)
    return torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(y)


def mnist_tensors(split: str, data_dir: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST as normalised float images ``(n, 1, 28, 28)`` and int64 labels."""
    return dataset_tensors("mnist", split, data_dir)


def _affine(x: torch.Tensor, config: TrainConfig, g: torch.Generator, edges: bool = False) -> torch.Tensor:
    """Random translation of each image by up to ``config.augment`` pixels and, where asked,
    rotation by up to ``config.rotate`` degrees and scaling by up to ``config.zoom`` (a fraction),
    bilinear; what comes into view is the normalised blank value, or with ``edges`` the nearest
    edge pixel (Keras' ``fill_mode="nearest"``)."""
    n, _, h, w = x.shape
    t = (torch.rand(n, 2, generator=g) * 2 - 1) * config.augment
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0
    if config.rotate > 0 or config.zoom > 0:  # no extra draws otherwise: shift-only runs stay as they were
        a = (torch.rand(n, generator=g) * 2 - 1) * math.radians(config.rotate)
        z = 1 + (torch.rand(n, generator=g) * 2 - 1) * config.zoom
        theta[:, 0, 0], theta[:, 0, 1] = torch.cos(a) / z, -torch.sin(a) / z
        theta[:, 1, 0], theta[:, 1, 1] = torch.sin(a) / z, torch.cos(a) / z
    theta[:, 0, 2] = t[:, 0] * 2 / w
    theta[:, 1, 2] = t[:, 1] * 2 / h
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    if edges:
        return F.grid_sample(x, grid, align_corners=False, padding_mode="border")
    bg = x.amin()  # pad with the normalised background value
    return F.grid_sample(x - bg, grid, align_corners=False, padding_mode="zeros") + bg


def _crop_flip(x: torch.Tensor, config: TrainConfig, g: torch.Generator) -> torch.Tensor:
    """Random crops of the image padded by ``config.augment`` pixels (zeros: the mean colour),
    and horizontal flips of half the images: the authors' CIFAR-10 augmentation."""
    n, _, h, w = x.shape
    k = int(config.augment)
    if k > 0:
        padded = F.pad(x, (k, k, k, k))
        dy, dx = torch.randint(0, 2 * k + 1, (2, n), generator=g)
        rows = (dy[:, None] + torch.arange(h))[:, None, :, None]
        cols = (dx[:, None] + torch.arange(w))[:, None, None, :]
        x = padded[torch.arange(n)[:, None, None, None], torch.arange(x.shape[1])[None, :, None, None],
                   rows, cols]
    flip = torch.rand(n, generator=g) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(3), x)


def _affine_flip(x: torch.Tensor, config: TrainConfig, g: torch.Generator) -> torch.Tensor:
    """MLPerf Tiny's Visual Wake Words augmentation (an ImageDataGenerator): shifts, rotations and
    zooms with the edges repeated, and horizontal flips of half the images."""
    x = _affine(x, config, g, edges=True)
    flip = torch.rand(len(x), generator=g) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(3), x)


def _rotate_jitter(x: torch.Tensor, config: TrainConfig, g: torch.Generator) -> torch.Tensor:
    """PointNet's augmentation of ``(N, 3, points)`` shapes: a random rotation about the up (y)
    axis, then Gaussian jitter of deviation ``config.augment`` clipped at 5 deviations (its
    0.01 and 0.05)."""
    a = torch.rand(len(x), generator=g) * (2 * math.pi)
    c, s, zero, one = torch.cos(a), torch.sin(a), torch.zeros_like(a), torch.ones_like(a)
    rot = torch.stack([c, zero, s, zero, one, zero, -s, zero, c], dim=1).reshape(-1, 3, 3)
    limit = 5 * config.augment
    noise = (torch.randn(x.shape, generator=g) * config.augment).clamp(-limit, limit)
    return rot @ x + noise


# Each dataset's augmentation and the options it reads beyond --augment.
Augment = Callable[[torch.Tensor, TrainConfig, torch.Generator], torch.Tensor]
_AUGMENT: dict[str, tuple[Augment, tuple[str, ...]]] = {
    "mnist": (_affine, ("rotate", "zoom")), "mnist16": (_affine, ("rotate", "zoom")),
    "cifar10": (_crop_flip, ()), "vww": (_affine_flip, ("rotate", "zoom")),
    "modelnet40": (_rotate_jitter, ()),
}
_EXTRA_OPTIONS = tuple(sorted({k for _, reads in _AUGMENT.values() for k in reads}))


def _augmentation(config: TrainConfig) -> Augment | None:
    """The recipe's dataset's augmentation, None when no option asks for one; refuses options
    that augmentation does not read (rotation of CIFAR-10, say), so none is silently ignored."""
    dataset = recipe(config.recipe).dataset
    asked = [k for k in ("augment", *_EXTRA_OPTIONS) if getattr(config, k) > 0]
    if dataset not in _AUGMENT:  # Speech Commands: its noise mixing is not in tbn yet (docs/datasets.md)
        if asked:
            raise TrainError(f"{', '.join(asked)}: recipe {config.recipe!r} trains on {dataset}, which tbn "
                             "does not augment")
        return None
    fn, reads = _AUGMENT[dataset]
    unread = [k for k in _EXTRA_OPTIONS if getattr(config, k) > 0 and k not in reads]
    if unread:
        raise TrainError(f"{', '.join(unread)} applies to MNIST and VWW recipes only; recipe "
                         f"{config.recipe!r} trains on {dataset}")
    return fn if asked else None


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 1000) -> float:
    """Top-1 accuracy of ``model`` on ``(x, y)``, in eval mode."""
    return Classify().score(model, x, y, batch)


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, x: torch.Tensor, batch: int = 1000) -> None:
    """Re-estimate every BatchNorm's running statistics as the plain average over ``x`` (no
    augmentation), with the weights as trained. Binary weights flip signs up to the last steps,
    so the moving averages lag behind them; on the tiny MNIST CNN this gains about 0.2 points."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    was_training = model.training
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    model.train()
    device = next(model.parameters()).device
    for i in range(0, len(x), batch):
        model(as_float(x[i:i + batch]).to(device))
    for m, momentum in zip(norms, momenta, strict=True):
        m.momentum = momentum
    model.train(was_training)


@dataclass
class _Dist:
    world: int = 1
    rank: int = 0
    owns_group: bool = False

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()


def _setup_dist(device: torch.device) -> _Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Dist()
    owns = not dist.is_initialized()
    if owns:
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return _Dist(world=dist.get_world_size(), rank=dist.get_rank(), owns_group=owns)


def _device(config: TrainConfig) -> torch.device:
    if config.device == "cuda":
        if not torch.cuda.is_available():
            raise TrainError("device 'cuda' was asked for but no CUDA device is available")
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    if config.device != "cpu":
        raise TrainError(f"device {config.device!r} is not 'cpu' or 'cuda'")
    return torch.device("cpu")


def _load_checkpoint(out: str | os.PathLike) -> tuple[TrainConfig, dict[str, Any]]:
    ckpt_path = Path(out) / CHECKPOINT
    if not ckpt_path.is_file():
        raise TrainError(f"--resume: no checkpoint at {ckpt_path}")
    try:
        ckpt = safe_load(ckpt_path)
        return TrainConfig.from_dict(ckpt["config"]), ckpt
    except (ModelFileError, KeyError, ValueError, TypeError) as e:
        raise TrainError(f"--resume: {ckpt_path} is unusable: {e}") from e


def read_checkpoint_config(out_dir: str | os.PathLike) -> TrainConfig:
    """The configuration of the interrupted run in ``out_dir``."""
    return _load_checkpoint(out_dir)[0]


def _resolve_resume(config: TrainConfig | None, out: Path) -> tuple[TrainConfig, dict[str, Any]]:
    saved, ckpt = _load_checkpoint(out)
    if config is None:
        return saved, ckpt
    diffs = {k: (v, getattr(config, k)) for k, v in saved.to_dict().items()
             if k not in _RESUME_FREE and getattr(config, k) != v}
    if diffs:
        raise TrainError("--resume: options differ from the interrupted run: " + ", ".join(
            f"{k} was {a!r}, now {b!r}" for k, (a, b) in diffs.items()))
    for k in _RESUME_FREE:
        setattr(saved, k, getattr(config, k))
    return saved, ckpt


def train(config: TrainConfig | None, out_dir: str | os.PathLike, resume: bool = False,
          overwrite: bool = False, progress: bool = True) -> dict[str, Any]:
    """Train a recipe on its dataset, writing ``model.pt``, ``metrics.json`` and a per-epoch
    ``checkpoint.pt`` to ``out_dir``; returns the metrics.

    With ``resume=True`` the run continues from ``out_dir/checkpoint.pt`` (``config`` may be
    None to take the saved one).  Without it, an ``out_dir`` that already holds a run, or
    anything else, is refused unless ``overwrite=True``, so no earlier work is lost by accident.
    """
    out = Path(out_dir)
    ckpt: dict[str, Any] | None = None
    if resume:
        config, ckpt = _resolve_resume(config, out)
    elif config is None:
        raise TrainError("a config is needed unless resuming")
    elif out.exists() and not out.is_dir():
        raise TrainError(f"{out} is a file, not a folder for the run's outputs")
    elif not overwrite and any((out / f).exists() for f in (CHECKPOINT, MODEL, METRICS)):
        raise TrainError(f"{out} already holds a training run; pass resume=True (--resume) to "
                         f"continue it, overwrite=True (--overwrite) to replace it, or pick "
                         f"another output folder")
    elif not overwrite and out.is_dir() and any(out.iterdir()):
        found = ", ".join(sorted(p.name for p in out.iterdir())[:3])
        raise TrainError(f"{out} is not empty ({found}...) and holds no run to resume: pick an empty "
                         f"or new folder, or pass overwrite=True (--overwrite)")
    assert config is not None
    _augmentation(config)  # refuse an option the dataset cannot use before any work starts
    device = _device(config)
    ddp = _setup_dist(device)
    try:
        return _run(config, out, ckpt, device, ddp, progress)
    finally:
        if ddp.owns_group:
            dist.destroy_process_group()


@dataclass
class _State:
    """What one run trains and carries from epoch to epoch (all of it is checkpointed but
    ``first_loss``, which each invocation, a resumed one too, measures afresh)."""

    model: nn.Module
    net: nn.Module  # the model, or its DistributedDataParallel wrapper
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LRScheduler
    teacher: nn.Module | None
    history: list[dict[str, float]]
    goal: Objective
    start_epoch: int = 0
    first_loss: float | None = None  # this run's first step: what divergence is measured against


# A run has diverged when a step's loss is this many times its first step's, whether or not it
# has reached infinity (a learning rate far too large: 1e26 and 11% accuracy, finite), or when
# the first epoch over this many images leaves the test accuracy at chance (at most 1.2 / classes).
DIVERGENCE_FACTOR = 1e4
CHANCE_MIN_IMAGES = 10_000


def _diverged(config: TrainConfig, s: _State, why: str, remedy: str = "Lower --lr") -> TrainError:
    kept = f"epoch {s.history[-1]['epoch']}" if s.history else "none yet"
    return TrainError(f"training diverged: {why}; no model.pt was written and the last checkpoint ({kept}) "
                      f"is kept. {remedy} (--lr is now {config.lr:g}) and train again.")


def _data(config: TrainConfig) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    name = recipe(config.recipe).dataset
    x_train, y_train = dataset_tensors(name, "train", config.data_dir, config.verify_data, stored=True)
    if config.train_subset is not None:
        x_train, y_train = x_train[:config.train_subset], y_train[:config.train_subset]
    test = dataset_tensors(name, "test", config.data_dir, config.verify_data, stored=True)
    return (x_train, y_train, *test)


def _teacher(config: TrainConfig, device: torch.device) -> nn.Module | None:
    """The model to distil from: a ``tbn train`` model.pt, or a float Keras or TFLite file whose
    input is the recipe's (checked here, before the data is read)."""
    if not config.teacher:
        return None
    if not is_foreign(config.teacher):
        try:
            teacher, _ = load_model(config.teacher)
        except ModelFileError as e:
            raise TrainError(f"teacher: {e}") from e
        return teacher.to(device).eval()
    try:
        graph = load_foreign(config.teacher)
    except TbnError as e:
        raise TrainError(f"teacher: {e}") from e
    want, got = tuple(input_shape(config.recipe)), channels_first_shape(graph.meta["input_shape"])
    if got != want:
        raise TrainError(f"teacher: {config.teacher} reads inputs of shape {got} (channels first), the "
                         f"{config.recipe} recipe's are {want}; distil from a model of the recipe's input")
    return logits(graph).to(device).eval()


@torch.no_grad()
def _check_teacher(config: TrainConfig, teacher: nn.Module, model: nn.Module, device: torch.device) -> None:
    """Refuse a teacher that cannot read the recipe's inputs or whose outputs are not the
    student's shape (another task's model), before the data is read."""
    shape = tuple(input_shape(config.recipe))
    x = torch.zeros(2, *shape, device=device)
    try:
        got = teacher(x)
    except RuntimeError as e:
        raise TrainError(f"teacher: {config.teacher} cannot read the {config.recipe} recipe's inputs of "
                         f"shape {shape} ({str(e).splitlines()[0]}); distil from a model of the recipe's "
                         f"input") from None
    was_training = model.training
    want = model.eval()(x)
    model.train(was_training)
    if tuple(got.shape) != tuple(want.shape):
        raise TrainError(f"teacher: {config.teacher} gives outputs of shape {tuple(got.shape[1:])}, the "
                         f"{config.recipe} recipe's model {tuple(want.shape[1:])}; distil from a teacher "
                         f"of the same task")


def _optimizer(config: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    if config.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                               nesterov=config.nesterov and config.momentum > 0,
                               weight_decay=config.weight_decay)
    return torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)


def _schedule(config: TrainConfig, opt: torch.optim.Optimizer,
              steps: int) -> torch.optim.lr_scheduler.LRScheduler:
    """The learning rate per step (``steps`` an epoch): config.schedule's (tbn.train.config.SCHEDULES)."""
    if config.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=config.epochs * steps)

    def factor(step: int) -> float:
        epoch = step // steps
        if config.schedule == "exponential":
            return config.lr_decay ** epoch
        if config.schedule == "constant":
            return 1.0
        rates = [r for e, r in config.lr_steps if epoch >= e]
        return rates[-1] / config.lr if rates else 1.0
    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


def _state(config: TrainConfig, model: nn.Module, steps: int, ckpt: dict[str, Any] | None,
           teacher: nn.Module | None, device: torch.device, ddp: _Dist) -> _State:
    """Optimizer, schedule and history, fresh or restored from ``ckpt``; DDP-wrapped model."""
    opt = _optimizer(config, model)
    sched = _schedule(config, opt, steps)
    s = _State(model, model, opt, sched, teacher, [], _objective(config))
    if ckpt is not None:
        restore(model, ckpt["model"], ckpt.get("structure"), CHECKPOINT)
        opt.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["scheduler"])
        s.history, s.start_epoch = list(ckpt["history"]), int(ckpt["epoch"])
    if ddp.world > 1:
        ids = [device.index] if device.type == "cuda" else None
        s.net = nn.parallel.DistributedDataParallel(model, device_ids=ids)
    return s


def _objective(config: TrainConfig) -> Objective:
    return objective(dataset(recipe(config.recipe).dataset).task)


def _loss(config: TrainConfig, s: _State, out: torch.Tensor, xb: torch.Tensor,
          yb: torch.Tensor) -> torch.Tensor:
    """The objective's loss, mixed with the distance to the teacher's outputs when distilling."""
    loss = s.goal.loss(out, xb, yb)
    if s.teacher is None:
        return loss
    with torch.no_grad():
        teacher = s.teacher(xb)
    kd = s.goal.distill(out, teacher, config.temperature)
    return (1 - config.distill_weight) * loss + config.distill_weight * kd


def _epoch(config: TrainConfig, s: _State, epoch: int, x: torch.Tensor, y: torch.Tensor,
           device: torch.device, ddp: _Dist, progress: bool) -> dict[str, float]:
    """One pass over this rank's shard of epoch ``epoch``'s permutation; its loss and score."""
    steps, local_bs = len(x) // config.batch_size, config.batch_size // ddp.world
    g = torch.Generator().manual_seed(config.seed * 1_000_003 + epoch)
    perm = torch.randperm(len(x), generator=g)[: steps * config.batch_size]
    shard = perm[ddp.rank::ddp.world]
    augment = _augmentation(config)
    s.net.train()
    t0 = time.perf_counter()
    loss_sum, score_sum, seen = 0.0, 0.0, 0
    bar = tqdm(range(steps), desc=f"epoch {epoch + 1}/{config.epochs}", unit="batch",
               disable=not (progress and ddp.main), dynamic_ncols=True, mininterval=0.5)
    for step in bar:
        idx = shard[step * local_bs:(step + 1) * local_bs]
        xb, yb = as_float(x[idx]), y[idx]
        if augment is not None:
            xb = augment(xb, config, g)
        xb, yb = xb.to(device), yb.to(device)
        logits = s.net(xb)
        loss = _loss(config, s, logits, xb, yb)
        value = loss.item()  # one device sync a step, for the checks and the running mean
        s.first_loss = s.first_loss if s.first_loss is not None else value
        if not math.isfinite(value) or value > DIVERGENCE_FACTOR * max(s.first_loss, 1e-6):
            # stopped before the step reaches the weights
            raise _diverged(config, s, f"the loss is {value:.4g} at epoch {epoch + 1}, step {step + 1} "
                                       f"(the first step's was {s.first_loss:.4g})")
        s.opt.zero_grad(set_to_none=True)
        loss.backward()
        s.opt.step()
        s.sched.step()
        loss_sum += value * len(yb)
        score_sum += s.goal.batch_sum(logits.detach(), xb, yb)
        seen += len(yb)
        if step % 20 == 0 or step == steps - 1:
            bar.set_postfix({"loss": f"{loss_sum / seen:.4f}",
                             s.goal.train_metric: f"{s.goal.finish(score_sum, seen):.4f}"})
    bar.close()
    return {"epoch": epoch + 1, "loss": loss_sum / seen,
            f"train_{s.goal.train_metric}": s.goal.finish(score_sum, seen),
            "seconds": time.perf_counter() - t0}


def _checkpoint(config: TrainConfig, s: _State, epoch: int, out: Path) -> None:
    atomic_save({"format": "tbn-checkpoint", "version": 1, "config": config.to_dict(),
                 "epoch": epoch + 1, "structure": structure(s.model), "model": s.model.state_dict(),
                 "optimizer": s.opt.state_dict(), "scheduler": s.sched.state_dict(),
                 "history": s.history}, out / CHECKPOINT)


def _finish(config: TrainConfig, s: _State, report: Any, test_score: float, world: int,
            out: Path) -> dict[str, Any]:
    """Write ``model.pt`` and ``metrics.json`` (atomically); return the metrics."""
    tiling = report.to_dict()
    metrics = {
        "recipe": config.recipe,
        "p": config.p,
        "metric": s.goal.metric,
        f"test_{s.goal.metric}": test_score,
        "epochs": config.epochs,
        "train_seconds": sum(h["seconds"] for h in s.history),
        "world_size": world,
        "layers": tiling["layers"],
        "total_weight_bits": tiling["total_bits"],
        "total_weight_bytes": tiling["total_bytes"],
        "float32_weight_bytes": tiling["float32_bytes"],
        "bits_per_weight": tiling["bits_per_weight"],
        "report": str(report),
        "history": s.history,
        "config": config.to_dict(),
    }
    save_model(s.model, config, out / MODEL)
    tmp = out / f".{METRICS}.tmp"
    tmp.write_text(json.dumps(metrics, indent=2) + "\n")
    os.replace(tmp, out / METRICS)
    return metrics


def _run(config: TrainConfig, out: Path, ckpt: dict[str, Any] | None, device: torch.device,
         ddp: _Dist, progress: bool) -> dict[str, Any]:
    torch.manual_seed(config.seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    if config.batch_size % ddp.world:
        raise TrainError(f"batch size {config.batch_size} does not split over {ddp.world} processes")
    model, report = build_model(config)  # a p that tiles no layer, a bad teacher: refused before
    model.to(device)
    teacher = _teacher(config, device)  # the data is read (or downloaded)
    if teacher is not None:
        _check_teacher(config, teacher, model, device)
    x_train, y_train, x_test, y_test = _data(config)
    if report is None:  # float model: account it as dense
        report = tile_model(model, keep_dense=("*",))
    s = _state(config, model, len(x_train) // config.batch_size, ckpt, teacher, device, ddp)
    metric = s.goal.metric
    for epoch in range(s.start_epoch, config.epochs):
        stats = _epoch(config, s, epoch, x_train, y_train, device, ddp, progress)
        if ddp.main:
            seconds = stats.pop("seconds")  # history rows keep their key order
            stats.update({f"test_{metric}": s.goal.score(model, x_test, y_test), "seconds": seconds})
            if epoch == 0 and ddp.world == 1 and len(x_train) >= CHANCE_MIN_IMAGES:
                _check_chance(config, s, stats, y_train)
            s.history.append(stats)
            if progress:
                train = s.goal.train_metric
                tqdm.write(f"epoch {epoch + 1}: loss {stats['loss']:.4f}  train {train} "
                           f"{stats[f'train_{train}']:.4f}  test {metric} {stats[f'test_{metric}']:.4f}  "
                           f"({stats['seconds']:.1f} s)")
            _checkpoint(config, s, epoch, out)
        ddp.barrier()
    metrics: dict[str, Any] = {}
    if ddp.main:
        if config.recalibrate_bn:
            before = s.goal.score(model, x_test, y_test)
            recalibrate_batchnorm(model, x_train)
            if progress:
                tqdm.write(f"BatchNorm statistics re-estimated: test {metric} {before:.4f} -> "
                           f"{s.goal.score(model, x_test, y_test):.4f}")
        metrics = _finish(config, s, report, s.goal.score(model, x_test, y_test), ddp.world, out)
    ddp.barrier()
    return metrics


def _check_chance(config: TrainConfig, s: _State, stats: dict[str, float], labels: torch.Tensor) -> None:
    """A classifier no better than chance after its first epoch has diverged (or never learnt)."""
    if isinstance(s.goal, Classify) and stats["test_accuracy"] <= 1.2 / (int(labels.max()) + 1):
        raise _diverged(config, s, f"after the first epoch the test accuracy is "
                                   f"{stats['test_accuracy']:.4f}, no better than chance",
                        "Check the learning rate (far too large, or too small) and the data")
