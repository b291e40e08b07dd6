"""Add up every check of a `make test` (or `make check`) run into one closing line.

Each step leaves its result in the results folder: pytest runs a JUnit XML file
(``--junitxml``), the other checks a small JSON file (``{"passed": 18, "failed": 0,
"skipped": 0, "note": "..."}``). This prints one line per step, then

    tests: N passed, N failed, N skipped

Each line also gives the seconds since the previous step left its result (or since
``RESULTS_DIR/.start``, which ``make test`` touches first): where CI's time goes.

It exits 1 when anything failed, when an expected step left no result (it crashed or never
ran), or when a pytest run executed no test at all. Every skipped test's reason is listed,
counted per step, above the table; a step whose tests were all skipped is listed as skipped.

    python tools/summary.py RESULTS_DIR STEP [STEP ...]
"""

from __future__ import annotations

import argparse
import json
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Result:
    step: str
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    note: str = ""
    seconds: float | None = None  # since the step before it finished
    skip_reasons: dict[str, int] = field(default_factory=dict)  # pytest's reason -> how many

    @property
    def line(self) -> str:
        counts = [f"{n} {what}" for n, what in ((self.passed, "passed"), (self.failed, "failed"),
                                                (self.skipped, "skipped")) if n]
        if self.failed:
            state = "FAILED"
        elif self.passed == 0 and self.skipped:
            state = "skipped"
        else:
            state = "ok"
        took = f"{self.seconds:6.0f} s" if self.seconds is not None else " " * 8
        text = f"{self.step:<24} {state:<8} {took}  {', '.join(counts) or 'nothing counted'}"
        return f"{text}  ({self.note})" if self.note else text


def from_junit(step: str, path: Path) -> Result:
    """A pytest run's counts; 'no test executed' is a failure, never a pass."""
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    tests = sum(int(s.get("tests", 0)) for s in suites)
    failed = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
    skipped = sum(int(s.get("skipped", 0)) for s in suites)
    reasons = Counter(el.get("message", "") or "no reason given" for el in root.iter("skipped"))
    result = Result(step, passed=tests - failed - skipped, failed=failed, skipped=skipped,
                    skip_reasons=dict(reasons))
    if tests == 0:
        result.failed, result.note = 1, "pytest collected no test"
    elif result.passed == 0 and not failed:
        result.note = "; ".join(sorted(reasons))[:300]
    return result


def from_json(step: str, path: Path) -> Result:
    doc = json.loads(path.read_text())
    return Result(step, int(doc.get("passed", 0)), int(doc.get("failed", 0)), int(doc.get("skipped", 0)),
                  str(doc.get("note", "")))


def collect(results: Path, steps: list[str]) -> list[Result]:
    out, written = [], {}
    for step in steps:
        xml, js = results / f"{step}.xml", results / f"{step}.json"
        try:
            if xml.is_file():
                out.append(from_junit(step, xml))
                written[step] = xml.stat().st_mtime
            elif js.is_file():
                out.append(from_json(step, js))
                written[step] = js.stat().st_mtime
            else:
                out.append(Result(step, failed=1, note="left no result: it failed before its checks ran"))
        except (ET.ParseError, ValueError, AttributeError) as e:  # a run killed mid-write
            out.append(Result(step, failed=1, note=f"unreadable result: {e}"))
    _durations(out, written, results / ".start")
    return out


def _durations(out: list[Result], written: dict[str, float], start: Path) -> None:
    """Each step's seconds since the result written before its own (steps run one after
    another, in whatever order make takes them)."""
    previous = start.stat().st_mtime if start.is_file() else None
    by_step = {r.step: r for r in out}
    for step, t in sorted(written.items(), key=lambda kv: kv[1]):
        if previous is not None:
            by_step[step].seconds = t - previous
        previous = t


def closing_line(results: list[Result]) -> str:
    passed, failed, skipped = (sum(getattr(r, k) for r in results) for k in ("passed", "failed", "skipped"))
    return f"tests: {passed} passed, {failed} failed, {skipped} skipped"


def skipped_lines(results: list[Result]) -> list[str]:
    """Why each skipped test was skipped: one line per step and reason, with its count."""
    return [f"  {n:4d}  {r.step}: {reason}" for r in results for reason, n in sorted(r.skip_reasons.items())]


def report(results: list[Result]) -> int:
    """Print why tests were skipped, the table and the closing line; the exit status: 1 when
    anything failed."""
    lines = skipped_lines(results)
    if lines:
        print("== skipped, and why")
        print("\n".join(lines))
    print("== summary")
    for r in results:
        print(f"  {r.line}")
    print(closing_line(results))
    return 1 if any(r.failed for r in results) else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", type=Path, help="the folder the steps wrote their results to")
    ap.add_argument("steps", nargs="+", help="every step that should have left a result, in order")
    args = ap.parse_args(argv)
    return report(collect(args.results, args.steps))


if __name__ == "__main__":
    sys.exit(main())
