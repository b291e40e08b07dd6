"""Training: recipes, configuration, the model file and one DDP-aware loop.

The names below load on first use (PEP 562): the command line reads the configuration and
the recipes' names without importing torch."""

from __future__ import annotations

from tbn.lazy import lazy_exports

_HOME = {
    "TrainConfig": "config",
    "TrainError": "loop", "dataset_tensors": "loop", "evaluate": "loop", "mnist_tensors": "loop",
    "train": "loop",
    "ModelFileError": "model_file", "build_model": "model_file", "load_model": "model_file",
    "save_model": "model_file",
}
__all__ = sorted(_HOME)

__getattr__ = lazy_exports(__name__, _HOME)
