"""The pytest plugin (entry point ``migstream``): assertions, fixtures and failure messages."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest

from analyzer.model import Stream
from analyzer.pytest_plugin import (
    assert_stream_loads,
    assert_stream_rejected,
    assert_streams_equivalent,
)
from tests.conftest import CAPTURES
from tests.support.mutants import apply_ops

pytest_plugins = ["pytester"]

PAUSED = CAPTURES / "pc-paused.bin"


def version_bumped(tmp_path: Path, idstr: str = "timer") -> Path:
    with Stream.open(PAUSED) as s:
        sec = next(x for x in s.sections if x.idstr == idstr)
        off = sec.offset + 10 + len(idstr)
        v = sec.version_id
    out = tmp_path / "bumped.bin"
    out.write_bytes(apply_ops(PAUSED.read_bytes(), [["replace", off, f"{v + 1:08x}"]]))
    return out


def test_entry_point_is_declared() -> None:
    text = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    assert '[project.entry-points.pytest11]\nmigstream = "analyzer.pytest_plugin"' in text
    installed = [ep for dist in importlib.metadata.distributions()
                 if dist.metadata["Name"] == "migstream"
                 for ep in dist.entry_points if ep.group == "pytest11"]
    if installed:
        assert {ep.value for ep in installed} == {"analyzer.pytest_plugin"}


def test_assertions_pass(tmp_path: Path) -> None:
    report = assert_stream_loads(PAUSED, reference=PAUSED)
    assert report.loads
    assert_streams_equivalent(PAUSED, PAUSED)
    f = assert_stream_rejected(version_bumped(tmp_path), reference=PAUSED,
                               check="section.version")
    assert f.idstr == "timer"


def test_assert_stream_loads_failure_lists_findings(tmp_path: Path) -> None:
    with pytest.raises(pytest.fail.Exception) as exc:
        assert_stream_loads(version_bumped(tmp_path), reference=PAUSED)
    msg = str(exc.value)
    assert "would not load" in msg
    assert "[destination/section.version]" in msg and "section 'timer'" in msg
    assert "QEMU: savevm: unsupported version 3 for 'timer' v2" in msg


def test_assert_streams_equivalent_failure_shows_diff(tmp_path: Path) -> None:
    other = CAPTURES / "pc-smp2.bin"
    with pytest.raises(pytest.fail.Exception) as exc:
        assert_streams_equivalent(PAUSED, other)
    msg = str(exc.value)
    assert "differ" in msg and "'cpu' instance 1 only in B" in msg
    assert_streams_equivalent(CAPTURES / "pc-live.bin", CAPTURES / "pc-xbzrle.bin",
                              ignore=["timer/*", "mc146818rtc/*", "i8254/*", "cpu/*"], ram=False)


def test_plugin_in_a_test_suite(pytester: pytest.Pytester, tmp_path: Path,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    bumped = version_bumped(tmp_path)
    pytester.makepyfile(f"""
        from analyzer.pytest_plugin import assert_stream_loads

        def test_loads(migstream_reference):
            assert_stream_loads({str(PAUSED)!r}, reference=migstream_reference)

        def test_bumped(migstream_validate, migstream_reference):
            migstream_validate({str(bumped)!r}, reference=migstream_reference)

        def test_equivalent(migstream_diff):
            migstream_diff({str(PAUSED)!r}, {str(PAUSED)!r})

        def test_target(migstream_target):
            pass
    """)
    # Load the plugin by module name whether or not this checkout's entry point is installed.
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    result = pytester.runpytest_subprocess("-p", "analyzer.pytest_plugin", "-p",
                                           "no:cacheprovider", "--migstream-reference",
                                           str(PAUSED))
    result.assert_outcomes(passed=2, failed=1, skipped=1)
    result.stdout.fnmatch_lines(["*would not load*", "*unsupported version 3 for 'timer' v2*"])
