"""Smoke test: `migstream browse` in a real terminal (tmux), read back with capture-pane."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable

import pytest

from analyzer.model import Stream
from tests.conftest import ROOT
from tests.tui_support import LIVE

pytestmark = pytest.mark.skipif(not LIVE.exists(), reason="captures missing")


def _tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], check=True, capture_output=True, text=True).stdout


def _wait_screen(session: str, ok: Callable[[str], bool], timeout: float = 20.0) -> str:
    deadline = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < deadline:
        screen = _tmux("capture-pane", "-t", session, "-p")
        if ok(screen):
            return screen
        time.sleep(0.1)
    raise AssertionError(f"screen never matched; last screen:\n{screen}")


def test_browse_in_tmux() -> None:
    if shutil.which("tmux") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("tmux is required in CI (apt-get install tmux)")
        pytest.skip("tmux not installed")
    with Stream.open(LIVE) as s:
        cpu = next(i for i in s.sections if i.idstr == "cpu")
        assert cpu.nodes is not None
        eip = next(n for n in cpu.nodes if n.name == "env.eip")
    session = f"migstream-test-{os.getpid()}"
    cmd = " ".join(shlex.quote(a) for a in (sys.executable, "-m", "analyzer.cli", "browse",
                                             str(LIVE)))
    _tmux("new-session", "-d", "-s", session, "-x", "160", "-y", "48", "-c", str(ROOT),
          f"env TERM=xterm-256color {cmd}")
    # A tmux server that already has clients may size new windows its own way.
    _tmux("set-option", "-t", session, "window-size", "manual")
    _tmux("resize-window", "-t", session, "-x", "160", "-y", "48")
    try:
        screen = _wait_screen(session, lambda s: "VMDESCRIPTION" in s and "● ok" in s
                              and "Search" in s.rstrip().splitlines()[-1])
        lines = screen.rstrip().splitlines()
        assert "migstream browse" in lines[0] and "pc-live.bin" in lines[0]
        assert "00000000 51 45 56 4d 00 00 00 03" in screen
        for phase in ("setup", "iterate", "complete"):
            assert f"▶ {phase}" in screen
        assert "Help" in lines[-1] and "Search" in lines[-1]
        _tmux("send-keys", "-t", session, "g")
        _wait_screen(session, lambda s: "Go to offset" in s)
        _tmux("send-keys", "-t", session, hex(eip.offset), "Enter")
        screen = _wait_screen(session, lambda s: "cpu#0/env.eip" in s
                              and hex(eip.offset) in s.rstrip().splitlines()[-2])
        assert isinstance(eip.value, int)
        assert f"{eip.value:,}" in screen
        assert f"{eip.offset:08x}"[:-1] in screen
        status = screen.rstrip().splitlines()[-2]
        assert hex(eip.offset) in status and "FULL cpu#0" in status
        _tmux("send-keys", "-t", session, "q")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if subprocess.run(["tmux", "has-session", "-t", session],
                              capture_output=True).returncode != 0:
                break
            time.sleep(0.1)
        else:
            raise AssertionError("the browser did not quit on q")
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
