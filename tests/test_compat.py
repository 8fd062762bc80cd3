"""`dump --compat` equals QEMU 7.2 analyze-migration.py -d state output, stored as test data.

The expected files are made by tests/tools/make_compat_data.py from the Debian QEMU 7.2
source package's scripts/analyze-migration.py; streams that script cannot read are listed in
tests/data/compat/unreadable.json with its error.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from analyzer.compat import compat_json
from analyzer.model import Stream
from tests.conftest import DATA

COMPAT = DATA / "compat"


def test_compat_equals_analyze_migration(capture: Path) -> None:
    expected = COMPAT / f"{capture.stem}.state.json"
    unreadable = json.loads((COMPAT / "unreadable.json").read_text())
    if not expected.exists():
        assert capture.stem in unreadable, f"no compat data for {capture.name}: regenerate it"
        pytest.skip(f"analyze-migration.py cannot read it: {unreadable[capture.stem]}")
    with Stream.open(capture) as s:
        ours = compat_json(s)
    want = expected.read_text()
    assert json.loads(ours) == json.loads(want)
    assert ours + "\n" == want


def test_every_capture_has_compat_data_or_a_recorded_failure(capture: Path) -> None:
    unreadable = json.loads((COMPAT / "unreadable.json").read_text())
    assert (COMPAT / f"{capture.stem}.state.json").exists() or capture.stem in unreadable
