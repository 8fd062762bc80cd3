"""Tests for formats.xbzrle: round trips, QEMU's exact overflow rule and decoder rejections."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator

import pytest

from formats.xbzrle import (
    PAGE_SIZE,
    XbzrleError,
    decode,
    encode,
    encoded_size,
    uleb128_decode_small,
    uleb128_encode_small,
    uleb128_len_small,
)


def _page(seed: int) -> bytes:
    return random.Random(seed).randbytes(PAGE_SIZE)


def _flip(page: bytes, positions: Iterator[int] | range | list[int]) -> bytes:
    out = bytearray(page)
    for p in positions:
        out[p] ^= 0xFF
    return bytes(out)


def _reference_encode(old: bytes, new: bytes) -> bytes:
    """Byte-wise transcription of the run definition, with no overflow limit."""
    out = bytearray()
    i, n = 0, len(new)
    while True:
        z = i
        while i < n and old[i] == new[i]:
            i += 1
        if i == n:
            return bytes(out)
        s = i
        while i < n and old[i] != new[i]:
            i += 1
        out += uleb128_encode_small(s - z) + uleb128_encode_small(i - s) + new[s:i]


# --------------------------------------------------------------------------------------------
# uleb128 small


@pytest.mark.parametrize(
    ("value", "wire"),
    [(0, "00"), (1, "01"), (0x7F, "7f"), (0x80, "8001"), (199, "c701"), (2799, "ef15"),
     (0x3FFF, "ff7f")],
)  # fmt: skip
def test_uleb_known(value: int, wire: str) -> None:
    assert uleb128_encode_small(value).hex() == wire
    assert uleb128_len_small(value) == len(wire) // 2
    assert uleb128_decode_small(bytes.fromhex(wire) + b"\x99") == (value, len(wire) // 2)


def test_uleb_round_trip_all() -> None:
    for v in range(0x4000):
        assert uleb128_decode_small(uleb128_encode_small(v)) == (v, uleb128_len_small(v))


@pytest.mark.parametrize("value", [-1, 0x4000, 1 << 20])
def test_uleb_out_of_range(value: int) -> None:
    with pytest.raises(ValueError):
        uleb128_encode_small(value)
    with pytest.raises(ValueError):
        uleb128_len_small(value)


def test_uleb_decode_edges() -> None:
    assert uleb128_decode_small(bytes.fromhex("8100")) == (1, 2)  # non-minimal accepted
    assert uleb128_decode_small(bytes.fromhex("aa0105"), 1) == (1, 1)
    with pytest.raises(XbzrleError) as e:
        uleb128_decode_small(bytes.fromhex("00ff80"), 1)
    assert e.value.position == 1
    with pytest.raises(XbzrleError):
        uleb128_decode_small(b"\x80")
    with pytest.raises(XbzrleError):
        uleb128_decode_small(b"")


# --------------------------------------------------------------------------------------------
# encoder / round trips

DIGEST_EXAMPLE = bytes.fromhex("000168c7010168ef150168")  # record: 01 000b <these 11 bytes>


def test_digest_example() -> None:
    old = bytes(PAGE_SIZE)
    new = bytearray(old)
    for p in (0, 200, 3000):
        new[p] = 0x68
    enc = encode(old, bytes(new))
    assert enc == DIGEST_EXAMPLE
    assert len(enc) == 0x0B
    assert decode(DIGEST_EXAMPLE, old) == bytes(new)


def test_identical_is_empty() -> None:
    page = _page(1)
    assert encode(page, page) == b""
    assert encoded_size(page, page) == 0
    assert encode(b"", b"") == b""
    assert decode(b"", page) == page


def test_lengths_must_match() -> None:
    with pytest.raises(ValueError):
        encode(bytes(4096), bytes(4095))


@pytest.mark.parametrize(
    "positions",
    [[0], [4095], [0, 4095], [127], [128], [0, 1, 2, 3, 4095], list(range(100, 300)),
     list(range(0, 4096, 2))[:1300], list(range(3, 4096, 7))],
)  # fmt: skip
def test_round_trip_patterns(positions: list[int]) -> None:
    old = _page(2)
    new = _flip(old, positions)
    enc = encode(old, new)
    assert enc is not None
    assert enc == _reference_encode(old, new)
    assert encoded_size(old, new) == len(enc)
    assert decode(enc, old) == new


def test_round_trip_random() -> None:
    rng = random.Random(7)
    for k in range(300):
        old = rng.randbytes(PAGE_SIZE) if k % 3 else bytes(PAGE_SIZE)
        new = bytearray(old)
        density = rng.choice([0.001, 0.01, 0.1, 0.3])
        for j in range(PAGE_SIZE):
            if rng.random() < density:
                new[j] = rng.randrange(256)
        ref = _reference_encode(old, bytes(new))
        enc = encode(old, bytes(new))
        if enc is None:
            assert len(ref) > PAGE_SIZE - 2
            continue
        assert enc == ref
        assert decode(enc, old) == bytes(new)
        # a different base page keeps its bytes outside the nzruns
        base = rng.randbytes(PAGE_SIZE)
        out = decode(memoryview(enc), bytearray(base))
        assert out == bytes(n if o != n else b for o, n, b in zip(old, new, base, strict=True))


def test_memoryview_inputs() -> None:
    old = _page(3)
    new = _flip(old, [5, 6, 7, 900])
    assert encode(memoryview(old), memoryview(new)) == encode(old, new)
    assert encode(bytearray(old), bytearray(new)) == encode(old, new)


# --------------------------------------------------------------------------------------------
# the overflow rule


def _two_runs_to_end(gap: int) -> tuple[bytes, bytes]:
    """nzrun at 0..999, zrun of `gap`, nzrun to the page end: size 4102 - gap, no trailing zrun."""
    old = _page(4)
    return old, _flip(old, [*range(0, 1000), *range(1000 + gap, PAGE_SIZE)])


def test_overflow_exactly_4096_fits() -> None:
    old, new = _two_runs_to_end(6)
    enc = encode(old, new)
    assert enc is not None
    assert len(enc) == 4096
    assert decode(enc, old) == new


def test_overflow_4097_is_none() -> None:
    old, new = _two_runs_to_end(5)
    assert len(_reference_encode(old, new)) == 4097
    assert encode(old, new) is None
    assert encoded_size(old, new) == -1


def test_overflow_trailing_zrun_needs_two_spare_bytes() -> None:
    old = _page(5)
    # one nzrun from 0 of length L, then a trailing zrun: content is 3 + L bytes
    fits = _flip(old, range(4091))  # 4094 bytes of content, 4094 + 2 <= 4096
    assert encode(old, fits) is not None
    assert encoded_size(old, fits) == 4094
    too_big = _flip(old, range(4092))  # 4095 bytes of content: the final scan's check fails
    assert len(_reference_encode(old, too_big)) == 4095
    assert encode(old, too_big) is None


def test_overflow_whole_page() -> None:
    old = _page(6)
    assert encode(old, _flip(old, range(PAGE_SIZE))) is None  # 1 + 2 + 4096
    assert encode(old, _flip(old, range(1, PAGE_SIZE))) is None  # 1 + 2 + 4095


def test_overflow_small_dlen() -> None:
    old = bytes(PAGE_SIZE)
    new = _flip(old, [200])  # c8 01 01 ff, followed by a trailing zrun
    assert encode(old, new, 6) == bytes.fromhex("c80101ff")
    assert encode(old, new, 5) is None  # trailing-zrun check: 4 + 2 > 5
    assert encode(old, new, 4) is None
    assert encode(old, new, 3) is None  # check after the zrun length: 2 + 2 > 3
    end = _flip(old, [4095])  # ff 1f 01 ff, no trailing zrun
    assert encode(old, end, 4) == bytes.fromhex("ff1f01ff")
    assert encode(old, end, 3) is None
    assert encode(old, old, 1) is None  # QEMU checks room before scanning even identical pages
    assert encode(old, old, 2) == b""


def test_matches_qemu_c_encoder() -> None:
    """Digest of QEMU 7.2 xbzrle_encode_buffer results (dlen 4096) on 400 seeded page pairs.

    Recorded once by calling the compiled QEMU C function on these exact inputs.
    """
    rng = random.Random(20240722)
    h = hashlib.sha256()
    overflows = 0
    for k in range(400):
        old = rng.randbytes(4096)
        new = bytearray(old)
        mode = k % 4
        if mode == 0:
            for _ in range(rng.randint(1, 50)):
                new[rng.randrange(4096)] ^= rng.randint(1, 255)
        elif mode == 1:
            for _ in range(rng.randint(1, 20)):
                p = rng.randrange(4096)
                for j in range(p, min(4096, p + rng.randint(1, 300))):
                    new[j] ^= rng.randint(1, 255)
        elif mode == 2:
            q = rng.random()
            for j in range(4096):
                if rng.random() < q:
                    new[j] ^= rng.randint(1, 255)
        else:
            step = rng.choice([2, 3])
            for j in range(rng.randrange(step), rng.randint(2000, 4096), step):
                new[j] ^= 0xA5
        enc = encode(old, bytes(new))
        r = -1 if enc is None else len(enc)
        overflows += r == -1
        h.update(r.to_bytes(4, "big", signed=True) + (enc or b""))
    assert overflows == 81
    assert h.hexdigest() == "ae496fe25204a3494a6bc4ad72036f652def0214f61a824401a56daa906b6435"


# --------------------------------------------------------------------------------------------
# decoder rejections (each with the offset of the rejected item)


@pytest.mark.parametrize(
    ("wire", "position", "fragment"),
    [
        ("00", 0, "fewer than 2 bytes left before a zrun"),
        ("0001689a", 3, "fewer than 2 bytes left before a zrun"),
        ("05ff", 1, "fewer than 2 bytes left before an nzrun"),
        ("0001680001ff", 3, "zero-length zrun"),
        ("050000", 1, "zero-length nzrun"),
        ("8120016868", 0, "zrun runs past the page end"),
        ("80200168", 2, "nzrun runs past the page end"),
        ("ff1f0268aa", 2, "nzrun runs past the page end"),
        ("00056868", 1, "past the end of the encoding"),
        ("ffff01", 0, "invalid zrun length"),
        ("00ff80", 1, "invalid nzrun length"),
    ],
)
def test_decode_rejections(wire: str, position: int, fragment: str) -> None:
    with pytest.raises(XbzrleError) as e:
        decode(bytes.fromhex(wire), bytes(PAGE_SIZE))
    assert isinstance(e.value, ValueError)
    assert e.value.position == position
    assert fragment in str(e.value)
    assert f"at byte {position}" in str(e.value)


def test_decode_accepts_what_qemu_accepts() -> None:
    zero = bytes(PAGE_SIZE)
    assert decode(bytes.fromhex("000168"), zero)[:2] == b"\x68\x00"  # first zrun may be 0
    assert decode(bytes.fromhex("81000168"), zero)[:3] == b"\x00\x68\x00"  # non-minimal uleb
    assert decode(bytes.fromhex("ff1f0168"), zero)[4095] == 0x68  # last byte of the page
    # zrun to exactly the page end, then nothing: the loop only ends with the encoding
    assert decode(bytes.fromhex("ff1f0168"), zero, page_size=4096)[:4095] == zero[:4095]


def test_decode_old_length_checked() -> None:
    with pytest.raises(ValueError) as e:
        decode(b"", bytes(100))
    assert not isinstance(e.value, XbzrleError)
    assert decode(bytes.fromhex("000168"), bytes(8), page_size=8) == b"\x68" + bytes(7)
