"""Searching a stream: field names and values in the decoded model, bytes and text anywhere.

Field searches walk the decoded device sections (small even for huge streams). Byte and text
searches scan the whole file in chunks (plain RAM pages included, since their payloads are the
page bytes), then the pages the stream carries encoded (XBZRLE deltas, zlib COMPRESS_PAGE) are
decoded one by one and searched too. The scans are generators that report progress and stop
when asked, so the browser runs them in a worker and can cancel them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum

from analyzer.model import Section, Stream
from analyzer.ram import page_bytes
from analyzer.tui.entries import hexoff, walk_fields
from formats.constants import RAM_KINDS
from formats.errors import StreamError
from formats.ram_scan import COMPRESS_PAGE, XBZRLE

CHUNK = 16 << 20
MAX_MATCHES = 100_000
"""A search stops collecting after this many matches (and says so)."""


class Mode(StrEnum):
    NAME = "name"
    VALUE = "value"
    HEX = "hex"
    TEXT = "text"


@dataclass(frozen=True, slots=True)
class Match:
    """One hit: the bytes to show, a label, and the model object to select (Node or Item)."""

    offset: int
    length: int
    label: str
    target: object = None


def parse_int(text: str) -> int:
    """A decimal, 0x-hex, 0o or 0b integer, optionally negative; ValueError otherwise."""
    t = text.strip().replace("_", "")
    if not t:
        raise ValueError("empty number")
    return int(t, 0) if t.lstrip("-")[:2].lower() in ("0x", "0o", "0b") else int(t, 10)


def parse_hex(text: str) -> bytes:
    """Hex bytes with optional spaces, colons or a 0x prefix: '7e 00 00 00 05', 'c0ffee'."""
    t = text.strip().lower().removeprefix("0x").replace(" ", "").replace(":", "")
    if not t or len(t) % 2:
        raise ValueError("need an even number of hex digits")
    return bytes.fromhex(t)


def parse_offset(text: str, size: int) -> int:
    """A go-to target: decimal or 0x-hex, inside the file."""
    try:
        n = parse_int(text)
    except ValueError:
        raise ValueError(f"not a number: {text!r} (use 1234 or 0x4d2)") from None
    if n < 0:
        n += size
    if not 0 <= n < max(size, 1):
        raise ValueError(f"{text} is outside the stream (0..{hexoff(max(size - 1, 0))})")
    return n


def search_model(stream: Stream, mode: Mode, query: str) -> list[Match]:
    """Field-name or field-value matches, in stream order."""
    out: list[Match] = []
    if mode == Mode.NAME:
        q = query.lower()
        for it in stream.items:
            if isinstance(it, Section) and q in it.name.lower():
                out.append(Match(it.offset, it.size, f"section {it.type.short} {it.name}", it))
        cfg = stream.configuration
        if cfg is not None:
            for sub in cfg.subsections:
                if q in sub.name.lower():
                    out.append(Match(sub.offset, sub.size, sub.name))
        for sec, path, node in walk_fields(stream):
            if q in path.lower():
                out.append(Match(node.offset, node.size, f"{sec.name}/{path}", node))
    elif mode == Mode.VALUE:
        want: int | None
        try:
            want = parse_int(query)
        except ValueError:
            want = None
        q = query.lower()
        for sec, path, node in walk_fields(stream):
            v = node.value
            if v is None:
                continue
            if want is not None and isinstance(v, int | bool) and int(v) == want:
                hit = True
            elif isinstance(v, bytes):
                hit = want is None and (q in v.hex() or q.encode() in v)
            else:
                hit = want is None and q == str(v).lower()
            if hit:
                out.append(Match(node.offset, node.size, f"{sec.name}/{path} = {v!r}", node))
    out.sort(key=lambda m: m.offset)
    return out[:MAX_MATCHES]


def needle_for(mode: Mode, query: str) -> bytes:
    if mode == Mode.HEX:
        return parse_hex(query)
    if not query:
        raise ValueError("empty text")
    return query.encode("utf-8")


def search_bytes(
    stream: Stream,
    needle: bytes,
    progress: Callable[[int, int], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> Iterator[Match]:
    """Every occurrence of needle in the file, then inside decoded XBZRLE/compressed pages."""
    size = stream.size
    n = len(needle)
    total = size + _encoded_rows(stream)
    fd = os.open(stream.path, os.O_RDONLY) if os.path.exists(stream.path) else None
    try:
        pos = 0
        while pos < size:
            if cancelled is not None and cancelled():
                return
            want = min(CHUNK + n - 1, size - pos)
            chunk = os.pread(fd, want, pos) if fd is not None else stream.read(pos, want)
            i = chunk.find(needle)
            while 0 <= i < CHUNK:
                yield Match(pos + i, n, f"bytes at {hexoff(pos + i)}")
                i = chunk.find(needle, i + 1)
            pos += CHUNK
            if progress is not None:
                progress(min(pos, size), total)
    finally:
        if fd is not None:
            os.close(fd)
    yield from _search_encoded(stream, needle, size, total, progress, cancelled)


def _encoded_rows(stream: Stream) -> int:
    counts = stream.ram.counts.values()
    return sum(c.get(XBZRLE, 0) + c.get(COMPRESS_PAGE, 0) for c in counts)


def _search_encoded(
    stream: Stream,
    needle: bytes,
    done: int,
    total: int,
    progress: Callable[[int, int], None] | None,
    cancelled: Callable[[], bool] | None,
) -> Iterator[Match]:
    """Decode XBZRLE and compressed pages in stream order (a delta needs the page before it)."""
    if total == done:
        return
    ram = stream.ram
    current: dict[tuple[int, int], bytes] = {}
    encoded_keys = set()
    for i in range(len(ram)):
        if (ram.addr_flags[i] & 0xFDF) in (XBZRLE, COMPRESS_PAGE):
            encoded_keys.add((ram.block[i], int(ram.addr_flags[i] & ~0xFFF)))
    seen = 0
    for i in range(len(ram)):
        v = ram.addr_flags[i]
        kind = v & 0xFDF
        key = (ram.block[i], int(v & ~0xFFF))
        if key not in encoded_keys or kind not in (XBZRLE, COMPRESS_PAGE, 0x8, 0x2):
            continue
        try:
            content = page_bytes(stream, i, current.get(key))
        except StreamError:
            continue
        current[key] = content
        if kind not in (XBZRLE, COMPRESS_PAGE):
            continue
        seen += 1
        if cancelled is not None and not seen & 0xFF and cancelled():
            return
        if progress is not None and not seen & 0xFFF:
            progress(done + seen, total)
        j = content.find(needle)
        if j >= 0:
            b = ram.blocks[key[0]].idstr if key[0] >= 0 else "?"
            rec = int(ram.rec_pos[i])
            end = int(ram.payload_pos[i]) + ram.payload_len(i, stream.buf)
            yield Match(rec, end - rec, f"in decoded {RAM_KINDS[int(kind)]} page {b} "
                                        f"{hexoff(key[1])} +{hexoff(j)}")
    if progress is not None:
        progress(total, total)
