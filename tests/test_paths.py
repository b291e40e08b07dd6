"""tbn.paths: the checkout and the C runtime's manifest, and a clear error without them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tbn.paths import CheckoutError, c_runtime, root


def test_manifest_lists_every_runtime_source() -> None:
    c = c_runtime()
    on_disk = sorted((root() / "firmware" / "lib" / "tbn" / "src").rglob("*.c"))
    assert list(c.sources) == on_disk and (c.include / "tbn_format.h").is_file()
    assert "-std=c99" in c.flags and "-Werror" in c.flags


@pytest.mark.parametrize("content", [None, "{", '{"build": {}}', '{"build": {"flags": 3}}'])
def test_missing_or_malformed_manifest_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                content: str | None) -> None:
    lib = tmp_path / "firmware" / "lib" / "tbn"
    lib.mkdir(parents=True)
    if content is not None:
        (lib / "library.json").write_text(content)
    monkeypatch.setenv("TBN_ROOT", str(tmp_path))
    with pytest.raises(CheckoutError, match=r"library\.json"):
        c_runtime()
    r = subprocess.run([sys.executable, "-m", "tbn.paths", "c-flags"], capture_output=True, text=True)
    assert r.returncode == 1 and "tbn.paths: error:" in r.stderr and "Traceback" not in r.stderr
