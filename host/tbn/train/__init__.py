"""Training: recipes, configuration, the model file and one DDP-aware loop."""

from tbn.train.config import TrainConfig
from tbn.train.loop import TrainError, dataset_tensors, evaluate, mnist_tensors, train
from tbn.train.model_file import ModelFileError, build_model, load_model, save_model

__all__ = [
    "ModelFileError",
    "TrainConfig",
    "TrainError",
    "build_model",
    "dataset_tensors",
    "evaluate",
    "load_model",
    "mnist_tensors",
    "save_model",
    "train",
]
