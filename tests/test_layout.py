"""The shape of host/tbn: no import cycle between its packages, and the compiler's stages
in files of one screen's worth or so."""

from __future__ import annotations

import ast

from tbn.paths import root

HOST = root() / "host"


def _unit(module: str) -> str:
    """The package (or top-level module) of tbn that ``module`` belongs to: tbn.device.link -> tbn.device."""
    return ".".join(module.split(".")[:2])


def import_graph() -> dict[str, set[str]]:
    """Which tbn packages each tbn package imports, at module level or inside a function."""
    graph: dict[str, set[str]] = {}
    for path in (HOST / "tbn").rglob("*.py"):
        parts = path.relative_to(HOST).with_suffix("").parts
        unit = _unit(".".join(p for p in parts if p != "__init__"))
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "tbn":
                names = [f"tbn.{a.name}" for a in node.names] if node.module == "tbn" else [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names if a.name.startswith("tbn.")]
            graph.setdefault(unit, set()).update(_unit(n) for n in names if _unit(n) != unit)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every cycle through the graph, each as the path from a package back to itself."""
    found = []

    def walk(path: list[str]) -> None:
        for nxt in sorted(graph.get(path[-1], ())):
            if nxt == path[0]:
                found.append([*path, nxt])
            elif nxt not in path and nxt > path[0]:  # each cycle once, from its smallest name
                walk([*path, nxt])

    for start in sorted(graph):
        walk([start])
    return found


def test_no_import_cycle_between_tbn_packages() -> None:
    graph = import_graph()
    assert "tbn.device" in graph and "tbn.micropython" in graph["tbn.cli"]  # the graph is read
    assert cycles(graph) == []


def test_the_cycle_finder_finds_one() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]


def test_no_compiler_stage_is_longer_than_250_lines() -> None:
    lengths = {p.name: len(p.read_text().splitlines()) for p in (HOST / "tbn" / "compiler").glob("*.py")}
    assert {"capture.py", "fold.py", "lower.py", "memory.py"} <= set(lengths)
    assert max(lengths.values()) <= 250, lengths
