"""Guest RAM as the stream carries it: page copies, their final contents, and extraction.

The stream model's RamIndex lists every page record in stream order. Here those rows become
page copies (block, page offset, section, round, kind), the last copy of each page wins, XBZRLE
deltas are applied to the copy before them, and COMPRESS_PAGE records are inflated. `extract`
writes one raw image per RAM block, named like analyze-migration.py `-x` names them.
"""

from __future__ import annotations

import logging
import os
import zlib
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass

from analyzer.model import Section, Stream
from analyzer.output import atomic_output
from formats import xbzrle
from formats.constants import RAM_KINDS, TARGET_PAGE_SIZE, MigCmd
from formats.errors import MigstreamError, StreamError
from formats.ram_scan import COMPRESS_PAGE, PAGE, XBZRLE, ZERO

log = logging.getLogger(__name__)

PAGE_RECORD_KINDS = (ZERO, PAGE, XBZRLE, COMPRESS_PAGE)


@dataclass(frozen=True, slots=True)
class PageCopy:
    """One page record: where it is in the stream and which page it writes."""

    row: int
    record_offset: int
    payload_offset: int
    block: str
    page_offset: int
    kind: str
    section_index: int
    round: int


def iter_page_copies(stream: Stream) -> Iterator[PageCopy]:
    ram = stream.ram
    items = stream.items
    for i in range(len(ram)):
        v = ram.addr_flags[i]
        kind = v & 0xFDF
        if kind not in PAGE_RECORD_KINDS:
            continue
        sec = ram.section[i]
        yield PageCopy(
            i, ram.rec_pos[i], ram.payload_pos[i], ram.blocks[ram.block[i]].idstr,
            v & ~0xFFF, RAM_KINDS[kind], sec, items[sec].round if sec < len(items) else 0,
        )


def kind_counts(stream: Stream) -> dict[str, int]:
    """Number of RAM records by kind (ZERO, PAGE, ...), over the whole stream."""
    counts: dict[str, int] = {}
    for per_section in stream.ram.counts.values():
        for kind, n in per_section.items():
            name = RAM_KINDS.get(kind, f"{kind:#x}")
            counts[name] = counts.get(name, 0) + n
    return counts


def discards(stream: Stream) -> list[tuple[int, str, int, int]]:
    """POSTCOPY_RAM_DISCARD ranges as (item index, block, start, length), in stream order.

    The destination drops these pages (they read as zeros until sent again).
    """
    out: list[tuple[int, str, int, int]] = []
    for c in stream.commands:
        if c.cmd == MigCmd.MIG_CMD_POSTCOPY_RAM_DISCARD:
            for start, length in c.args.get("ranges", []):
                out.append((c.index, str(c.args["block"]), start, length))
    return out


def _page_error(stream: Stream, row: int, message: str, path: str) -> StreamError:
    sec = stream.ram.section[row]
    item = stream.items[sec] if sec < len(stream.items) else None
    where = item.where if isinstance(item, Section) else "'ram'"
    return StreamError(message, stream.ram.rec_pos[row], where, path)


def page_bytes(stream: Stream, row: int, previous: bytes | None) -> bytes:
    """The page content after applying record `row` on top of `previous` (None = zeros)."""
    ram = stream.ram
    kind = ram.addr_flags[row] & 0xFDF
    p = ram.payload_pos[row]
    buf = stream.buf
    if kind == PAGE:
        return bytes(buf[p : p + TARGET_PAGE_SIZE])
    if kind == ZERO:
        return bytes([buf[p]]) * TARGET_PAGE_SIZE
    if kind == XBZRLE:
        n = (buf[p + 1] << 8) | buf[p + 2]
        old = previous if previous is not None else bytes(TARGET_PAGE_SIZE)
        try:
            return xbzrle.decode(bytes(buf[p + 3 : p + 3 + n]), old)
        except ValueError as exc:
            raise _page_error(stream, row, f"XBZRLE delta rejected: {exc}",
                              "ram/record/xbzrle") from None
    if kind == COMPRESS_PAGE:
        n = int.from_bytes(buf[p : p + 4], "big")
        try:
            d = zlib.decompressobj()
            out = d.decompress(bytes(buf[p + 4 : p + 4 + n]), TARGET_PAGE_SIZE + 1)
        except zlib.error as exc:
            raise _page_error(stream, row, f"compressed page does not inflate: {exc}",
                              "ram/record/compress") from None
        if len(out) != TARGET_PAGE_SIZE or not d.eof:
            raise _page_error(stream, row,
                              f"compressed page inflates to {len(out)} bytes, not a full page",
                              "ram/record/compress")
        return out
    raise ValueError(f"row {row} is not a page record")


class RamImage:
    """Final page contents, block by block, computed on demand from the page index."""

    def __init__(self, stream: Stream) -> None:
        self.stream = stream
        self._last: dict[tuple[int, int], int] | None = None
        self._prev: dict[int, int] | None = None
        self._discard_list: list[tuple[int, str, int, int]] | None = None

    def _build(self) -> None:
        ram = self.stream.ram
        last: dict[tuple[int, int], int] = {}
        prev: dict[int, int] = {}
        for i in range(len(ram)):
            v = ram.addr_flags[i]
            if (v & 0xFDF) not in PAGE_RECORD_KINDS:
                continue
            key = (ram.block[i], v & ~0xFFF)
            before = last.get(key)
            if before is not None:
                prev[i] = before
            last[key] = i
        self._last, self._prev = last, prev

    @property
    def last_copy(self) -> dict[tuple[int, int], int]:
        """(block index, page offset) -> row of the page's final copy."""
        if self._last is None:
            self._build()
        assert self._last is not None
        return self._last

    def _discards(self) -> list[tuple[int, str, int, int]]:
        if self._discard_list is None:
            self._discard_list = discards(self.stream)
        return self._discard_list

    def copies_of(self, block: int, page_offset: int) -> list[int]:
        """Rows of every copy of one page, oldest first."""
        row = self.last_copy.get((block, page_offset))
        assert self._prev is not None
        rows: list[int] = []
        while row is not None:
            rows.append(row)
            row = self._prev.get(row)
        return rows[::-1]

    def page(self, block: int, page_offset: int) -> bytes | None:
        """Final content of one page, or None if the stream never sent it."""
        rows = self.copies_of(block, page_offset)
        if not rows:
            return None
        name = self.stream.ram.blocks[block].idstr
        last_item = self.stream.ram.section[rows[-1]]
        for item, blk, start, length in self._discards():
            if blk == name and item > last_item and start <= page_offset < start + length:
                return bytes(TARGET_PAGE_SIZE)
        start = 0
        for k in range(len(rows) - 1, -1, -1):
            if (self.stream.ram.addr_flags[rows[k]] & 0xFDF) != XBZRLE:
                start = k
                break
        content: bytes | None = None
        for r in rows[start:]:
            content = page_bytes(self.stream, r, content)
        return content


def block_file_name(idstr: str) -> str:
    """The relative path analyze-migration.py -x gives a RAM block's image."""
    return idstr.lstrip("/")


def _apply_pages(
    stream: Stream,
    fds: dict[int, int],
    progress: Callable[[int, int], None] | None,
) -> None:
    """Write every page copy (and postcopy discard) into the block images, in stream order."""
    ram = stream.ram
    written = {bi: bytearray((ram.blocks[bi].used_length // TARGET_PAGE_SIZE + 7) // 8)
               for bi in fds}
    n = len(ram)
    pending = discards(stream)
    by_name = {b.idstr: bi for bi, b in enumerate(ram.blocks)}
    for i in range(n):
        while pending and pending[0][0] < ram.section[i]:
            _, name, start, length = pending.pop(0)
            target = by_name.get(name)
            if target is not None and target in fds:
                end = min(start + length, ram.blocks[target].used_length)
                os.pwrite(fds[target], bytes(max(0, end - start)), start)
        v = ram.addr_flags[i]
        kind = v & 0xFDF
        if kind not in PAGE_RECORD_KINDS:
            continue
        if progress is not None and not i & 0x3FFF:
            progress(i, n)
        bi = ram.block[i]
        off = v & ~0xFFF
        fd = fds.get(bi)
        if fd is None:
            raise _page_error(stream, i, f"page for RAM block {ram.blocks[bi].idstr!r} "
                              "that is not in the block list (QEMU: \"Can't find block\")",
                              "ram/record/block_name")
        if off + TARGET_PAGE_SIZE > ram.blocks[bi].used_length:
            raise _page_error(stream, i, f"page offset {off:#x} is outside RAM block "
                              f"{ram.blocks[bi].idstr!r} (QEMU: 'Illegal RAM offset')",
                              "ram/record/addr")
        page_no = off // TARGET_PAGE_SIZE
        bitmap = written[bi]
        seen = bitmap[page_no >> 3] & (1 << (page_no & 7))
        if kind == ZERO and not seen and stream.buf[ram.payload_pos[i]] == 0:
            continue
        previous = os.pread(fd, TARGET_PAGE_SIZE, off) if kind == XBZRLE else None
        os.pwrite(fd, page_bytes(stream, i, previous), off)
        bitmap[page_no >> 3] |= 1 << (page_no & 7)


def extract(
    stream: Stream,
    out_dir: str | os.PathLike[str],
    progress: Callable[[int, int], None] | None = None,
) -> list[str]:
    """Write one image per listed RAM block into out_dir; returns the files written.

    Pages are applied in stream order, so the last copy wins and XBZRLE deltas see the page as
    the destination would. Each image is written under a temporary name and renamed when done.
    """
    ram = stream.ram
    out = os.fspath(out_dir)
    fds: dict[int, int] = {}
    done: list[str] = []
    try:
        os.makedirs(out, exist_ok=True)
        with ExitStack() as files:
            for bi, block in enumerate(ram.blocks):
                if not block.listed:
                    continue
                final = os.path.join(out, block_file_name(block.idstr))
                os.makedirs(os.path.dirname(final) or out, exist_ok=True)
                fh = files.enter_context(atomic_output(final, buffering=0))
                os.ftruncate(fh.fileno(), block.used_length)
                fds[bi] = fh.fileno()
                done.append(final)
            _apply_pages(stream, fds, progress)
    except OSError as exc:
        raise MigstreamError(f"cannot write RAM images to {out}: {exc}") from None
    if progress is not None:
        progress(len(ram), len(ram))
    return done
