"""The latent's gradient, the authors' (``ste=scaled``) against the identity one: MNIST MLP,
p=4, Adam and SGD (lr 0.1 and 1.0), a few seeds, the same loop and data.

Prints mean and per-seed test accuracy for each pair; ``--json`` writes every run. The
recorded table is in docs/results.md ("The latent's gradient") and docs/method.md.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from _table import print_table, write_json
from tbn.train import TrainConfig, train

OPTIMIZERS = (("adam", 1e-3), ("sgd", 0.1), ("sgd", 1.0))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=2, help="epochs per run (default 2)")
    ap.add_argument("--seeds", type=int, default=3, help="seeds per pair (default 3)")
    ap.add_argument("--subset", type=int, help="train on the first N images (smoke runs)")
    ap.add_argument("--out", default="runs/bench/gradient", help="folder for the trained models")
    ap.add_argument("--data-dir")
    ap.add_argument("--json")
    args = ap.parse_args()
    runs, rows = [], []
    for optimizer, lr in OPTIMIZERS:
        for ste in ("scaled", "identity"):
            acc = []
            for seed in range(args.seeds):
                config = TrainConfig(recipe="mlp", p=4, epochs=args.epochs, optimizer=optimizer, lr=lr,
                                     ste=ste, seed=seed, train_subset=args.subset, data_dir=args.data_dir)
                m = train(config, Path(args.out) / f"{optimizer}-{lr:g}-{ste}-{seed}", overwrite=True,
                          progress=False)
                acc.append(100 * m["test_accuracy"])
                runs.append({"optimizer": optimizer, "lr": lr, "ste": ste, "seed": seed,
                             "test_accuracy": m["test_accuracy"], "train_s": m["train_seconds"]})
                print(f"{optimizer} lr {lr:g} ste={ste} seed {seed}: {acc[-1]:.2f}%", flush=True)
            rows.append({"optimizer": f"{optimizer}, lr {lr:g}", "ste": ste,
                         "mean": statistics.mean(acc), "seeds": " / ".join(f"{a:.2f}" for a in acc)})
    print_table(rows, [("optimizer", "optimizer"), ("ste", "gradient"), ("mean", "mean test acc %"),
                       ("seeds", "per seed")])
    write_json(args.json, {"args": vars(args), "runs": runs, "rows": rows})


if __name__ == "__main__":
    main()
