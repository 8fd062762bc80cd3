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
from tests.conftest import CAPTURES, DATA, capture_paths

COMPAT = DATA / "compat"


def _readable() -> list[Path]:
    return [p for p in capture_paths() if (COMPAT / f"{p.stem}.state.json").exists()]


@pytest.mark.parametrize("capture", _readable(), ids=lambda p: p.stem)
def test_compat_equals_analyze_migration(capture: Path) -> None:
    with Stream.open(capture) as s:
        ours = compat_json(s)
    want = (COMPAT / f"{capture.stem}.state.json").read_text()
    assert json.loads(ours) == json.loads(want)
    assert ours + "\n" == want


def test_streams_the_script_cannot_read_still_decode_fully() -> None:
    unreadable = json.loads((COMPAT / "unreadable.json").read_text())
    assert set(unreadable) >= {"pc-compress", "pc-xbzrle", "pc-ignore-shared"}
    for stem in unreadable:
        with Stream.open(CAPTURES / f"{stem}.bin") as s:
            assert s.errors == []
            assert json.loads(compat_json(s))


def test_every_capture_has_compat_data_or_a_recorded_failure(capture: Path) -> None:
    unreadable = json.loads((COMPAT / "unreadable.json").read_text())
    assert (COMPAT / f"{capture.stem}.state.json").exists() or capture.stem in unreadable
