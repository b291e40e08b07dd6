"""Take an ordinary PyTorch model, make it sub-bit, fine-tune it briefly, inspect the export.

Run: python examples/tile_existing_model.py [--data-dir DIR]   (about 10 s on a laptop CPU)
"""

from __future__ import annotations

import argparse

import torch
from torch import nn
from torch.nn import functional as F

import tbn
from tbn.nn import is_tiled
from tbn.train import evaluate, mnist_tensors


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir")
    ap.add_argument("--budget", type=int, default=6_000, help="weight bytes to fit")
    args = ap.parse_args()
    torch.manual_seed(0)

    # Any nn.Module works: tile_model finds Linear/Conv1d/Conv2d layers wherever they are.
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.BatchNorm1d(256), nn.ReLU(),
                          nn.Linear(256, 128), nn.BatchNorm1d(128), nn.ReLU(), nn.Linear(128, 10))
    report = tbn.tile_model(model, budget_bytes=args.budget)
    print(report, end="\n\n")

    x, y = mnist_tensors("train", args.data_dir)
    x_test, y_test = mnist_tensors("test", args.data_dir)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for step in range(600):  # a short fine-tune: 600 steps of 100 images
        idx = torch.randint(0, len(x), (100,))
        loss = F.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 200 == 0:
            print(f"step {step}: loss {loss.item():.3f}")
    print(f"test accuracy after a short fine-tune: {evaluate(model, x_test, y_test):.4f}\n")

    for name, layer in model.named_modules():
        if is_tiled(layer):
            e = layer.export()
            print(f"layer {name}: p={e.p}, tile {e.n_bits} bits in {e.tile_bits.nbytes} bytes, "
                  f"alphas {e.alphas.round(4).tolist()[:4]}{'...' if e.p > 4 else ''}, "
                  f"{layer.storage_bits()} bits stored")


if __name__ == "__main__":
    main()
