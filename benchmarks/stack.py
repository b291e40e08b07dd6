"""The firmware's worst-case stack on each 32-bit board, from GCC's call graph.

Compiles the app, the board's HAL, the core's start-up code and the C runtime as the firmware
build does (``-Os``, the board's flags and defines) with ``-fcallgraph-info=su``: every
function's frame and its calls. The worst case is the deepest path from ``main``, plus the
deepest from an interrupt handler and the core's exception frame (an interrupt can come at the
deepest point). An upper bound: an indirect call (the kernel table, a kernel's choice of loop,
the link's handler) may reach any function whose address the firmware takes (its relocations
outside calls say which); a function GCC sees without a frame (the naked assembly loops) counts
what its first instructions push, and a library call (memcpy, the 64-bit division)
``ALLOWANCE`` bytes.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from _table import print_table, write_json
from tbn.boards import BoardError, load_board
from tbn.paths import c_runtime, root

ROOT = root()
FIRMWARE = ROOT / "firmware"
BOARDS = ("mps2_an386", "mps2_an500", "netduinoplus2", "nucleo_f767zi", "sifive_e")
# per arch: the compiler, its flags beyond the board's, and the bytes the core stacks on an
# interrupt (Cortex-M: the registers, the FPU's included; RISC-V: none, the handler's frame has them)
ARCHES = {"cortexm": ("arm-none-eabi", ["-mthumb"], 104),
          "riscv": ("riscv64-unknown-elf", ["--specs=picolibc.specs"], 0)}
ALLOWANCE = 64  # bytes: a library call's frame (memcpy, the 64-bit division), not compiled here
NODE = re.compile(r'node: \{ title: "([^"]+)" label: "[^"\\]*\\n([^"\\]*):\d+:\d+\\n(\d+) bytes')
EDGE = re.compile(r'edge: \{ sourcename: "([^"]+)" targetname: "([^"]+)"')


@dataclass
class Graph:
    frame: dict[str, int] = field(default_factory=dict)  # function -> its own frame (bytes)
    calls: dict[str, set[str]] = field(default_factory=dict)  # "__indirect_call": through a pointer
    taken: set[str] = field(default_factory=set)  # functions whose address is taken
    runtime: set[str] = field(default_factory=set)  # the C runtime's functions (the rest: app, HAL)

    def deepest(self, fn: str, memo: dict, active: set[str]) -> tuple[int, tuple[str, ...]]:
        """The deepest stack from ``fn`` down (bytes) and the calls that reach it."""
        if fn in memo:
            return memo[fn]
        active.add(fn)
        best: tuple[int, tuple[str, ...]] = (0, ())
        for callee in self.calls.get(fn, ()):
            # through a pointer: a function whose address its own part (runtime or app) takes
            side = fn in self.runtime
            targets = ([t for t in self.taken if (t in self.runtime) == side] if callee == "__indirect_call"
                       else [callee])
            for t in targets:
                if t not in active:  # recursion: none in the firmware, but never loop
                    best = max(best, self.deepest(t, memo, active))
        active.discard(fn)
        memo[fn] = self.frame.get(fn, ALLOWANCE) + best[0], (fn, *best[1])  # not built here: a library's
        return memo[fn]


def _board(board: str) -> tuple[str, list[str], Path, str, int]:
    """The compiler prefix, flags, arch folder, HAL and exception frame of ``board``'s firmware
    build (firmware/scripts/board.py)."""
    b, spec = load_board(board), json.loads((ROOT / "boards" / f"{board}.json").read_text())
    t = spec["tbn"]
    prefix, extra, exception = ARCHES[t["arch"]]
    cpu = [f"-mcpu={spec['build']['cpu']}"] if t["arch"] == "cortexm" else []
    irq = t.get("uart_irq", 0)
    defines = {"TBN_BOARD_NAME": f'"{board}"', "TBN_CLOCK_HZ": f"{b.clock_hz}u",
               "TBN_SLOT_BYTES": f"{b.slot_bytes}u", "TBN_ARENA_BYTES": f"{b.arena_bytes}u",
               "TBN_COST_ICOUNT": "1", "TBN_FRAME_TIMEOUT_MS": "100u", "TBN_UART_IRQ": f"{irq}u",
               "TBN_PROTOCOL_MLPERF": "0", "TBN_EMBEDDED_MODEL": "0"}
    defines |= {d: f"{t[k]}u" for k, d in (("timer_hz", "TBN_TIMER_HZ"), ("frame_bytes", "TBN_FRAME_BYTES"),
                                          ("rx_ring_bytes", "TBN_RX_RING_BYTES")) if t.get(k) is not None}
    arch = FIRMWARE / "arch" / t["arch"]
    flags = [*c_runtime().flags, "-Os", "-ffunction-sections", *cpu, *extra, *t.get("cflags", []),
             f"-I{c_runtime().include}", f"-I{FIRMWARE / 'app'}", f"-I{arch}", "-fcallgraph-info=su",
             *(f"-D{k}={v}" for k, v in defines.items())]
    return prefix, flags, arch, t["hal"], exception


def _pushes(prefix: str, obj: Path, name: str) -> int:
    """The bytes a function GCC reports no frame for puts on the stack (a naked function's own
    push and ``sub sp``): its first instructions, disassembled."""
    asm = subprocess.run([f"{prefix}-objdump", "-d", "-j", f".text.{name}", str(obj)], capture_output=True,
                         text=True).stdout
    pushed = 0
    for line in asm.splitlines()[:12]:
        if m := re.search(r"\t(?:push|stmdb\s+sp!,)\s*\{([^}]*)\}", line):
            pushed += 4 * len(m.group(1).split(","))
        elif m := re.search(r"\tsub(?:\.w)?\s+sp,\s*(?:sp,\s*)?#(\d+)", line):
            pushed += int(m.group(1))
        elif m := re.search(r"\taddi\s+sp,\s*sp,\s*-(\d+)", line):
            pushed += int(m.group(1))
    return pushed


def graph(board: str) -> tuple[Graph, int]:
    """``board``'s firmware as one call graph, and the bytes its core stacks on an interrupt."""
    prefix, flags, arch, hal, exception = _board(board)
    sources = [*sorted((FIRMWARE / "app").glob("*.c")), FIRMWARE / "hal" / f"{hal}.c",
               *sorted(arch.glob("*.c")), *c_runtime().sources]
    g = Graph()
    with tempfile.TemporaryDirectory() as tmp:
        for src in sources:
            obj = Path(tmp) / f"{src.parent.name}-{src.stem}.o"
            r = subprocess.run([f"{prefix}-gcc", *flags, "-c", str(src), "-o", str(obj)],
                               capture_output=True, text=True, cwd=tmp)
            if r.returncode:
                raise SystemExit(f"stack: {src.name} did not compile for {board}:\n{r.stderr[-2000:]}")
            text = obj.with_suffix(".ci").read_text()
            local = {title.split(":")[-1]: title for title, _, _ in NODE.findall(text)}
            for title, path, size in NODE.findall(text):
                g.frame[title] = int(size) or _pushes(prefix, obj, title.split(":")[-1])
                if "/lib/tbn/" in path:
                    g.runtime.add(title)
            for src_fn, dst in EDGE.findall(text):
                g.calls.setdefault(src_fn, set()).add(dst)
            relocs = subprocess.run([f"{prefix}-objdump", "-r", str(obj)], capture_output=True, text=True,
                                    check=True).stdout
            for kind, sym in re.findall(r"^[0-9a-f]+ (R_\w+)\s+(\S+)$", relocs, re.M):
                if not re.search(r"CALL|JUMP|JAL|BRANCH|RELAX|ALIGN", kind) and sym in local:
                    g.taken.add(local[sym])  # its address is taken: an indirect call may reach it
    return g, exception


def measure(board: str) -> dict:
    """The worst-case stack of ``board``'s firmware: from main, from an interrupt, and in all."""
    (g, exception), memo = graph(board), {}
    main, main_path = g.deepest("main", memo, set())
    handlers = [f for f in g.frame if re.search(r"(_Handler|_IRQHandler|_isr|^arch_trap)$", f)]
    isr, isr_path = max((g.deepest(f, memo, set()) for f in handlers), default=(0, ()))
    return {"board": board, "stack_bytes": load_board(board).stack_bytes, "main_bytes": main,
            "isr_bytes": isr, "worst_bytes": main + isr + exception, "main_path": list(main_path),
            "isr_path": list(isr_path)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--boards", nargs="+", default=list(BOARDS))
    ap.add_argument("--json", type=Path, help="write the table as JSON here")
    args = ap.parse_args()
    for prefix, _, _ in ARCHES.values():
        if not shutil.which(f"{prefix}-gcc"):
            raise SystemExit(f"{prefix}-gcc is not installed (make deps installs the Debian toolchains)")
    try:
        boards = [load_board(b) for b in args.boards]
    except BoardError as e:
        raise SystemExit(f"stack: {e}") from None
    for b in boards:
        arch = json.loads((ROOT / "boards" / f"{b.name}.json").read_text())["tbn"]["arch"]
        if arch not in ARCHES:
            raise SystemExit(f"stack: {b.name} is {arch}, not a 32-bit core this bounds (Cortex-M, RISC-V); "
                             "the Uno's stack is measured in simavr (docs/results.md)")
    rows = [measure(b.name) for b in boards]
    for r in rows:
        r["deepest"] = " > ".join(f.split(":")[-1] for f in r["main_path"][-4:])
    print("worst-case stack (bytes), GCC's call graph at -Os")
    print_table(rows, [("board", "board"), ("main_bytes", "from main"), ("isr_bytes", "interrupt"),
                       ("worst_bytes", "worst, with the exception frame"), ("stack_bytes", "stack reserved"),
                       ("deepest", "deepest frames")])
    write_json(args.json, {"boards": rows})


if __name__ == "__main__":
    main()
