"""tools/summary.py: the one closing line of make test, which must never pass silently."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

TOOLS = Path(__file__).resolve().parents[1] / "tools"


def junit(path: Path, tests: int, failures: int = 0, skipped: int = 0, reason: str = "") -> None:
    cases = "".join(f'<testcase name="t{i}"><skipped message="{reason}"/></testcase>' for i in range(skipped))
    path.write_text(f'<testsuites><testsuite name="pytest" tests="{tests}" failures="{failures}" errors="0" '
                    f'skipped="{skipped}">{cases}</testsuite></testsuites>')


def run(results: Path, *steps: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(TOOLS / "summary.py"), str(results), *steps],
                          capture_output=True, text=True)


def test_adds_up_pytest_runs_and_other_checks(tmp_path: Path) -> None:
    junit(tmp_path / "unit.xml", tests=10, skipped=2)
    junit(tmp_path / "hil-a.xml", tests=16)
    (tmp_path / "c-vectors.json").write_text(json.dumps({"passed": 18, "failed": 0, "skipped": 0}))
    r = run(tmp_path, "unit", "hil-a", "c-vectors")
    assert r.returncode == 0
    assert r.stdout.splitlines()[-1] == "tests: 42 passed, 0 failed, 2 skipped"


def test_a_failure_fails_the_run(tmp_path: Path) -> None:
    junit(tmp_path / "unit.xml", tests=10, failures=1)
    r = run(tmp_path, "unit")
    assert r.returncode == 1 and r.stdout.splitlines()[-1] == "tests: 9 passed, 1 failed, 0 skipped"


@pytest.mark.parametrize("case", ["no tests collected", "missing result"])
def test_a_step_that_ran_nothing_is_a_failure(tmp_path: Path, case: str) -> None:
    if case == "no tests collected":
        junit(tmp_path / "unit.xml", tests=0)
    r = run(tmp_path, "unit")
    assert r.returncode == 1
    assert "FAILED" in r.stdout and r.stdout.splitlines()[-1].endswith("1 failed, 0 skipped")


def test_a_result_cut_short_is_a_failure_not_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "unit.xml").write_text('<testsuites><testsuite name="pytest" tests="3"')  # killed mid-write
    r = run(tmp_path, "unit")
    assert r.returncode == 1 and "unreadable result" in r.stdout
    assert r.stdout.splitlines()[-1] == "tests: 0 passed, 1 failed, 0 skipped"


def test_an_all_skipped_board_is_listed_as_skipped_above_the_closing_line(tmp_path: Path) -> None:
    junit(tmp_path / "hil-a.xml", tests=3)
    junit(tmp_path / "hil-b.xml", tests=2, skipped=2, reason="registry unreachable")
    r = run(tmp_path, "hil-a", "hil-b")
    lines = r.stdout.splitlines()
    assert r.returncode == 0
    assert "skipped" in lines[-2] and "registry unreachable" in lines[-2] and "hil-b" in lines[-2]
    assert lines[-1] == "tests: 3 passed, 0 failed, 2 skipped"


def test_each_step_shows_the_seconds_since_the_one_before(tmp_path: Path) -> None:
    import os

    (tmp_path / ".start").touch()
    junit(tmp_path / "unit.xml", tests=2)
    (tmp_path / "lint.json").write_text(json.dumps({"passed": 1}))
    t0 = (tmp_path / ".start").stat().st_mtime
    os.utime(tmp_path / "lint.json", (t0 + 5, t0 + 5))  # lint ran first, then unit
    os.utime(tmp_path / "unit.xml", (t0 + 125, t0 + 125))
    lines = run(tmp_path, "unit", "lint").stdout.splitlines()
    assert "  120 s" in lines[1] and lines[1].split()[0] == "unit"
    assert "    5 s" in lines[2] and lines[2].split()[0] == "lint"


def test_every_skip_is_listed_with_its_reason_and_count(tmp_path: Path) -> None:
    junit(tmp_path / "unit.xml", tests=5, skipped=2, reason="no GPU")
    junit(tmp_path / "hil-a.xml", tests=4, skipped=1, reason="no board attached")
    out = run(tmp_path, "unit", "hil-a").stdout
    listed = out[out.index("== skipped"):out.index("== summary")]
    assert "   2  unit: no GPU" in listed and "   1  hil-a: no board attached" in listed
    assert out.splitlines()[-1] == "tests: 6 passed, 0 failed, 3 skipped"
