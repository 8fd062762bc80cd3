"""XBZRLE page-delta codec, bit-exact with QEMU 7.2's migration stream.

XBZRLE ("XOR-based zero run length encoding") is how a QEMU 7.2 source sends a dirty RAM page
that the destination already holds an older copy of (RAM record flag ``RAM_SAVE_FLAG_XBZRLE``).
The payload describes the differences between the cached ``old`` page and the ``new`` page:

* a *zrun* is a maximal run of positions where old and new agree, an *nzrun* a maximal run of
  positions where they differ;
* the encoding is a sequence of ``uleb(zrun_len) uleb(nzrun_len) new[nzrun bytes]`` triples that
  covers the page from left to right; the trailing zrun is not written; only the first zrun may
  have length 0, every nzrun has length >= 1;
* ``uleb`` is the "small" unsigned LEB128: one byte for values below 0x80, two bytes
  (``(v & 0x7f) | 0x80``, ``v >> 7``) for values up to 0x3fff, nothing larger.

:func:`encode` reproduces the QEMU encoder's result, including its exact output-overflow rule
(QEMU's ``-1`` becomes ``None``); :func:`decode` applies a delta and rejects exactly what the
QEMU decoder rejects, raising :class:`XbzrleError` with the offending offset in the encoding.

The per-record header (flag byte ``ENCODING_FLAG_XBZRLE`` = 0x01, big-endian u16 length, which a
7.2 destination rejects when above the page size) is the caller's business, not this module's.
"""

from __future__ import annotations

from typing import Final

from formats.errors import MigstreamError

__all__ = [
    "ENCODING_FLAG_XBZRLE",
    "PAGE_SIZE",
    "ULEB_SMALL_MAX",
    "XbzrleError",
    "decode",
    "encode",
    "encoded_size",
    "uleb128_decode_small",
    "uleb128_encode_small",
    "uleb128_len_small",
]

PAGE_SIZE: Final = 4096
"""x86_64 TARGET_PAGE_SIZE: the page (and default output-limit) size of XBZRLE in QEMU 7.2."""

ENCODING_FLAG_XBZRLE: Final = 0x01
"""The only encoding flag a 7.2 destination accepts in the XBZRLE record header."""

ULEB_SMALL_MAX: Final = 0x3FFF
"""Largest value the two-byte "small" uleb128 can hold."""


class XbzrleError(MigstreamError, ValueError):
    """An encoding the QEMU 7.2 XBZRLE decoder would reject.

    ``position`` is the byte offset inside the encoding where the rejected item starts.
    """

    def __init__(self, message: str, position: int) -> None:
        super().__init__(f"{message} (at byte {position} of the encoding)")
        self.reason = message
        self.position = position


# --------------------------------------------------------------------------------------------
# uleb128 "small"


def uleb128_len_small(n: int) -> int:
    """Number of bytes :func:`uleb128_encode_small` uses for ``n``."""
    if not 0 <= n <= ULEB_SMALL_MAX:
        raise ValueError(f"uleb128 small value out of range 0..0x3fff: {n}")
    return 1 if n < 0x80 else 2


def uleb128_encode_small(n: int) -> bytes:
    """Encode ``0 <= n <= 0x3fff`` as one or two bytes (QEMU asserts on larger values)."""
    if not 0 <= n <= ULEB_SMALL_MAX:
        raise ValueError(f"uleb128 small value out of range 0..0x3fff: {n}")
    if n < 0x80:
        return bytes((n,))
    return bytes(((n & 0x7F) | 0x80, n >> 7))


def uleb128_decode_small(buf: bytes | bytearray | memoryview, pos: int = 0) -> tuple[int, int]:
    """Decode a small uleb128 at ``buf[pos]``; return ``(value, bytes_used)``.

    Like QEMU, a two-byte form is accepted even when not minimal (``81 00`` is 1). A second byte
    with its top bit set (a value wider than 14 bits) or a missing byte raises
    :class:`XbzrleError`.
    """
    if pos >= len(buf):
        raise XbzrleError("uleb128 truncated", pos)
    first = buf[pos]
    if not first & 0x80:
        return first, 1
    if pos + 1 >= len(buf):
        raise XbzrleError("uleb128 truncated", pos)
    second = buf[pos + 1]
    if second & 0x80:
        raise XbzrleError("uleb128 wider than 14 bits", pos)
    return (first & 0x7F) | (second << 7), 2


# --------------------------------------------------------------------------------------------
# encoder


# Maps every non-zero byte to 1, so that nzrun boundaries can be found with bytes.find (memchr).
_NONZERO_TO_ONE: Final = bytes([0] + [1] * 255)


def _diff_map(old: bytes | bytearray | memoryview, new: bytes | bytearray | memoryview) -> bytes:
    """One byte per position: 0 where old and new agree, 1 where they differ."""
    x = int.from_bytes(old, "little") ^ int.from_bytes(new, "little")
    return x.to_bytes(len(new), "little").translate(_NONZERO_TO_ONE)


_ULEB1: Final = tuple(bytes((n,)) for n in range(0x80))


def _uleb(n: int) -> bytes:
    if n < 0x80:
        return _ULEB1[n]
    if n > ULEB_SMALL_MAX:
        raise ValueError(f"run of {n} bytes does not fit a small uleb128 (QEMU asserts)")
    return bytes(((n & 0x7F) | 0x80, n >> 7))


def _encode(
    old: bytes | bytearray | memoryview,
    new: bytes | bytearray | memoryview,
    dlen: int,
    emit: bool,
) -> tuple[int, list[bytes | memoryview]] | None:
    """Walk the runs exactly like ``xbzrle_encode_buffer``; ``(size, parts)`` or None."""
    if len(old) != len(new):
        raise ValueError(f"page lengths differ: old {len(old)} bytes, new {len(new)} bytes")
    slen = len(new)
    parts: list[bytes | memoryview] = []
    if slen == 0:
        return 0, parts
    if old == new:
        # QEMU checks the output room before it even scans the first zrun.
        return (0, parts) if dlen >= 2 else None
    new_view = memoryview(new).cast("B")
    diff = _diff_map(old, new)
    find = diff.find
    d = 0
    pos = 0
    while True:
        start = find(1, pos)
        if start < 0:
            break
        end = find(0, start)
        if end < 0:
            end = slen
        if d + 2 > dlen:  # room check at the top of each (zrun, nzrun) pair
            return None
        zrun = start - pos
        d += 1 if zrun < 0x80 else 2
        if d + 2 > dlen:  # room check after the zrun length
            return None
        nzrun = end - start
        d += 1 if nzrun < 0x80 else 2
        if d + nzrun > dlen:  # room check after the nzrun length
            return None
        d += nzrun
        if nzrun > ULEB_SMALL_MAX or zrun > ULEB_SMALL_MAX:
            raise ValueError("a run longer than 0x3fff bytes does not fit a small uleb128")
        if emit:
            parts.append(_uleb(zrun) + _uleb(nzrun))
            parts.append(new_view[start:end])
        pos = end
    if pos < slen and d + 2 > dlen:
        # A trailing zrun is never written, but QEMU enters the loop once more to scan it and
        # makes its room check first.
        return None
    return d, parts


def encode(
    old: bytes | bytearray | memoryview,
    new: bytes | bytearray | memoryview,
    dlen: int = PAGE_SIZE,
) -> bytes | None:
    """Encode ``new`` as a delta against ``old`` exactly as QEMU 7.2's ``xbzrle_encode_buffer``.

    Returns ``b""`` when the pages are identical (QEMU's 0: nothing is sent), ``None`` when the
    encoding would not fit in ``dlen`` bytes (QEMU's -1: the page is sent whole), else the
    encoding. With ``d`` the bytes produced so far, the encoder gives up when ``d + 2 > dlen`` at
    the start of any (zrun, nzrun) pair -- including the scan of the final, unwritten zrun --
    or right after a zrun length, or when ``d + nzrun_len > dlen`` right after an nzrun length.
    The result may therefore be exactly ``dlen`` bytes long but never longer.
    """
    res = _encode(old, new, dlen, emit=True)
    if res is None:
        return None
    return b"".join(res[1])


def encoded_size(
    old: bytes | bytearray | memoryview,
    new: bytes | bytearray | memoryview,
    dlen: int = PAGE_SIZE,
) -> int:
    """QEMU's return value for the pair: encoding length, 0 if identical, -1 on overflow."""
    res = _encode(old, new, dlen, emit=False)
    return -1 if res is None else res[0]


# --------------------------------------------------------------------------------------------
# decoder


def decode(
    encoded: bytes | bytearray | memoryview,
    old: bytes | bytearray | memoryview,
    page_size: int = PAGE_SIZE,
) -> bytes:
    """Apply ``encoded`` to a copy of ``old`` as QEMU 7.2's ``xbzrle_decode_buffer`` does.

    Bytes outside the nzruns keep their value from ``old`` (the destination's current page).
    Raises :class:`XbzrleError` (a ``ValueError``) for every encoding QEMU rejects, checked in
    QEMU's order: fewer than 2 bytes left before a length, an invalid (wider than 14 bits)
    length, a zero zrun other than the first, a zero nzrun, output past ``page_size``, nzrun data
    past the end of the encoding. An empty encoding leaves the page unchanged.

    QEMU's record loader additionally rejects an encoded length above the page size before
    decoding; that header check belongs to the caller.
    """
    if len(old) != page_size:
        raise ValueError(f"old page is {len(old)} bytes, expected {page_size}")
    src = bytes(encoded)
    slen = len(src)
    out = bytearray(old)
    i = 0
    d = 0
    while i < slen:
        # zrun length
        if slen - i < 2:
            raise XbzrleError("fewer than 2 bytes left before a zrun length", i)
        first = src[i]
        if first & 0x80:
            second = src[i + 1]
            if second & 0x80:
                raise XbzrleError("invalid zrun length (wider than 14 bits)", i)
            count = (first & 0x7F) | (second << 7)
            used = 2
        else:
            count = first
            used = 1
        if i and not count:
            raise XbzrleError("zero-length zrun after the first", i)
        zpos = i
        i += used
        d += count
        if d > page_size:
            raise XbzrleError(f"zrun runs past the page end ({d} > {page_size})", zpos)

        # nzrun length
        if slen - i < 2:
            raise XbzrleError("fewer than 2 bytes left before an nzrun length", i)
        first = src[i]
        if first & 0x80:
            second = src[i + 1]
            if second & 0x80:
                raise XbzrleError("invalid nzrun length (wider than 14 bits)", i)
            count = (first & 0x7F) | (second << 7)
            used = 2
        else:
            count = first
            used = 1
        if not count:
            raise XbzrleError("zero-length nzrun", i)
        npos = i
        i += used
        if d + count > page_size:
            raise XbzrleError(f"nzrun runs past the page end ({d + count} > {page_size})", npos)
        if i + count > slen:
            raise XbzrleError(
                f"nzrun data runs past the end of the encoding ({i + count} > {slen})", npos
            )
        out[d : d + count] = src[i : i + count]
        d += count
        i += count
    return bytes(out)
