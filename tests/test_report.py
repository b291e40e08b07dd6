"""tbn report: the files it writes, and that each plot shows exactly the numbers of the
report.json written beside it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("matplotlib", reason="the report extra is not installed (pip install 'tbn[report]')")

from tbn.cli.main import main
from tbn.plots import write_report

ROOT = Path(__file__).resolve().parents[1]


def _runs(tmp_path: Path) -> list[Path]:
    dirs = []
    for p, bits, acc in ((None, 32.06, 0.9902), (1, 1.062, 0.9869), (4, 0.32, 0.983), (8, 0.197, 0.9778)):
        d = tmp_path / f"run{p}"
        d.mkdir()
        (d / "metrics.json").write_text(json.dumps({"recipe": "mlp", "p": p, "bits_per_weight": bits,
                                                     "test_accuracy": acc}))
        dirs.append(d)
    return dirs


def _inputs(tmp_path: Path) -> list[str]:
    compare = tmp_path / "compare.json"
    compare.write_text(json.dumps({"recipe": "mlp", "sides": [
        {"name": "tbn (p=4, int8)", "accuracy": 97.6}, {"name": "TFLite Micro (int8)", "accuracy": 98.3}]}))
    profile = tmp_path / "infer.json"
    profile.write_text(json.dumps({"device": {"cost_unit": "instructions"}, "profile": [
        {"index": 0, "op": "TILED_LINEAR", "output_shape": [256], "cost": 67440},
        {"index": 1, "op": "TILED_LINEAR", "output_shape": [10], "cost": 7040}]}))
    model = ROOT / "tests" / "vectors" / "convnet_int8.tbn"
    return [*map(str, _runs(tmp_path)), "--compare", str(compare), "--model", str(model),
            "--profile", str(profile)]


def test_report_writes_its_files(tmp_path: Path) -> None:
    out = tmp_path / "report"
    assert main(["report", *_inputs(tmp_path), "-o", str(out)]) == 0
    pngs = ("accuracy_vs_bits.png", "bytes_per_layer.png", "cost_per_op.png")
    for name in ("index.html", "report.json", *pngs):
        assert (out / name).stat().st_size > 0, name
    page = (out / "index.html").read_text()
    assert all(f"{n}.png" in page for n in ("accuracy_vs_bits", "bytes_per_layer", "cost_per_op"))


def test_plots_show_the_json(tmp_path: Path) -> None:
    out = tmp_path / "report"
    main(["report", *_inputs(tmp_path), "-o", str(out)])
    data = json.loads((out / "report.json").read_text())
    figures = write_report(data, tmp_path / "again")
    assert json.loads((tmp_path / "again" / "report.json").read_text()) == data

    lines = {ln.get_gid(): ln for ln in figures["accuracy_vs_bits"].axes[0].get_lines()}
    points = data["accuracy_vs_bits"]
    sweep = sorted((p for p in points if p["kind"] in ("tbn", "binary")), key=lambda p: p["bits_per_weight"])
    assert list(lines["tbn"].get_xdata()) == [p["bits_per_weight"] for p in sweep]
    assert list(lines["tbn"].get_ydata()) == [p["accuracy"] for p in sweep]
    for kind in ("binary", "float", "tflite"):
        want = [(p["bits_per_weight"], p["accuracy"]) for p in points if p["kind"] == kind]
        assert list(zip(lines[kind].get_xdata(), lines[kind].get_ydata(), strict=True)) == want

    ax = figures["bytes_per_layer"].axes[0]
    for part in ("tile", "scales", "biases", "dense"):
        bars = [b for b in ax.patches if b.get_gid() == part] or [
            b for c in ax.containers if c.get_gid() == part for b in c]
        assert [b.get_height() for b in bars] == [r[part] for r in data["bytes_per_layer"]], part
    costs = [b.get_height() for c in figures["cost_per_op"].axes[0].containers for b in c]
    assert costs == [o["cost"] for o in data["cost_per_op"]["ops"]]


def test_nothing_to_plot_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "-o", str(tmp_path)]) == 2
    assert "needs something to plot" in capsys.readouterr().err
