"""pytest plugin for migration-stream regression tests (entry point ``migstream`` in pytest11).

Installing migstream makes these available in any test suite, no import needed for fixtures:

* ``assert_stream_loads(stream, target=None, reference=None, machine=None)``: fails, listing
  every finding with its offset, section, field and the QEMU error it predicts, unless
  `migstream validate` says a destination like the target / reference would load the stream.
  Returns the `analyzer.validate.Report`.
* ``assert_stream_rejected(stream, ..., check=None)``: the opposite, optionally requiring the
  failing check (e.g. "section.version"); returns the failing `Finding`.
* ``assert_streams_equivalent(a, b, ignore=(), ram=True)``: fails with the `migstream diff`
  listing unless the two streams carry the same configuration, device state (fields matching
  an ``ignore`` pattern excepted) and, with ``ram``, the same final RAM contents.

Fixtures: ``migstream_validate`` / ``migstream_diff`` (the functions above, for use without
importing), ``migstream_target`` / ``migstream_reference`` (the paths given with the
``--migstream-target`` / ``--migstream-reference`` options or the ``MIGSTREAM_TARGET`` /
``MIGSTREAM_REFERENCE`` environment variables; the test is skipped when unset).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import pytest

if TYPE_CHECKING:
    from analyzer.diff import DiffResult
    from analyzer.model import Stream
    from analyzer.qemu_profile import Profile
    from analyzer.validate import Finding, Report

# The analyzer is imported when an assertion runs, not when pytest loads the plugin.
__all__ = ["assert_stream_loads", "assert_stream_rejected", "assert_streams_equivalent"]

StreamLike = Union[str, "os.PathLike[str]", "Stream"]


def _name(s: StreamLike) -> str:
    return s if isinstance(s, str) else os.fspath(s) if isinstance(s, os.PathLike) else s.path


def assert_stream_loads(
    stream: StreamLike,
    target: str | os.PathLike[str] | Profile | None = None,
    reference: StreamLike | None = None,
    machine: str | None = None,
) -> Report:
    """Fail unless a destination like `target` / `reference` would load `stream`."""
    __tracebackhide__ = True
    from analyzer.validate import validate

    report = validate(stream, target=target, reference=reference, machine=machine)
    if not report.loads or report.unreadable:
        pytest.fail(f"{_name(stream)} would not load on {report.destination}:\n\n"
                    + _findings_text(report.findings), pytrace=False)
    return report


def assert_stream_rejected(
    stream: StreamLike,
    target: str | os.PathLike[str] | Profile | None = None,
    reference: StreamLike | None = None,
    machine: str | None = None,
    check: str | None = None,
) -> Finding:
    """Fail unless the destination would reject `stream` (with `check`, if given)."""
    __tracebackhide__ = True
    from analyzer.validate import validate

    report = validate(stream, target=target, reference=reference, machine=machine)
    first = report.first_error
    if report.loads or first is None:
        pytest.fail(f"{_name(stream)} would load on {report.destination}, expected a "
                    "rejection", pytrace=False)
    assert first is not None
    if check is not None and first.check != check:
        pytest.fail(f"{_name(stream)} is rejected by check {first.check!r}, expected "
                    f"{check!r}:\n\n" + _findings_text([first]), pytrace=False)
    return first


def assert_streams_equivalent(
    a: StreamLike,
    b: StreamLike,
    ignore: Sequence[str] = (),
    ram: bool = True,
) -> DiffResult:
    """Fail unless `a` and `b` carry the same state (see the module docstring)."""
    __tracebackhide__ = True
    from analyzer.diff import diff_streams

    opened: list[Stream] = []
    try:
        sa, sb = (_stream(x, opened) for x in (a, b))
        patterns = list(ignore) + ([] if ram else ["ram/*"])
        res = diff_streams(sa, sb, patterns)
    finally:
        for s in opened:
            s.close()
    if not res.same:
        pytest.fail(f"{_name(a)} and {_name(b)} differ:\n\n{res.text()}", pytrace=False)
    return res


def _stream(s: StreamLike, opened: list[Stream]) -> Stream:
    __tracebackhide__ = True
    from analyzer.model import Stream

    if isinstance(s, Stream):
        stream = s
    else:
        stream = Stream.open(s)
        opened.append(stream)
    if stream.errors:
        pytest.fail(f"{stream.path} does not decode: {stream.errors[0]}", pytrace=False)
    return stream


def _findings_text(findings: Sequence[Finding]) -> str:
    lines: list[str] = []
    for f in findings:
        where = []
        if f.offset is not None:
            where.append(f"offset {f.offset} (0x{f.offset:x})")
        if f.section:
            where.append(f"section {f.section}")
        if f.field:
            where.append(f"field {f.field}")
        lines.append(f"- {f.severity} [{f.scope}/{f.check}] {', '.join(where)}")
        lines.append(f"  {f.message}")
        if f.qemu:
            lines.extend(f"  QEMU: {ln}" for ln in f.qemu.splitlines())
    return "\n".join(lines) if lines else "(no findings)"


# -- pytest hooks and fixtures ---------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("migstream", "migration stream checks")
    group.addoption("--migstream-target", metavar="VMSTATE_JSON", default=None,
                    help="QEMU -dump-vmstate file of the destination build "
                         "(fixture migstream_target; or MIGSTREAM_TARGET)")
    group.addoption("--migstream-reference", metavar="STREAM", default=None,
                    help="stream captured on the destination configuration "
                         "(fixture migstream_reference; or MIGSTREAM_REFERENCE)")


def _option(config: pytest.Config, opt: str, env: str) -> Path:
    value = config.getoption(opt) or os.environ.get(env)
    if not value:
        pytest.skip(f"no {opt.lstrip('-')} given (option {opt} or ${env})")
    return Path(value)


@pytest.fixture
def migstream_target(pytestconfig: pytest.Config) -> Path:
    """The destination's -dump-vmstate file (skips the test when none is configured)."""
    return _option(pytestconfig, "--migstream-target", "MIGSTREAM_TARGET")


@pytest.fixture
def migstream_reference(pytestconfig: pytest.Config) -> Path:
    """A stream from the destination configuration (skips the test when none is configured)."""
    return _option(pytestconfig, "--migstream-reference", "MIGSTREAM_REFERENCE")


@pytest.fixture
def migstream_validate() -> Any:
    """`assert_stream_loads`, for tests that prefer fixtures to imports."""
    return assert_stream_loads


@pytest.fixture
def migstream_diff() -> Any:
    """`assert_streams_equivalent`, for tests that prefer fixtures to imports."""
    return assert_streams_equivalent
