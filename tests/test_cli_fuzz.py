"""Argument fuzzing: hypothesis builds command lines from each command's own argparse
definition (any subset of its options, values drawn from good and bad paths, numbers
out of range, NaN, junk text) and runs them in-process. Every one must end as the CLI
promises: exit 0, 1 (a result that is not right: a parity mismatch) or 2 (a clear
message), never another exception, never a hang, never a changed input file.

``TBN_FUZZ_EXAMPLES`` sets the examples per command (default 25; CI's value)."""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import os
import shutil
import signal
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tbn.cli import flash as flash_cli
from tbn.cli import main as main_cli
from tbn.data import MnistNotFoundError
from tbn.data.mnist import find_file
from tbn.train import TrainConfig
from tbn.train.model_file import build_model, save_model

EXAMPLES = int(os.environ.get("TBN_FUZZ_EXAMPLES", "25"))
HANG_SECONDS = 120
# `tbn micropython build` compiles the runtime for six architectures when its cache is cold:
# 137 s on an idle 2-core machine, legitimately past the budget of a command that only reads
HANG_SECONDS_FOR = {"micropython": 600}
VECTORS = Path(__file__).parent / "vectors"
INPUTS = ("model.pt", "m.tbn", "x.npy", "empty.tbn", "bad.tflite")  # the files a command may read
PATHS = (*INPUTS, "dir", "pipe", "missing.tbn", "nowhere/x.tbn", "/dev/null", ".", "")
OUTPUTS = ("-o", "--output", "--out", "--json", "--log")  # options that name what a command writes
# Options whose value decides how long a command runs: kept small, and in range or just out.
VALUES = {
    "--epochs": st.integers(-1, 1), "--subset": st.sampled_from(["-5", "0", "1", "32", "x"]),
    "--n": st.integers(-1, 3), "--calibration": st.integers(-1, 16), "--batch-size": st.integers(-1, 16),
    "--interval": st.sampled_from(["-1", "0", "nan", "inf", "0.001"]),
    # options whose good values are not paths of the work folder: mostly good, some bad
    "--per-layer": st.sampled_from(["0=2", "3=8", "1=0", "fc=4", "=", "1=x"]),
    "--device": st.sampled_from(["cpu", "cpu", "cuda", "tpu"]),
    "--out": st.sampled_from(["new", "new", "dir", ".", "model.pt", "nowhere/run"]),
    "--data-dir": st.sampled_from(["mnist", "mnist", "dir", "nowhere", "pipe"]),
    "--teacher": st.sampled_from(["model.pt", "m.tbn", "missing.pt", "dir", "bad.tflite"]),
}
# no NUL: a shell cannot pass one in an argument (C strings end there)
TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",), exclude_characters="\x00"),
               max_size=12)
VALUE = st.one_of(
    st.sampled_from(PATHS),
    st.integers(-(2**40), 2**40).map(str),
    st.sampled_from(["0", "-1", "nan", "inf", "-inf", "1e308", "0.5", "1e-12"]),
    st.sampled_from(["socket://127.0.0.1:1", "/dev/ttyNOPE", "nope://x", "mps2_an5000"]),
    TEXT,
)


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    sub = next(a for a in main_cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return {**sub.choices, "tbn-flash": flash_cli.build_parser()}


COMMANDS = _subcommands()


def _value(draw: Callable, option: str, action: argparse.Action) -> str:
    """Mostly a value of the option's own kind (so commands get past parsing), else anything."""
    if option in VALUES:
        return str(draw(VALUES[option]))
    if draw(st.integers(0, 7)) == 0:
        return draw(VALUE)
    if action.choices:
        return str(draw(st.sampled_from(sorted(map(str, action.choices)))))
    kind = getattr(action.type, "__name__", "")
    if kind in ("int", "count", "tcp_port"):
        return str(draw(st.integers(-2, 70000)))
    if kind in ("float", "seconds"):
        return draw(st.sampled_from(["0", "1e-3", "0.5", "4", "-1", "nan", "inf"]))
    return draw(st.sampled_from(INPUTS if draw(st.integers(0, 2)) else PATHS))


# Nested actions that run until Ctrl-C by design (their argument errors are in test_bad_input.py).
UNBOUNDED = {"boot"}


def _options(draw: Callable, parser: argparse.ArgumentParser) -> list[str]:
    argv: list[str] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):  # `tbn micropython ACTION ...`
            name = draw(st.sampled_from(sorted(set(action.choices) - UNBOUNDED)))
            argv += [name, *_options(draw, action.choices[name])]
            continue
        # each option in a third of the lines, a required one in all but a few
        if action.option_strings and (draw(st.integers(0, 9)) == 0 if action.required
                                      else draw(st.integers(0, 2)) > 0):
            continue
        if isinstance(action, argparse._HelpAction | argparse._VersionAction):
            continue
        if not action.option_strings:  # a positional: always given
            argv.append(_value(draw, "", action))
            continue
        option = draw(st.sampled_from(action.option_strings))
        if action.nargs == 0:
            argv.append(option)
        elif option in VALUES or option in OUTPUTS or draw(st.booleans()):
            argv += [option, _value(draw, option, action)]
        else:
            argv.append(f"{option}={_value(draw, option, action)}")
    return argv


@st.composite
def command_lines(draw: Callable, name: str) -> list[str]:
    argv = ([] if name == "tbn-flash" else [name]) + _options(draw, COMMANDS[name])
    if name == "train":  # whatever else was drawn, train on a handful of images
        for option, value in (("--epochs", "1"), ("--subset", "32"), ("--batch-size", "16")):
            if not any(a.split("=")[0] == option for a in argv):
                argv += [option, value]
    return argv


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("fuzz")
    model, _ = build_model(TrainConfig(p=4))
    save_model(model, TrainConfig(p=4), d / "model.pt")
    shutil.copy(VECTORS / "mlp_int8.tbn", d / "m.tbn")
    np.save(d / "x.npy", np.random.default_rng(0).standard_normal((2, 1, 8, 8)).astype(np.float32))
    (d / "empty.tbn").write_bytes(b"")
    (d / "bad.tflite").write_bytes(b"\x1c\0\0\0TFL3" + bytes(range(256)))  # a flatbuffer's header, then junk
    (d / "dir").mkdir()
    with contextlib.suppress(MnistNotFoundError):  # "mnist": the local copy, where there is one
        (d / "mnist").symlink_to(find_file("t10k-images-idx3-ubyte", download=False).parent)
    return d


class Hang(Exception):
    pass


@contextlib.contextmanager
def _alarm(seconds: int) -> Iterator[None]:
    def ring(*_: object) -> None:
        raise Hang(f"no answer within {seconds} s")

    old = signal.signal(signal.SIGALRM, ring)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _digests(d: Path) -> dict[str, str]:
    return {f: hashlib.sha256((d / f).read_bytes()).hexdigest() for f in INPUTS}


def _run(name: str, argv: list[str], template: Path) -> tuple[int, str]:
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp) / "w"
        shutil.copytree(template, d)
        os.mkfifo(d / "pipe")
        before = _digests(d)
        written = {argv[i + 1] for i, a in enumerate(argv[:-1]) if a in OUTPUTS}
        written |= {a.split("=", 1)[1] for a in argv if a.split("=", 1)[0] in OUTPUTS and "=" in a}
        out = io.StringIO()
        entry = flash_cli.main if name == "tbn-flash" else main_cli.main
        with contextlib.chdir(d), contextlib.redirect_stdout(out), contextlib.redirect_stderr(out), \
                _alarm(HANG_SECONDS_FOR.get(name, HANG_SECONDS)):
            try:
                code = entry(argv)
            except SystemExit as e:  # argparse: 2 for a bad argument, 0 for --help/--version
                code = e.code if isinstance(e.code, int) else 2
        after = _digests(d)
        changed = [f for f in INPUTS if before[f] != after[f] and f not in written]
        assert not changed, f"{argv} changed {changed}"
    return code, out.getvalue()


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_any_command_line_ends_cleanly(name: str, template: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TBN_OFFLINE", "1")  # nothing may download
    monkeypatch.setenv("TBN_BACKEND", "")
    monkeypatch.setenv("TQDM_DISABLE", "1")

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=os.environ.get("CI") == "true",
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(command_lines(name))
    def check(argv: list[str]) -> None:
        code, out = _run(name, argv, template)
        assert code in (0, 1, 2), (argv, code, out)
        assert "Traceback" not in out or "--debug" in argv, (argv, out)
        if code == 2:
            assert "error" in out, (argv, out)  # one clear message

    check()
