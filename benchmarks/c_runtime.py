"""Instructions per inference of the C runtime (host build, callgrind) for the MNIST MLP at
p = 1, 4, 8, 16, with f32 and int8 activations.

Deterministic: valgrind counts instructions, not time. Cost per inference is
(Ir of 11 inferences - Ir of 1) / 10, so loading and setup cancel out. Goal: cost at p=k
<= cost at p=1 / k * 1.1 plus a fixed overhead, the overhead fitted as b in cost = a/p + b.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from _table import print_table, write_json
from tbn import compile_model, tile_model
from tbn.paths import root
from tbn.train.models import mlp

ROOT = root()
BENCH = ROOT / "build" / "host" / "tbn_bench"


def instructions(model: Path, n: int) -> int:
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "callgrind.out"
        subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", str(BENCH), str(model),
                        str(n)], check=True, capture_output=True)
        summary = re.search(r"^summary:\s*(\d+)", out.read_text(), re.M)
        if summary is None:
            raise RuntimeError("callgrind wrote no summary")
        return int(summary.group(1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json")
    args = ap.parse_args()
    if shutil.which("valgrind") is None:
        sys.exit("c_runtime.py counts instructions with valgrind, which is not installed "
                 "(Debian: apt-get install valgrind)")
    subprocess.run(["make", "-s", "-C", str(ROOT), str(BENCH.relative_to(ROOT))], check=True)
    rows = []
    with tempfile.TemporaryDirectory() as d:
        for acts in ("f32", "int8"):
            for p in (1, 4, 8, 16):
                torch.manual_seed(0)
                model = mlp()
                tile_model(model, p=p)
                calib = torch.randn(64, 1, 28, 28) if acts == "int8" else None
                path = Path(d) / f"mlp_p{p}_{acts}.tbn"
                path.write_bytes(compile_model(model.eval(), torch.zeros(1, 1, 28, 28), activations=acts,
                                             calibration=calib))
                cost = (instructions(path, 11) - instructions(path, 1)) / 10
                rows.append({"activations": acts, "p": p, "bytes": path.stat().st_size,
                             "instructions": int(cost)})
    for acts in ("f32", "int8"):
        sel = [r for r in rows if r["activations"] == acts]
        base = sel[0]["instructions"]
        inv_p = np.array([1 / r["p"] for r in sel])
        a, b = np.polyfit(inv_p, [r["instructions"] for r in sel], 1)
        for r in sel:
            r["x_p1"] = r["instructions"] / base
            r["goal"] = int(base / r["p"] * 1.1 + b)
            r["met"] = "yes" if r["instructions"] <= r["goal"] else "no"
        print(f"{acts}: fitted cost = {a:.0f} / p + {b:.0f} instructions (fixed overhead {b:.0f})")
    print_table(rows, [("activations", "activations"), ("p", "p"), ("bytes", ".tbn bytes"),
                       ("instructions", "instructions / inference"), ("x_p1", "x p=1"),
                       ("goal", "goal (p1/p x1.1 + overhead)"), ("met", "met")])
    write_json(args.json, {"rows": rows})


if __name__ == "__main__":
    sys.exit(main())
