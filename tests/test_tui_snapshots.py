"""SVG snapshots of the browser's main screens (pytest-textual-snapshot, 160x48).

Every snapshot waits for indexing (and the diff) to finish first, so nothing depends on
timing. Update with `pytest tests/test_tui_snapshots.py --snapshot-update` after looking at
the report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from analyzer.model import Stream
from analyzer.tui.app import BrowseApp
from tests.tui_support import LIVE, SIZE, XBZRLE, settle, wait_ready

pytestmark = pytest.mark.skipif(not LIVE.exists(), reason="captures missing")


def _eip_offset() -> int:
    with Stream.open(LIVE) as s:
        cpu = next(i for i in s.sections if i.idstr == "cpu")
        assert cpu.nodes is not None
        return next(n.offset for n in cpu.nodes if n.name == "env.eip")


def test_main_screen(snap_compare: Any) -> None:
    async def before(pilot: Pilot[Any]) -> None:
        await wait_ready(pilot)
        await settle(pilot)

    assert snap_compare(BrowseApp([str(LIVE)]), terminal_size=SIZE, run_before=before)


def test_field_selected(snap_compare: Any) -> None:
    async def before(pilot: Pilot[Any]) -> None:
        await wait_ready(pilot)
        app = pilot.app
        assert isinstance(app, BrowseApp)
        app.panes[0].jump(_eip_offset())
        await settle(pilot)

    assert snap_compare(BrowseApp([str(LIVE)]), terminal_size=SIZE, run_before=before)


def test_ram_runs(snap_compare: Any) -> None:
    async def before(pilot: Pilot[Any]) -> None:
        await wait_ready(pilot)
        await pilot.press("down", "down", "down", "down", "right", "down", "right", "down",
                          "down")
        await settle(pilot)

    assert snap_compare(BrowseApp([str(LIVE)]), terminal_size=SIZE, run_before=before)


def test_findings_on_truncated_stream(snap_compare: Any, tmp_path: Path) -> None:
    cut = tmp_path / "truncated.bin"
    cut.write_bytes(LIVE.read_bytes()[:_eip_offset() + 3])

    async def before(pilot: Pilot[Any]) -> None:
        await wait_ready(pilot)
        await settle(pilot)

    assert snap_compare(BrowseApp([str(cut)]), terminal_size=SIZE, run_before=before)


def test_diff_mode(snap_compare: Any) -> None:
    async def before(pilot: Pilot[Any]) -> None:
        await wait_ready(pilot)
        await pilot.press("d", "d", "d", "d", "d", "d", "d")
        await settle(pilot)

    assert snap_compare(BrowseApp([str(LIVE), str(XBZRLE)]), terminal_size=SIZE,
                        run_before=before)


def test_help_screen(snap_compare: Any) -> None:
    async def before(pilot: Pilot[Any]) -> None:
        await wait_ready(pilot)
        await pilot.press("question_mark")
        await settle(pilot)

    assert snap_compare(BrowseApp([str(LIVE)]), terminal_size=SIZE, run_before=before)
