"""MNIST accuracy of the MLP recipe: FP32, binary (p=1) and TBN p=4/8/16.

The float model is trained first and then distils into every binary/TBN model (the
recipe in docs/results.md).  Prints accuracy, weight bits and bytes, and train time;
``--json`` writes the table.  The full-length table is recorded in docs/results.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from _table import print_table, write_json
from tbn.train import TrainConfig, train


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=200, help="epochs per model (default 200)")
    ap.add_argument("--teacher-epochs", type=int, default=30, help="epochs of the FP32 teacher")
    ap.add_argument("--p", type=int, nargs="+", default=[1, 4, 8, 16], help="tiling factors")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--teacher-augment", type=float, default=1.0, help="teacher's random shift (px)")
    ap.add_argument("--augment", type=float, default=0.0, help="students' random shift (px)")
    ap.add_argument("--subset", type=int, help="train on the first N images (smoke runs)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="runs/bench/mnist", help="folder for the trained models")
    ap.add_argument("--data-dir")
    ap.add_argument("--json")
    args = ap.parse_args()
    out = Path(args.out)
    common = dict(recipe="mlp", seed=args.seed, train_subset=args.subset, data_dir=args.data_dir)

    rows = []

    def run(name: str, config: TrainConfig) -> None:
        m = train(config, out / name, overwrite=True, progress=False)
        rows.append({"model": name, "p": "-" if config.p is None else config.p,
                     "accuracy": 100 * m["test_accuracy"], "bits": m["total_weight_bits"],
                     "bytes": m["total_weight_bytes"], "bits_per_weight": m["bits_per_weight"],
                     "train_s": m["train_seconds"], "epochs": config.epochs})
        print(f"{name}: {100 * m['test_accuracy']:.2f}%", flush=True)

    run("fp32", TrainConfig(p=None, epochs=args.teacher_epochs, lr=args.lr,
                            augment=args.teacher_augment, **common))
    teacher = str(out / "fp32" / "model.pt")
    for p in args.p:
        run("binary" if p == 1 else f"tbn-p{p}",
            TrainConfig(p=p, epochs=args.epochs, lr=args.lr, teacher=teacher, augment=args.augment,
                        **common))

    print_table(rows, [("model", "model"), ("p", "p"), ("accuracy", "test acc %"),
                       ("bits", "weight bits"), ("bytes", "weight bytes"),
                       ("bits_per_weight", "bits/weight"), ("epochs", "epochs"),
                       ("train_s", "train s")])
    write_json(args.json, {"args": vars(args), "rows": rows})


if __name__ == "__main__":
    main()
