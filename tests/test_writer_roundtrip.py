"""The writer re-emits every real capture byte for byte (vmdesc included).

Device sections are re-encoded by savevm.vmstate from descriptions and values rebuilt from the
capture; RAM records are re-encoded from page contents (XBZRLE against the previous copy, zlib at
the capture's level), not copied.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from analyzer.model import Stream
from savevm import template
from tests.conftest import CAPTURES

SIBLINGS = {"pc-postcopy": "pc-live", "pc-novmdesc": "pc-smp2"}


def _open(capture: Path) -> Stream:
    sibling = SIBLINGS.get(capture.stem)
    if sibling is None:
        return Stream.open(capture)
    with Stream.open(CAPTURES / f"{sibling}.bin") as sib:
        desc = sib.vmdesc
    return Stream.open(capture, descriptions=desc)


def test_round_trip_is_byte_identical(capture: Path) -> None:
    with _open(capture) as s:
        out = io.BytesIO()
        template.replay(s, out)
    original = capture.read_bytes()
    got = out.getvalue()
    if got != original:
        at = next(i for i in range(min(len(got), len(original))) if got[i] != original[i])
        pytest.fail(f"first difference at offset {at} of {len(original)}")


def test_xbzrle_and_zlib_records_are_re_encoded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Break the encoders and the round trip must break: nothing is copied from the input."""
    from formats import xbzrle

    calls = {"xbzrle": 0, "zlib": 0}
    real_encode = xbzrle.encode

    def counting_encode(old: bytes, new: bytes, dlen: int = 4096) -> bytes | None:
        calls["xbzrle"] += 1
        return real_encode(old, new, dlen)

    monkeypatch.setattr(xbzrle, "encode", counting_encode)
    with Stream.open(CAPTURES / "pc-xbzrle.bin") as s:
        template.replay(s, io.BytesIO())
        n_xbzrle = s.ram.counts and sum(c.get(0x40, 0) for c in s.ram.counts.values())
    assert calls["xbzrle"] == n_xbzrle > 1000

    import zlib as real_zlib

    class CountingZlib:
        def __getattr__(self, name: str) -> object:
            return getattr(real_zlib, name)

        def compressobj(self, level: int) -> object:
            calls["zlib"] += 1
            return real_zlib.compressobj(level)

    import savevm.ram as ram_mod

    monkeypatch.setattr(ram_mod, "zlib", CountingZlib())
    with Stream.open(CAPTURES / "pc-compress.bin") as s:
        template.replay(s, io.BytesIO())
        n_comp = sum(c.get(0x100, 0) for c in s.ram.counts.values())
    assert calls["zlib"] == n_comp > 100


def test_compress_level_is_inferred_from_the_zlib_header() -> None:
    with Stream.open(CAPTURES / "pc-compress.bin") as s:
        assert template.infer_compress_level(s) == 1


PAUSED = ["pc-paused", "q35-paused", "pc-smp2", "pc-ignore-shared", "pc-novmdesc", "q35-devices"]


@pytest.mark.parametrize("name", PAUSED)
def test_driver_writes_what_qemu_wrote_for_a_paused_guest(name: str, tmp_path: Path) -> None:
    """Not a replay: the live driver's own setup/iterate/complete decisions (threshold 0 in the
    first window, one PART, completion) and page choices reproduce QEMU's stream exactly."""
    from savevm.profiles import generate, machine_from_stream

    with _open(CAPTURES / f"{name}.bin") as s:
        machine = machine_from_stream(s)
    out = tmp_path / "gen.bin"
    stats = generate(machine, out)
    assert stats.iterations == 1
    assert out.read_bytes() == (CAPTURES / f"{name}.bin").read_bytes()
