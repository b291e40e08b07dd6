"""tbn compare: a trained tbn model beside the TFLite int8 baseline of its architecture
(needs the tf extra and a local MNIST; CI has both)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
pytest.importorskip("tflite_micro", reason="the tf extra is not installed (pip install 'tbn[tf]')")

from tbn.cli.main import main


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, shared_mnist: Path) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("compare")
    models = {}
    for name, opts in (("tbn", ["--p", "4"]), ("float", ["--float"])):
        assert main(["train", "--recipe", "mlp", *opts, "--epochs", "1", "--subset", "2000", "--quiet",
                     "--data-dir", str(shared_mnist), "--out", str(out / name)]) == 0
        models[name] = out / name / "model.pt"
    return models


def test_compare_prints_both_runtimes_and_writes_json(
        runs: dict[str, Path], shared_mnist: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cmp.json"
    assert main(["compare", str(runs["tbn"]), "--teacher", str(runs["float"]), "--n", "300",
                 "--calibration", "64", "--data-dir", str(shared_mnist), "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "TFLite Micro (int8)" in text and "tbn (p=4, int8)" in text
    doc = json.loads(out.read_text())
    tbn, tfl = doc["sides"]
    assert doc["test_images"] == 300 and doc["baseline_from"].startswith("float model")
    # a 784-256-256-10 MLP: int8 TFLite holds 268,800 weight bytes, tbn p=4 about 11 KB
    assert tfl["model_bytes"] > 268_800 > 20 * tbn["model_bytes"]
    assert 0 < tbn["arena_bytes"] < tfl["arena_bytes"]
    assert tbn["accuracy"] > 50 and tfl["accuracy"] > 50
    assert doc["ratios"]["model_bytes"] == pytest.approx(tfl["model_bytes"] / tbn["model_bytes"])


def test_compare_refuses_a_teacher_of_another_architecture(runs: dict[str, Path], tmp_path: Path,
                                                           shared_mnist: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--recipe", "mcu", "--float", "--epochs", "1", "--subset", "256", "--quiet",
                 "--data-dir", str(shared_mnist), "--out", str(tmp_path / "mcu")]) == 0
    assert main(["compare", str(runs["tbn"]), "--teacher", str(tmp_path / "mcu" / "model.pt"),
                 "--data-dir", str(shared_mnist)]) == 2
    assert "needs the same architecture" in capsys.readouterr().err
