"""Training-step time of the TBN MLP against the same model with plain ``nn.Linear`` (CPU).

Target: a TBN step costs at most 1.5x the ``nn.Linear`` step.  Prints a table; ``--json``
writes it.  Times are medians over repeated blocks of steps, reported as ratios to the
float model measured in the same run.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch
from torch.nn import functional as F

from _table import print_table, write_json
from tbn import tile_model
from tbn.train.models import mlp


def step_ms(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int, repeats: int) -> float:
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()

    def block() -> float:
        t0 = time.perf_counter()
        for _ in range(steps):
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return (time.perf_counter() - t0) * 1000 / steps

    block()  # warm-up
    return statistics.median(block() for _ in range(repeats))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x, y = torch.randn(args.batch_size, 1, 28, 28), torch.randint(0, 10, (args.batch_size,))

    base = step_ms(mlp(), x, y, args.steps, args.repeats)
    rows = [{"model": "nn.Linear (float)", "p": "-", "ms_per_step": base, "ratio": 1.0}]
    for p in (1, 4, 8, 16):
        model = mlp()
        tile_model(model, p=p)
        ms = step_ms(model, x, y, args.steps, args.repeats)
        rows.append({"model": "TBN", "p": p, "ms_per_step": ms, "ratio": ms / base})
    print(f"MLP 784-256-256-10, batch {args.batch_size}, {args.threads} threads, "
          f"torch {torch.__version__}, {platform.processor() or platform.machine()}")
    print_table(rows, [("model", "model"), ("p", "p"), ("ms_per_step", "ms / step"),
                       ("ratio", "x float step")])
    worst = max(r["ratio"] for r in rows)
    print(f"worst TBN/float ratio {worst:.2f} (target <= 1.5): {'met' if worst <= 1.5 else 'NOT met'}")
    write_json(args.json, {"batch_size": args.batch_size, "threads": args.threads, "rows": rows})


if __name__ == "__main__":
    main()
