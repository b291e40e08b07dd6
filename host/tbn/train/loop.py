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
import os
import time
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
from tbn.data import MNIST_MEAN, MNIST_STD, load_mnist
from tbn.errors import TbnError
from tbn.train.config import TrainConfig
from tbn.train.model_file import ModelFileError, atomic_save, build_model, load_model, safe_load, save_model

CHECKPOINT = "checkpoint.pt"
MODEL = "model.pt"
METRICS = "metrics.json"
# Options that may differ when resuming: they do not change the computation.
_RESUME_FREE = {"data_dir", "device"}


class TrainError(TbnError, RuntimeError):
    """A training run cannot start or continue as asked."""


def mnist_tensors(split: str, data_dir: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST as normalised float images ``(n, 1, 28, 28)`` and int64 labels."""
    m = load_mnist(split, data_dir)
    x = torch.from_numpy(m.images.astype(np.float32) / 255.0)
    x = ((x - MNIST_MEAN) / MNIST_STD).unsqueeze(1)
    return x, torch.from_numpy(m.labels.astype(np.int64))


def _shift(x: torch.Tensor, max_px: float, g: torch.Generator) -> torch.Tensor:
    """Random translation of each image by up to ``max_px`` pixels (bilinear)."""
    n, _, h, w = x.shape
    t = (torch.rand(n, 2, generator=g) * 2 - 1) * max_px
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0
    theta[:, 0, 2] = t[:, 0] * 2 / w
    theta[:, 1, 2] = t[:, 1] * 2 / h
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    bg = x.amin()  # pad with the normalised background value
    return F.grid_sample(x - bg, grid, align_corners=False, padding_mode="zeros") + bg


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 1000) -> float:
    """Top-1 accuracy of ``model`` on ``(x, y)``, in eval mode."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    correct = 0
    for i in range(0, len(x), batch):
        correct += (model(x[i:i + batch].to(device)).argmax(1).cpu() == y[i:i + batch]).sum().item()
    model.train(was_training)
    return correct / len(x)


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
    """Train a recipe on MNIST, writing ``model.pt``, ``metrics.json`` and a per-epoch
    ``checkpoint.pt`` to ``out_dir``; returns the metrics.

    With ``resume=True`` the run continues from ``out_dir/checkpoint.pt`` (``config`` may be
    None to take the saved one).  Without it, an ``out_dir`` that already holds a run is
    refused unless ``overwrite=True``, so no earlier work is lost by accident.
    """
    out = Path(out_dir)
    ckpt: dict[str, Any] | None = None
    if resume:
        config, ckpt = _resolve_resume(config, out)
    elif config is None:
        raise TrainError("a config is needed unless resuming")
    elif not overwrite and any((out / f).exists() for f in (CHECKPOINT, MODEL)):
        raise TrainError(f"{out} already holds a training run; pass resume=True (--resume) to "
                         f"continue it, overwrite=True (--overwrite) to replace it, or pick "
                         f"another output folder")
    assert config is not None
    device = _device(config)
    ddp = _setup_dist(device)
    try:
        return _run(config, out, ckpt, device, ddp, progress)
    finally:
        if ddp.owns_group:
            dist.destroy_process_group()


def _run(config: TrainConfig, out: Path, ckpt: dict[str, Any] | None, device: torch.device,
         ddp: _Dist, progress: bool) -> dict[str, Any]:
    torch.manual_seed(config.seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    if config.batch_size % ddp.world:
        raise TrainError(f"batch size {config.batch_size} does not split over {ddp.world} processes")
    x_train, y_train = mnist_tensors("train", config.data_dir)
    if config.train_subset is not None:
        x_train, y_train = x_train[:config.train_subset], y_train[:config.train_subset]
    x_test, y_test = mnist_tensors("test", config.data_dir)

    model, report = build_model(config)
    if report is None:  # float model: account it as dense
        report = tile_model(model, keep_dense=("*",))
    model.to(device)
    teacher = None
    if config.teacher:
        try:
            teacher, _ = load_model(config.teacher)
        except ModelFileError as e:
            raise TrainError(f"teacher: {e}") from e
        teacher.to(device).eval()

    local_bs = config.batch_size // ddp.world
    steps = len(x_train) // config.batch_size
    if config.optimizer == "sgd":
        opt: torch.optim.Optimizer = torch.optim.SGD(
            model.parameters(), lr=config.lr, momentum=config.momentum, nesterov=True,
            weight_decay=config.weight_decay)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=config.epochs * steps)
    history: list[dict[str, float]] = []
    start_epoch = 0
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["scheduler"])
        history = list(ckpt["history"])
        start_epoch = int(ckpt["epoch"])
    net: nn.Module = model
    if ddp.world > 1:
        ids = [device.index] if device.type == "cuda" else None
        net = nn.parallel.DistributedDataParallel(model, device_ids=ids)

    for epoch in range(start_epoch, config.epochs):
        g = torch.Generator().manual_seed(config.seed * 1_000_003 + epoch)
        perm = torch.randperm(len(x_train), generator=g)[: steps * config.batch_size]
        shard = perm[ddp.rank::ddp.world]
        net.train()
        t0 = time.perf_counter()
        loss_sum, correct, seen = 0.0, 0, 0
        bar = tqdm(range(steps), desc=f"epoch {epoch + 1}/{config.epochs}", unit="batch",
                   disable=not (progress and ddp.main), dynamic_ncols=True, mininterval=0.5)
        for step in bar:
            idx = shard[step * local_bs:(step + 1) * local_bs]
            xb, yb = x_train[idx], y_train[idx]
            if config.augment > 0:
                xb = _shift(xb, config.augment, g)
            xb, yb = xb.to(device), yb.to(device)
            logits = net(xb)
            loss = F.cross_entropy(logits, yb)
            if teacher is not None:
                with torch.no_grad():
                    soft = F.softmax(teacher(xb) / config.temperature, dim=1)
                kd = F.kl_div(F.log_softmax(logits / config.temperature, dim=1), soft,
                              reduction="batchmean") * config.temperature ** 2
                loss = (1 - config.distill_weight) * loss + config.distill_weight * kd
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += loss.item() * len(yb)
            correct += (logits.argmax(1) == yb).sum().item()
            seen += len(yb)
            if step % 20 == 0 or step == steps - 1:
                bar.set_postfix(loss=f"{loss_sum / seen:.4f}", acc=f"{correct / seen:.4f}")
        bar.close()
        seconds = time.perf_counter() - t0
        if ddp.main:
            test_acc = evaluate(model, x_test, y_test)
            history.append({"epoch": epoch + 1, "loss": loss_sum / seen, "train_accuracy": correct / seen,
                            "test_accuracy": test_acc, "seconds": seconds})
            if progress:
                tqdm.write(f"epoch {epoch + 1}: loss {loss_sum / seen:.4f}  train acc "
                           f"{correct / seen:.4f}  test acc {test_acc:.4f}  ({seconds:.1f} s)")
            atomic_save({"format": "tbn-checkpoint", "version": 1, "config": config.to_dict(),
                         "epoch": epoch + 1, "model": model.state_dict(),
                         "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                         "history": history}, out / CHECKPOINT)
        ddp.barrier()

    metrics: dict[str, Any] = {}
    if ddp.main:
        tiling = report.to_dict()
        metrics = {
            "recipe": config.recipe,
            "p": config.p,
            "test_accuracy": evaluate(model, x_test, y_test),
            "epochs": config.epochs,
            "train_seconds": sum(h["seconds"] for h in history),
            "world_size": ddp.world,
            "layers": tiling["layers"],
            "total_weight_bits": tiling["total_bits"],
            "total_weight_bytes": tiling["total_bytes"],
            "float32_weight_bytes": tiling["float32_bytes"],
            "bits_per_weight": tiling["bits_per_weight"],
            "report": str(report),
            "history": history,
            "config": config.to_dict(),
        }
        save_model(model, config, out / MODEL)
        tmp = out / f".{METRICS}.tmp"
        tmp.write_text(json.dumps(metrics, indent=2) + "\n")
        os.replace(tmp, out / METRICS)
    ddp.barrier()
    return metrics

