"""The committed generated parser is exactly what the pinned compiler makes of the .ksy."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT / "formats" / "tools"


def test_generated_parser_is_not_stale(tmp_path: Path) -> None:
    if shutil.which("node") is None or shutil.which("npm") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("node and npm are required in CI for the Kaitai staleness check")
        pytest.skip("node/npm not installed")
    subprocess.run([str(TOOLS / "regenerate.sh"), str(tmp_path)], check=True, timeout=300)
    committed = ROOT / "formats" / "generated"
    fresh = sorted(p.name for p in tmp_path.glob("*.py"))
    assert fresh == ["qemu_migration.py"]
    for name in fresh:
        assert (tmp_path / name).read_text() == (committed / name).read_text(), (
            f"formats/generated/{name} is stale: run formats/tools/regenerate.sh"
        )


def test_generated_module_has_do_not_edit_header() -> None:
    text = (ROOT / "formats" / "generated" / "qemu_migration.py").read_text()
    assert text.startswith("# Generated from qemu_migration.ksy")
    assert "DO NOT EDIT" in text.splitlines()[0]
