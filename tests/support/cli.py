"""Running the `migstream` CLI in-process from tests."""

from __future__ import annotations

import pytest

from analyzer.cli import main


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of one CLI call; a traceback anywhere fails the test."""
    rc = main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return rc, out, err
