"""Printing and saving benchmark tables (shared by the scripts in this folder)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def print_table(rows: list[dict[str, Any]], columns: list[tuple[str, str]]) -> str:
    """Format ``rows`` as an aligned Markdown table of ``(key, header)`` columns; print it."""
    cells = [[h for _, h in columns]]
    for r in rows:
        cells.append([f"{r[k]:.4g}" if isinstance(r[k], float) else str(r[k]) for k, _ in columns])
    widths = [max(len(c[i]) for c in cells) for i in range(len(columns))]
    lines = ["| " + " | ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) + " |" for row in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 1) + ":" for w in widths) + "|")
    text = "\n".join(lines)
    print(text)
    return text


def write_json(path: str | Path | None, payload: dict[str, Any]) -> None:
    """Save ``payload`` as JSON at ``path`` (none: nothing); a folder there is a clear error."""
    if path:
        if Path(path).is_dir():
            raise SystemExit(f"{path} is a folder: --json names the file to write")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(payload, indent=2) + "\n")
        print(f"wrote {path}")
