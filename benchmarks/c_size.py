"""Cross-compile the C runtime (warnings are errors) and report its .text size per target.

Targets: Cortex-M0+, Cortex-M4 (hard float), Cortex-M7 (hard float) with arm-none-eabi-gcc,
and rv32imac with riscv64-unknown-elf-gcc, all at -Os. Goal: runtime <= 12 KB on Cortex-M4.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

from _table import print_table, write_json
from tbn.paths import c_runtime, root

ROOT = root()
C = c_runtime()
COMMON = [*C.flags, "-Os", "-ffunction-sections", "-fdata-sections", f"-I{C.include}"]
TARGETS = {
    "cortex-m0plus": ("arm-none-eabi", ["-mcpu=cortex-m0plus", "-mthumb"]),
    "cortex-m4": ("arm-none-eabi", ["-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard"]),
    "cortex-m7": ("arm-none-eabi", ["-mcpu=cortex-m7", "-mthumb", "-mfpu=fpv5-d16", "-mfloat-abi=hard"]),
    "rv32imac": ("riscv64-unknown-elf", ["-march=rv32imac", "-mabi=ilp32", "--specs=picolibc.specs"]),
}


def build(target: str, out: Path) -> dict:
    prefix, flags = TARGETS[target]
    gcc, size = shutil.which(f"{prefix}-gcc"), shutil.which(f"{prefix}-size")
    if not gcc or not size:
        raise SystemExit(f"{prefix}-gcc is not installed (make deps installs the Debian toolchains)")
    objs = []
    for src in C.sources:
        obj = out / target / (src.stem + ".o")
        obj.parent.mkdir(parents=True, exist_ok=True)
        r = subprocess.run([gcc, *COMMON, *flags, "-c", str(src), "-o", str(obj)],
                           capture_output=True, text=True)
        if r.returncode != 0 or r.stderr.strip():
            raise SystemExit(f"{target}: {src.name} did not compile cleanly:\n{r.stderr}")
        objs.append(str(obj))
    lines = subprocess.run([size, *objs], capture_output=True, text=True, check=True).stdout.splitlines()[1:]
    text = sum(int(ln.split()[0]) for ln in lines)
    data = sum(int(ln.split()[1]) + int(ln.split()[2]) for ln in lines)
    return {"target": target, "compiler": Path(gcc).name, "text_bytes": text, "data_bss_bytes": data}


# the runtime's flash budget on Cortex-M4 with every kernel (issue: convolutions faster than int8)
M4_TEXT_GOAL = 24 * 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "build" / "cross")
    ap.add_argument("--json")
    args = ap.parse_args()
    rows = [build(t, args.out) for t in TARGETS]
    print("tbn C runtime, -Os, warnings as errors (loader, interpreter, every kernel)")
    print_table(rows, [("target", "target"), ("compiler", "compiler"), ("text_bytes", ".text bytes"),
                       ("data_bss_bytes", ".data+.bss bytes")])
    m4 = next(r for r in rows if r["target"] == "cortex-m4")["text_bytes"]
    met = "met" if m4 <= M4_TEXT_GOAL else "NOT met"
    print(f"cortex-m4 .text {m4} bytes (goal <= {M4_TEXT_GOAL}): {met}")
    write_json(args.json, {"rows": rows})


if __name__ == "__main__":
    sys.exit(main())
