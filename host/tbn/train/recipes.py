"""Model recipes for ``tbn train``: float architectures that ``tile_model`` then converts, each
with the dataset it reads and the training defaults of its source (the authors' for theirs)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import import_module
from typing import TYPE_CHECKING, Any

from tbn.errors import UsageError

if TYPE_CHECKING:
    from torch import nn


def _paper_p_list(pattern: tuple[int, ...]) -> Callable[[nn.Module, int], dict[str, int]]:
    """The authors' per-layer p lists (configs/cifar10/*-kn-tiled-8.yaml): ``pattern`` gives,
    for each weighted layer in order, 1 (kept at p=1) or 0 (tiled at the run's p; their -4,
    -8 and -16 configs differ only there)."""

    def per_layer(model: nn.Module, p: int) -> dict[str, int]:
        from torch import nn

        names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear | nn.Conv2d)]
        if len(names) != len(pattern):
            raise UsageError(f"the authors' p list has {len(pattern)} entries, the model "
                             f"{len(names)} weighted layers")
        return {n: 1 if keep else p for n, keep in zip(names, pattern, strict=True)}

    return per_layer


@dataclass(frozen=True)
class Recipe:
    """A model, the dataset it reads and the training options its source uses."""

    model: str  # "module:function" in tbn.train, imported on first build (torch loads only then)
    dataset: str = "mnist"
    defaults: dict[str, Any] = field(default_factory=dict)  # TrainConfig fields
    per_layer: Callable[[nn.Module, int], dict[str, int]] | None = None  # p per layer, given the run's p
    note: str = ""

    def build(self) -> nn.Module:
        """A fresh float model."""
        module, _, function = self.model.partition(":")
        return getattr(import_module(f"tbn.train.{module}"), function)()


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
# vww01: Adam 1e-3 for 20 epochs, 5e-4 for 10, 2.5e-4 for 20, batches of 32, an ImageDataGenerator's
# shifts of 5% (4.8 px), 10-degree rotations, 10% zooms and flips (train_vww.py)
_MLPERF_VWW = {"optimizer": "adam", "lr": 1e-3, "schedule": "steps", "lr_steps": [[20, 5e-4], [30, 2.5e-4]],
               "epochs": 50, "batch_size": 32, "augment": 4.8, "rotate": 10.0, "zoom": 0.1}
# ad01: Adam at Keras' constant 1e-3, 100 epochs of 512 (baseline.yaml; its 10% validation split only
# plots a loss, so tbn trains on all of it); dense layers from 512 weights tile, as the paper's
_MLPERF_AD = {"optimizer": "adam", "lr": 1e-3, "schedule": "constant", "epochs": 100, "batch_size": 512,
              "min_params": 512}
# sww01: Adam, batches of 100, 50 float epochs (str_ww_util.py's pretrain_epochs; its 15 QAT epochs
# are int8 training tbn does by calibration), the reference's own step_function schedule (its default,
# ReduceLROnPlateau on the validation loss, needs a validation pass tbn's loop does not make)
_MLPERF_SWW = {"optimizer": "adam", "lr": 5e-4, "schedule": "steps",
               "lr_steps": [[12, 1e-4], [24, 2e-5], [36, 1e-5]], "epochs": 50, "batch_size": 100}

# The authors' token models on CIFAR-10 (tbn-method.md): Adam 1e-4, cosine, 200 epochs, layers under
# 64K weights at p=1 (tbn's default --min-params); batch 128 and crops and flips assumed, as theirs for
# the convnets
_AUTHORS_TOKENS_CIFAR = {"optimizer": "adam", "lr": 1e-4, "epochs": 200, "batch_size": 128, "augment": 4.0}
# PointNet's ModelNet40 training (Qi et al.'s train.py): Adam 1e-3 times 0.7 every 200k shapes (20
# epochs: 0.982 an epoch), 250 epochs of 32, rotations about the up axis and jitter of 0.01
_POINTNET_MODELNET = {"optimizer": "adam", "lr": 1e-3, "schedule": "exponential", "lr_decay": 0.982,
                      "epochs": 250, "batch_size": 32, "augment": 0.01}

# The paper's other models at MNIST scale: Adam, and tiled from 512 weights (below).
_TOKENS = {"optimizer": "adam", "lr": 1e-3, "epochs": 15, "min_params": 512}

# "paper-mcu" is the authors' name for the model "mcu" builds: at the defaults (p=4,
# min_params 64,000) its first layer is tiled at p=4 and its classifier stays binary (p=1).
RECIPES: dict[str, Recipe] = {
    "mlp": Recipe("models:mlp"),
    "cnn": Recipe("models:cnn"),
    "mcu": Recipe("models:mcu"),
    "tiny-cnn": Recipe("models:tiny_cnn", defaults={"keep_dense": ["0"]}),
    "tiny": Recipe("models:tiny", "mnist16",
                   {"keep_dense": ["0"], "epochs": 60, "augment": 1.0, "recalibrate_bn": True},
                   note="16x16 MNIST in 1.25 KB of arena; ~99% distilled from tiny-teacher (--teacher)"),
    "tiny3": Recipe("models:tiny3", "mnist16",
                    {"keep_dense": ["0"], "epochs": 30, "augment": 1.0, "recalibrate_bn": True},
                    note="16x16 MNIST in 1.25 KB of arena, three convs"),
    "tiny-teacher": Recipe("models:tiny_teacher", "mnist16",
                           {"p": None, "epochs": 30, "augment": 1.0, "rotate": 10.0, "zoom": 0.1,
                            "recalibrate_bn": True},
                           note="the float teacher of the tiny recipes (train it first, then --teacher)"),
    "tiny-wide": Recipe("models:tiny_wide", "mnist16",
                        {"keep_dense": ["0"], "epochs": 30, "augment": 1.0, "recalibrate_bn": True},
                        note="16x16 MNIST in 1.5 KB of arena"),
    "paper-mcu": Recipe("models:mcu"),
    # the authors train their token models with Adam 1e-4 and a cosine schedule (tbn-method.md); at
    # MNIST scale every layer is under the 64K-weight bar, so the recipe tiles from 512 weights (the
    # classifier at p=2, which divides its 10 outputs, as INT8 needs)
    # the patch embedding reads raw pixels: dense, as ConvMixer's (Mixer 96.1% -> 96.7%, ViT 95.2% ->
    # 96.2%, for 3 KB)
    "mixer": Recipe("token_models:mixer",
                    defaults={**_TOKENS, "per_layer": {"head": 2}, "keep_dense": ["embed"]},
                    note="MLP-Mixer over 7x7 patches (16 tokens of 64 features, 4 blocks)"),
    "vit": Recipe("token_models:vit", defaults={**_TOKENS, "per_layer": {"head": 2}, "keep_dense": ["embed"]},
                  note="ViT over 7x7 patches (16 tokens of 64 features, 4 blocks of 4 heads)"),
    # its patch conv reads raw pixels through 4 weights an output: dense, as the tiny recipes' first
    "convmixer": Recipe("token_models:convmixer", defaults={**_TOKENS, "keep_dense": ["embed.0"]},
                        note="ConvMixer over 2x2 patches (48 channels, 5 blocks, 5x5 depthwise)"),
    # the first per-point layer reads raw coordinates (binary, it could only take x+y, x-y and
    # their negatives) and the T-Net is a small net whose output moves every point: both dense
    "pointnet": Recipe("point_models:pointnet", "mnist-points",
                       {**_TOKENS, "per_layer": {"head.3": 2}, "keep_dense": ["transform.*", "features.0"]},
                       note="PointNet on MNIST digits as 128 ink points (input transform, max pool)"),
    # the first conv reads the raw signal: kept dense, as the tiny MNIST recipes keep theirs
    "mixer-cifar": Recipe("token_models:mixer_cifar", "cifar10", _AUTHORS_TOKENS_CIFAR,
                          note="MLP-Mixer on CIFAR-10 (authors: dense 81.25, p=4 81.26, p=8 80.71)"),
    "vit-cifar": Recipe("token_models:vit_cifar", "cifar10", _AUTHORS_TOKENS_CIFAR,
                        note="ViT on CIFAR-10, 4x4 patches"),
    "convmixer-cifar": Recipe("token_models:convmixer_cifar", "cifar10", _AUTHORS_TOKENS_CIFAR,
                              note="ConvMixer-256/8 on CIFAR-10 (authors: dense 91.25, p=4 91.3, p=8 89.9)"),
    "pointnet-modelnet40": Recipe("point_models:pointnet_modelnet40", "modelnet40", _POINTNET_MODELNET,
                                  note="PointNet on ModelNet40 (1,024 points a shape)"),
    "forecast": Recipe("series_models:forecaster", "membrane",
                       {"optimizer": "adam", "lr": 1e-3, "epochs": 20, "min_params": 512,
                        "keep_dense": ["0"]},
                       note="1-D convnet: a membrane potential 8 ms ahead (matplotlib sample data)"),
    "kws": Recipe("mlperf_models:ds_cnn", "speech_commands", _MLPERF_KWS,
                  note="MLPerf Tiny kws01: DS-CNN on Speech Commands MFCC (target 90% top-1; teacher: "
                       "kws_ref_model_float32.tflite)"),
    "ic": Recipe("mlperf_models:resnet8", "cifar10", _MLPERF_IC,
                 note="MLPerf Tiny ic01: ResNet-8 on CIFAR-10 (target 85% top-1)"),
    "vww": Recipe("mlperf_models:mobilenet_v1", "vww", _MLPERF_VWW,
                  note="MLPerf Tiny vww01: MobileNetV1 0.25 on Visual Wake Words 96x96 (target 80% top-1; "
                       "teacher: vww_96.h5)"),
    "ad": Recipe("mlperf_models:fc_autoencoder", "toycar", _MLPERF_AD,
                 note="MLPerf Tiny ad01: FC autoencoder on ToyCar log-mel vectors (reference AUC 0.86)"),
    "sww": Recipe("mlperf_models:str_ww", "wakeword", _MLPERF_SWW,
                  note="MLPerf Tiny sww01: 1-D DS-CNN spotting 'marvin' in 30x40 log filterbank energies "
                       "(teacher: str_ww_ref_model.h5)"),
    "resnet18": Recipe("models:resnet18", "cifar10", _AUTHORS_CIFAR,
                       _paper_p_list((1, 1, 1, 1) + (0,) * 16 + (1,)),
                       "authors: p=4 93.2, p=8 92.1-92.5, p=16 ~91.4 (CIFAR-10 top-1, 300 epochs)"),
    "vgg-small": Recipe("models:vgg_small", "cifar10", {**_AUTHORS_CIFAR, "epochs": 500},
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
