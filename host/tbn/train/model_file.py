"""The trained-model file: a ``state_dict`` plus what is needed to rebuild the module."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tbn.convert import TilingReport, tile_model
from tbn.errors import TbnError
from tbn.files import FileError, atomic_open, regular_file
from tbn.format.spec import MAGIC
from tbn.train import recipes
from tbn.train.config import TrainConfig

MODEL_FORMAT = "tbn-model"
MODEL_VERSION = 1


class ModelFileError(TbnError, ValueError):
    """A model or checkpoint file is missing, corrupt, or not a tbn file."""


def build_model(config: TrainConfig) -> tuple[nn.Module, TilingReport | None]:
    """The recipe's model, tiled as the config says (``p=None``: left float)."""
    r = recipes.recipe(config.recipe)
    model = r.build()
    if config.p is None:
        return model, None
    # a recipe's own p list (the authors' per-layer configs) under the run's explicit entries
    per_layer = {**(r.per_layer(model, config.p) if r.per_layer else {}), **config.per_layer}
    report = tile_model(model, tiling=config.tiling, min_params=config.min_params,
                        per_layer=per_layer, keep_dense=config.keep_dense)
    return model, report


def atomic_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` to a temporary file, then rename: a killed run never leaves a torn file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path) as f:
        torch.save(obj, f)


def safe_load(path: str | os.PathLike) -> dict[str, Any]:
    """Load a tbn file (weights only: no code runs), raising :class:`ModelFileError`."""
    path = Path(path)
    if path.is_dir() and (path / "model.pt").is_file():
        raise ModelFileError(f"{path} is a folder: give the trained model in it, {path / 'model.pt'}")
    try:
        regular_file(path, "a trained model (model.pt) or checkpoint")
        with open(path, "rb") as f:
            head = f.read(len(MAGIC))
    except (FileError, OSError) as e:
        raise ModelFileError(str(e)) from None
    if head == MAGIC:
        raise ModelFileError(f"{path} is .tbn bytecode, the output of `tbn compile`; this needs the "
                             f"trained model it was compiled from (model.pt)")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a corrupt pickle/zip
        why = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ModelFileError(f"{path}: not a readable tbn model or checkpoint (truncated or corrupt: "
                             f"{why})") from e
    if not isinstance(obj, dict) or obj.get("format") not in (MODEL_FORMAT, "tbn-checkpoint"):
        raise ModelFileError(f"{path}: not a tbn model or checkpoint file")
    return obj


def structure(model: nn.Module) -> dict[str, str]:
    """How each layer with weights was built: its class and, when tiled, its tiling. Stored
    beside the weights, whose shapes do not depend on p or on tiling at all, so a config that
    disagrees with them (edited, or from another run) is caught instead of compiling a model
    that computes something else."""
    layers = {}
    for name, m in model.named_modules():
        if isinstance(getattr(m, "weight", None), torch.Tensor):
            tiled = (f"(p={m.p}, alpha={m.alpha}, alpha_source={m.alpha_source})"
                     if hasattr(m, "alpha_source") else "")
            layers[name] = f"{type(m).__name__}{tiled}"
    return layers


def restore(model: nn.Module, state: dict[str, Any], saved: dict[str, str] | None,
            path: str | os.PathLike) -> None:
    """Load ``state`` into ``model`` (rebuilt from the file's config) after checking that the
    config rebuilt the layers the weights were trained in (``saved``: the file's structure;
    files written before it was stored have none)."""
    if saved is not None:
        built = structure(model)
        wrong = [f"layer {k}: the config builds {built.get(k, 'nothing')}, the weights were trained in "
                 f"{saved.get(k, 'nothing')}"
                 for k in sorted(set(built) | set(saved)) if built.get(k) != saved.get(k)]
        if wrong:
            raise ModelFileError(f"{path}: its config disagrees with its weights ({'; '.join(wrong[:3])}"
                                 f"{'; ...' if len(wrong) > 3 else ''}); was the config edited? "
                                 "Restore it, or train again")
    model.load_state_dict(state)


def save_model(model: nn.Module, config: TrainConfig, path: str | os.PathLike) -> None:
    """Write ``model`` with its config so :func:`load_model` can rebuild it."""
    atomic_save({"format": MODEL_FORMAT, "version": MODEL_VERSION, "config": config.to_dict(),
                 "structure": structure(model), "state_dict": model.state_dict()}, path)


def load_model(path: str | os.PathLike) -> tuple[nn.Module, TrainConfig]:
    """Rebuild a model written by :func:`save_model` (or from a checkpoint), in eval mode."""
    obj = safe_load(path)
    if obj["format"] == MODEL_FORMAT and obj.get("version") != MODEL_VERSION:
        raise ModelFileError(f"{path}: model file version {obj.get('version')} is not supported "
                             f"(this tbn reads version {MODEL_VERSION})")
    try:
        config = TrainConfig.from_dict(obj["config"])
        model, _ = build_model(config)
        restore(model, obj["state_dict"] if "state_dict" in obj else obj["model"], obj.get("structure"), path)
    except ModelFileError:
        raise
    except (KeyError, ValueError, RuntimeError, TypeError) as e:
        raise ModelFileError(f"{path}: cannot rebuild the model ({e})") from e
    return model.eval(), config
