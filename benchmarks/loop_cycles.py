"""Cycles per iteration of the C runtime's assembly hot loops on the Cortex-M4 and M7, from
``llvm-mca`` (LLVM's machine-code analyser, its models of those cores' pipelines), beside the
instructions per iteration that QEMU's icount sees, and per multiply-accumulate where an
iteration does MACs.

The loops are read from the runtime's sources (``firmware/lib/tbn/src/kernels``): each naked
function's assembly from its loop label ``1:`` to the branch back, so the figures follow the
code. llvm-mca assumes every load hits (a zero-wait-state SRAM or TCM, as the M7's DTCM); real
flash wait states add to loads from flash (the tile bits).
"""

from __future__ import annotations

import argparse
import functools
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from _table import print_table, write_json
from tbn.paths import c_runtime

# function -> (the work of one iteration, MACs in it: 0 where it does none)
LOOPS = {
    "rows_i8_thumb2": ("a row's 32 inputs, narrow tables", 32),
    "rows_i8_wide_thumb2": ("a row's 32 inputs, wide tables", 32),
    "widen_one_dsp": ("16 wide-table entries", 0),
    "requant_rows_thumb2": ("one output's requantisation", 0),
    "rq16_rows_i32_thumb2": ("one output's RQ16 requantisation", 0),
    "rq16_rows_i32_ssat_thumb2": ("one output's RQ16, qmin -128", 0),
    "rq16_chan_thumb2": ("one output's RQ16, a channel's constants", 0),
    "rq16_chan_ssat_thumb2": ("one output's RQ16, a channel's constants, qmin -128", 0),
    "sums3x3_s1": ("one depthwise 3x3 output", 9),
    "rows_pair_thumb2": ("a row's 32 inputs at two positions, pair tables", 64),
    "rq16_pairs_i32_thumb2": ("two outputs' RQ16 from packed sums", 0),
    "sums3x3_pairs_s1": ("two depthwise 3x3 outputs, stride 1", 18),
    "sums3x3_pairs_s2": ("two depthwise 3x3 outputs, stride 2", 18),
    "sums_octets": ("two inputs at eight positions, pointwise", 16),
    "rq16_quads_thumb2": ("four outputs' RQ16 from 16-bit sums", 0),
    "sums_rows3_s1": ("a window row's three taps at eight positions, stride 1", 24),
    "sums_rows3_s2": ("a window row's three taps at eight positions, stride 2", 24),
    "sums3x3_pairs16_s1": ("two depthwise 3x3 outputs, stride 1, 16-bit sums", 18),
}
CPUS = ("cortex-m4", "cortex-m7")


@functools.cache
def _preprocessed(path: Path) -> str:
    """A kernel source after the C preprocessor for the Cortex-M7 (with the DSP extension), so
    that each naked function's assembly is the string literals its macros expand to."""
    include = c_runtime().include
    cmd = ["arm-none-eabi-gcc", "-E", "-P", "-mcpu=cortex-m7", "-mthumb", f"-I{include}", str(path)]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"loop_cycles: the preprocessor failed on {path}:\n{out.stderr[-2000:]}")
    return out.stdout


def _naked_asm(source: str, name: str) -> list[str]:
    """The instruction strings of naked function ``name`` in preprocessed ``source`` (its
    definition comes before any use)."""
    m = re.search(rf"naked, noinline\)\)[^;{{]*?\b{re.escape(name)}\s*\(", source)
    if m is None:
        raise SystemExit(f"loop_cycles: {name} is in no kernel source")
    asm = source[source.index("__asm__", m.end()):]
    asm = asm[:asm.index(");")]
    text = "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', asm))
    return [s.strip() for s in text.split("\\n")]


def loop_body(name: str) -> list[str]:
    """The instructions from ``1:`` to the branch back to it."""
    for path in c_runtime().sources:
        if name in path.read_text():
            lines = _naked_asm(_preprocessed(path), name)
            start = lines.index("1:") + 1
            end = next(i for i in range(start, len(lines)) if lines[i].endswith(" 1b"))
            # instructions only: labels inside (a branch target such as 4:) execute nothing
            return [ln for ln in lines[start:end + 1] if ln and not re.fullmatch(r"\d+:", ln)]
    raise SystemExit(f"loop_cycles: {name} is in no kernel source")


def _for_mca(body: list[str]) -> str:
    """``body`` as llvm-mca takes it: branches to one label, and no IT blocks (it refuses them):
    each conditional instruction counts as executed, which can only overstate the cycles."""
    lines = []
    for line in body:
        if re.match(r"it\w*\s", line):
            continue
        line = re.sub(r"\s\d[bf]$", " loop", line)
        line = re.sub(r"^(mov|add|sub)(lt|gt|ge|le|eq|ne)\s", r"\1 ", line)
        lines.append(line)
    return "loop:\n" + "\n".join(lines) + "\n"


def mca_cycles(body: list[str], cpu: str, iterations: int = 200) -> float:
    """llvm-mca's cycles per iteration of ``body`` on ``cpu``."""
    text = _for_mca(body)
    with tempfile.NamedTemporaryFile("w", suffix=".s") as f:
        f.write(text)
        f.flush()
        out = subprocess.run(["llvm-mca", "-mtriple=thumbv7em-none-eabi", f"-mcpu={cpu}",
                              f"-iterations={iterations}", f.name], capture_output=True, text=True)
    m = re.search(r"Total Cycles:\s+(\d+)", out.stdout)
    if out.returncode or m is None:
        raise SystemExit(f"llvm-mca failed on {cpu}:\n{out.stderr[-2000:]}")
    return int(m.group(1)) / iterations


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", help="also write the table here")
    args = ap.parse_args(argv)
    for tool, package in (("llvm-mca", "llvm"), ("arm-none-eabi-gcc", "gcc-arm-none-eabi")):
        if shutil.which(tool) is None:
            print(f"{tool} is not installed (Debian: apt-get install {package}; make deps)", file=sys.stderr)
            return 2
    rows = []
    for name, (work, macs) in LOOPS.items():
        body = loop_body(name)
        row = {"loop": name, "work": work, "instructions": len(body)}
        for cpu in CPUS:
            row[cpu] = mca_cycles(body, cpu)
            row[f"{cpu} per MAC"] = round(row[cpu] / macs, 3) if macs else "-"
        rows.append(row)
    print("cycles per iteration (llvm-mca), instructions per iteration (as QEMU counts them)")
    print_table(rows, [("loop", "loop"), ("work", "an iteration"), ("instructions", "instructions"),
                       *[(c, f"{c} cycles") for c in CPUS],
                       *[(f"{c} per MAC", f"{c} per MAC") for c in CPUS]])
    write_json(args.json, {"rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
