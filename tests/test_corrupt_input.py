"""Truncated and corrupted real captures: exit 2, one line naming offset and section, no hang.

Whatever decoded before the damage is still printed (the `info` item table up to it).
"""

from __future__ import annotations

import random
import re
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from analyzer.cli import main
from analyzer.model import Stream
from tests.conftest import capture_paths
from tests.support.cli import run

ERROR_LINE = re.compile(r"^migstream: error: at offset (\d+) \(0x[0-9a-f]+\) in section .+: .+$")


@contextmanager
def deadline(seconds: int) -> Iterator[None]:
    def boom(signum: int, frame: object) -> None:
        raise TimeoutError(f"no answer within {seconds}s")

    old = signal.signal(signal.SIGALRM, boom)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def run_info(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with deadline(20):
        return run(["info", str(path)], capsys)


def assert_one_line_error(err: str, size: int) -> int:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    m = ERROR_LINE.match(lines[0])
    assert m, lines[0]
    offset = int(m.group(1))
    assert 0 <= offset <= size
    return offset


def cut_points(path: Path, n_random: int) -> list[int]:
    with Stream.open(path) as s:
        boundaries = sorted({i.offset for i in s.items} | {i.end for i in s.items[:-1]})
        eof_end = (s.eof_offset or 0) + 1
    rng = random.Random(path.name)
    randoms = [rng.randrange(1, path.stat().st_size) for _ in range(n_random)]
    # A cut right after QEMU_VM_EOF leaves a complete stream without vmdesc, which QEMU loads.
    return [c for c in sorted(set(boundaries + randoms)) if c != eof_end]


@pytest.mark.parametrize("path", capture_paths(), ids=lambda p: p.stem)
def test_truncation_gives_exit_2_with_offset_and_partial_output(
    path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = path.read_bytes()
    with Stream.open(path) as whole:
        item_offsets = [i.offset for i in whole.items if i.parent is None]
    for cut in cut_points(path, 12):
        f = tmp_path / "cut.bin"
        f.write_bytes(data[:cut])
        rc, out, err = run_info(f, capsys)
        assert rc == 2, (cut, out[-500:], err)
        assert_one_line_error(err, cut)
        if cut > 8:
            decoded_before = [o for o in item_offsets if o < cut]
            shown = re.findall(r"^\s+(\d+)\s+0x[0-9a-f]+ ", out, re.M)
            assert len(shown) >= len(decoded_before) - 1, (cut, len(shown))


@pytest.mark.parametrize("path", capture_paths(), ids=lambda p: p.stem)
def test_random_byte_flips_never_crash(
    path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = path.read_bytes()
    with Stream.open(path) as s:
        structural = [o for i in s.items for o in range(i.offset, min(i.end, i.offset + 64))]
    rng = random.Random(f"flip-{path.name}")
    failures = 0
    for _ in range(30):
        buf = bytearray(data)
        for _ in range(rng.randint(1, 3)):
            pos = rng.choice(structural) if rng.random() < 0.7 else rng.randrange(len(buf))
            buf[pos] ^= 1 << rng.randrange(8)
        f = tmp_path / "flip.bin"
        f.write_bytes(bytes(buf))
        rc, _, err = run_info(f, capsys)
        assert rc in (0, 2)
        if rc == 2:
            failures += 1
            assert_one_line_error(err, len(buf))
    assert failures > 0


def test_not_a_stream(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "x.bin"
    f.write_bytes(b"hello, world, this is not a migration stream")
    rc, _, err = run_info(f, capsys)
    assert rc == 2
    assert "not a migration stream" in err
    assert_one_line_error(err, f.stat().st_size)


@pytest.mark.parametrize("content", [b"", b"QEV", b"QEVM\x00\x00\x00\x02", b"QEVM\x00\x00\x00\x03"])
def test_tiny_inputs(content: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "tiny.bin"
    f.write_bytes(content)
    rc, _, err = run_info(f, capsys)
    assert rc == 2
    assert_one_line_error(err, len(content))


def test_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", str(tmp_path / "missing.bin")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["info", str(tmp_path)]) == 2
    with pytest.raises(SystemExit) as exc:
        main(["frobnicate"])
    assert exc.value.code == 2
