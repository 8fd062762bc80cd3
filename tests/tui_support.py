"""Helpers shared by the browser's pilot and snapshot tests."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from analyzer.tui.app import BrowseApp
from tests.conftest import CAPTURES

LIVE = CAPTURES / "pc-live.bin"
XBZRLE = CAPTURES / "pc-xbzrle.bin"
SIZE = (160, 48)


async def wait_ready(pilot: Pilot[Any], timeout: float = 30.0) -> None:
    """Wait until every stream is indexed (and compared, in diff mode) and messages settle."""
    app = pilot.app
    assert isinstance(app, BrowseApp)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not app.ready:
        if loop.time() > deadline:
            raise AssertionError("the browser did not finish indexing")
        await pilot.pause(0.02)
    await pilot.pause()
    await wait_workers(pilot)


async def wait_workers(pilot: Pilot[Any], timeout: float = 30.0) -> None:
    """Wait for running workers (search, validate, export) to end."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while any(not w.is_finished for w in pilot.app.workers):
        if loop.time() > deadline:
            raise AssertionError("a worker did not finish")
        await pilot.pause(0.02)
    await pilot.pause()


async def settle(pilot: Pilot[Any]) -> None:
    """Let scrolls scheduled after refreshes and any animation finish before a screenshot."""
    for _ in range(3):
        await pilot.pause()
        await pilot.wait_for_scheduled_animations()
    await wait_workers(pilot)


def drive(paths: list[Path], body: Callable[[BrowseApp, Pilot[Any]], Awaitable[None]],
          size: tuple[int, int] = SIZE) -> None:
    """Run the browser headless on paths, wait for indexing, then run body(app, pilot)."""

    async def main() -> None:
        app = BrowseApp([str(p) for p in paths])
        async with app.run_test(size=size) as pilot:
            await wait_ready(pilot)
            await body(app, pilot)

    asyncio.run(main())


async def type_text(pilot: Pilot[Any], text: str) -> None:
    await pilot.press(*[{" ": "space"}.get(c, c) for c in text])
