"""``tbn train``: train a recipe on its dataset and write model.pt, metrics.json, checkpoint.pt."""

from __future__ import annotations

import argparse
from dataclasses import fields
from typing import Any

from tbn.errors import UsageError
from tbn.nn.options import ALPHA_INITS, ALPHA_MODES, ALPHA_SOURCES, STES
from tbn.train.config import OPTIMIZERS, SCHEDULES, TrainConfig
from tbn.train.recipes import RECIPES


def _per_layer(text: str) -> tuple[str, int]:
    name, sep, p = text.rpartition("=")
    if not sep or not name or not p.isdigit():
        raise argparse.ArgumentTypeError(f"expected NAME=P (e.g. 0=1 or features.3=8), got {text!r}")
    return name, int(p)


def _lr_step(text: str) -> tuple[int, float]:
    epoch, _, lr = text.partition("=")
    try:
        return int(epoch), float(lr)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected EPOCH=LR (e.g. 12=1e-4), got {text!r}") from None


def add_parser(sub: Any) -> None:
    p = sub.add_parser("train", help="train a TBN model (MNIST, CIFAR-10, Speech Commands, ToyCar, ...)",
                       description="Train a recipe on its dataset (MNIST; CIFAR-10 for resnet18 and "
                                   "vgg-small, with the authors' optimizer, schedule, augmentation and "
                                   "per-layer p unless options say otherwise; MLPerf Tiny's kws, vww, ic "
                                   "and ad with its reference settings). Writes OUT/model.pt, "
                                   "OUT/metrics.json and a checkpoint every epoch (continue with --resume).")
    a = p.add_argument
    a("--recipe", choices=sorted(RECIPES), help="model recipe (default mlp); resnet18 and vgg-small "
      "train on CIFAR-10 with the authors' settings")
    a("--p", type=int, help="tiling factor for layers with at least --min-params weights (default 4; "
      "resnet18 and vgg-small: 8, their tiled layers in the authors' p list, the others at p=1)")
    a("--float", dest="float_model", action="store_true", help="train the float model (no tiling)")
    a("--min-params", type=int, help="layers with fewer weights use p=1 (default 64000)")
    a("--per-layer", type=_per_layer, action="append", metavar="NAME=P",
      help="p for one layer (repeatable)")
    a("--keep-dense", action="append", metavar="PATTERN", help="layer names to keep float (repeatable)")
    a("--alpha", choices=ALPHA_MODES, help="one alpha per repetition or per layer (default per_tile)")
    a("--alpha-source", choices=ALPHA_SOURCES, help="alphas from a separate tensor or the latent weight")
    a("--ste", choices=STES, help="the latent's gradient: scaled by alpha as in the authors' code "
      "(default), or identity (docs/method.md)")
    a("--alpha-init", choices=ALPHA_INITS, help="a separate alpha tensor starts independent "
      "(Kaiming normal, the authors', default) or as a copy of the weights")
    a("--epochs", type=int, help="epochs (default 10)")
    a("--optimizer", choices=OPTIMIZERS, help="adam or sgd (default adam)")
    a("--nesterov", action=argparse.BooleanOptionalAction, default=None,
      help="SGD: Nesterov momentum (default on; off in the authors' CIFAR-10 recipes, as in their code)")
    a("--lr", type=float, help="learning rate (default 1e-3), then as --schedule says")
    a("--schedule", choices=SCHEDULES, help="cosine to 0 (default), steps (--lr-step), exponential "
      "(--lr-decay an epoch) or constant; the kws recipe steps, ic decays, ad stays constant")
    a("--lr-step", type=_lr_step, action="append", metavar="EPOCH=LR",
      help="--schedule steps: from this epoch on, this rate (repeatable)")
    a("--lr-decay", type=float, help="--schedule exponential: the factor an epoch (default 0.99)")
    a("--momentum", type=float, help="SGD momentum (default 0.9)")
    a("--weight-decay", type=float, help="weight decay (default 0)")
    a("--batch-size", type=int, help="global batch size (default 128)")
    a("--seed", type=int, help="random seed (default 0)")
    a("--augment", type=float, help="MNIST: random shifts of up to this many pixels (default 0); "
      "CIFAR-10: random crops with this much padding, and flips (default 4); VWW: shifts, and flips "
      "(default 4.8); ModelNet40: rotations about the up axis, and jitter of this deviation (0.01)")
    a("--rotate", type=float, metavar="DEGREES", help="MNIST, VWW: random rotations of up to this many "
      "degrees (default 0; the vww recipe 10)")
    a("--zoom", type=float, metavar="FRACTION", help="MNIST, VWW: random scaling by up to this fraction, "
      "0.1 for 0.9x to 1.1x (default 0; the vww recipe 0.1)")
    a("--recalibrate-bn", action=argparse.BooleanOptionalAction, default=None,
      help="re-estimate BatchNorm statistics over the training set after the last epoch "
           "(default: off; on in the tiny recipe)")
    a("--teacher", metavar="MODEL", help="distil from this trained model: a model.pt (e.g. a --float run), "
      "or a float Keras (.keras, .h5) or TFLite (.tflite) model of the recipe's input")
    a("--distill-weight", type=float, help="weight of the distillation loss (default 0.7)")
    a("--temperature", type=float, help="distillation temperature (default 4)")
    a("--subset", dest="train_subset", type=int, metavar="N", help="train on the first N images only")
    a("--data-dir", help="folder with the recipe's dataset: MNIST's IDX files, CIFAR-10's python archive, "
      "Speech Commands' archives (else $TBN_DATA, ../shared/data, cache; docs/datasets.md)")
    a("--no-verify", dest="verify_data", action="store_const", const=False,
      help="accept a dataset that differs from the release's checksums (a subset, your own data)")
    a("--device", choices=("cpu", "cuda"), help="where to train (default cpu)")
    a("--out", default="runs/train", help="output folder (default runs/train)")
    a("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    a("--overwrite", action="store_true", help="replace a run already in --out")
    a("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


# Every option whose argparse dest is a TrainConfig field of the same name.
_FIELDS = tuple(f.name for f in fields(TrainConfig) if f.name not in ("per_layer", "keep_dense", "lr_steps"))


def config_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The options given explicitly on the command line, as TrainConfig fields."""
    given = {k: getattr(args, k) for k in _FIELDS if getattr(args, k) is not None}
    if args.float_model:
        if args.p is not None:
            raise UsageError("--float and --p exclude each other")
        given["p"] = None
    if args.per_layer:
        given["per_layer"] = dict(args.per_layer)
    if args.keep_dense:
        given["keep_dense"] = list(args.keep_dense)
    if args.lr_step:
        given["lr_steps"] = [list(step) for step in args.lr_step]
    return given


def run(args: argparse.Namespace) -> int:
    from tbn.train.loop import read_checkpoint_config, train  # torch, for this command only

    given = config_from_args(args)
    if args.resume:  # the interrupted run's options, under those given now
        config = TrainConfig.from_dict(read_checkpoint_config(args.out).to_dict() | given)
    else:
        config = TrainConfig.for_recipe(**{"recipe": "mlp", **given})
    metrics = train(config, args.out, resume=args.resume, overwrite=args.overwrite,
                    progress=not args.quiet)
    if not metrics:  # a non-zero rank under torchrun: rank 0 reports
        return 0
    print(metrics["report"])
    metric = metrics["metric"]
    print(f"test {metric} {metrics[f'test_{metric}']:.4f}  weights {metrics['total_weight_bytes']} bytes "
          f"({metrics['bits_per_weight']:.3f} bits/weight)  train {metrics['train_seconds']:.1f} s")
    print(f"wrote {args.out}/model.pt and {args.out}/metrics.json")
    return 0
