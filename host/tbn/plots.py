"""``tbn report``: what a user would rather look at than read, as PNG plots and one small HTML
page, drawn from a JSON file that holds exactly the plotted data.

- accuracy against bits per weight: the tbn runs given (a p sweep), the float and binary
  runs among them, and the TFLite int8 baseline of a ``tbn compare`` JSON;
- bytes per layer of a ``.tbn`` (tile bits, scales, biases, dense weights);
- device cost per op, from ``tbn infer --profile --json``.

Figures are ``matplotlib.figure.Figure`` objects (no pyplot state); ``pip install
'tbn[report]'`` brings matplotlib.
"""

from __future__ import annotations

import html
import io
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tbn.errors import MissingExtraError, UsageError
from tbn.files import FileError, read_bounded, write_atomic

TFLITE_BITS = 8.0  # a full-integer TFLite model stores int8 weights


MAX_JSON_BYTES = 64 << 20  # metrics, comparisons and profiles are small


def _json(path: Path, what: str) -> Any:
    """A JSON file's content, or a :class:`UsageError` saying it is not ``what``."""
    try:
        return json.loads(read_bounded(path, MAX_JSON_BYTES, what))
    except FileError as e:
        raise UsageError(str(e)) from None
    except ValueError as e:  # not UTF-8, not JSON
        raise UsageError(f"{path}: not {what} ({e})") from None


def run_points(run_dirs: list[Path]) -> list[dict[str, Any]]:
    """One point per ``tbn train`` output folder: its p, bits per weight and test accuracy."""
    points = []
    for d in run_dirs:
        what = "a tbn train output folder with metrics.json"
        if not (Path(d) / "metrics.json").is_file():
            raise UsageError(f"{d}: not {what}")
        m = _json(Path(d) / "metrics.json", "a tbn train metrics.json")
        if isinstance(m, dict) and m.get("metric", "accuracy") != "accuracy":
            kind = {"rmse": "a forecast", "auc": "an anomaly detector"}.get(m["metric"], "not a classifier")
            raise UsageError(f"{d}: a run scored by {m['metric']} ({kind}); the report plots "
                             "classifiers' accuracy against bits a weight")
        try:
            p, bits, acc = m["p"], float(m["bits_per_weight"]), 100 * float(m["test_accuracy"])
        except (KeyError, TypeError, ValueError) as e:
            raise UsageError(f"{d}: not {what} ({e!r} missing or wrong)") from None
        kind = "float" if p is None else "binary" if p == 1 else "tbn"
        label = "float" if p is None else f"p={p}"
        points.append({"label": f"{m.get('recipe', '?')} {label}", "kind": kind, "p": p,
                       "bits_per_weight": bits, "accuracy": acc})
    return points


def compare_points(compare_json: Path) -> list[dict[str, Any]]:
    """The TFLite int8 point of a ``tbn compare --json`` file."""
    doc = _json(compare_json, "a tbn compare --json file")
    try:
        side = next(s for s in doc["sides"] if s["name"].startswith("TFLite"))
        return [{"label": f"{doc['recipe']} TFLite int8", "kind": "tflite", "p": None,
                 "bits_per_weight": TFLITE_BITS, "accuracy": float(side["accuracy"])}]
    except (KeyError, TypeError, ValueError, StopIteration):
        raise UsageError(f"{compare_json}: no TFLite side; write it with tbn compare --json") from None


def layer_bytes(model: Path) -> list[dict[str, Any]]:
    """Bytes of each weighted op of a ``.tbn``: tile bits, scales, biases, dense weights (a
    tile shared by several ops is counted at its first)."""
    from tbn.format import load
    from tbn.format.spec import NONE_ID, OP_LAYOUTS, vector_nbytes

    prog = load(model)
    rows, seen = [], set()
    for i, op in enumerate(prog.ops):
        a, names = op.args, OP_LAYOUTS[op.opcode].names
        row = {"op": f"#{i} {op.opcode.name}", "tile": 0, "scales": 0, "biases": 0, "dense": 0}
        if "tile" in names and a["tile"] not in seen:
            seen.add(a["tile"])
            row["tile"] = len(prog.tiles[a["tile"]].bits)
        if "weight" in names:
            row["dense"] = int(prog.dense[a["weight"]].size)
        for key, table, out in (("scale", prog.scales, "scales"), ("bias", prog.biases, "biases")):
            if key in names and a[key] != NONE_ID:
                row[out] = vector_nbytes(table[a[key]].dtype, table[a[key]].count)
        if any(row[k] for k in ("tile", "scales", "biases", "dense")):
            rows.append(row)
    return rows


def op_costs(infer_json: Path) -> dict[str, Any]:
    """The per-op device cost of a ``tbn infer --profile --json`` file."""
    doc = _json(infer_json, "a tbn infer --profile --json file")
    try:
        ops = [{"op": f"#{p['index']} {p['op']}", "cost": int(p["cost"])} for p in doc["profile"]]
        unit = (doc.get("device") or {}).get("cost_unit", "cost")
    except (AttributeError, KeyError, TypeError, ValueError):
        ops = []
    if not ops:
        raise UsageError(f"{infer_json}: no per-op profile; write it with tbn infer --profile --json")
    return {"unit": unit, "ops": ops}


def _figure() -> Any:
    try:
        from matplotlib.figure import Figure
    except ImportError as e:
        raise MissingExtraError(f"tbn report needs matplotlib ({e}): pip install 'tbn[report]'") from None
    return Figure(figsize=(7, 4.2), layout="constrained")


_STYLE = {"tbn": ("o-", "tbn (p sweep)"), "binary": ("s", "binary (p=1)"), "float": ("^", "float32"),
          "tflite": ("D", "TFLite int8")}


def accuracy_figure(points: list[dict[str, Any]]) -> Any:
    """Accuracy against bits per weight, one series per kind (the p sweep as a line)."""
    fig = _figure()
    ax = fig.add_subplot()
    for kind, (marker, label) in _STYLE.items():
        pts = sorted((p for p in points if p["kind"] in ((kind, "binary") if kind == "tbn" else (kind,))),
                     key=lambda p: p["bits_per_weight"])
        if pts:
            ax.plot([p["bits_per_weight"] for p in pts], [p["accuracy"] for p in pts], marker, label=label,
                    gid=kind)
    ax.set_xscale("log")
    ax.set_xlabel("bits per weight (log)")
    ax.set_ylabel("test accuracy %")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    return fig


def bytes_figure(rows: list[dict[str, Any]]) -> Any:
    """Bytes per layer, stacked by section."""
    fig = _figure()
    ax = fig.add_subplot()
    bottom = [0] * len(rows)
    for part in ("tile", "scales", "biases", "dense"):
        values = [r[part] for r in rows]
        ax.bar([r["op"] for r in rows], values, bottom=bottom, label=part, gid=part)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    ax.set_ylabel("bytes")
    ax.legend()
    ax.tick_params(axis="x", labelrotation=30)
    return fig


def cost_figure(costs: dict[str, Any]) -> Any:
    """Device cost per op."""
    fig = _figure()
    ax = fig.add_subplot()
    ax.bar([o["op"] for o in costs["ops"]], [o["cost"] for o in costs["ops"]], gid="cost")
    ax.set_ylabel(f"{costs['unit']} per inference")
    ax.tick_params(axis="x", labelrotation=30)
    return fig


FIGURES = {"accuracy_vs_bits": accuracy_figure, "bytes_per_layer": bytes_figure, "cost_per_op": cost_figure}


def write_report(data: dict[str, Any], out: Path, inputs: Iterable[Path] = ()) -> dict[str, Any]:
    """Write ``report.json`` (``data``), one PNG per figure it has data for and ``index.html``
    into ``out``; returns the figures by name. ``out`` is a new or empty folder, or one an
    earlier report wrote (it holds report.json): other files are never written over, and
    nor are ``inputs``."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out} is a file: tbn report writes a folder; choose another -o")
    if out.is_dir() and any(out.iterdir()) and not (out / "report.json").is_file():
        raise UsageError(f"{out} holds other files and no earlier report: choose a new or empty -o")
    figures = {name: make(data[name]) for name, make in FIGURES.items() if data.get(name)}
    out.mkdir(parents=True, exist_ok=True)
    inputs = list(inputs)
    for name, fig in figures.items():
        png = io.BytesIO()
        fig.savefig(png, format="png", dpi=110)
        write_atomic(out / f"{name}.png", png.getvalue(), inputs)
    write_atomic(out / "index.html", _html(data, figures).encode(), inputs)
    write_atomic(out / "report.json", (json.dumps(data, indent=1) + "\n").encode(), inputs)
    return figures


def _html(data: dict[str, Any], figures: dict[str, Any]) -> str:
    parts = ["<!doctype html><meta charset='utf-8'><title>tbn report</title>",
             "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}"
             "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}"
             "</style><h1>tbn report</h1>"]
    for name in figures:
        rows = data[name]["ops"] if name == "cost_per_op" else data[name]
        keys = list(rows[0])
        parts.append(f"<h2>{html.escape(name.replace('_', ' '))}</h2><img src='{name}.png' alt='{name}'>")
        parts.append("<table><tr>" + "".join(f"<th>{html.escape(k)}</th>" for k in keys) + "</tr>")
        parts += ["<tr>" + "".join(f"<td>{html.escape(str(r[k]))}</td>" for k in keys) + "</tr>"
                  for r in rows]
        parts.append("</table>")
    parts.append("<p>The plotted numbers are in <a href='report.json'>report.json</a>.</p>")
    return "\n".join(parts) + "\n"
