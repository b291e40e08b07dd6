"""Run the whole hardware-in-the-loop suite many times in a row on several boards at once.

Each board runs ``pytest tests/hil --board B`` ``--runs`` times, one run after the other,
and stops at its first failing run; the boards run side by side. ``--after`` targets (the
MicroPython ones, which share the MicroPython tree they build in) take their turns one after
another, beside the boards. ``--load`` adds a parallel
build of the C runtime, over and over, for as long as the runs last, so the suite is also
shown to hold on a busy machine. Ends with the closing line of tools/summary.py.

    python tools/hil_repeat.py --runs 20 --load mps2_an500 mps2_an386 netduinoplus2 --after mpy_an385 mpy_unix
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from summary import Result, closing_line, from_junit

from tbn.paths import c_runtime, root

ROOT = root()


def run_board(board: str, runs: int, results: Path, out: list[Result], lock: threading.Lock) -> None:
    total = Result(f"hil-repeat-{board}")
    for k in range(1, runs + 1):
        xml = results / f"{board}-run{k:02d}.xml"
        log = results / f"{board}-run{k:02d}.log"
        start = time.monotonic()
        with open(log, "wb") as f:
            rc = subprocess.call(
                [sys.executable, "-m", "pytest", "tests/hil", "--board", board, "-q", "-ra",
                 f"--junitxml={xml}"], cwd=ROOT, stdout=f, stderr=subprocess.STDOUT)
        run = from_junit(board, xml) if xml.is_file() else Result(board, failed=1, note="no result")
        if rc != 0 and not run.failed:
            run.failed, run.note = 1, f"pytest exit status {rc}"
        for name in ("passed", "failed", "skipped"):
            setattr(total, name, getattr(total, name) + getattr(run, name))
        with lock:
            state = "FAILED" if run.failed else "ok"
            print(f"{board} run {k}/{runs}: {state}, {run.passed} passed, {run.failed} failed, "
                  f"{run.skipped} skipped in {time.monotonic() - start:.0f} s", flush=True)
            if run.failed:
                print(f"{board}: stopping at the first failure; its log: {log}", flush=True)
        if run.failed:
            total.note = f"failed in run {k} of {runs} (log {log})"
            break
    else:
        total.note = f"{runs} runs in a row"
    out.append(total)


def load_until(stop: threading.Event, workdir: Path) -> int:
    """Compile every C runtime source at once (a parallel build), again and again, until ``stop``."""
    cc = os.environ.get("CC", "cc")
    c = c_runtime()
    builds = 0
    while not stop.is_set():
        jobs = [subprocess.Popen([cc, "-O2", *c.flags, f"-I{c.include}", "-c", str(src),
                                  "-o", str(workdir / f"{i}.o")]) for i, src in enumerate(c.sources)]
        for job in jobs:
            job.wait()
        builds += 1
    return builds


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("boards", nargs="+")
    ap.add_argument("--after", nargs="*", default=[], metavar="TARGET",
                    help="targets run one after another, beside the boards (MicroPython's)")
    ap.add_argument("--runs", type=int, default=20, help="runs per board (at least 1)")
    ap.add_argument("--load", action="store_true", help="keep a parallel C build running meanwhile")
    ap.add_argument("--results", type=Path, default=ROOT / "build" / "results" / "repeat")
    args = ap.parse_args(argv)
    if args.runs < 1:
        ap.error(f"--runs must be at least 1, got {args.runs}")
    args.results.mkdir(parents=True, exist_ok=True)
    out: list[Result] = []
    lock = threading.Lock()
    stop = threading.Event()
    builds: list[int] = []
    with tempfile.TemporaryDirectory() as tmp:
        loader = threading.Thread(target=lambda: builds.append(load_until(stop, Path(tmp))))
        if args.load:
            loader.start()
        threads = [threading.Thread(target=run_board, args=(b, args.runs, args.results, out, lock))
                   for b in args.boards]
        if args.after:
            threads.append(threading.Thread(target=lambda: [run_board(t, args.runs, args.results, out, lock)
                                                            for t in args.after]))
        start = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        stop.set()
        if args.load:
            loader.join()
    targets = [*args.boards, *args.after]
    order = {f"hil-repeat-{b}": i for i, b in enumerate(targets)}
    out.sort(key=lambda r: order[r.step])
    load = f", beside {builds[0]} parallel builds of the C runtime" if builds else ""
    after = f" (then {', '.join(args.after)} in turn)" if args.after else ""
    took = time.monotonic() - start
    print(f"== hil-repeat: {len(args.boards)} boards side by side{after} in {took:.0f} s{load}")
    for r in out:
        print(f"  {r.line}")
    print(closing_line(out))
    return 1 if any(r.failed for r in out) else 0


if __name__ == "__main__":
    sys.exit(main())
